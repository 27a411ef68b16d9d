package dev.gosling.trainer.backend;

/**
 * Every RWKV-7 ("x070") op, forward and backward, behind one interface. The model orchestrates these calls and never
 * knows which backend runs them (rwkv7-reference.md §5.5, §6.4, §7 are the specification).
 *
 * <h2>Conventions (all backends)</h2>
 * <ul>
 *   <li><b>Layout.</b> Activations are row-major {@code [rows, C]} with {@code rows = B·T} and row {@code b·T + t};
 *       the {@code C} channels of a row are {@code H} heads of {@link #HEAD_SIZE}. Linear weights are {@code [out, in]}
 *       (PyTorch nn.Linear, y = x·Wᵀ); LoRA matrices are {@code [in, out]} (y = x·A, no transpose).</li>
 *   <li><b>Dimensions are arguments.</b> Each op takes its dimensions and checks every tensor's element count against
 *       them (shapes themselves are free, so views of any shape work).</li>
 *   <li><b>No allocation.</b> Ops write only into tensors the caller allocated; scratch tensors are arguments too.</li>
 *   <li><b>Forward ops overwrite</b> their outputs. Outputs must not alias inputs unless the op says so.</li>
 *   <li><b>Backward ops accumulate</b> ({@code +=}) into every gradient tensor, inputs and parameters alike: a
 *       tensor read by several ops (x of the six token-shift mixes, k, v_first, the residual stream) gets the sum
 *       with no extra buffers, and parameter gradients add up over micro-batches. The caller zeroes gradients once
 *       per step; the {@code …Overwriting…} variants write the gradients they name instead (their first writer in a
 *       step: then only the rest needs zeroing, {@link #zeroRanges}). The one exception is {@link #crossEntropyBackward}, which starts the backward pass and
 *       <em>writes</em> the logit gradient (it may alias the logits). A gradient argument documented as nullable
 *       may be {@code null} when that gradient is not wanted (frozen weights).</li>
 *   <li><b>Precision.</b> All floating tensors of one op share a dtype, and the op computes in it (fp32 for training,
 *       fp64 for checks on the CPU backend).</li>
 * </ul>
 */
public interface Backend extends AutoCloseable {

    /** RWKV-7 head size N; C must be a multiple of it (§6.2). */
    int HEAD_SIZE = 64;
    /** LayerNorm epsilon of ln0, ln1, ln2 and ln_out (§6.1). */
    double LAYER_NORM_EPS = 1e-5;
    /** GroupNorm (ln_x) epsilon: 64e-5 = 1e-5 · head size (§6.4). */
    double GROUP_NORM_EPS = 64e-5;
    /** Floor on the norm in the per-head L2 normalisation of κ (F.normalize, §6.4). */
    double L2_NORMALIZE_EPS = 1e-12;
    /** L2Wrap factor: the argmax logit of every row gets an extra gradient L2WRAP_FACTOR·max·gradScale (§5.5). */
    double L2WRAP_FACTOR = 1e-4;

    /** A short name for logs and benchmarks, e.g. "cpu(16 threads)". */
    String name();

    // ------------------------------------------------------------------------------------------------ memory

    /** A new zero-filled tensor. */
    Tensor allocate(DType dtype, int... shape);

    /** A view of {@code numel(shape)} elements of {@code base} starting {@code offset} elements in; same dtype. */
    Tensor view(Tensor base, long offset, int... shape);

    /** Copies host data into {@code dst} (lengths must match; converts between float and double). */
    void upload(float[] src, Tensor dst);

    void upload(double[] src, Tensor dst);

    void upload(int[] src, Tensor dst);

    /**
     * Copies {@code src} into host memory (lengths must match; converts between float and double; a tensor of the
     * {@link #gemmInputDtype}, such as bf16 logits, is widened exactly).
     */
    void download(Tensor src, float[] dst);

    void download(Tensor src, double[] dst);

    void download(Tensor src, int[] dst);

    /** Sets every element to 0. */
    void zero(Tensor t);

    /**
     * Sets the elements of the ranges [ranges[2i], ranges[2i + 1]) of {@code t} to 0 (element offsets, ascending and
     * disjoint): the parts of a gradient buffer that a step adds to, when the rest is written by the ops themselves.
     * By default {@link #zero} of a view per range; a backend may zero them all in one pass.
     */
    default void zeroRanges(Tensor t, long[] ranges) {
        BackendChecks.ranges("zeroRanges", ranges, t.numel());
        for (int i = 0; i < ranges.length; i += 2) {
            if (ranges[i + 1] > ranges[i]) {
                try (Tensor range = view(t, ranges[i], Math.toIntExact(ranges[i + 1] - ranges[i]))) {
                    zero(range);
                }
            }
        }
    }

    /** dst = src (same dtype and element count). */
    void copy(Tensor src, Tensor dst);

    /** dst += src: gradient sums and the residual stream's backward. */
    void accumulate(Tensor src, Tensor dst);

    /** out = a + b, elementwise (the residual connection); out may alias a or b. */
    void add(Tensor a, Tensor b, Tensor out);

    // ------------------------------------------------------------------------------------------------ embedding

    /** out[row] = weight[tokens[row]]. tokens I32 [rows]; weight [V, C]; out [rows, C]. */
    void embeddingForward(Tensor tokens, Tensor weight, Tensor out, int rows, int vocab, int C);

    /** dWeight[tokens[row]] += dOut[row] (scatter-add). */
    void embeddingBackward(Tensor tokens, Tensor dOut, Tensor dWeight, int rows, int vocab, int C);

    // ------------------------------------------------------------------------------------------------ norms

