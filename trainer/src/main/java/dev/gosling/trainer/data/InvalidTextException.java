package dev.gosling.trainer.data;

import dev.gosling.trainer.GoslingException;

/**
 * Text that has no UTF-8 form: a lone (unpaired) UTF-16 surrogate. Python's {@code str.encode('utf-8')} raises on
 * it too; silently writing {@code '?'} (as {@code String.getBytes} does) would change the training data.
 */
public final class InvalidTextException extends GoslingException {
    private static final long serialVersionUID = 1L;

    private final int charIndex;
    private final char surrogate;

    public InvalidTextException(char surrogate, int charIndex) {
        super(String.format("lone surrogate U+%04X at char %d: the text is not valid Unicode;"
                + " repair or drop this document before tokenizing", (int) surrogate, charIndex));
        this.charIndex = charIndex;
        this.surrogate = surrogate;
    }

    /** The UTF-16 index of the unpaired surrogate in the text. */
    public int charIndex() {
        return charIndex;
    }

    public char surrogate() {
        return surrogate;
    }
}
