package dev.gosling.trainer.backend.cpu;

import dev.gosling.trainer.backend.Backend;
import java.util.Arrays;

/**
 * The WKV7 recurrence (rwkv7-reference.md §6.4 and §7.2, followed literally), one (batch, head) per task:
 * <pre>
 *   ω_j  = exp(−e^{−1/2}·σ(wRaw_j))           the "clampw" decay, identical to exp(−exp(−softplus(−wRaw) − 0.5))
 *   sa_i = Σ_j S[i][j]·a_j
 *   S[i][j] ← S[i][j]·ω_j + sa_i·b_j + v_i·k_j
 *   y_i  = Σ_j S[i][j]·r_j                      (after the update)
 * </pre>
 * i.e. S_t = S_{t−1}(diag ω_t + a_t b_tᵀ) + v_t k_tᵀ with a = −κ̂, b = κ̂⊙α, k = k̃, S_{−1} = 0.
 *
 * <p>Saved for backward: the state after every 16th step and after the last step, [B, H, ⌈T/16⌉, 64, 64] in the
 * tensors' dtype (as the CUDA kernel keeps it, §7.1). The backward pass does not invert the recurrence (§7.3 divides
 * by ω, which amplifies rounding); it recomputes each 16-step chunk's states forward from the chunk's starting
 * checkpoint and then walks the chunk backwards, so in fp64 it is the exact gradient to rounding. The state and the
 * per-step vectors live in double per-thread scratch in both precisions; tensors, checkpoints included, are stored
 * in their dtype. Any T ≥ 1 works (the last chunk may be short).
 */
final class Wkv7Op {

    static final int N = Backend.HEAD_SIZE;
    static final int CHUNK = 16;
    private static final int NN = N * N;
    /** −e^{−1/2}: ω = exp(W_SCALE·σ(wRaw)) ∈ (0.545, 1). */
    static final double W_SCALE = -Math.exp(-0.5);

    private final CpuThreads threads;
    private final Scratch[] slots;

    Wkv7Op(CpuThreads threads) {
        this.threads = threads;
        this.slots = new Scratch[threads.threads];
    }

    static int chunks(int T) {
        return (T + CHUNK - 1) / CHUNK;
    }

    static long savedElements(int B, int T, int H) {
        return (long) B * H * chunks(T) * NN;
    }

    /** Per-thread working memory, made on a slot's first use. */
    private static final class Scratch {
        /** CHUNK + 1 states: the chunk's starting state, then the state after each of its steps. */
        final double[] states = new double[(CHUNK + 1) * NN];
        /** sa of each step of the chunk. */
        final double[] sa = new double[CHUNK * N];
        /** dL/dS for the state after the step being processed. */
        final double[] dState = new double[NN];
        final double[] r = new double[N];
        final double[] sigma = new double[N];
        final double[] omega = new double[N];
        final double[] k = new double[N];
        final double[] v = new double[N];
        final double[] a = new double[N];
        final double[] b = new double[N];
        final double[] y = new double[N];
        final double[] dy = new double[N];
        final double[] dr = new double[N];
        final double[] dOmega = new double[N];
        final double[] dk = new double[N];
        final double[] dv = new double[N];
        final double[] da = new double[N];
        final double[] db = new double[N];
    }

    private Scratch scratch(int slot) {
        Scratch s = slots[slot];
        if (s == null) {
            s = new Scratch();
            slots[slot] = s;
        }
        return s;
    }

    /** Reads step t's inputs for one head into the scratch vectors and computes ω from wRaw. */
    private static void load(Scratch s, int base, CpuStore r, CpuStore wRaw, CpuStore k, CpuStore v, CpuStore a,
                             CpuStore b) {
        for (int j = 0; j < N; j++) {
            s.r[j] = r.get(base + j);
            double sig = LinearOps.sigmoid(wRaw.get(base + j));
            s.sigma[j] = sig;
            s.omega[j] = Math.exp(W_SCALE * sig);
            s.k[j] = k.get(base + j);
            s.v[j] = v.get(base + j);
            s.a[j] = a.get(base + j);
            s.b[j] = b.get(base + j);
        }
    }

    /**
     * One step from the state at {@code states[from]} into {@code states[to]} (the same place is fine: row i of the
     * new state needs only row i of the old one). Writes y, and sa into {@code s.sa[saAt…]}.
     */
    private static void advance(Scratch s, int from, int to, int saAt) {
        double[] m = s.states;
        for (int i = 0; i < N; i++) {
            int rowFrom = from + i * N;
            int rowTo = to + i * N;
            double sa = 0;
            for (int j = 0; j < N; j++) {
                sa += m[rowFrom + j] * s.a[j];
            }
            s.sa[saAt + i] = sa;
            double vi = s.v[i];
            double y = 0;
            for (int j = 0; j < N; j++) {
                double x = m[rowFrom + j] * s.omega[j] + sa * s.b[j] + vi * s.k[j];
                m[rowTo + j] = x;
                y += x * s.r[j];
            }
            s.y[i] = y;
        }
    }

