package dev.gosling.pipeline.export;

import java.util.ArrayList;
import java.util.List;

/** The statistics RWKV-PEFT-Simple's make_tokenize prints to help pick ctx_len, MICRO_BSZ and EPOCH_STEPS. */
public final class DataReport {
    private DataReport() {
    }

    /** The longest item rounded up to a multiple of 16 (the CUDA kernel's T % 16 rule). */
    public static long alignUp16(long n) {
        return (n + 15) / 16 * 16;
    }

    public static long nextPowerOfTwo(long n) {
        return n <= 1 ? 1 : Long.highestOneBit(n - 1) << 1;
    }

    /** Divisors of n other than 1 and n, ascending, at most `limit`; a prime prints [n]. */
    public static List<Long> factors(long n, int limit) {
        List<Long> small = new ArrayList<>();
        List<Long> large = new ArrayList<>();
        for (long f = 2; f * f <= n; f++) {
            if (n % f == 0) {
                small.add(f);
                if (f != n / f) {
                    large.add(0, n / f);
                }
            }
        }
        small.addAll(large);
        if (small.isEmpty()) {
            small.add(n);
        }
        return small.size() > limit ? new ArrayList<>(small.subList(0, limit)) : small;
    }

    /** The table for the numbers within ±10 of the item count: n, MICRO_BSZ = factors, EPOCH_STEPS = n / factor. */
    public static List<String> factorTable(long itemCount) {
        List<String> lines = new ArrayList<>();
        lines.add("### The first ten factors of the five numbers nearby (±10):");
        for (long n = Math.max(2, itemCount - 10); n <= itemCount + 10; n++) {
            List<Long> f = factors(n, 20);
            List<Long> steps = new ArrayList<>();
            for (long x : f) {
                steps.add(n / x);
            }
            lines.add(n + "  MICRO_BSZ = " + f + "  EPOCH_STEPS = " + steps);
        }
        return lines;
    }
}