    /**
     * LayerNorm over C with biased variance, eps {@link #LAYER_NORM_EPS}, affine weight and bias [C].
     * Saves per-row {@code mean} and {@code rstd} [rows] for the backward pass.
     */
    void layerNormForward(Tensor x, Tensor weight, Tensor bias, Tensor out, Tensor mean, Tensor rstd, int rows, int C);

    /** dx, dWeight, dBias += … ; dWeight and dBias are nullable. */
    void layerNormBackward(Tensor dOut, Tensor x, Tensor weight, Tensor mean, Tensor rstd,
                           Tensor dx, Tensor dWeight, Tensor dBias, int rows, int C);

    /**
     * As {@link #layerNormBackward}, and {@code dxCopy} (nullable) gets the new dx too, in its own dtype — the residual
     * stream's gradient, which the next GEMMs read as bf16 (see {@link #gemmInputDtype}). {@code overwrite}: dx is
     * written, not added to. By default zero (if overwriting), accumulate, then {@link #copy}.
     */
    default void layerNormBackward(Tensor dOut, Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dx,
                                   Tensor dxCopy, boolean overwrite, Tensor dWeight, Tensor dBias, int rows, int C) {
        if (overwrite) {
            zero(dx);
        }
        layerNormBackward(dOut, x, weight, mean, rstd, dx, dWeight, dBias, rows, C);
        if (dxCopy != null) {
            copy(dx, dxCopy);
        }
    }

    /**
     * The time mix's ln_x: GroupNorm with H = C/64 groups (one per head), biased variance over each head's 64
     * channels, eps {@link #GROUP_NORM_EPS}, per-channel weight and bias [C]. {@code mean} and {@code rstd} are
     * [rows, H].
     */
    void groupNormForward(Tensor x, Tensor weight, Tensor bias, Tensor out, Tensor mean, Tensor rstd, int rows, int C);

    /** dx, dWeight, dBias += … ; dWeight and dBias are nullable. */
    void groupNormBackward(Tensor dOut, Tensor x, Tensor weight, Tensor mean, Tensor rstd,
                           Tensor dx, Tensor dWeight, Tensor dBias, int rows, int C);

    /** As {@link #groupNormBackward} with dx written, not added to. By default zero, then accumulate. */
    default void groupNormBackwardOverwriting(Tensor dOut, Tensor x, Tensor weight, Tensor mean, Tensor rstd,
                                              Tensor dx, Tensor dWeight, Tensor dBias, int rows, int C) {
        zero(dx);
        groupNormBackward(dOut, x, weight, mean, rstd, dx, dWeight, dBias, rows, C);
    }

    // ------------------------------------------------------------------------------------------------ token shift

    /** The most token-shift mixes one call takes: the time mix's six. */
    int MAX_MIXES = 6;

    /**
     * outs[j]_t = x_t + (x_{t−1} − x_t)⊙mixes[j] with x_{−1} = 0 in every sample, for the k = mixes.length
     * (1 … {@link #MAX_MIXES}) lerps of one input at once: the time mix's six (x_r … x_g) or the channel mix's x_k.
     * x, outs[j] [B·T, C]; mixes[j] [C]. No out may alias x or another out.
     */
    void tokenShiftMixesForward(Tensor x, Tensor[] mixes, Tensor[] outs, int B, int T, int C);

    /**
     * dx += Σ_j dOuts[j]_t⊙(1 − mixes[j]) + dOuts[j]_{t+1}⊙mixes[j] (no t+1 term at a sample's last row);
     * dMixes[j] += Σ_rows dOuts[j]_t⊙(x_{t−1} − x_t). dMixes, when not null, has one entry per mix, and any entry
     * may be null (frozen). dx must not alias x or a dOut. The dOuts may be of the {@link #gemmGradientDtype} (all of
     * them); dx and dMixes are of the compute dtype.
     */
    void tokenShiftMixesBackward(Tensor[] dOuts, Tensor x, Tensor[] mixes, Tensor dx, Tensor[] dMixes,
                                 int B, int T, int C);

    /** As {@link #tokenShiftMixesBackward} with dx written, not added to (dMixes still add). By default zero first. */
    default void tokenShiftMixesBackwardOverwriting(Tensor[] dOuts, Tensor x, Tensor[] mixes, Tensor dx,
                                                    Tensor[] dMixes, int B, int T, int C) {
        zero(dx);
        tokenShiftMixesBackward(dOuts, x, mixes, dx, dMixes, B, T, C);
    }

    /**
     * A LayerNorm whose output only token-shift mixes read (LN1 and the time mix's six, LN2 and the channel mix's x_k),
     * without that output: outs[j] = the {@link #tokenShiftMixesForward} mixes of LN(x) = {@link #layerNormForward}(x,
     * lnWeight, lnBias). x [B·T, C]; outs[j] [B·T, C] (of the {@link #gemmInputDtype} or the compute dtype, as
     * tokenShiftMixesForward's); mean and rstd [B·T]. {@code savedStats} false: mean and rstd are written, as
     * layerNormForward writes them; true: they hold what such a call wrote for this x and are only read (the backward
     * pass's recomputation of the mixes: the same outputs). By default layerNormForward into a temporary (its mean and
     * rstd into temporaries too when savedStats), then tokenShiftMixesForward; a backend may do it in one pass.
     */
    default void layerNormTokenShiftForward(Tensor x, Tensor lnWeight, Tensor lnBias, Tensor mean, Tensor rstd,
                                            boolean savedStats, Tensor[] mixes, Tensor[] outs, int B, int T, int C) {
        int rows = B * T;
        Tensor ln = allocate(x.dtype(), rows, C);
        Tensor[] stats = savedStats ? new Tensor[] {allocate(x.dtype(), rows), allocate(x.dtype(), rows)}
                : new Tensor[] {mean, rstd};
        try {
            layerNormForward(x, lnWeight, lnBias, ln, stats[0], stats[1], rows, C);
            tokenShiftMixesForward(ln, mixes, outs, B, T, C);
        } finally {
            ln.close();
            if (savedStats) {
                stats[0].close();
                stats[1].close();
            }
        }
    }

