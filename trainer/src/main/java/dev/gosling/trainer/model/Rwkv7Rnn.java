package dev.gosling.trainer.model;

import dev.gosling.trainer.GoslingException;

import java.util.stream.IntStream;

/**
 * RWKV-7 in RNN mode for generation: one token at a time, carrying a {@link Rwkv7State} (rwkv7-reference.md §6.4,
 * the equations with T = 1). Plain Java over the fp32 master weights in {@link ParameterLayout} order, read in place
 * (the same array the trainer updates, or one loaded from a checkpoint); vectors are computed in double, the state is
 * stored in fp32. Large matrix-vector products split their rows over the common fork-join pool; each output is
 * computed by one thread in a fixed order, so results do not depend on the number of cores.
 *
 * <p>Unlike the inference loaders, ln0 is applied to each token's embedding instead of being folded into the
 * embedding matrix once: the result is the same and the weights stay untouched. Not thread-safe (scratch vectors are
 * reused), but cheap to make: one per thread.
 */
public final class Rwkv7Rnn {
    private static final int N = ModelConfig.HEAD_SIZE;
    /** Matrix-vector products with at least this many multiply-adds are split over the fork-join pool. */
    private static final long PARALLEL_MACS = 1 << 18;
    private static final int ROWS_PER_TASK = 64;
    private static final double W_SCALE = -Math.exp(-0.5);

    private final ModelConfig config;
    private final ParameterLayout layout;
    private final float[] p;
    private final int C;
    private final int H;
    private final int V;
    private final int F;
    private final ModelConfig.LoraDims lora;
    private final Offsets[] blocks;
    private final int emb;
    private final int lnOutW;
    private final int lnOutB;
    private final int head;

    // scratch, reused every token
    private final double[] x;
    private final double[] xx;
    private final double[] xr, xw, xk, xv, xa, xg;
    private final double[] r, k, v, vFirst, wRaw, omega, alpha, g, kHat, kTilde, y;
    private final double[] loraHidden;
    private final double[] loraOut;
    private final double[] ffnHidden;
    private final double[] branch;
    private final double[] logitsD;

    /** Parameter offsets of one block. */
    private static final class Offsets {
        final int ln1W, ln1B, ln2W, ln2B, ln0W, ln0B;
        final int xR, xW, xK, xV, xA, xG;
        final int w1, w2, w0, a1, a2, a0, v1, v2, v0, g1, g2;
        final int kK, kA, rK;
        final int receptance, key, value, output, lnXW, lnXB;
        final int ffnXK, ffnKey, ffnValue;

        Offsets(ParameterLayout layout, int l) {
            String p = "blocks." + l + ".";
            java.util.function.ToIntFunction<String> o = local -> Math.toIntExact(layout.get(p + local).offset());
            ln1W = o.applyAsInt("ln1.weight");
            ln1B = o.applyAsInt("ln1.bias");
            ln2W = o.applyAsInt("ln2.weight");
            ln2B = o.applyAsInt("ln2.bias");
            ln0W = l == 0 ? o.applyAsInt("ln0.weight") : -1;
            ln0B = l == 0 ? o.applyAsInt("ln0.bias") : -1;
            xR = o.applyAsInt("att.x_r");
            xW = o.applyAsInt("att.x_w");
            xK = o.applyAsInt("att.x_k");
            xV = o.applyAsInt("att.x_v");
            xA = o.applyAsInt("att.x_a");
            xG = o.applyAsInt("att.x_g");
            w1 = o.applyAsInt("att.w1");
            w2 = o.applyAsInt("att.w2");
            w0 = o.applyAsInt("att.w0");
            a1 = o.applyAsInt("att.a1");
            a2 = o.applyAsInt("att.a2");
            a0 = o.applyAsInt("att.a0");
            v1 = o.applyAsInt("att.v1");
            v2 = o.applyAsInt("att.v2");
            v0 = o.applyAsInt("att.v0");
            g1 = o.applyAsInt("att.g1");
            g2 = o.applyAsInt("att.g2");
            kK = o.applyAsInt("att.k_k");
            kA = o.applyAsInt("att.k_a");
            rK = o.applyAsInt("att.r_k");
            receptance = o.applyAsInt("att.receptance.weight");
            key = o.applyAsInt("att.key.weight");
            value = o.applyAsInt("att.value.weight");
            output = o.applyAsInt("att.output.weight");
            lnXW = o.applyAsInt("att.ln_x.weight");
            lnXB = o.applyAsInt("att.ln_x.bias");
            ffnXK = o.applyAsInt("ffn.x_k");
            ffnKey = o.applyAsInt("ffn.key.weight");
            ffnValue = o.applyAsInt("ffn.value.weight");
        }
    }

