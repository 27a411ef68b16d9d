package dev.gosling.pipeline.ingest;

import java.io.Serializable;

/**
 * What became of one input line: a document (its "text" as UTF-8, {@code reason} null) or a reject with its reason,
 * a one-line detail and the head of the raw line for the quarantine file.
 */
public record LineOutcome(long docId, byte[] text, RejectReason reason, String detail, byte[] rawHead) implements Serializable {

    /** How much of a rejected line the quarantine keeps. */
    public static final int RAW_HEAD_BYTES = 1024;

    public static LineOutcome document(long docId, byte[] text) {
        return new LineOutcome(docId, text, null, null, null);
    }

    public static LineOutcome reject(long docId, RejectReason reason, String detail, byte[] raw) {
        byte[] head = raw.length <= RAW_HEAD_BYTES ? raw : java.util.Arrays.copyOf(raw, RAW_HEAD_BYTES);
        return new LineOutcome(docId, null, reason, detail, head);
    }

    public boolean isDocument() {
        return reason == null;
    }
}