    /**
     * The backward of {@link #layerNormTokenShiftForward} from the mixes' gradients dOuts (of the
     * {@link #gemmGradientDtype} or the compute dtype, as {@link #tokenShiftMixesBackward}'s), with the mean and rstd
     * its forward wrote: dx (and dxCopy, dLnWeight, dLnBias) as {@link #layerNormBackward(Tensor, Tensor, Tensor,
     * Tensor, Tensor, Tensor, Tensor, boolean, Tensor, Tensor, int, int)} from dL/d(LN output), and dMixes += as
     * tokenShiftMixesBackward's (nullable, entries nullable). By default the LN output recomputed into a temporary
     * (layerNormForward, its statistics into temporaries), tokenShiftMixesBackwardOverwriting into a temporary dL/d(LN
     * output), then layerNormBackward; a backend may do it in one pass.
     */
    default void layerNormTokenShiftBackward(Tensor[] dOuts, Tensor x, Tensor lnWeight, Tensor lnBias, Tensor mean,
                                             Tensor rstd, Tensor[] mixes, Tensor dx, Tensor dxCopy, boolean overwrite,
                                             Tensor dLnWeight, Tensor dLnBias, Tensor[] dMixes, int B, int T, int C) {
        int rows = B * T;
        Tensor[] temps = {allocate(x.dtype(), rows, C), allocate(x.dtype(), rows, C), allocate(x.dtype(), rows),
            allocate(x.dtype(), rows)};
        try {
            Tensor ln = temps[0];
            Tensor dLn = temps[1];
            layerNormForward(x, lnWeight, lnBias, ln, temps[2], temps[3], rows, C);
            tokenShiftMixesBackwardOverwriting(dOuts, ln, mixes, dLn, dMixes, B, T, C);
            layerNormBackward(dLn, x, lnWeight, mean, rstd, dx, dxCopy, overwrite, dLnWeight, dLnBias, rows, C);
        } finally {
            for (Tensor t : temps) {
                t.close();
            }
        }
    }

    // ------------------------------------------------------------------------------------------------ linear

    /** out = x·weightᵀ. x [rows, in]; weight [out, in]; out [rows, out]. r/k/v/output, ffn key/value and the head. */
    void linearForward(Tensor x, Tensor weight, Tensor out, int rows, int in, int outDim);

    /**
     * out = residual + x·weightᵀ (residual [rows, out], not aliasing out): a block's output projections with their
     * residual connection. The default is {@link #linearForward} then {@link #add}; a backend may add in the GEMM.
     */
    default void linearForwardResidual(Tensor x, Tensor weight, Tensor residual, Tensor out, int rows, int in, int outDim) {
        linearForward(x, weight, out, rows, in, outDim);
        add(residual, out, out);
    }

    /** dx += dOut·weight; dWeight += dOutᵀ·x. Both nullable; dx may be of the {@link #gemmGradientDtype}. */
    void linearBackward(Tensor dOut, Tensor x, Tensor weight, Tensor dx, Tensor dWeight, int rows, int in, int outDim);

    /**
     * As {@link #linearBackward} but dx = dOut·weight is written, not added to: the caller need not zero dx first
     * (dWeight still accumulates). By default zero, then accumulate — the same values.
     */
    default void linearBackwardOverwritingDx(Tensor dOut, Tensor x, Tensor weight, Tensor dx, Tensor dWeight, int rows,
                                             int in, int outDim) {
        zero(dx);
        linearBackward(dOut, x, weight, dx, dWeight, rows, in, outDim);
    }

    /**
     * As {@link #linearBackwardOverwritingDx} with dWeight written too (dWeight = dOutᵀ·x): for a weight whose gradient
     * has no other writer in a step, so that nothing needs zeroing first. By default zero dWeight, then
     * linearBackwardOverwritingDx — the same values.
     */
    default void linearBackwardOverwriting(Tensor dOut, Tensor x, Tensor weight, Tensor dx, Tensor dWeight, int rows,
                                           int in, int outDim) {
        if (dWeight != null) {
            zero(dWeight);
        }
        linearBackwardOverwritingDx(dOut, x, weight, dx, dWeight, rows, in, outDim);
    }

    /**
     * From here to {@link #finishParameterSums} the backend may hold back the last pass of the column sums that ops add
     * into parameter gradients (the norm, mix, bias and bonus gradients) and do them together, in fewer launches. The
     * caller promises to read and hand over no parameter gradient in between (a block's backward pass). By default
     * each op finishes its own sums.
     */
    default void deferParameterSums() {
    }

    /** Finishes the sums held back since {@link #deferParameterSums}, in order, and stops holding them back. */
    default void finishParameterSums() {
    }

    /**
     * A hint: the GEMMs until {@link #releaseGemmOperand} read {@code weight} many times and nothing changes it
     * meanwhile (the head, read by three GEMMs per row chunk), so a backend that converts GEMM operands (the CUDA
     * backend's bf16 GEMMs) may convert it once. Holding another weight releases the first. Nothing by default.
     */
    default void holdGemmOperand(Tensor weight) {
    }

    /**
     * The dtype of a converted copy of its GEMM weights that a model computing in {@code computeDtype} may keep across
     * {@link #holdGemmOperand(Tensor, Tensor, boolean)} calls (from the optimizer step that writes it, or the forward
     * pass that converts it, to the passes that read it): null by default, where GEMMs read the weights as they are;
     * BF16 on the CUDA backend under bf16 GEMMs (unless {@code -Dgosling.weightCopy=false}).
     */
    default DType gemmWeightCopyDtype(DType computeDtype) {
        return null;
    }

