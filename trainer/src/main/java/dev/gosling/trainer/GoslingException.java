package dev.gosling.trainer;

/**
 * A user error: one line that says what is wrong, where (file:line, flag, key) and what to do.
 * The CLI prints the message alone and exits non-zero; stack traces only with --debug.
 */
public class GoslingException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public GoslingException(String message) {
        super(message);
    }

    public GoslingException(String message, Throwable cause) {
        super(message, cause);
    }

    /** The user error somewhere in a cause chain (Spark wraps a task's exception in its own), or null. */
    public static GoslingException findIn(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof GoslingException g) {
                return g;
            }
        }
        return null;
    }
}
