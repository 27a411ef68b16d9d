package dev.gosling.trainer.data;

import dev.gosling.trainer.GoslingException;

/**
 * train_temp's pretraining sampler (rwkv7-reference.md §4): sample ii of the run reads the ctx_len-token chunk
 * {@code (factor·ii³) mod p}, where p is a prime ≡ 2 (mod 3) just below the number of chunks. Cubing and the
 * multiplication are bijections of Z_p, so ii = 1…p visits every chunk exactly once, in a fixed pseudo-random order
 * that needs no seed. Arithmetic is reduced mod p at every step and is exact for any p &lt; 2^63.
 */
public final class MagicPrimeSampler {
    /** A miniepoch: 40320 = 8! samples, whatever the GPU count. */
    public static final long SAMPLES_PER_MINIEPOCH = 40320;
    /** (√5 − 1)/2 in IEEE double, 0.6180339887498949 (the golden-ratio multiplier). */
    private static final double GOLDEN = (Math.sqrt(5.0) - 1.0) / 2.0;

    private final long magicPrime;
    private final int ctxLen;
    private final long factor;

    /**
     * Checks what train_temp's MyDataset asserts: epoch_steps·real_bsz = 40320, p prime, p ≡ 2 (mod 3),
     * 0.9 &lt; p / (data_tokens // ctx_len) ≤ 1; and, beyond the reference, that the last chunk's ctx_len+1 tokens
     * lie inside the data (p·ctx_len + 1 ≤ data_tokens), which its make_data guarantees.
     *
     * @param dataTokens the number of tokens in the .bin (EOD zeros included)
     */
    public MagicPrimeSampler(long magicPrime, int ctxLen, long dataTokens, long epochSteps, long realBsz) {
        if (epochSteps * realBsz != SAMPLES_PER_MINIEPOCH) {
            throw new GoslingException("epoch_steps " + epochSteps + " x real_bsz " + realBsz + " = " + epochSteps * realBsz
                    + ", but a miniepoch is 40320 samples; use a global batch (num_nodes*devices*micro_bsz) that divides 40320");
        }
        if (ctxLen <= 0) {
            throw new GoslingException("--ctx_len " + ctxLen + " must be positive");
        }
        long slots = dataTokens / ctxLen;
        requireUsablePrime(magicPrime);
        if (!(magicPrime / (double) slots > 0.9 && magicPrime / (double) slots <= 1.0)) {
            throw new GoslingException("--magic_prime " + magicPrime + " does not fit the data: " + dataTokens + " tokens at ctx_len " + ctxLen
                    + " are " + slots + " chunks and p/chunks must be in (0.9, 1]; recompute magic_prime for this data and ctx_len");
        }
        if (magicPrime > (dataTokens - 1) / ctxLen) {
            throw new GoslingException("--magic_prime " + magicPrime + " reads past the data: chunk p-1 needs " + (magicPrime * ctxLen + 1)
                    + " tokens, the data has " + dataTokens + "; use p <= data_tokens//ctx_len - 1 (make_data's rule)");
        }
        this.magicPrime = magicPrime;
        this.ctxLen = ctxLen;
        this.factor = (long) (magicPrime * GOLDEN);
    }

    /**
     * The checks that need no data: p is a prime and p = 2 (mod 3), so that cubing is a bijection of Z_p.
     * One-line errors naming --magic_prime.
     */
    public static void requireUsablePrime(long magicPrime) {
        if (!MagicPrime.isPrime(magicPrime)) {
            throw new GoslingException("--magic_prime " + magicPrime + " is not a prime; pass the magic_prime that `gosling prepare` (make_data) "
                    + "printed for this data and ctx_len");
        }
        if (magicPrime % 3 != 2) {
            throw new GoslingException("--magic_prime " + magicPrime + " is not = 2 (mod 3), so the sampler would repeat chunks; use the largest "
                    + "prime p = 2 mod 3 with p <= tokens//ctx_len - 1 (make_data prints it)");
        }
    }

    public long magicPrime() {
        return magicPrime;
    }

    /** ⌊p·(√5−1)/2⌋, computed in double and truncated, as the reference does. */
    public long factor() {
        return factor;
    }

    /**
     * The token offset in the flat .bin of local sample {@code idx} on {@code rank} of {@code worldSize}, in miniepoch
     * {@code epoch} (epoch_begin + the process's epoch). The sample is the ctx_len+1 tokens starting there.
     */
    public long offset(long epoch, long idx, int worldSize, int rank) {
        long ii = 1 + epoch * SAMPLES_PER_MINIEPOCH + idx * worldSize + rank;
        return chunk(ii) * ctxLen;
    }

    /** The chunk read by global sample number {@code ii} ≥ 1: (factor·ii³) mod p. */
    public long chunk(long ii) {
        long p = magicPrime;
        long a = Math.floorMod(ii, p);
        long a3 = mulMod(mulMod(a, a, p), a, p);
        return mulMod(factor % p, a3, p);
    }

    /** a·b mod m for 0 ≤ a, b &lt; m &lt; 2^63, without overflow and without allocating. */
    static long mulMod(long a, long b, long m) {
        long high = Math.multiplyHigh(a, b);
        long low = a * b;
        if (high == 0 && low >= 0) {
            return low % m;
        }
        // 128-bit (high:low) mod m, one bit of low at a time; the remainder stays below m < 2^63, so 2r+1 fits unsigned.
        long r = high % m;
        for (int bit = 63; bit >= 0; bit--) {
            r = (r << 1) | ((low >>> bit) & 1);
            if (Long.compareUnsigned(r, m) >= 0) {
                r -= m;
            }
        }
        return r;
    }

}