    /**
     * copy = {@code weight} converted as the GEMMs read it (the CUDA backend: bf16, round to nearest even, the bits of
     * its cast before a bf16 GEMM); same element count. By default a plain {@link #copy} (a copy in the weight's own
     * dtype).
     */
    default void convertGemmWeight(Tensor weight, Tensor copy) {
        copy(weight, copy);
    }

    /**
     * {@link #holdGemmOperand(Tensor)} with the converted weight in the caller's {@code copy} (of the
     * {@link #gemmWeightCopyDtype}, as many elements as {@code weight}), which outlives the hold. {@code convert}: the
     * weight is converted into the copy first ({@link #convertGemmWeight}); false: the caller promises that the copy
     * holds this weight converted (neither changed since it was written), and the GEMMs read it as it is. By default
     * the conversion when asked, then {@link #holdGemmOperand(Tensor)} (GEMMs that read the weight).
     */
    default void holdGemmOperand(Tensor weight, Tensor copy, boolean convert) {
        if (convert) {
            convertGemmWeight(weight, copy);
        }
        holdGemmOperand(weight);
    }

    /**
     * The dtype a model should keep the tensors that only GEMMs read in (the token-shift mixes, the gate product, the
     * ffn's relu² output and its gradient, a copy of the residual stream's gradient), for a model computing in
     * {@code computeDtype}: that dtype itself by default; BF16 on the CUDA backend under bf16 GEMMs, which then takes
     * them without casting (the producing ops write bf16). There, linearForward may also write its output in it (the
     * ffn key output, which only relu² reads, in place; the head's logits, which only the cross-entropy reads), relu²
     * forward reads such an x and its backward such an output, and the cross-entropy ops read such logits (and write
     * such dLogits over them).
     */
    default DType gemmInputDtype(DType computeDtype) {
        return computeDtype;
    }

    /**
     * The dtype a model may keep the saved projections k, v (after the first layer), the α and v-gate pre-activations
     * and g in — read by key preparation, the value residual, the fused ln_x/bonus/gate and the LoRA backward, written
     * by linear and LoRA forward: {@code computeDtype} by default; BF16 on the CUDA backend under bf16 GEMMs (those ops
     * then read and write bf16 there).
     */
    default DType savedActivationDtype(DType computeDtype) {
        return computeDtype;
    }

    /**
     * The dtype a model may keep the WKV7 kernel's inputs r, wRaw, κ̃, v, a, b and its output y in (with v_first and
     * v mixed), when it keeps the saved projections in the same {@link #savedActivationDtype}: {@code computeDtype} by
     * default; BF16 on the CUDA backend under bf16 GEMMs, as the official kernel (linear and LoRA forward then write
     * r and wRaw in bf16, {@link #keyPrepareForward} κ̃, a and b, {@link #valueResidualForward} v, {@link #wkv7Forward}
     * y; the ops reading them take bf16). State and gradients stay in {@code computeDtype}; the saved states may not
     * ({@link #wkv7SavedElements(int, int, int, DType)}).
     */
    default DType wkvInputDtype(DType computeDtype) {
        return computeDtype;
    }

    /**
     * The dtype a model may keep the input gradients in that a GEMM writes and one elementwise op reads, for a model
     * computing in {@code computeDtype}: the ffn value projection's dx (relu²'s backward reads it) and the token-shift
     * mixes' gradients (the projections' and LoRA chains' dx; the token-shift backward reads them).
     * {@code computeDtype} by default; BF16 on the CUDA backend under bf16 GEMMs, where {@link #linearBackward} and
     * {@link #loraBackward} (and their Overwriting variants) then write such a dx in bf16 (fp32 accumulation, rounded
     * once; an accumulating call reads it and rounds the sum again), {@link #reluSquaredBackwardOverwriting} reads such
     * a dAct (with act and dPre of the {@link #gemmInputDtype}) and {@link #tokenShiftMixesBackward} such dOuts.
     */
    default DType gemmGradientDtype(DType computeDtype) {
        return computeDtype;
    }

    /**
     * The dtype a model may keep three WKV7 gradients in that only bf16-reading kernels and GEMMs consume, when it
     * keeps the WKV inputs in the same {@link #wkvInputDtype} and the GEMM gradients in the same
     * {@link #gemmGradientDtype}: dy (written by {@link #lnxBonusGateBackward}, read by {@link #wkv7Backward} and
     * {@link #wkv7BackwardOverwritingWab} as dOut), dr's sum ({@link #wkv7BackwardOverwritingWab}'s drSum, read by the
     * receptance projection's {@link #linearBackward}) and dwRaw (written by {@link #wkv7BackwardOverwritingWab}, read
     * by the decay LoRA's {@link #loraBackward}: no output activation, its bias gradient the column sums of that dOut).
     * {@code computeDtype} by default; BF16 on the CUDA backend under bf16 GEMMs, where those ops then write and read
     * them in bf16 (rounded once), as the official kernel's bf16 dy and gradients.
     */
    default DType wkvGradientDtype(DType computeDtype) {
        return computeDtype;
    }

    /** Ends {@link #holdGemmOperand}. */
    default void releaseGemmOperand() {
    }

