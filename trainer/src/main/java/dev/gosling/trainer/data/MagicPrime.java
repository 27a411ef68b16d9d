package dev.gosling.trainer.data;

import dev.gosling.trainer.GoslingException;

/**
 * magic_prime of make_data (rwkv7-reference.md §1.1 step 10): the largest prime p ≤ ⌊data_size/ctx_len⌋ − 1
 * with p ≡ 2 (mod 3), so that x ↦ x³ permutes Z_p and the sampler visits every chunk once per p samples.
 *
 * <p>make_data tests primality by trial division, far too slow near 2^63; {@link #isPrime} is a deterministic
 * Miller–Rabin test that gives the same answer for every 64-bit number.
 */
public final class MagicPrime {
    // Miller–Rabin with the first 12 primes as bases is exact for n < 3.3·10^24 (Sorenson & Webster 2015),
    // which covers every long. Trial division by the same primes first also handles n equal to a base.
    private static final long[] BASES = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37};

    private MagicPrime() {
    }

    /** Whether {@code n} is prime; exact for every long (false for n < 2). */
    public static boolean isPrime(long n) {
        if (n < 2) {
            return false;
        }
        for (long p : BASES) {
            if (n % p == 0) {
                return n == p;
            }
        }
        if (n < 41 * 41) {
            return true; // no prime factor ≤ 37 and below 41² (the next prime squared)
        }
        Montgomery field = new Montgomery(n);
        long d = n - 1;
        int twos = Long.numberOfTrailingZeros(d);
        d >>>= twos;
        for (long base : BASES) {
            if (!field.isStrongProbablePrime(base, d, twos)) {
                return false;
            }
        }
        return true;
    }

    /**
     * The largest prime p ≤ ⌊dataSize/ctxLen⌋ − 1 with p % 3 == 2, as make_data prints it.
     *
     * @throws GoslingException if ctxLen ≤ 0, or dataSize &lt; 3·ctxLen (make_data prints no magic_prime then)
     */
    public static long magicPrime(long dataSize, int ctxLen) {
        if (ctxLen <= 0) {
            throw new GoslingException("ctx_len is " + ctxLen + "; it must be a positive number of tokens, e.g. --ctx_len 4096");
        }
        long minimum = 3L * ctxLen;
        if (dataSize < minimum) {
            throw new GoslingException("data has " + dataSize + " tokens, fewer than 3 × ctx_len = " + minimum
                + "; add data (or more copies) or lower --ctx_len");
        }
        long chunks = dataSize / ctxLen - 1; // ≥ 2, and 2 itself qualifies, so the search always ends
        long candidate = chunks - Math.floorMod(chunks - 2, 3L);
        while (!isPrime(candidate)) {
            candidate -= 3;
        }
        return candidate;
    }

    /**
     * Arithmetic mod an odd n < 2^63 in Montgomery form with R = 2^64: a 64×64 → 128-bit product and one
     * reduction per multiplication, without BigInteger or division.
     */
    private static final class Montgomery {
        private final long n;
        private final long negInverse; // −n⁻¹ mod 2^64
        private final long one;        // R mod n: 1 in Montgomery form
        private final long rSquared;   // R² mod n: converts into Montgomery form

        Montgomery(long n) {
            this.n = n;
            long inverse = n; // n·n ≡ 1 (mod 8) for odd n: correct to 3 bits; each Newton step doubles that
            for (int i = 0; i < 5; i++) {
                inverse *= 2 - n * inverse;
            }
            this.negInverse = -inverse;
            this.one = Long.remainderUnsigned(-n, n); // (2^64 − n) mod n = 2^64 mod n
            long r2 = one;
            for (int i = 0; i < 64; i++) {
                r2 = addMod(r2, r2);
            }
            this.rSquared = r2;
        }

        boolean isStrongProbablePrime(long base, long oddPart, int twos) {
            long minusOne = n - one; // −1 in Montgomery form
            long x = power(multiply(base % n, rSquared), oddPart);
            if (x == one || x == minusOne) {
                return true;
            }
            for (int i = 1; i < twos; i++) {
                x = multiply(x, x);
                if (x == minusOne) {
                    return true;
                }
            }
            return false;
        }

        private long power(long base, long exponent) {
            long result = one;
            while (exponent != 0) {
                if ((exponent & 1) != 0) {
                    result = multiply(result, base);
                }
                base = multiply(base, base);
                exponent >>>= 1;
            }
            return result;
        }

        /** a·b·R⁻¹ mod n for 0 ≤ a, b < n. */
        private long multiply(long a, long b) {
            long high = Math.multiplyHigh(a, b); // a, b ≥ 0, so the signed high half is the unsigned one
            long low = a * b;
            long m = low * negInverse;
            // low + (m·n mod 2^64) ≡ 0 (mod 2^64): it carries exactly when low ≠ 0.
            long t = high + unsignedMultiplyHigh(m, n) + (low != 0 ? 1 : 0); // t < 2n < 2^64
            return Long.compareUnsigned(t, n) >= 0 ? t - n : t;
        }

        private long addMod(long a, long b) {
            long sum = a + b; // < 2n < 2^64 as unsigned
            return Long.compareUnsigned(sum, n) >= 0 ? sum - n : sum;
        }

        /** High 64 bits of the unsigned product of any m and 0 ≤ y < 2^63. */
        private static long unsignedMultiplyHigh(long m, long y) {
            return Math.multiplyHigh(m, y) + ((m >> 63) & y);
        }
    }
}
