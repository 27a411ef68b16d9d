package dev.gosling.trainer.backend.cpu;

import java.util.Arrays;

/** Token shift with a lerp: out_t = x_t + (x_{t−1} − x_t)⊙mix, x_{−1} = 0 at the start of every sample (§6.4). */
final class TokenShiftOp {
    private TokenShiftOp() {
    }

    static void forward(CpuThreads threads, CpuStore x, CpuStore mix, CpuStore out, int B, int T, int C) {
        threads.forRange(B * T, 16, (slot, lo, hi) -> {
            for (int row = lo; row < hi; row++) {
                int base = row * C;
                boolean first = row % T == 0;
                for (int c = 0; c < C; c++) {
                    double xc = x.get(base + c);
                    double prev = first ? 0.0 : x.get(base - C + c);
                    out.set(base + c, xc + (prev - xc) * mix.get(c));
                }
            }
        });
    }

    /** dx_t += dOut_t⊙(1 − mix) + dOut_{t+1}⊙mix; dMix += Σ_rows dOut_t⊙(x_{t−1} − x_t). */
    static void backward(CpuThreads threads, CpuStore dOut, CpuStore x, CpuStore mix, CpuStore dx, CpuStore dMix,
                         int B, int T, int C) {
        threads.forRange(B * T, 16, (slot, lo, hi) -> {
            for (int row = lo; row < hi; row++) {
                int base = row * C;
                boolean last = row % T == T - 1;
                for (int c = 0; c < C; c++) {
                    double m = mix.get(c);
                    double g = dOut.get(base + c) * (1.0 - m);
                    if (!last) {
                        g += dOut.get(base + C + c) * m;
                    }
                    dx.add(base + c, g);
                }
            }
        });
        if (dMix == null) {
            return;
        }
        int rows = B * T;
        threads.forRange(C, 16, (slot, lo, hi) -> {
            double[] acc = threads.scratch(slot, hi - lo);
            Arrays.fill(acc, 0, hi - lo, 0.0);
            for (int row = 0; row < rows; row++) {
                int base = row * C;
                boolean first = row % T == 0;
                for (int c = lo; c < hi; c++) {
                    double xc = x.get(base + c);
                    double prev = first ? 0.0 : x.get(base - C + c);
                    acc[c - lo] += dOut.get(base + c) * (prev - xc);
                }
            }
            for (int c = lo; c < hi; c++) {
                dMix.add(c, acc[c - lo]);
            }
        });
    }
}
