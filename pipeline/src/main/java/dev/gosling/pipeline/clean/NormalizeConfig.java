package dev.gosling.pipeline.clean;

import java.io.Serializable;

/**
 * normalize: the Unicode form (NFC by default, NFKC optional, NONE to leave it) and whether ANSI terminal escape
 * sequences (ESC [ ... m colours and other CSI sequences, as in fortunes-zh) are removed whole. Line endings are always
 * unified to \n and control characters other than \n and \t always removed: that is what the stage is for.
 */
public record NormalizeConfig(Form form, boolean removeAnsiEscapes) implements Serializable {
    public enum Form { NFC, NFKC, NONE }

    public static NormalizeConfig defaults() {
        return new NormalizeConfig(Form.NFC, true);
    }
}
