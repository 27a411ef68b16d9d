package dev.gosling.trainer.backend.cpu;

import dev.gosling.trainer.backend.Activation;
import java.util.Arrays;

/**
 * Matrix products through OpenBLAS: nn.Linear (weight [out, in], y = x·Wᵀ) and the LoRA chains of the time mix
 * (matrices [in, out], y = x·A). The GEMMs use all cores inside OpenBLAS; the elementwise parts use the pool.
 */
final class LinearOps {
    private LinearOps() {
    }

    // ------------------------------------------------------------------------------------------------ linear

    /** out[rows, outDim] = x[rows, in] · weight[outDim, in]ᵀ. */
    static void linearForward(CpuStore x, CpuStore weight, CpuStore out, int rows, int in, int outDim) {
        if (rows == 0 || outDim == 0) {
            return;
        }
        out.gemm(false, true, rows, outDim, in, x, in, weight, in, 0.0, outDim);
    }

    /** dx += dOut·weight; dWeight += dOutᵀ·x (beta = 1 is the accumulation). */
    static void linearBackward(CpuStore dOut, CpuStore x, CpuStore weight, CpuStore dx, CpuStore dWeight,
                               int rows, int in, int outDim) {
        if (rows == 0 || in == 0 || outDim == 0) {
            return;
        }
        if (dx != null) {
            dx.gemm(false, false, rows, in, outDim, dOut, outDim, weight, in, 1.0, in);
        }
        if (dWeight != null) {
            dWeight.gemm(true, false, outDim, in, rows, dOut, outDim, x, in, 1.0, in);
        }
    }

    // ------------------------------------------------------------------------------------------------ LoRA

    /** hidden = hiddenAct(x·down); out = outAct(bias + hidden·up). */
    static void loraForward(CpuThreads threads, CpuStore x, CpuStore down, CpuStore up, CpuStore bias,
                            Activation hiddenAct, Activation outAct, CpuStore hidden, CpuStore out,
                            int rows, int in, int rank, int outDim) {
        if (rows == 0) {
            return;
        }
        hidden.gemm(false, false, rows, rank, in, x, in, down, rank, 0.0, rank);
        activateInPlace(threads, hidden, null, hiddenAct, rows, rank);
        out.gemm(false, false, rows, outDim, rank, hidden, rank, up, outDim, 0.0, outDim);
        activateInPlace(threads, out, bias, outAct, rows, outDim);
    }

    /**
     * dPre = dOut⊙outAct'(out); dBias += Σ_rows dPre; dUp += hiddenᵀ·dPre; dHidden = (dPre·upᵀ)⊙hiddenAct'(hidden);
     * dDown += xᵀ·dHidden; dx += dHidden·downᵀ. Activation derivatives are taken from the saved outputs
     * (tanh' = 1 − y², σ' = y(1 − y)).
     */
    static void loraBackward(CpuThreads threads, CpuStore dOut, CpuStore x, CpuStore down, CpuStore up, CpuStore bias,
                             Activation hiddenAct, Activation outAct, CpuStore hidden, CpuStore out,
                             CpuStore dPreScratch, CpuStore dHiddenScratch, CpuStore dx, CpuStore dDown, CpuStore dUp,
                             CpuStore dBias, int rows, int in, int rank, int outDim) {
        if (rows == 0) {
            return;
        }
        CpuStore dPre = dOut;
        if (outAct != Activation.NONE) {
            dPre = dPreScratch;
            activationBackward(threads, dOut, out, outAct, dPre, rows, outDim);
        }
        if (bias != null && dBias != null) {
            sumRowsInto(threads, dPre, dBias, rows, outDim);
        }
        if (dUp != null) {
            dUp.gemm(true, false, rank, outDim, rows, hidden, rank, dPre, outDim, 1.0, outDim);
        }
        dHiddenScratch.gemm(false, true, rows, rank, outDim, dPre, outDim, up, outDim, 0.0, rank);
        if (hiddenAct != Activation.NONE) {
            activationBackward(threads, dHiddenScratch, hidden, hiddenAct, dHiddenScratch, rows, rank);
        }
        if (dDown != null) {
            dDown.gemm(true, false, in, rank, rows, x, in, dHiddenScratch, rank, 1.0, rank);
        }
        if (dx != null) {
            dx.gemm(false, true, rows, in, rank, dHiddenScratch, rank, down, rank, 1.0, in);
        }
    }

    /** y = act(y + bias) in place; bias [cols] may be null. */
    private static void activateInPlace(CpuThreads threads, CpuStore y, CpuStore bias, Activation act, int rows, int cols) {
        if (bias == null && act == Activation.NONE) {
            return;
        }
        threads.forRange(rows, 16, (slot, lo, hi) -> {
            for (int row = lo; row < hi; row++) {
                int base = row * cols;
                for (int c = 0; c < cols; c++) {
                    double z = y.get(base + c);
                    if (bias != null) {
                        z += bias.get(c);
                    }
                    y.set(base + c, activate(act, z));
                }
            }
        });
    }

    static double activate(Activation act, double z) {
        return switch (act) {
            case NONE -> z;
            case TANH -> Math.tanh(z);
            case SIGMOID -> sigmoid(z);
        };
    }

    static double sigmoid(double z) {
        return 1.0 / (1.0 + Math.exp(-z));
    }

    /** dz = dy⊙act'(z) expressed through y = act(z); dz may alias dy. */
    private static void activationBackward(CpuThreads threads, CpuStore dy, CpuStore y, Activation act, CpuStore dz,
                                           int rows, int cols) {
        threads.forRange(rows, 16, (slot, lo, hi) -> {
            for (int i = lo * cols, end = hi * cols; i < end; i++) {
                double yi = y.get(i);
                double slope = switch (act) {
                    case NONE -> 1.0;
                    case TANH -> 1.0 - yi * yi;
                    case SIGMOID -> yi * (1.0 - yi);
                };
                dz.set(i, dy.get(i) * slope);
            }
        });
    }

    /** sum[c] += Σ_rows m[row, c], one thread per channel range, rows in order. */
    private static void sumRowsInto(CpuThreads threads, CpuStore m, CpuStore sum, int rows, int cols) {
        threads.forRange(cols, 16, (slot, lo, hi) -> {
            double[] acc = threads.scratch(slot, hi - lo);
            Arrays.fill(acc, 0, hi - lo, 0.0);
            for (int row = 0; row < rows; row++) {
                int base = row * cols;
                for (int c = lo; c < hi; c++) {
                    acc[c - lo] += m.get(base + c);
                }
            }
            for (int c = lo; c < hi; c++) {
                sum.add(c, acc[c - lo]);
            }
        });
    }
}
