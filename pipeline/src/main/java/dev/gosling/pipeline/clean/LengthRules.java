package dev.gosling.pipeline.clean;

import java.io.Serializable;

/**
 * filter.length: bounds on a document's length in characters (code points) and in RWKV world tokens (end-of-document
 * token not counted). A null bound is not checked.
 */
public record LengthRules(Integer minChars, Integer maxChars, Integer minTokens, Integer maxTokens) implements Serializable {
    public boolean needsTokens() {
        return minTokens != null || maxTokens != null;
    }
}
