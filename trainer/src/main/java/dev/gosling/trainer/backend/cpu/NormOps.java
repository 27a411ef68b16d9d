package dev.gosling.trainer.backend.cpu;

import java.util.Arrays;

/**
 * LayerNorm (one group of C per row, eps 1e-5) and the per-head GroupNorm ln_x (C/64 groups of 64, eps 64e-5):
 * one implementation with a group size. Biased variance, affine weight and bias per channel, as torch's
 * layer_norm / group_norm. mean and rstd are saved per (row, group) for the backward pass.
 */
final class NormOps {
    private NormOps() {
    }

    static void forward(CpuThreads threads, CpuStore x, CpuStore weight, CpuStore bias, CpuStore out,
                        CpuStore mean, CpuStore rstd, int rows, int C, int group, double eps) {
        int groups = C / group;
        threads.forRange(rows * groups, 8, (slot, lo, hi) -> {
            for (int unit = lo; unit < hi; unit++) {
                int base = unit * group;
                int channel0 = (unit % groups) * group;
                double sum = 0;
                for (int i = 0; i < group; i++) {
                    sum += x.get(base + i);
                }
                double mu = sum / group;
                double squares = 0;
                for (int i = 0; i < group; i++) {
                    double d = x.get(base + i) - mu;
                    squares += d * d;
                }
                double rs = 1.0 / Math.sqrt(squares / group + eps);
                mean.set(unit, mu);
                rstd.set(unit, rs);
                for (int i = 0; i < group; i++) {
                    int c = channel0 + i;
                    out.set(base + i, (x.get(base + i) - mu) * rs * weight.get(c) + bias.get(c));
                }
            }
        });
    }

    /**
     * dx += rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ⊙x̂)) with ĝ = dOut⊙weight; dWeight += Σ_rows dOut⊙x̂; dBias += Σ_rows dOut.
     * The parameter sums run over channels in a second pass so each channel is summed by one thread, in row order.
     * Uses the saved mean/rstd, read back in the tensor's precision (so x̂ is the one the forward pass produced).
     */
    static void backward(CpuThreads threads, CpuStore dOut, CpuStore x, CpuStore weight, CpuStore mean, CpuStore rstd,
                         CpuStore dx, CpuStore dWeight, CpuStore dBias, int rows, int C, int group) {
        int groups = C / group;
        threads.forRange(rows * groups, 8, (slot, lo, hi) -> {
            for (int unit = lo; unit < hi; unit++) {
                int base = unit * group;
                int channel0 = (unit % groups) * group;
                double mu = mean.get(unit);
                double rs = rstd.get(unit);
                double sumG = 0;
                double sumGX = 0;
                for (int i = 0; i < group; i++) {
                    double g = dOut.get(base + i) * weight.get(channel0 + i);
                    sumG += g;
                    sumGX += g * (x.get(base + i) - mu) * rs;
                }
                double meanG = sumG / group;
                double meanGX = sumGX / group;
                for (int i = 0; i < group; i++) {
                    double g = dOut.get(base + i) * weight.get(channel0 + i);
                    double xhat = (x.get(base + i) - mu) * rs;
                    dx.add(base + i, rs * (g - meanG - xhat * meanGX));
                }
            }
        });
        if (dWeight == null && dBias == null) {
            return;
        }
        threads.forRange(C, 16, (slot, lo, hi) -> {
            int n = hi - lo;
            double[] acc = threads.scratch(slot, 2 * n);
            Arrays.fill(acc, 0, 2 * n, 0.0);
            for (int row = 0; row < rows; row++) {
                int rowBase = row * C;
                for (int c = lo; c < hi; c++) {
                    int unit = row * groups + c / group;
                    double dy = dOut.get(rowBase + c);
                    acc[c - lo] += dy * (x.get(rowBase + c) - mean.get(unit)) * rstd.get(unit);
                    acc[n + c - lo] += dy;
                }
            }
            for (int c = lo; c < hi; c++) {
                if (dWeight != null) {
                    dWeight.add(c, acc[c - lo]);
                }
                if (dBias != null) {
                    dBias.add(c, acc[n + c - lo]);
                }
            }
        });
    }
}
