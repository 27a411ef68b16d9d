package dev.gosling.pipeline.dedup;

import java.io.Serializable;

/**
 * exact_dedup: documents with the same text (after the stages before it, normally normalize) are duplicates; the
 * smallest id survives. The key is the first 128 bits of SHA-256 of the UTF-8 text; equal keys are confirmed by
 * comparing the texts, so a collision can never remove a document. No settings: the record marks the stage as on.
 */
public record ExactDedupConfig() implements Serializable {
}