    /**
     * The LoRA chains of the time mix: {@code hidden = hiddenAct(x·down)}, {@code out = outAct(bias + hidden·up)}.
     * x [rows, in]; down [in, rank]; up [rank, outDim]; bias [outDim] or null; hidden [rows, rank] (saved for the
     * backward pass, after its activation); out [rows, outDim]. The reference chains are
     * <pre>
     *   w_raw    = lora(xw, w1, w2, bias w0, TANH,    NONE)   (the WKV op applies the decay to w_raw)
     *   αPre     = lora(xa, a1, a2, bias a0, NONE,    NONE)   (α = σ(αPre), taken by the key preparation)
     *   gatePre  = lora(xv, v1, v2, bias v0, NONE,    NONE)   (gate = σ(gatePre), taken by the value residual,
     *                                                           layers ≥ 1)
     *   g        = lora(xg, g1, g2, no bias, SIGMOID, NONE)
     * </pre>
     * (outAct SIGMOID stays supported: it is the reference's literal form of the α and gate chains.)
     */
    void loraForward(Tensor x, Tensor down, Tensor up, Tensor bias, Activation hiddenAct, Activation outAct,
                     Tensor hidden, Tensor out, int rows, int in, int rank, int outDim);

    /**
     * dx, dDown, dUp, dBias += … (dDown, dUp, dBias nullable; dBias ignored without a bias; dx may be of the
     * {@link #gemmGradientDtype}). Needs the forward's {@code hidden} and {@code out}, and two scratch tensors whose
     * contents are clobbered: {@code dPreScratch} [rows, outDim] (may be null when outAct is NONE) and
     * {@code dHiddenScratch} [rows, rank].
     */
    void loraBackward(Tensor dOut, Tensor x, Tensor down, Tensor up, Tensor bias, Activation hiddenAct,
                      Activation outAct, Tensor hidden, Tensor out, Tensor dPreScratch, Tensor dHiddenScratch,
                      Tensor dx, Tensor dDown, Tensor dUp, Tensor dBias, int rows, int in, int rank, int outDim);

    /** As {@link #loraBackward} with dx written, not added to. By default zero, then accumulate. */
    default void loraBackwardOverwritingDx(Tensor dOut, Tensor x, Tensor down, Tensor up, Tensor bias,
                                           Activation hiddenAct, Activation outAct, Tensor hidden, Tensor out,
                                           Tensor dPreScratch, Tensor dHiddenScratch, Tensor dx, Tensor dDown,
                                           Tensor dUp, Tensor dBias, int rows, int in, int rank, int outDim) {
        zero(dx);
        loraBackward(dOut, x, down, up, bias, hiddenAct, outAct, hidden, out, dPreScratch, dHiddenScratch, dx, dDown,
                dUp, dBias, rows, in, rank, outDim);
    }

    /**
     * As {@link #loraBackward} with dDown, dUp and dBias written, not added to (a chain's matrices and bias have no
     * other gradient writer in a step: nothing needs zeroing first); dx still adds (the v-gate chain adds its share of
     * dx_v to the value projection's). By default zero them (dBias only with a bias), then loraBackward.
     */
    default void loraBackwardOverwritingWeights(Tensor dOut, Tensor x, Tensor down, Tensor up, Tensor bias,
                                                Activation hiddenAct, Activation outAct, Tensor hidden, Tensor out,
                                                Tensor dPreScratch, Tensor dHiddenScratch, Tensor dx, Tensor dDown,
                                                Tensor dUp, Tensor dBias, int rows, int in, int rank, int outDim) {
        zeroLoraWeightGradients(bias, dDown, dUp, dBias);
        loraBackward(dOut, x, down, up, bias, hiddenAct, outAct, hidden, out, dPreScratch, dHiddenScratch, dx, dDown,
                dUp, dBias, rows, in, rank, outDim);
    }

    /**
     * As {@link #loraBackward} with dx, dDown, dUp and dBias all written, not added to. By default zero the weights'
     * gradients (dBias only with a bias), then {@link #loraBackwardOverwritingDx}.
     */
    default void loraBackwardOverwriting(Tensor dOut, Tensor x, Tensor down, Tensor up, Tensor bias,
                                         Activation hiddenAct, Activation outAct, Tensor hidden, Tensor out,
                                         Tensor dPreScratch, Tensor dHiddenScratch, Tensor dx, Tensor dDown,
                                         Tensor dUp, Tensor dBias, int rows, int in, int rank, int outDim) {
        zeroLoraWeightGradients(bias, dDown, dUp, dBias);
        loraBackwardOverwritingDx(dOut, x, down, up, bias, hiddenAct, outAct, hidden, out, dPreScratch, dHiddenScratch,
                dx, dDown, dUp, dBias, rows, in, rank, outDim);
    }

    /** The LoRA weights' gradients that are not null (dBias only with a bias: loraBackward ignores it otherwise), zeroed. */
    private void zeroLoraWeightGradients(Tensor bias, Tensor dDown, Tensor dUp, Tensor dBias) {
        for (Tensor g : new Tensor[] {dDown, dUp, bias == null ? null : dBias}) {
            if (g != null) {
                zero(g);
            }
        }
    }

    // ------------------------------------------------------------------------------------------------ time mix pieces

    /**
     * Value residual (layers ≥ 1): out = v + (vFirst − v)⊙σ(gatePre), with the gate's pre-activation gatePre =
     * v0 + xv·v1·v2 from {@link #loraForward} (the sigmoid is applied here). Layer 0 needs no op: its v is v_first.
     * All tensors [rows, C].
     */
    void valueResidualForward(Tensor v, Tensor vFirst, Tensor gatePre, Tensor out, int rows, int C);

    /**
     * dv, dvFirst, dGatePre += … (with s = σ(gatePre): dOut⊙(1 − s), dOut⊙s and dOut⊙(vFirst − v)⊙s(1 − s)).
     */
    void valueResidualBackward(Tensor dOut, Tensor v, Tensor vFirst, Tensor gatePre,
                               Tensor dv, Tensor dvFirst, Tensor dGatePre, int rows, int C);

