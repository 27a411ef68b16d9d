package dev.gosling.trainer.backend.cpu;

import dev.gosling.trainer.backend.Backend;
import java.util.Arrays;

/**
 * The bonus term added after ln_x (§6.4): out_h = x_h + (Σ_{i∈h} r_i·k̃_i·r_k[h,i])·v_h, with the modified key k̃ and
 * the residual-mixed value v. r_k is [H, 64], i.e. one value per channel.
 */
final class BonusOp {
    private BonusOp() {
    }

    private static final int N = Backend.HEAD_SIZE;

    /** out may alias x: the head's scalar is complete before any element is written. */
    static void forward(CpuThreads threads, CpuStore x, CpuStore r, CpuStore k, CpuStore v, CpuStore rK, CpuStore out,
                        int rows, int C) {
        int heads = C / N;
        threads.forRange(rows * heads, 16, (slot, lo, hi) -> {
            for (int unit = lo; unit < hi; unit++) {
                int base = unit * N;
                int channel0 = (unit % heads) * N;
                double s = 0;
                for (int i = 0; i < N; i++) {
                    s += r.get(base + i) * k.get(base + i) * rK.get(channel0 + i);
                }
                for (int i = 0; i < N; i++) {
                    out.set(base + i, x.get(base + i) + s * v.get(base + i));
                }
            }
        });
    }

    /**
     * With s = Σ r⊙k⊙r_k and ds = Σ dOut⊙v over the head: dx += dOut (when dx is given); dv += s·dOut;
     * dr += ds·k⊙r_k; dk += ds·r⊙r_k; dRK += Σ_rows ds·r⊙k. Split over heads, rows in order inside.
     */
    static void backward(CpuThreads threads, CpuStore dOut, CpuStore r, CpuStore k, CpuStore v, CpuStore rK,
                         CpuStore dx, CpuStore dr, CpuStore dk, CpuStore dv, CpuStore dRK, int rows, int C) {
        int heads = C / N;
        threads.forRange(heads, 1, (slot, headLo, headHi) -> {
            double[] acc = threads.scratch(slot, N);
            for (int h = headLo; h < headHi; h++) {
                int channel0 = h * N;
                Arrays.fill(acc, 0, N, 0.0);
                for (int row = 0; row < rows; row++) {
                    int base = row * C + channel0;
                    double s = 0;
                    double ds = 0;
                    for (int i = 0; i < N; i++) {
                        s += r.get(base + i) * k.get(base + i) * rK.get(channel0 + i);
                        ds += dOut.get(base + i) * v.get(base + i);
                    }
                    for (int i = 0; i < N; i++) {
                        double g = dOut.get(base + i);
                        double ri = r.get(base + i);
                        double ki = k.get(base + i);
                        double rki = rK.get(channel0 + i);
                        if (dx != null) {
                            dx.add(base + i, g);
                        }
                        dv.add(base + i, s * g);
                        dr.add(base + i, ds * ki * rki);
                        dk.add(base + i, ds * ri * rki);
                        acc[i] += ds * ri * ki;
                    }
                }
                if (dRK != null) {
                    for (int i = 0; i < N; i++) {
                        dRK.add(channel0 + i, acc[i]);
                    }
                }
            }
        });
    }
}
