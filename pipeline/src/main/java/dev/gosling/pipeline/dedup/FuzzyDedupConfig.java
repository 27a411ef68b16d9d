package dev.gosling.pipeline.dedup;

import dev.gosling.trainer.GoslingException;

import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The configuration of {@link FuzzyDedup}; validated on construction (one-line {@link GoslingException} naming the
 * key), immutable after. Keys are given as they appear under {@code fuzzy_dedup:} in a prepare recipe.
 *
 * <p><b>Why 20 bands × 9 rows (180 permutations).</b> The S-curve {@code P(s) = 1 − (1 − s^9)^20} has its threshold
 * {@code (1/20)^(1/9) ≈ 0.72} (datatrove's 14 × 8 has 0.72 too) but is steeper on both sides. At s = 0.5/0.6/0.7/0.8/
 * 0.85/0.9 it gives 0.038/0.183/0.561/0.944/0.995/1.000, against 0.053/0.211/0.565/0.924/0.988/1.000 for 14 × 8: fewer
 * candidates below the threshold and more above it, for 1.6× the hashing work (which is not the bottleneck:
 * see {@code FuzzyDedupBenchmark}). With the default verification threshold 0.8, pairs at s ≥ 0.85 are LSH
 * candidates with probability ≥ 0.995.
 *
 * @param shingleWords     tokens per shingle for space-delimited text (word n-grams); {@code shingle_words}, default 5
 * @param cjkShingleChars  characters per shingle for text mostly in scripts written without spaces (Chinese, Japanese,
 *                         Korean, Thai…; chosen per document, see {@link Shingler}); {@code cjk_shingle_chars}, default 5
 * @param bands            LSH bands; {@code bands}, default 20
 * @param rows             MinHash values per band; {@code rows}, default 9 (permutations = bands × rows)
 * @param seed             seed of the permutations ({@code a_i, b_i}); {@code seed}, default 42
 * @param maxBucketSize    an LSH bucket with more members links only its {@code max_bucket_size} smallest ids; the
 *                         others are counted in {@code fuzzy_bucket_members_capped}; {@code max_bucket_size}, default 100000
 * @param verify           compute the exact Jaccard similarity of every candidate edge and drop the edges under
 *                         {@code threshold} before connected components; {@code verify}, default true
 * @param threshold        the Jaccard threshold of the verification; {@code threshold}, default 0.8
 * @param checkpointDir    where connected components writes a reliable Parquet checkpoint every
 *                         {@code checkpoint_interval} iterations (shared storage on a cluster); null: iterations are
 *                         local checkpoints (executor storage, lineage truncated, not recoverable after losing an
 *                         executor); {@code checkpoint_dir}, default null
 * @param checkpointInterval iterations between reliable checkpoints; {@code checkpoint_interval}, default 4
 * @param maxIterations    connected components fails (naming this key) when it has not converged after this many
 *                         large-star/small-star rounds; {@code max_iterations}, default 100
 */
public record FuzzyDedupConfig(int shingleWords, int cjkShingleChars, int bands, int rows, long seed,
                               int maxBucketSize, boolean verify, double threshold, String checkpointDir,
                               int checkpointInterval, int maxIterations) implements Serializable {

    public static final String PREFIX = "fuzzy_dedup.";
    public static final List<String> KEYS = List.of("shingle_words", "cjk_shingle_chars", "bands", "rows", "seed",
            "max_bucket_size", "verify", "threshold", "checkpoint_dir", "checkpoint_interval", "max_iterations");

    public static final int DEFAULT_SHINGLE_WORDS = 5;
    public static final int DEFAULT_CJK_SHINGLE_CHARS = 5;
    public static final int DEFAULT_BANDS = 20;
    public static final int DEFAULT_ROWS = 9;
    public static final long DEFAULT_SEED = 42L;
    public static final int DEFAULT_MAX_BUCKET_SIZE = 100_000;
    public static final boolean DEFAULT_VERIFY = true;
    public static final double DEFAULT_THRESHOLD = 0.8;
    public static final int DEFAULT_CHECKPOINT_INTERVAL = 4;
    public static final int DEFAULT_MAX_ITERATIONS = 100;
    /** Upper bound on bands × rows: a signature of more than this many values buys nothing and costs linear time. */
    public static final int MAX_PERMUTATIONS = 1024;

    public FuzzyDedupConfig {
        range("shingle_words", shingleWords, 1, 64, "tokens per word shingle");
        range("cjk_shingle_chars", cjkShingleChars, 1, 64, "characters per CJK shingle");
        range("bands", bands, 1, MAX_PERMUTATIONS, "LSH bands");
        range("rows", rows, 1, MAX_PERMUTATIONS, "MinHash values per band");
        if ((long) bands * rows > MAX_PERMUTATIONS) {
            throw new GoslingException(PREFIX + "bands × " + PREFIX + "rows = " + bands + " × " + rows + " = "
                    + ((long) bands * rows) + " permutations: must be at most " + MAX_PERMUTATIONS);
        }
        range("max_bucket_size", maxBucketSize, 2, Integer.MAX_VALUE, "largest LSH bucket linked in full");
        if (!(threshold > 0.0 && threshold <= 1.0)) {
            throw new GoslingException(PREFIX + "threshold = " + threshold
                    + ": must be in (0, 1] (the Jaccard similarity a verified pair needs; default " + DEFAULT_THRESHOLD + ")");
        }
        if (checkpointDir != null && checkpointDir.isBlank()) {
            throw new GoslingException(PREFIX + "checkpoint_dir is blank: give a directory or leave the key out");
        }
        range("checkpoint_interval", checkpointInterval, 1, 1_000_000, "iterations between reliable checkpoints");
        range("max_iterations", maxIterations, 1, 1_000_000, "connected-components rounds before giving up");
    }

    private static void range(String key, long value, long min, long max, String what) {
        if (value < min || value > max) {
            throw new GoslingException(PREFIX + key + " = " + value + ": must be between " + min + " and " + max
                    + " (" + what + ")");
        }
    }

    /** All defaults. */
    public static FuzzyDedupConfig defaults() {
        return new FuzzyDedupConfig(DEFAULT_SHINGLE_WORDS, DEFAULT_CJK_SHINGLE_CHARS, DEFAULT_BANDS, DEFAULT_ROWS,
                DEFAULT_SEED, DEFAULT_MAX_BUCKET_SIZE, DEFAULT_VERIFY, DEFAULT_THRESHOLD, null,
                DEFAULT_CHECKPOINT_INTERVAL, DEFAULT_MAX_ITERATIONS);
    }

    public int permutations() {
        return bands * rows;
    }

    /** The similarity where the LSH S-curve is steepest, {@code (1/bands)^(1/rows)}. */
    public double lshThreshold() {
        return MinHasher.threshold(bands, rows);
    }

    public FuzzyDedupConfig withVerify(boolean v, double t) {
        return new FuzzyDedupConfig(shingleWords, cjkShingleChars, bands, rows, seed, maxBucketSize, v, t,
                checkpointDir, checkpointInterval, maxIterations);
    }

    public FuzzyDedupConfig withBands(int b, int r) {
        return new FuzzyDedupConfig(shingleWords, cjkShingleChars, b, r, seed, maxBucketSize, verify, threshold,
                checkpointDir, checkpointInterval, maxIterations);
    }

    public FuzzyDedupConfig withMaxBucketSize(int m) {
        return new FuzzyDedupConfig(shingleWords, cjkShingleChars, bands, rows, seed, m, verify, threshold,
                checkpointDir, checkpointInterval, maxIterations);
    }

    public FuzzyDedupConfig withCheckpoints(String dir, int interval, int maxIter) {
        return new FuzzyDedupConfig(shingleWords, cjkShingleChars, bands, rows, seed, maxBucketSize, verify, threshold,
                dir, interval, maxIter);
    }

    /**
     * Builds a config from the keys of a recipe's {@code fuzzy_dedup:} section (values as a YAML parser gives them:
     * numbers, booleans, strings); absent keys take their defaults, an unknown key or a value of the wrong type is a
     * one-line error naming the key and {@code where} (e.g. {@code "recipe.yaml"}).
     */
    public static FuzzyDedupConfig fromMap(Map<String, ?> values, String where) {
        Map<String, Object> v = new LinkedHashMap<>();
        String at = where == null || where.isEmpty() ? "" : where + ": ";
        for (Map.Entry<String, ?> e : values.entrySet()) {
            if (!KEYS.contains(e.getKey())) {
                throw new GoslingException(at + "unknown key " + PREFIX + e.getKey() + " (known: " + String.join(", ", KEYS) + ")");
            }
            v.put(e.getKey(), e.getValue());
        }
        return new FuzzyDedupConfig(
                intOf(v, "shingle_words", DEFAULT_SHINGLE_WORDS, at),
                intOf(v, "cjk_shingle_chars", DEFAULT_CJK_SHINGLE_CHARS, at),
                intOf(v, "bands", DEFAULT_BANDS, at),
                intOf(v, "rows", DEFAULT_ROWS, at),
                longOf(v, "seed", DEFAULT_SEED, at),
                intOf(v, "max_bucket_size", DEFAULT_MAX_BUCKET_SIZE, at),
                boolOf(v, "verify", DEFAULT_VERIFY, at),
                doubleOf(v, "threshold", DEFAULT_THRESHOLD, at),
                stringOf(v, "checkpoint_dir", at),
                intOf(v, "checkpoint_interval", DEFAULT_CHECKPOINT_INTERVAL, at),
                intOf(v, "max_iterations", DEFAULT_MAX_ITERATIONS, at));
    }

    private static GoslingException type(String at, String key, Object value, String expected) {
        return new GoslingException(at + PREFIX + key + " = " + value + ": must be " + expected);
    }

    private static long longOf(Map<String, Object> v, String key, long dflt, String at) {
        Object o = v.get(key);
        if (o == null) {
            return dflt;
        }
        if (o instanceof Integer || o instanceof Long || o instanceof Short || o instanceof Byte) {
            return ((Number) o).longValue();
        }
        if (o instanceof java.math.BigInteger big && big.bitLength() < 64) {
            return big.longValue();
        }
        throw type(at, key, o, "an integer");
    }

    private static int intOf(Map<String, Object> v, String key, int dflt, String at) {
        long x = longOf(v, key, dflt, at);
        if (x < Integer.MIN_VALUE || x > Integer.MAX_VALUE) {
            throw type(at, key, x, "a 32-bit integer");
        }
        return (int) x;
    }

    private static double doubleOf(Map<String, Object> v, String key, double dflt, String at) {
        Object o = v.get(key);
        if (o == null) {
            return dflt;
        }
        if (o instanceof Number n) {
            return n.doubleValue();
        }
        throw type(at, key, o, "a number");
    }

    private static boolean boolOf(Map<String, Object> v, String key, boolean dflt, String at) {
        Object o = v.get(key);
        if (o == null) {
            return dflt;
        }
        if (o instanceof Boolean b) {
            return b;
        }
        throw type(at, key, o, "true or false");
    }

    private static String stringOf(Map<String, Object> v, String key, String at) {
        Object o = v.get(key);
        if (o == null) {
            return null;
        }
        if (o instanceof String s) {
            return s;
        }
        throw type(at, key, o, "a string (a directory)");
    }

    /** The parameters as recorded in a manifest (keys without the prefix). */
    public Map<String, Object> describe() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("shingle_words", shingleWords);
        m.put("cjk_shingle_chars", cjkShingleChars);
        m.put("bands", bands);
        m.put("rows", rows);
        m.put("permutations", permutations());
        m.put("lsh_threshold", Double.parseDouble(String.format(Locale.ROOT, "%.4f", lshThreshold())));
        m.put("seed", seed);
        m.put("max_bucket_size", maxBucketSize);
        m.put("verify", verify);
        m.put("threshold", threshold);
        m.put("checkpoint_dir", checkpointDir);
        m.put("checkpoint_interval", checkpointInterval);
        m.put("max_iterations", maxIterations);
        return m;
    }
}