    /**
     * As {@link #valueResidualBackward} with dv and dGatePre written, not added to (dvFirst adds). By default zero
     * first.
     */
    default void valueResidualBackwardOverwriting(Tensor dOut, Tensor v, Tensor vFirst, Tensor gatePre, Tensor dv,
                                                  Tensor dvFirst, Tensor dGatePre, int rows, int C) {
        zero(dv);
        zero(dGatePre);
        valueResidualBackward(dOut, v, vFirst, gatePre, dv, dvFirst, dGatePre, rows, C);
    }

    /**
     * Key preparation for the WKV kernel (§6.4): α = σ(alphaPre), with the pre-activation alphaPre =
     * a0 + xa·a1·a2 from {@link #loraForward} (the sigmoid is applied here); κ = k⊙k_k; κ̂ = κ_h / max(‖κ_h‖₂, 1e-12)
     * per head; kTilde = k⊙(1 + (α − 1)⊙k_a); and the kernel inputs a = −κ̂ and b = κ̂⊙α. k, alphaPre, kTilde, a, b
     * [rows, C]; kK, kA [C].
     */
    void keyPrepareForward(Tensor k, Tensor alphaPre, Tensor kK, Tensor kA, Tensor kTilde, Tensor a, Tensor b,
                           int rows, int C);

    /**
     * dk, dAlphaPre, dKK, dKA += … (dKK, dKA nullable; dAlphaPre = dα⊙α(1 − α)). Recomputes κ̂ from k and α from
     * alphaPre; nothing else is saved.
     */
    void keyPrepareBackward(Tensor dKTilde, Tensor dA, Tensor dB, Tensor k, Tensor alphaPre, Tensor kK, Tensor kA,
                            Tensor dk, Tensor dAlphaPre, Tensor dKK, Tensor dKA, int rows, int C);

    /** As {@link #keyPrepareBackward} with dk and dAlphaPre written, not added to. By default zero first. */
    default void keyPrepareBackwardOverwriting(Tensor dKTilde, Tensor dA, Tensor dB, Tensor k, Tensor alphaPre,
                                               Tensor kK, Tensor kA, Tensor dk, Tensor dAlphaPre, Tensor dKK,
                                               Tensor dKA, int rows, int C) {
        zero(dk);
        zero(dAlphaPre);
        keyPrepareBackward(dKTilde, dA, dB, k, alphaPre, kK, kA, dk, dAlphaPre, dKK, dKA, rows, C);
    }

    /**
     * Elements of the tensor {@code saved} that {@link #wkv7Forward} fills and {@link #wkv7Backward} reads. Its content
     * is private to the backend (the CPU backend keeps the state after every 16th step and after the last one).
     */
    long wkv7SavedElements(int B, int T, int H);

    /**
     * {@link #wkv7SavedElements} for WKV7 inputs (r, wRaw, k, v, a, b) of {@code inputDtype}: a backend may keep a
     * different saved layout per input dtype (the CUDA backend's tensor-core kernels, which take bf16 inputs, keep
     * theirs in bf16: half the elements). A model passes the dtype it gives {@link #wkv7Forward}; the forward and the
     * backward reject a saved tensor of the other size. By default the same for every dtype.
     */
    default long wkv7SavedElements(int B, int T, int H, DType inputDtype) {
        return wkv7SavedElements(B, T, H);
    }

    /**
     * The WKV7 recurrence (§6.4, §7.2) for every (batch, head), state S (64×64, rows = value index i, columns = key
     * index j) starting at 0 in every sample:
     * <pre>
     *   ω_j  = exp(−e^{−1/2}·σ(wRaw_j))                        (the soft-clamped decay, inside the op as in the kernel)
     *   sa_i = Σ_j S[i][j]·a_j
     *   S[i][j] ← S[i][j]·ω_j + sa_i·b_j + v_i·k_j
     *   out_i = Σ_j S[i][j]·r_j                                 (the updated state)
     * </pre>
     * with the reference inputs k = k̃, a = −κ̂, b = κ̂⊙α (see {@link #keyPrepareForward}) and wRaw = w0 + tanh(xw·w1)·w2.
     * r, wRaw, k, v, a, b, out [B·T, H·64]; saved has {@link #wkv7SavedElements} elements. Any T ≥ 1 on the CPU.
     */
    void wkv7Forward(Tensor r, Tensor wRaw, Tensor k, Tensor v, Tensor a, Tensor b, Tensor out, Tensor saved,
                     int B, int T, int H);

    /**
     * dr, dwRaw, dk, dv, da, db += … (the exact gradient of {@link #wkv7Forward}). dOut may be of the
     * {@link #wkvGradientDtype}; the gradients are of the compute dtype.
     */
    void wkv7Backward(Tensor dOut, Tensor r, Tensor wRaw, Tensor k, Tensor v, Tensor a, Tensor b, Tensor saved,
                      Tensor dr, Tensor dwRaw, Tensor dk, Tensor dv, Tensor da, Tensor db, int B, int T, int H);

    /**
     * As {@link #wkv7Backward} with dwRaw, da and db written, not added to (nothing else writes them: the caller need
     * not zero them); dk and dv still add; dr is only read: drSum = dr + (the WKV part of dL/dr), written (drSum may
     * be dr itself: then added in place). dOut, drSum and dwRaw may be of the {@link #wkvGradientDtype} (dr, dk, dv,
     * da, db of the compute dtype). By default copy dr to drSum, zero dwRaw, da and db, then accumulate.
     */
    default void wkv7BackwardOverwritingWab(Tensor dOut, Tensor r, Tensor wRaw, Tensor k, Tensor v, Tensor a, Tensor b,
                                            Tensor saved, Tensor dr, Tensor drSum, Tensor dwRaw, Tensor dk, Tensor dv,
                                            Tensor da, Tensor db, int B, int T, int H) {
        if (drSum != dr) {
            copy(dr, drSum);
        }
        zero(dwRaw);
        zero(da);
        zero(db);
        wkv7Backward(dOut, r, wRaw, k, v, a, b, saved, drSum, dwRaw, dk, dv, da, db, B, T, H);
    }

