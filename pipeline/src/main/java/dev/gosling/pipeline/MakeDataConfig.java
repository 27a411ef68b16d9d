package dev.gosling.pipeline;

import dev.gosling.trainer.GoslingException;

import java.io.Serializable;

/**
 * make-data's settings, validated once. Names follow make_data.py (input, copies, ctx_len) and RWKV-PEFT-Simple
 * (max_tokens, no-eod); the seed is Gosling's deliberate deviation: make_data shuffles unseeded.
 */
public record MakeDataConfig(String input, int copies, int ctxLen, String outPrefix, long seed, int partitions,
                             int maxTokens, boolean appendEod, boolean strict, int maxLineBytes, String quarantinePath)
        implements Serializable {

    public static final long DEFAULT_SEED = 42L;
    public static final int DEFAULT_MAX_LINE_BYTES = 512 << 20;

    public MakeDataConfig {
        if (copies < 1) {
            throw new GoslingException("N (copies) must be at least 1, got " + copies);
        }
        if (ctxLen < 1) {
            throw new GoslingException("CTX_LEN must be positive, got " + ctxLen);
        }
        if (partitions < 0) {
            throw new GoslingException("--partitions must be positive (or 0 for Spark's default), got " + partitions);
        }
        if (maxTokens < 0) {
            throw new GoslingException("--max-tokens must be positive (or 0 for no limit), got " + maxTokens);
        }
        if (maxLineBytes < 1024) {
            throw new GoslingException("--max-line-bytes must be at least 1024, got " + maxLineBytes);
        }
    }
}
