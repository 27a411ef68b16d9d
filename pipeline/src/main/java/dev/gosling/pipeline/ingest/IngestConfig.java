package dev.gosling.pipeline.ingest;

import java.io.Serializable;

/**
 * ingest: how lines become documents. {@code maxLineBytes} bounds what one line may hold in memory (a longer line is
 * quarantined as line_too_long, only its head read); {@code maxDocBytes} bounds a document's text (UTF-8 bytes, 0 = no
 * bound): a longer one is truncated at a character boundary or quarantined as doc_too_long, per {@code oversize}.
 * {@code strict} stops at the first bad line (FILE:LINE: reason) instead of quarantining it.
 */
public record IngestConfig(int maxLineBytes, long maxDocBytes, Oversize oversize, boolean strict) implements Serializable {
    public enum Oversize {
        TRUNCATE, QUARANTINE;

        /** The recipe's spelling. */
        @com.fasterxml.jackson.annotation.JsonValue
        public String key() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    public static final int DEFAULT_MAX_LINE_BYTES = 256 << 20;
    public static final long DEFAULT_MAX_DOC_BYTES = 8L << 20;

    public static IngestConfig defaults() {
        return new IngestConfig(DEFAULT_MAX_LINE_BYTES, DEFAULT_MAX_DOC_BYTES, Oversize.TRUNCATE, false);
    }
}