    /**
     * The bonus term after ln_x (§6.4): out_{h} = x_{h} + (Σ_{i∈h} r_i·k_i·rK[h,i])·v_{h}, with k = k̃ and v the
     * residual-mixed value. x, r, k, v, out [rows, C]; rK [H, 64]. out may alias x.
     */
    void bonusForward(Tensor x, Tensor r, Tensor k, Tensor v, Tensor rK, Tensor out, int rows, int C);

    /**
     * dx, dr, dk, dv, dRK += … ; dx is nullable: pass null when the caller reuses dOut as the gradient of x (the op
     * is out = x + bonus, so that gradient is dOut itself). dRK is nullable.
     */
    void bonusBackward(Tensor dOut, Tensor r, Tensor k, Tensor v, Tensor rK,
                       Tensor dx, Tensor dr, Tensor dk, Tensor dv, Tensor dRK, int rows, int C);

    /** As {@link #bonusBackward} with dr, dk and dv written, not added to (dx and dRK add). By default zero first. */
    default void bonusBackwardOverwriting(Tensor dOut, Tensor r, Tensor k, Tensor v, Tensor rK, Tensor dx, Tensor dr,
                                          Tensor dk, Tensor dv, Tensor dRK, int rows, int C) {
        zero(dr);
        zero(dk);
        zero(dv);
        bonusBackward(dOut, r, k, v, rK, dx, dr, dk, dv, dRK, rows, C);
    }

    /** The output gate: out = x⊙gate (all [rows, C]); out may alias x. */
    void gateForward(Tensor x, Tensor gate, Tensor out, int rows, int C);

    /**
     * The time mix's output chain: lnx = bonus(ln_x(y)) (groupNormForward into lnx with mean and rstd, then
     * bonusForward in place) and gated = lnx⊙g (gated may be of the GEMM-input dtype, {@link #gemmInputDtype}); lnx
     * null: not kept (only gated is). By default those three ops one after the other (through a temporary lnx when
     * it is null); a backend may do it in one pass.
     */
    default void lnxBonusGateForward(Tensor y, Tensor lnXW, Tensor lnXB, Tensor r, Tensor k, Tensor v, Tensor rK,
                                     Tensor g, Tensor lnx, Tensor gated, Tensor mean, Tensor rstd, int rows, int C) {
        Tensor out = lnx != null ? lnx : allocate(y.dtype(), rows, C);
        try {
            groupNormForward(y, lnXW, lnXB, out, mean, rstd, rows, C);
            bonusForward(out, r, k, v, rK, out, rows, C);
            gateForward(out, g, gated, rows, C);
        } finally {
            if (out != lnx) {
                out.close();
            }
        }
    }

    /**
     * The backward of {@link #lnxBonusGateForward} from dGated = dL/d(gated): dG, dr, dk, dv and dy are written (not
     * added to); dLnXW, dLnXB and dRK are added to. dy may be of the {@link #wkvGradientDtype} where y, r, k and v are
     * of the {@link #wkvInputDtype} (only the WKV7 backward reads it). lnx null: recomputed from y, mean, rstd, lnXW, lnXB and the bonus
     * (a backend may always recompute it). By default gate, bonus and GroupNorm backward one after the other through
     * {@code dLnxScratch} (dL/d lnx, [rows, C]); a backend may do it in one pass and leave the scratch alone.
     */
    default void lnxBonusGateBackward(Tensor dGated, Tensor lnx, Tensor g, Tensor y, Tensor lnXW, Tensor lnXB,
                                      Tensor mean, Tensor rstd, Tensor r, Tensor k, Tensor v, Tensor rK,
                                      Tensor dLnxScratch, Tensor dG, Tensor dr, Tensor dk, Tensor dv, Tensor dy,
                                      Tensor dLnXW, Tensor dLnXB, Tensor dRK, int rows, int C) {
        Tensor x = lnx;
        Tensor[] temps = {};
        if (lnx == null) {
            // GroupNorm writes mean and rstd too: into temporaries, the caller's stay as they are
            int units = rows * (C / 64);
            temps = new Tensor[] {allocate(y.dtype(), rows, C), allocate(y.dtype(), units), allocate(y.dtype(), units)};
            x = temps[0];
            groupNormForward(y, lnXW, lnXB, x, temps[1], temps[2], rows, C);
            bonusForward(x, r, k, v, rK, x, rows, C);
        }
        try {
            gateBackwardOverwriting(dGated, x, g, dLnxScratch, dG, rows, C);
            bonusBackwardOverwriting(dLnxScratch, r, k, v, rK, null, dr, dk, dv, dRK, rows, C);
            groupNormBackwardOverwriting(dLnxScratch, y, lnXW, mean, rstd, dy, dLnXW, dLnXB, rows, C);
        } finally {
            for (Tensor t : temps) {
                t.close();
            }
        }
    }

    /** dx, dGate += … */
    void gateBackward(Tensor dOut, Tensor x, Tensor gate, Tensor dx, Tensor dGate, int rows, int C);

    /** As {@link #gateBackward} with dx and dGate written, not added to. By default zero first. */
    default void gateBackwardOverwriting(Tensor dOut, Tensor x, Tensor gate, Tensor dx, Tensor dGate, int rows, int C) {
        zero(dx);
        zero(dGate);
        gateBackward(dOut, x, gate, dx, dGate, rows, C);
    }

    // ------------------------------------------------------------------------------------------------ channel mix

