package dev.gosling.pipeline.clean;

import java.io.Serializable;
import java.util.List;

/**
 * filter.fineweb: FineWeb's own quality rules (Penedo et al. 2024), names and defaults as datatrove's
 * FineWebQualityFilter. {@code stopChars} are the line endings that count as terminal punctuation. Null = not checked.
 */
public record FineWebRules(Double linePunctThr, boolean linePunctExcludeZero, List<String> stopChars, Double shortLineThr,
                           int shortLineLength, Double charDuplicatesRatio, Double newLineRatio) implements Serializable {

    /**
     * Sentence-ending punctuation of the major scripts (a subset of Unicode's Sentence_Terminal, which datatrove's
     * TERMINAL_PUNCTUATION lists in full): Latin, CJK full-width and half-width, Arabic, Devanagari, Armenian,
     * Ethiopic, Myanmar, Khmer, Tibetan, and the double marks.
     */
    public static final List<String> TERMINAL_PUNCTUATION = List.of(".", "!", "?", "\u3002", "\uFF01", "\uFF1F", "\uFF0E",
            "\uFF61", "\u061F", "\u06D4", "\u0964", "\u0965", "\u0589", "\u1362", "\u1367", "\u1368", "\u104A", "\u104B",
            "\u17D4", "\u17D5", "\u0F0D", "\u203C", "\u203D", "\u2047", "\u2048", "\u2049", "\u2026", "\u0701", "\u0702");

    public static FineWebRules defaults() {
        return new FineWebRules(0.12, false, TERMINAL_PUNCTUATION, 0.67, 30, 0.01, 0.3);
    }
}