    /**
     * @param params the fp32 weights in {@code layout} order; read in place on every token, never copied or changed
     */
    public Rwkv7Rnn(ParameterLayout layout, float[] params) {
        if (params.length != layout.totalElements()) {
            throw new IllegalArgumentException("params has " + params.length + " floats, the layout needs " + layout.totalElements());
        }
        this.layout = layout;
        this.config = layout.config();
        this.p = params;
        this.C = config.nEmbd();
        this.H = config.nHead();
        this.V = config.vocabSize();
        this.F = config.dimFfn();
        this.lora = config.lora();
        this.blocks = new Offsets[config.nLayer()];
        for (int l = 0; l < blocks.length; l++) {
            blocks[l] = new Offsets(layout, l);
        }
        this.emb = Math.toIntExact(layout.get("emb.weight").offset());
        this.lnOutW = Math.toIntExact(layout.get("ln_out.weight").offset());
        this.lnOutB = Math.toIntExact(layout.get("ln_out.bias").offset());
        this.head = Math.toIntExact(layout.get("head.weight").offset());
        x = new double[C];
        xx = new double[C];
        xr = new double[C];
        xw = new double[C];
        xk = new double[C];
        xv = new double[C];
        xa = new double[C];
        xg = new double[C];
        r = new double[C];
        k = new double[C];
        v = new double[C];
        vFirst = new double[C];
        wRaw = new double[C];
        omega = new double[C];
        alpha = new double[C];
        g = new double[C];
        kHat = new double[C];
        kTilde = new double[C];
        y = new double[C];
        int maxRank = Math.max(Math.max(lora.decay(), lora.aaa()), Math.max(lora.mv(), lora.gate()));
        loraHidden = new double[maxRank];
        loraOut = new double[C];
        ffnHidden = new double[F];
        branch = new double[C];
        logitsD = new double[V];
    }

    public ModelConfig config() {
        return config;
    }

    public ParameterLayout layout() {
        return layout;
    }

    /** A zero state (the start of a sample) for this model. */
    public Rwkv7State newState() {
        return new Rwkv7State(config);
    }

    /** Feeds {@code token}, updates {@code state} and returns the next-token logits [V]. */
    public float[] logits(int token, Rwkv7State state) {
        float[] out = new float[V];
        logits(token, state, out);
        return out;
    }

    /** Feeds {@code token}, updates {@code state} and writes the next-token logits into {@code out} [V]. */
    public void logits(int token, Rwkv7State state, float[] out) {
        if (out.length != V) {
            throw new IllegalArgumentException("logits buffer has " + out.length + " floats, vocab is " + V);
        }
        advance(token, state);
        layerNorm(x, lnOutW, lnOutB, xx);
        matVec(head, xx, C, logitsD, V);
        for (int i = 0; i < V; i++) {
            out[i] = (float) logitsD[i];
        }
    }

    /** Feeds {@code token} and updates {@code state} without computing logits (prompt tokens before the last). */
    public void advance(int token, Rwkv7State state) {
        if (token < 0 || token >= V) {
            throw new GoslingException("token id " + token + " is outside the model's vocab (0.." + (V - 1) + ")");
        }
        if (!state.fits(config)) {
            throw new IllegalArgumentException("state was made for another model shape");
        }
        int row = emb + token * C;
        for (int c = 0; c < C; c++) {
            x[c] = p[row + c];
        }
        layerNorm(x, blocks[0].ln0W, blocks[0].ln0B, x);
        for (int l = 0; l < blocks.length; l++) {
            timeMix(l, blocks[l], state);
            channelMix(blocks[l], state.ffnX[l]);
        }
    }