    /** The channel mix's activation: out = relu(x)². x, out [rows, C]; out may alias x only if x is not needed later. */
    void reluSquaredForward(Tensor x, Tensor out, int rows, int C);

    /**
     * relu²'s backward from its output: dPre = dAct·2·√act with act = relu(pre)² as {@link #reluSquaredForward} wrote
     * it (√act = relu(pre); so the backward pass needs only the output, which the value projection's backward reads
     * anyway), written, not added to. act, dAct, dPre [rows, C]; dPre may be dAct or act itself (in place). act may be
     * of the GEMM-input dtype ({@link #gemmInputDtype}), then so is dPre (only GEMMs read it next), and dAct may be of
     * the {@link #gemmGradientDtype}. From a bf16 act, √act is within 2^-10 relative of relu(pre) (half of act's
     * rounding).
     */
    void reluSquaredBackwardOverwriting(Tensor dAct, Tensor act, Tensor dPre, int rows, int C);

    // ------------------------------------------------------------------------------------------------ loss

    /**
     * Per-row cross-entropy: losses[row] = logsumexp(logits[row]) − logits[row, targets[row]] (§5.5; no ignore
     * index). logits [rows, V]; targets I32 [rows]; losses [rows]. The reported loss is their mean; L2Wrap does not
     * change it. logits may be of the {@link #gemmInputDtype} (bf16 on the CUDA backend under bf16 GEMMs): each is
     * widened as read, the losses are computed in the compute dtype (fp32) all the same.
     */
    void crossEntropyForward(Tensor logits, Tensor targets, Tensor losses, int rows, int vocab);

    /**
     * Starts the backward pass: WRITES (does not accumulate) dLogits[row, v] = gradScale·(softmax_v − [v = target])
     * + [v = argmax]·{@link #L2WRAP_FACTOR}·max·gradScale, where max is the row's largest logit and argmax its lowest
     * index (the L2Wrap gradient, §5.5). For the mean loss gradScale = 1/(B·T), B·T being this device's micro-batch.
     * dLogits may alias logits (the logits are dead after this). With logits of the {@link #gemmInputDtype}, dLogits
     * must be of it too (bf16 logits, bf16 gradient: the head's backward GEMMs read it).
     */
    void crossEntropyBackward(Tensor logits, Tensor targets, Tensor dLogits, int rows, int vocab, double gradScale);

    /**
     * {@link #crossEntropyForward} and {@link #crossEntropyBackward} of the same logits (dLogits may alias them), in
     * one pass over the logits where the backend can.
     */
    default void crossEntropyForwardBackward(Tensor logits, Tensor targets, Tensor losses, Tensor dLogits, int rows,
                                             int vocab, double gradScale) {
        crossEntropyForward(logits, targets, losses, rows, vocab);
        crossEntropyBackward(logits, targets, dLogits, rows, vocab, gradScale);
    }

    // ------------------------------------------------------------------------------------------------ optimizer

    /**
     * Σ x² over every element of {@code t} (F32), accumulated in double: the global gradient norm is its square root
     * ({@link dev.gosling.trainer.optim.AdamW#globalNorm}). Returns to the host, so it waits for queued work.
     */
    double sumOfSquares(Tensor t);

    /**
     * One AdamW step (DeepSpeed FusedAdam, as {@link dev.gosling.trainer.optim.AdamW#step} writes it) over contiguous
     * F32 buffers of equal length: params (fp32 master weights), grads, and the moments m and v. The buffer is split
     * into segments that share a learning rate and a weight decay: segment s covers
     * [segmentEnds[s−1], segmentEnds[s]) with segmentEnds[−1] = 0 and the last end = params.numel(). Per element,
     * in float32 with nothing fused (so every backend gives the same bits):
     * <pre>
     *   g = grad·gradScale;  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g·g
     *   p ← p − lr[s]·((m/bc1)/(sqrt(v/bc2) + eps) + decay[s]·p)
     * </pre>
     * gradScale is the clipping factor ({@link dev.gosling.trainer.optim.AdamW#clipScale}); bc1 = 1 − β1^t and
     * bc2 = 1 − β2^t are the bias corrections of step t. grads are not modified.
     */
    void adamwStep(Tensor params, Tensor grads, Tensor m, Tensor v, long[] segmentEnds, float[] segmentLr,
                   float[] segmentDecay, float beta1, float beta2, float eps, float gradScale, float bc1, float bc2);

    /**
     * {@link #adamwStep} that also writes the updated params from element {@code copyFrom} on into {@code copy},
     * converted as {@link #convertGemmWeight} converts them: copy[j] = convert(params[copyFrom + j]) for every j &lt;
     * copy.numel() = params.numel() − copyFrom. By default the step, then the conversion; the CUDA backend writes the
     * copy (bf16) in the step's kernel, from the values it has just computed.
     */
    default void adamwStep(Tensor params, Tensor grads, Tensor m, Tensor v, long[] segmentEnds, float[] segmentLr,
                           float[] segmentDecay, float beta1, float beta2, float eps, float gradScale, float bc1, float bc2,
                           Tensor copy, long copyFrom) {
        if (copyFrom < 0 || copyFrom + copy.numel() != params.numel()) {
            throw new IllegalArgumentException("adamwStep: a copy of " + copy.numel() + " elements from element " + copyFrom
                    + " does not end where the " + params.numel() + " params do");
        }
        adamwStep(params, grads, m, v, segmentEnds, segmentLr, segmentDecay, beta1, beta2, eps, gradScale, bc1, bc2);
        try (Tensor updated = view(params, copyFrom, Math.toIntExact(copy.numel()))) {
            convertGemmWeight(updated, copy);
        }
    }

    /** Frees the backend's own resources (threads, scratch); tensors are closed by their owners. */
    @Override
    void close();
}