    void forward(CpuStore r, CpuStore wRaw, CpuStore k, CpuStore v, CpuStore a, CpuStore b, CpuStore out,
                 CpuStore saved, int B, int T, int H) {
        int C = H * N;
        int nChunks = chunks(T);
        threads.forRange(B * H, 1, (slot, lo, hi) -> {
            Scratch s = scratch(slot);
            for (int unit = lo; unit < hi; unit++) {
                int batch = unit / H;
                int head = unit % H;
                Arrays.fill(s.states, 0, NN, 0.0);
                for (int t = 0; t < T; t++) {
                    int base = (batch * T + t) * C + head * N;
                    load(s, base, r, wRaw, k, v, a, b);
                    advance(s, 0, 0, 0);
                    for (int i = 0; i < N; i++) {
                        out.set(base + i, s.y[i]);
                    }
                    if ((t + 1) % CHUNK == 0 || t == T - 1) {
                        int at = (unit * nChunks + t / CHUNK) * NN;
                        for (int e = 0; e < NN; e++) {
                            saved.set(at + e, s.states[e]);
                        }
                    }
                }
            }
        });
    }

    /**
     * Walking t down, with dS the gradient w.r.t. S_t: dS += dy_t r_tᵀ; dr_t = S_tᵀ dy_t; dω_j = Σ_i dS[i][j]·S_{t−1}[i][j];
     * dk_j = Σ_i dS[i][j]·v_i; db_j = Σ_i dS[i][j]·sa_i; dv_i = Σ_j dS[i][j]·k_j; dsa_i = Σ_j dS[i][j]·b_j;
     * da_j = Σ_i dsa_i·S_{t−1}[i][j]; then dS ← dS·diag(ω) + dsa aᵀ for step t−1. dwRaw = dω·ω·(−e^{−1/2})·σ(1−σ).
     */
    void backward(CpuStore dOut, CpuStore r, CpuStore wRaw, CpuStore k, CpuStore v, CpuStore a, CpuStore b,
                  CpuStore saved, CpuStore dr, CpuStore dwRaw, CpuStore dk, CpuStore dv, CpuStore da, CpuStore db,
                  int B, int T, int H) {
        int C = H * N;
        int nChunks = chunks(T);
        threads.forRange(B * H, 1, (slot, lo, hi) -> {
            Scratch s = scratch(slot);
            double[] m = s.states;
            double[] dS = s.dState;
            for (int unit = lo; unit < hi; unit++) {
                int batch = unit / H;
                int head = unit % H;
                Arrays.fill(dS, 0.0);
                for (int c = nChunks - 1; c >= 0; c--) {
                    int t0 = c * CHUNK;
                    int len = Math.min(CHUNK, T - t0);
                    if (c == 0) {
                        Arrays.fill(m, 0, NN, 0.0);
                    } else {
                        int at = (unit * nChunks + c - 1) * NN;
                        for (int e = 0; e < NN; e++) {
                            m[e] = saved.get(at + e);
                        }
                    }
                    for (int step = 0; step < len; step++) {
                        load(s, (batch * T + t0 + step) * C + head * N, r, wRaw, k, v, a, b);
                        advance(s, step * NN, (step + 1) * NN, step * N);
                    }
                    for (int step = len - 1; step >= 0; step--) {
                        int base = (batch * T + t0 + step) * C + head * N;
                        load(s, base, r, wRaw, k, v, a, b);
                        for (int i = 0; i < N; i++) {
                            s.dy[i] = dOut.get(base + i);
                        }
                        stepBack(s, (step + 1) * NN, step * NN, step * N);
                        for (int j = 0; j < N; j++) {
                            double sig = s.sigma[j];
                            dr.add(base + j, s.dr[j]);
                            dwRaw.add(base + j, s.dOmega[j] * s.omega[j] * W_SCALE * sig * (1.0 - sig));
                            dk.add(base + j, s.dk[j]);
                            dv.add(base + j, s.dv[j]);
                            da.add(base + j, s.da[j]);
                            db.add(base + j, s.db[j]);
                        }
                    }
                }
            }
        });
    }

    /** The gradients of one step (into s.dr … s.db) and dS moved from S_t to S_{t−1}; row i at a time. */
    private static void stepBack(Scratch s, int current, int previous, int saAt) {
        double[] m = s.states;
        double[] dS = s.dState;
        Arrays.fill(s.dr, 0.0);
        Arrays.fill(s.dOmega, 0.0);
        Arrays.fill(s.dk, 0.0);
        Arrays.fill(s.da, 0.0);
        Arrays.fill(s.db, 0.0);
        for (int i = 0; i < N; i++) {
            int row = i * N;
            double dyi = s.dy[i];
            double sai = s.sa[saAt + i];
            double vi = s.v[i];
            double dsa = 0;
            double dvi = 0;
            for (int j = 0; j < N; j++) {
                double g = dS[row + j] + dyi * s.r[j];
                dS[row + j] = g;
                dsa += g * s.b[j];
                dvi += g * s.k[j];
                s.dr[j] += m[current + row + j] * dyi;
                s.dOmega[j] += g * m[previous + row + j];
                s.db[j] += g * sai;
                s.dk[j] += g * vi;
            }
            s.dv[i] = dvi;
            for (int j = 0; j < N; j++) {
                s.da[j] += dsa * m[previous + row + j];
                dS[row + j] = dS[row + j] * s.omega[j] + dsa * s.a[j];
            }
        }
    }
}