    private void timeMix(int l, Offsets o, Rwkv7State state) {
        layerNorm(x, o.ln1W, o.ln1B, xx);
        float[] prev = state.attX[l];
        for (int c = 0; c < C; c++) {
            double cur = xx[c];
            double d = prev[c] - cur;
            xr[c] = cur + d * p[o.xR + c];
            xw[c] = cur + d * p[o.xW + c];
            xk[c] = cur + d * p[o.xK + c];
            xv[c] = cur + d * p[o.xV + c];
            xa[c] = cur + d * p[o.xA + c];
            xg[c] = cur + d * p[o.xG + c];
            prev[c] = (float) cur;
        }
        matVec(o.receptance, xr, C, r, C);
        matVec(o.key, xk, C, k, C);
        matVec(o.value, xv, C, v, C);

        // w_raw = w0 + tanh(xw·w1)·w2 ; ω = exp(−e^{−1/2}·σ(w_raw))
        lora(xw, o.w1, o.w2, lora.decay(), true, false, wRaw);
        for (int c = 0; c < C; c++) {
            wRaw[c] += p[o.w0 + c];
            omega[c] = Math.exp(W_SCALE * sigmoid(wRaw[c]));
        }
        if (l == 0) {
            System.arraycopy(v, 0, vFirst, 0, C);
        } else {
            // v += (v_first − v)⊙σ(v0 + xv·v1·v2)
            lora(xv, o.v1, o.v2, lora.mv(), false, false, loraOut);
            for (int c = 0; c < C; c++) {
                v[c] += (vFirst[c] - v[c]) * sigmoid(p[o.v0 + c] + loraOut[c]);
            }
        }
        lora(xa, o.a1, o.a2, lora.aaa(), false, false, alpha);
        for (int c = 0; c < C; c++) {
            alpha[c] = sigmoid(p[o.a0 + c] + alpha[c]);
        }
        lora(xg, o.g1, o.g2, lora.gate(), false, true, g);

        // κ̂ = normalize(k⊙k_k) per head ; k̃ = k⊙(1 + (α − 1)⊙k_a)
        for (int h = 0; h < H; h++) {
            double sq = 0;
            for (int i = h * N; i < (h + 1) * N; i++) {
                double kappa = k[i] * p[o.kK + i];
                kHat[i] = kappa;
                sq += kappa * kappa;
            }
            double inv = 1.0 / Math.max(Math.sqrt(sq), 1e-12);
            for (int i = h * N; i < (h + 1) * N; i++) {
                kHat[i] *= inv;
            }
        }
        for (int c = 0; c < C; c++) {
            kTilde[c] = k[c] * (1 + (alpha[c] - 1) * p[o.kA + c]);
        }

        // WKV with a = −κ̂, b = κ̂⊙α: S ← S·diag(ω) + (S·a)·bᵀ + v·k̃ᵀ ; y = S·r
        float[] S = state.wkvStates[l];
        for (int h = 0; h < H; h++) {
            int base = h * N;
            for (int i = 0; i < N; i++) {
                int row = (h * N + i) * N;
                double sa = 0;
                for (int j = 0; j < N; j++) {
                    sa -= S[row + j] * kHat[base + j];
                }
                double vi = v[base + i];
                double out = 0;
                for (int j = 0; j < N; j++) {
                    double s = S[row + j] * omega[base + j] + sa * kHat[base + j] * alpha[base + j] + vi * kTilde[base + j];
                    S[row + j] = (float) s;
                    out += s * r[base + j];
                }
                y[base + i] = out;
            }
        }

        // ln_x (GroupNorm, one group per head), bonus, gate, output
        for (int h = 0; h < H; h++) {
            int base = h * N;
            double mean = 0;
            for (int i = 0; i < N; i++) {
                mean += y[base + i];
            }
            mean /= N;
            double var = 0;
            for (int i = 0; i < N; i++) {
                double d = y[base + i] - mean;
                var += d * d;
            }
            double rstd = 1.0 / Math.sqrt(var / N + 64e-5);
            double bonus = 0;
            for (int i = 0; i < N; i++) {
                bonus += r[base + i] * kTilde[base + i] * p[o.rK + base + i];
            }
            for (int i = 0; i < N; i++) {
                int c = base + i;
                double normed = (y[c] - mean) * rstd * p[o.lnXW + c] + p[o.lnXB + c];
                y[c] = (normed + bonus * v[c]) * g[c];
            }
        }
        matVec(o.output, y, C, branch, C);
        for (int c = 0; c < C; c++) {
            x[c] += branch[c];
        }
    }

