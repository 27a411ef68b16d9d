package dev.gosling.trainer.backend.cpu;

import java.util.Arrays;

/**
 * Token shift with a lerp, k mixes of one input at once: out_j,t = x_t + (x_{t−1} − x_t)⊙mix_j, x_{−1} = 0 at the
 * start of every sample (§6.4).
 */
final class TokenShiftOp {
    private TokenShiftOp() {
    }

    static void forward(CpuThreads threads, CpuStore x, CpuStore[] mix, CpuStore[] out, int B, int T, int C) {
        int k = mix.length;
        threads.forRange(B * T, 16, (slot, lo, hi) -> {
            for (int row = lo; row < hi; row++) {
                int base = row * C;
                boolean first = row % T == 0;
                for (int c = 0; c < C; c++) {
                    double xc = x.get(base + c);
                    double prev = first ? 0.0 : x.get(base - C + c);
                    for (int j = 0; j < k; j++) {
                        out[j].set(base + c, xc + (prev - xc) * mix[j].get(c));
                    }
                }
            }
        });
    }

    /**
     * dx_t += Σ_j dOut_j,t⊙(1 − mix_j) + dOut_j,t+1⊙mix_j (summed over j in order, then added);
     * dMix_j += Σ_rows dOut_j,t⊙(x_{t−1} − x_t). dMix null, or entries of it null, are skipped.
     */
    static void backward(CpuThreads threads, CpuStore[] dOut, CpuStore x, CpuStore[] mix, CpuStore dx,
                         CpuStore[] dMix, int B, int T, int C) {
        int k = mix.length;
        threads.forRange(B * T, 16, (slot, lo, hi) -> {
            for (int row = lo; row < hi; row++) {
                int base = row * C;
                boolean last = row % T == T - 1;
                for (int c = 0; c < C; c++) {
                    double g = 0.0;
                    for (int j = 0; j < k; j++) {
                        double m = mix[j].get(c);
                        g += dOut[j].get(base + c) * (1.0 - m);
                        if (!last) {
                            g += dOut[j].get(base + C + c) * m;
                        }
                    }
                    dx.add(base + c, g);
                }
            }
        });
        boolean any = false;
        for (int j = 0; dMix != null && j < k; j++) {
            any |= dMix[j] != null;
        }
        if (!any) {
            return;
        }
        int rows = B * T;
        threads.forRange(C, 16, (slot, lo, hi) -> {
            int w = hi - lo;
            double[] acc = threads.scratch(slot, k * w);
            Arrays.fill(acc, 0, k * w, 0.0);
            for (int row = 0; row < rows; row++) {
                int base = row * C;
                boolean first = row % T == 0;
                for (int c = lo; c < hi; c++) {
                    double xc = x.get(base + c);
                    double diff = (first ? 0.0 : x.get(base - C + c)) - xc;
                    for (int j = 0; j < k; j++) {
                        acc[j * w + c - lo] += dOut[j].get(base + c) * diff;
                    }
                }
            }
            for (int j = 0; j < k; j++) {
                if (dMix[j] != null) {
                    for (int c = lo; c < hi; c++) {
                        dMix[j].add(c, acc[j * w + c - lo]);
                    }
                }
            }
        });
    }
}
