package dev.gosling.pipeline.ingest;

/** Document ids packed into a long: 24 bits of file ordinal, 40 bits of line number; ordered like (file, line). */
public final class DocIds {
    private static final int LINE_BITS = 40;
    public static final long MAX_LINE = (1L << LINE_BITS) - 1;
    public static final int MAX_FILES = 1 << 23;

    private DocIds() {
    }

    public static long of(int fileOrdinal, long lineNumber) {
        return ((long) fileOrdinal << LINE_BITS) | lineNumber;
    }

    public static int fileOrdinal(long docId) {
        return (int) (docId >>> LINE_BITS);
    }

    public static long lineNumber(long docId) {
        return docId & MAX_LINE;
    }
}