    private void channelMix(Offsets o, float[] prev) {
        layerNorm(x, o.ln2W, o.ln2B, xx);
        for (int c = 0; c < C; c++) {
            double cur = xx[c];
            xk[c] = cur + (prev[c] - cur) * p[o.ffnXK + c];
            prev[c] = (float) cur;
        }
        matVec(o.ffnKey, xk, C, ffnHidden, F);
        for (int i = 0; i < F; i++) {
            double h = Math.max(ffnHidden[i], 0.0);
            ffnHidden[i] = h * h;
        }
        matVec(o.ffnValue, ffnHidden, F, branch, C);
        for (int c = 0; c < C; c++) {
            x[c] += branch[c];
        }
    }

    /**
     * out = act(in·down)·up with down [C, rank], up [rank, C] (LoRA matrices are [in, out]); the hidden activation is
     * tanh or σ when asked, otherwise none. The bias and the output activation are the caller's.
     */
    private void lora(double[] in, int down, int up, int rank, boolean tanh, boolean sigmoid, double[] out) {
        java.util.Arrays.fill(loraHidden, 0, rank, 0.0);
        for (int i = 0; i < C; i++) {
            double xi = in[i];
            int row = down + i * rank;
            for (int j = 0; j < rank; j++) {
                loraHidden[j] += xi * p[row + j];
            }
        }
        for (int j = 0; j < rank; j++) {
            double h = loraHidden[j];
            loraHidden[j] = tanh ? Math.tanh(h) : sigmoid ? sigmoid(h) : h;
        }
        java.util.Arrays.fill(out, 0, C, 0.0);
        for (int j = 0; j < rank; j++) {
            double hj = loraHidden[j];
            int row = up + j * C;
            for (int c = 0; c < C; c++) {
                out[c] += hj * p[row + c];
            }
        }
    }

    /** LayerNorm over C, biased variance, eps 1e-5; out may be in. */
    private void layerNorm(double[] in, int weight, int bias, double[] out) {
        double mean = 0;
        for (int c = 0; c < C; c++) {
            mean += in[c];
        }
        mean /= C;
        double var = 0;
        for (int c = 0; c < C; c++) {
            double d = in[c] - mean;
            var += d * d;
        }
        double rstd = 1.0 / Math.sqrt(var / C + 1e-5);
        for (int c = 0; c < C; c++) {
            out[c] = (in[c] - mean) * rstd * p[weight + c] + p[bias + c];
        }
    }

    /** out[o] = Σ_i W[o, i]·in[i] for W [outDim, inDim] at {@code w} (a linear layer's weight, y = x·Wᵀ). */
    private void matVec(int w, double[] in, int inDim, double[] out, int outDim) {
        if ((long) inDim * outDim < PARALLEL_MACS) {
            rows(w, in, inDim, out, 0, outDim);
            return;
        }
        int tasks = (outDim + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
        IntStream.range(0, tasks).parallel().forEach(t ->
                rows(w, in, inDim, out, t * ROWS_PER_TASK, Math.min(outDim, (t + 1) * ROWS_PER_TASK)));
    }

    private void rows(int w, double[] in, int inDim, double[] out, int from, int to) {
        float[] weights = p;
        for (int o = from; o < to; o++) {
            int row = w + o * inDim;
            double s0 = 0;
            double s1 = 0;
            double s2 = 0;
            double s3 = 0;
            int i = 0;
            for (; i + 3 < inDim; i += 4) {
                s0 += weights[row + i] * in[i];
                s1 += weights[row + i + 1] * in[i + 1];
                s2 += weights[row + i + 2] * in[i + 2];
                s3 += weights[row + i + 3] * in[i + 3];
            }
            for (; i < inDim; i++) {
                s0 += weights[row + i] * in[i];
            }
            out[o] = (s0 + s1) + (s2 + s3);
        }
    }

    private static double sigmoid(double z) {
        return 1.0 / (1.0 + Math.exp(-z));
    }
}
