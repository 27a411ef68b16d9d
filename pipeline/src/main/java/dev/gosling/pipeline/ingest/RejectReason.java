package dev.gosling.pipeline.ingest;

/** Why a line never became a document. The lower-case name is what the summary and the quarantine file say. */
public enum RejectReason {
    LINE_TOO_LONG,
    INVALID_UTF8,
    INVALID_JSON,
    NOT_AN_OBJECT,
    MISSING_TEXT,
    TEXT_NOT_STRING,
    LONE_SURROGATE,
    EMPTY_TEXT,
    TOO_MANY_TOKENS,
    /** prepare: a document over ingest.max_doc_bytes, with ingest.oversize: quarantine. */
    DOC_TOO_LONG;

    public String label() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
