package dev.gosling.pipeline.ingest;

import java.io.Serializable;

/**
 * One non-empty (after strip) line of an input file. {@code bytes} holds the stripped line, or only its first
 * {@code maxLineBytes} bytes when {@code tooLong} is set; {@code length} is the stripped length in the file.
 */
public record RawLine(int fileOrdinal, long lineNumber, byte[] bytes, long length, boolean tooLong) implements Serializable {

    /** The stable document id: (file ordinal in the sorted listing, 1-based line number). Never depends on partitioning. */
    public long docId() {
        return DocIds.of(fileOrdinal, lineNumber);
    }
}
