package dev.gosling.trainer.backend.cpu;

import dev.gosling.trainer.backend.Backend;
import java.util.Arrays;

/**
 * The time mix's key preparation (§6.4, followed literally): α = σ(alphaPre) from the α LoRA's pre-activation;
 * κ = k⊙k_k; κ̂ = κ_h / max(‖κ_h‖₂, 1e-12) per head (F.normalize, from the ORIGINAL k); k̃ = k⊙(1 + (α − 1)⊙k_a); and
 * the WKV inputs a = −κ̂, b = κ̂⊙α.
 */
final class KeyPrepareOp {
    private KeyPrepareOp() {
    }

    private static final int N = Backend.HEAD_SIZE;
    private static final double EPS = Backend.L2_NORMALIZE_EPS;

    static void forward(CpuThreads threads, CpuStore k, CpuStore alphaPre, CpuStore kK, CpuStore kA,
                        CpuStore kTilde, CpuStore a, CpuStore b, int rows, int C) {
        int heads = C / N;
        threads.forRange(rows * heads, 16, (slot, lo, hi) -> {
            for (int unit = lo; unit < hi; unit++) {
                int base = unit * N;
                int channel0 = (unit % heads) * N;
                double squares = 0;
                for (int i = 0; i < N; i++) {
                    double kappa = k.get(base + i) * kK.get(channel0 + i);
                    squares += kappa * kappa;
                }
                double inverseNorm = 1.0 / Math.max(Math.sqrt(squares), EPS);
                for (int i = 0; i < N; i++) {
                    int c = channel0 + i;
                    double ki = k.get(base + i);
                    double al = LinearOps.sigmoid(alphaPre.get(base + i));
                    double kappaHat = ki * kK.get(c) * inverseNorm;
                    kTilde.set(base + i, ki * (1.0 + (al - 1.0) * kA.get(c)));
                    a.set(base + i, -kappaHat);
                    b.set(base + i, kappaHat * al);
                }
            }
        });
    }

    /**
     * dκ̂ = −dA + dB⊙α; dκ = (dκ̂ − κ̂(κ̂·dκ̂))/‖κ‖ (or dκ̂/1e-12 where the norm is clamped, as autograd through
     * clamp_min); dk += dK̃⊙(1 + (α−1)⊙k_a) + dκ⊙k_k; dαPre += (dB⊙κ̂ + dK̃⊙k⊙k_a)⊙α(1 − α); dk_k += Σ dκ⊙k;
     * dk_a += Σ dK̃⊙k⊙(α−1), with α = σ(alphaPre). Split over heads, rows in order inside, so the parameter sums are
     * deterministic.
     */
    static void backward(CpuThreads threads, CpuStore dKTilde, CpuStore dA, CpuStore dB, CpuStore k, CpuStore alphaPre,
                         CpuStore kK, CpuStore kA, CpuStore dk, CpuStore dAlphaPre, CpuStore dKK, CpuStore dKA,
                         int rows, int C) {
        int heads = C / N;
        threads.forRange(heads, 1, (slot, headLo, headHi) -> {
            double[] s = threads.scratch(slot, 5 * N);
            // s[0..N): dk_k sums, s[N..2N): dk_a sums, s[2N..3N): κ̂, s[3N..4N): dκ̂, s[4N..5N): α of the current row
            for (int h = headLo; h < headHi; h++) {
                int channel0 = h * N;
                Arrays.fill(s, 0, 2 * N, 0.0);
                for (int row = 0; row < rows; row++) {
                    int base = row * C + channel0;
                    double squares = 0;
                    for (int i = 0; i < N; i++) {
                        double kappa = k.get(base + i) * kK.get(channel0 + i);
                        squares += kappa * kappa;
                    }
                    double norm = Math.sqrt(squares);
                    boolean clamped = !(norm > EPS);
                    double inverseNorm = 1.0 / (clamped ? EPS : norm);
                    double dot = 0;
                    for (int i = 0; i < N; i++) {
                        double kappaHat = k.get(base + i) * kK.get(channel0 + i) * inverseNorm;
                        double al = LinearOps.sigmoid(alphaPre.get(base + i));
                        double dKappaHat = -dA.get(base + i) + dB.get(base + i) * al;
                        s[2 * N + i] = kappaHat;
                        s[4 * N + i] = al;
                        s[3 * N + i] = dKappaHat;
                        dot += kappaHat * dKappaHat;
                    }
                    if (clamped) {
                        dot = 0;
                    }
                    for (int i = 0; i < N; i++) {
                        int c = channel0 + i;
                        double ki = k.get(base + i);
                        double al = s[4 * N + i];
                        double ka = kA.get(c);
                        double dkt = dKTilde.get(base + i);
                        double kappaHat = s[2 * N + i];
                        double dKappa = (s[3 * N + i] - kappaHat * dot) * inverseNorm;
                        dk.add(base + i, dkt * (1.0 + (al - 1.0) * ka) + dKappa * kK.get(c));
                        dAlphaPre.add(base + i, (dB.get(base + i) * kappaHat + dkt * ki * ka) * (al * (1.0 - al)));
                        s[i] += dKappa * ki;
                        s[N + i] += dkt * ki * (al - 1.0);
                    }
                }
                for (int i = 0; i < N; i++) {
                    if (dKK != null) {
                        dKK.add(channel0 + i, s[i]);
                    }
                    if (dKA != null) {
                        dKA.add(channel0 + i, s[N + i]);
                    }
                }
            }
        });
    }
}
