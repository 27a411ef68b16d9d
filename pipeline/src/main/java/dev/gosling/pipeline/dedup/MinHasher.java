package dev.gosling.pipeline.dedup;

import java.util.SplittableRandom;

/**
 * MinHash signatures and LSH band keys.
 *
 * <p><b>Permutations.</b> The universal family {@code h_i(x) = (a_i·x + b_i) mod p} with the Mersenne prime
 * {@code p = 2^61 − 1}, {@code a_i ∈ [1, p)}, {@code b_i ∈ [0, p)} drawn from {@link SplittableRandom}{@code (seed)}.
 * {@code x} is the shingle hash's top 61 bits. The product is the exact 122-bit one ({@link Math#multiplyHigh}) and is
 * reduced exactly (Mersenne folding), so there is none of the wrap-around of the numpy/datasketch arithmetic
 * (which multiplies mod 2^64 before the modulo). Signatures are the per-permutation minima: 61-bit values.
 *
 * <p><b>Bands.</b> The signature is cut into {@code bands} runs of {@code rows} values; a band's key is
 * (band index, 64-bit hash of its values). Two documents are LSH candidates when they share a key in any band, with
 * probability {@code 1 − (1 − s^rows)^bands} at Jaccard similarity {@code s}.
 *
 * <p>Immutable after construction and thread-safe; {@link #signature} writes only into the caller's array.
 */
public final class MinHasher {
    /** The Mersenne prime 2^61 − 1. */
    public static final long P = (1L << 61) - 1;

    private final int bands;
    private final int rows;
    private final long[] a;
    private final long[] b;

    public MinHasher(int bands, int rows, long seed) {
        if (bands < 1 || rows < 1) {
            throw new IllegalArgumentException("bands and rows must be >= 1: " + bands + " x " + rows);
        }
        this.bands = bands;
        this.rows = rows;
        int n = bands * rows;
        this.a = new long[n];
        this.b = new long[n];
        SplittableRandom rnd = new SplittableRandom(seed);
        for (int i = 0; i < n; i++) {
            a[i] = 1 + rnd.nextLong(P - 1);
            b[i] = rnd.nextLong(P);
        }
    }

    public int bands() {
        return bands;
    }

    public int rows() {
        return rows;
    }

    public int permutations() {
        return a.length;
    }

    /** {@code (a·x + b) mod (2^61 − 1)} for {@code a, x, b < 2^61}, exactly. */
    public static long permute(long a, long x, long b) {
        long lo = a * x;
        long hi = Math.multiplyHigh(a, x);               // a·x < 2^122: hi < 2^58
        long s = (lo & P) + ((lo >>> 61) | (hi << 3)) + b; // < 3·2^61
        s = (s & P) + (s >>> 61);                        // <= 2^61 + 1
        return s >= P ? s - P : s;
    }

    /**
     * Fills {@code sig[0 .. permutations)} with the MinHash signature of the first {@code n} shingle hashes.
     * With {@code n == 0} every value is {@link Long#MAX_VALUE} (callers skip such documents).
     */
    public void signature(long[] shingles, int n, long[] sig) {
        final long[] aa = a;
        final long[] bb = b;
        for (int i = 0; i < aa.length; i++) {
            final long ai = aa[i];
            final long bi = bb[i];
            long m = Long.MAX_VALUE;
            for (int k = 0; k < n; k++) {
                long v = permute(ai, shingles[k] >>> 3, bi);
                m = Math.min(m, v);
            }
            sig[i] = m;
        }
    }

    /** The 64-bit key of one band of a signature: its {@code rows} values folded in order and finalised. */
    public long bandHash(long[] sig, int band) {
        long h = 0x2545F4914F6CDD1DL ^ band;
        for (int i = band * rows, end = i + rows; i < end; i++) {
            h = Long.rotateLeft((h ^ sig[i]) * 0x9E3779B97F4A7C15L, 29);
        }
        return Shingler.fmix64(h);
    }

    /** The LSH S-curve: the probability that two documents at Jaccard {@code s} share at least one band key. */
    public static double candidateProbability(double s, int bands, int rows) {
        return 1.0 - Math.pow(1.0 - Math.pow(s, rows), bands);
    }

    /** The similarity where the S-curve is steepest, approximately {@code (1/bands)^(1/rows)}. */
    public static double threshold(int bands, int rows) {
        return Math.pow(1.0 / bands, 1.0 / rows);
    }
}
