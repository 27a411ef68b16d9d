package dev.gosling.trainer.model;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.backend.Activation;
import dev.gosling.trainer.backend.Backend;
import dev.gosling.trainer.backend.DType;
import dev.gosling.trainer.backend.Tensor;

import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.function.ToLongFunction;

/**
 * The RWKV-7 ("x070") model on a {@link Backend}: the parallel (training) form of rwkv7-reference.md §6.1 and §6.4,
 * forward and backward, written once as a sequence of backend ops.
 *
 * <p>Memory is laid out once, llm.c style: one parameter tensor and one gradient tensor (a view per
 * {@link ParamSpec}, in {@link ParameterLayout} order), one floating activation tensor holding every activation the
 * backward pass reads and every backward scratch, and one I32 tensor for inputs and targets. All sizes come from the
 * config and {@code maxBatchSize}; a step allocates nothing (the views for a smaller batch are made the first time
 * that batch size is seen and reused).
 *
 * <p>With {@code gradCheckpoint} (train_temp's {@code --grad_cp 1}) only each block's input is kept: one set of
 * block activations is shared by all layers, and the backward pass recomputes a block's forward from its saved
 * input before running the block backward. The gradients are identical to the run without it.
 *
 * <p>With {@code keep} ({@code --keep 1..4}, without gradient checkpointing) each layer keeps more of what its
 * backward pass would otherwise recompute, trading memory for time (the levels: {@link #MAX_KEEP}); at 4 it recomputes
 * nothing. The backward pass reads the same values the recomputation would write (the same kernels
 * on the same inputs), so the gradients are identical.
 *
 * <p>With {@code blockGradientSlots} (ZeRO-2) there is no whole gradient tensor: the non-block parameters (emb,
 * ln_out, head) keep their gradients, and the blocks share two block-sized slots, block l writing into slot l % 2. The
 * backward pass hands each finished bucket to a {@link GradientSink}, and tells it before a slot is reused two blocks
 * later ({@link GradientSink#beforeReuse}), so that it can finish with the bucket first; the gradient memory is then the
 * non-block parameters plus two blocks instead of the model.
 *
 * <p>The backend is the caller's (the model does not close it); the model's tensors are the model's. Not
 * thread-safe.
 */
public final class Rwkv7Model implements TrainableModel, DeviceTrainable {

    private final ModelConfig config;
    private final ParameterLayout layout;
    private final Backend backend;
    private final DType dtype;
    private final int maxBatchSize;
    private final boolean gradCheckpoint;
    /** What each layer keeps for its backward pass instead of recomputing it: the --keep level, 0 … MAX_KEEP. */
    private final int keep;
    private final long keptBytes;
    private final int nLayer;
    private final int T;
    private final int C;
    private final int H;
    private final int V;
    private final int F;
    private final ModelConfig.LoraDims lora;

    private final Tensor paramBuf;
    /** The whole gradient buffer in layout order; null with block gradient slots. */
    private final Tensor gradBuf;
    /** With block gradient slots: the non-block buckets' gradients back to back, and the two block slots. */
    private final Tensor globalGradBuf;
    private final Tensor slotBuf;
    private final long gradientElements;
    /** Per bucket (layout index), the tensor its gradients are written to: a view of gradBuf, globalGradBuf or a slot. */
    private final Tensor[] bucketGrads;
    /**
     * The ranges of gradBuf (or, with block gradient slots, globalGradBuf) that a step adds to and so zeroes first
     * ({@link Backend#zeroRanges}); the rest is written by its one writer ({@link #gradientWritten}).
     */
    private final long[] addedRanges;
    /** With block gradient slots: per layer, the ranges of its bucket that are added to (relative to the bucket). */
    private final long[][] blockAddedRanges;
    private final Tensor actBuf;
    /** The tensors only GEMMs read, when the backend keeps them in another dtype (bf16); else null (in actBuf). */
    private final DType gemmInputDtype;
    /**
     * Whether the saved projections k, v, the α and v-gate pre-activations and g live in the gemmInputDtype buffer
     * (bf16) too.
     */
    private final boolean narrowSaved;
    /** Whether the WKV7 inputs and output (r, wRaw, y, v_first, κ̃, a, b, v mixed) go to the narrow buffer too. */
    private final boolean narrowWkv;
    /**
     * Whether the input gradients that a GEMM writes and one elementwise op reads (the ffn value projection's dx, the
     * token-shift mixes' gradients) live in the gemmInputDtype buffer (bf16) too.
     */
    private final boolean narrowGemmGradients;
    /**
     * Whether dy, dr's sum and dwRaw (the WKV7 gradients only bf16 readers consume, {@link Backend#wkvGradientDtype})
     * live in the gemmInputDtype buffer (bf16) too: with the WKV inputs and the GEMM gradients there.
     */
    private final boolean narrowWkvGradients;
    private final Tensor gemmInputBuf;
    private final long gemmInputElements;
    private final Tensor idBuf;
    private final long activationElements;

    private final Globals weights;
    private final Globals grads;
    private final BlockTensors[] blockWeights;
    private final BlockTensors[] blockGrads;
    /** Each block's parameters as one view (its bucket). */
    private final Tensor[] blockParams;
    /**
     * Where the backend converts GEMM weights ({@link Backend#gemmWeightCopyDtype}: bf16 under the CUDA backend's bf16
     * GEMMs), a persistent converted copy of the masters from block 0 to the end (the blocks and the head: what the
     * GEMMs read), which the optimizer may write as it updates them; else null. It starts at a multiple of
     * {@link #COPY_ALIGN} elements of the layout, so each weight is as aligned in it as in a fresh allocation.
     */
    private final WeightCopy weightCopy;
    /** The dtype of the copy (null without it). */
    private final DType weightCopyDtype;
    /** The GEMM weights' views of the copy: block l's bucket at l, the head at nLayer; null without a copy. */
    private final Tensor[] partCopies;
    /**
     * Whether part p of the copy holds its masters as they are now: all set at the start of a pass when the optimizer
     * wrote the copy since the last one, else all cleared there and each set by the hold that converts its part; all
     * cleared by {@link #parametersUpdated}.
     */
    private final boolean[] copyHolds;
    /** The copy starts at a multiple of this many elements of the layout (256 bytes of bf16). */
    private static final long COPY_ALIGN = 128;
    /** Activation views per batch size (index B − 1), made on first use. */
    private final Acts[] acts;

    /** The global (non-block) parameters or gradients. */
    private record Globals(Tensor emb, Tensor lnOutW, Tensor lnOutB, Tensor head) {
    }

    /** A model without gradient checkpointing. */
    public Rwkv7Model(ModelConfig config, Backend backend, DType dtype, int maxBatchSize) {
        this(config, backend, dtype, maxBatchSize, false);
    }

    /**
     * @param dtype          F32 to train, F64 for gradient checks
     * @param maxBatchSize   the largest micro-batch {@link #forwardBackward} will get; activations are sized for it
     * @param gradCheckpoint keep only block inputs and recompute each block during the backward pass
     */
    public Rwkv7Model(ModelConfig config, Backend backend, DType dtype, int maxBatchSize, boolean gradCheckpoint) {
        this(config, backend, dtype, maxBatchSize, gradCheckpoint, false);
    }

    /**
     * @param blockGradientSlots keep gradients for the non-block parameters and two block slots only (ZeRO-2); the
     *                           model then trains only through {@link #forwardBackward(int[], int[], int, GradientSink)}
     */
    public Rwkv7Model(ModelConfig config, Backend backend, DType dtype, int maxBatchSize, boolean gradCheckpoint,
                      boolean blockGradientSlots) {
        this(config, backend, dtype, maxBatchSize, gradCheckpoint, blockGradientSlots, 0);
    }

    /**
     * @param keep what each layer keeps instead of recomputing it in the backward pass (--keep, levels at
     *             {@link #MAX_KEEP}): more memory, less time, the same gradients. Only without {@code gradCheckpoint},
     *             which keeps no layer's tensors.
     */
    public Rwkv7Model(ModelConfig config, Backend backend, DType dtype, int maxBatchSize, boolean gradCheckpoint,
                      boolean blockGradientSlots, int keep) {
        if (keep < 0 || keep > MAX_KEEP) {
            throw new GoslingException("--keep " + keep + " must be 0 (recompute what the backward pass can) to " + MAX_KEEP
                    + " (keep it all per layer): " + KEEP_LEVELS);
        }
        if (gradCheckpoint && keep > 0) {
            throw new GoslingException("--keep " + keep + " with --grad_cp 1: grad_cp recomputes every block and keeps no "
                    + "layer's tensors; use --keep 0 with --grad_cp 1, or --grad_cp 0 to keep activations");
        }
        if (dtype == null || !dtype.isFloating()) {
            throw new IllegalArgumentException("Rwkv7Model computes in F32 or F64, not " + dtype);
        }
        if (maxBatchSize < 1) {
            throw new GoslingException("--micro_bsz " + maxBatchSize + " must be at least 1");
        }
        this.config = config;
        this.layout = new ParameterLayout(config);
        this.backend = backend;
        this.dtype = dtype;
        this.maxBatchSize = maxBatchSize;
        this.gradCheckpoint = gradCheckpoint;
        this.keep = keep;
        this.nLayer = config.nLayer();
        this.T = config.ctxLen();
        this.C = config.nEmbd();
        this.H = config.nHead();
        this.V = config.vocabSize();
        this.F = config.dimFfn();
        this.lora = config.lora();
        if ((long) maxBatchSize * T > Integer.MAX_VALUE / 2) {
            throw new GoslingException("--micro_bsz " + maxBatchSize + " x --ctx_len " + T + " tokens is too many for one micro-batch");
        }

        int nParams = ParameterLayout.checkedLength(layout.totalElements(), "the model's parameters");
        List<ParameterLayout.Bucket> buckets = layout.buckets();
        long nonBlock = 0;
        long slot = 0;
        for (ParameterLayout.Bucket bucket : buckets) {
            if (bucket.isBlock()) {
                slot = Math.max(slot, bucket.length()); // block 0 is the largest: it also holds ln0
            } else {
                nonBlock += bucket.length();
            }
        }
        this.gradientElements = blockGradientSlots ? nonBlock + 2 * slot : nParams;
        DType gemmInputs = backend.gemmInputDtype(dtype);
        this.gemmInputDtype = gemmInputs == dtype ? null : gemmInputs;
        // the saved projections go to the same narrow buffer when the backend keeps them in the same dtype
        this.narrowSaved = gemmInputDtype != null && backend.savedActivationDtype(dtype) == gemmInputDtype;
        this.narrowWkv = narrowSaved && backend.wkvInputDtype(dtype) == gemmInputDtype;
        this.narrowGemmGradients = gemmInputDtype != null && backend.gemmGradientDtype(dtype) == gemmInputDtype;
        this.narrowWkvGradients = narrowWkv && narrowGemmGradients && backend.wkvGradientDtype(dtype) == gemmInputDtype;
        Arena measure = new Arena(null, null);
        Arena measureGemmInputs = new Arena(null, null);
        new Acts(measure, gemmInputDtype == null ? null : measureGemmInputs, maxBatchSize, keep);
        this.activationElements = measure.offset;
        this.gemmInputElements = measureGemmInputs.offset;
        // what --keep adds: the same layout measured at keep 0
        Arena plain = new Arena(null, null);
        Arena plainGemmInputs = new Arena(null, null);
        new Acts(plain, gemmInputDtype == null ? null : plainGemmInputs, maxBatchSize, 0);
        this.keptBytes = (activationElements - plain.offset) * dtype.bytes
                + (gemmInputDtype == null ? 0 : (gemmInputElements - plainGemmInputs.offset) * gemmInputDtype.bytes);
        this.weightCopyDtype = backend.gemmWeightCopyDtype(dtype);
        long copyFrom = layout.blockBucket(0).start() / COPY_ALIGN * COPY_ALIGN;
        long copyElements = weightCopyDtype == null ? 0 : nParams - copyFrom;

        Tensor p = null;
        Tensor g = null;
        Tensor gg = null;
        Tensor slots = null;
        Tensor a = null;
        Tensor gi = null;
        Tensor ids = null;
        Tensor wc = null;
        try {
            p = backend.allocate(dtype, nParams);
            if (weightCopyDtype != null) {
                wc = backend.allocate(weightCopyDtype, Math.toIntExact(copyElements));
            }
            if (blockGradientSlots) {
                gg = backend.allocate(dtype, Math.toIntExact(nonBlock));
                slots = backend.allocate(dtype, Math.toIntExact(2 * slot));
            } else {
                g = backend.allocate(dtype, nParams);
            }
            a = backend.allocate(dtype, Arena.shapeOf(activationElements));
            if (gemmInputDtype != null) {
                gi = backend.allocate(gemmInputDtype, Arena.shapeOf(gemmInputElements));
            }
            ids = backend.allocate(DType.I32, 2 * maxBatchSize * T);
        } catch (RuntimeException | Error e) {
            for (Tensor t : new Tensor[] {p, g, gg, slots, a, gi, ids, wc}) {
                if (t != null) {
                    t.close();
                }
            }
            if (e instanceof GoslingException && e.getMessage().contains("out of memory")) {
                // Name the run and its memory plan, not only the allocation that failed.
                double gib = 1 << 30;
                int bytes = dtype == DType.F64 ? 8 : 4;
                String advice = gradCheckpoint ? "lower --micro_bsz or --ctx_len (grad_cp is already on)"
                        : keep > 0 ? String.format(java.util.Locale.ROOT, "%s --keep (it keeps %.1f GiB), lower --micro_bsz or"
                                + " --ctx_len, or train with --grad_cp 1", keep > 1 ? "lower or turn off" : "turn off",
                                keptBytes() / gib)
                        : "lower --micro_bsz or --ctx_len, or train with --grad_cp 1";
                double copyBytes = weightCopyDtype == null ? 0 : (double) copyElements * weightCopyDtype.bytes;
                String copy = weightCopyDtype == null ? "" : String.format(java.util.Locale.ROOT, " (%.1f GiB of them a %s copy of"
                        + " the GEMM weights; -Dgosling.weightCopy=false drops it)", copyBytes / gib,
                        weightCopyDtype.name().toLowerCase(java.util.Locale.ROOT));
                throw new GoslingException(String.format(java.util.Locale.ROOT, "RWKV-7 L%d-D%d ctx_len %d micro_bsz %d%s does not fit:"
                                + " weights and gradients need %.1f GiB%s, activations %.1f GiB (the optimizer adds %.1f GiB); %s (%s)",
                        nLayer, C, T, maxBatchSize, gradCheckpoint ? " with grad_cp" : keep > 0 ? " with keep " + keep : "",
                        ((double) (nParams + gradientElements) * bytes + copyBytes) / gib, copy,
                        (activationElements * bytes + gemmInputElements * 2.0) / gib, 2.0 * nParams * 4 / gib,
                        advice, e.getMessage()), e);
            }
            throw e;
        }
        this.paramBuf = p;
        this.gradBuf = g;
        this.globalGradBuf = gg;
        this.slotBuf = slots;
        this.actBuf = a;
        this.gemmInputBuf = gi;
        this.idBuf = ids;
        this.weightCopy = wc == null ? null : new WeightCopy(p, wc, copyFrom);

        // Where each bucket's gradients live: its own range of the whole buffer, or (slots) its place among the
        // non-block buckets, or the start of slot l % 2 for block l.
        Tensor[] storage = new Tensor[buckets.size()];
        long[] storageOffset = new long[buckets.size()];
        long nextNonBlock = 0;
        for (ParameterLayout.Bucket bucket : buckets) {
            int i = bucket.index();
            if (!blockGradientSlots) {
                storage[i] = gradBuf;
                storageOffset[i] = bucket.start();
            } else if (bucket.isBlock()) {
                storage[i] = slotBuf;
                storageOffset[i] = (bucket.layer() % 2) * slot;
            } else {
                storage[i] = globalGradBuf;
                storageOffset[i] = nextNonBlock;
                nextNonBlock += bucket.length();
            }
        }
        this.bucketGrads = new Tensor[buckets.size()];
        for (ParameterLayout.Bucket bucket : buckets) {
            int i = bucket.index();
            bucketGrads[i] = backend.view(storage[i], storageOffset[i], Math.toIntExact(bucket.length()));
        }

        List<ParamSpec> specs = layout.params();
        if (!blockGradientSlots) {
            this.addedRanges = addedRanges(specs, ParamSpec::offset);
            this.blockAddedRanges = null;
        } else {
            // the non-block parameters at their place in globalGradBuf; each block's relative to its slot
            this.addedRanges = addedRanges(specs.stream().filter(spec -> spec.layer() < 0).toList(),
                    spec -> storageOffset[bucketOf(spec).index()] + spec.offset() - bucketOf(spec).start());
            this.blockAddedRanges = new long[nLayer][];
            for (int l = 0; l < nLayer; l++) {
                int layer = l;
                ParameterLayout.Bucket bucket = layout.blockBucket(l);
                blockAddedRanges[l] = addedRanges(specs.stream().filter(spec -> spec.layer() == layer).toList(),
                        spec -> spec.offset() - bucket.start());
            }
        }
        Tensor[] paramViews = new Tensor[specs.size()];
        Tensor[] gradViews = new Tensor[specs.size()];
        for (ParamSpec spec : specs) {
            int[] shape = intShape(spec.shape());
            paramViews[spec.index()] = backend.view(paramBuf, spec.offset(), shape);
            ParameterLayout.Bucket bucket = bucketOf(spec);
            gradViews[spec.index()] = backend.view(storage[bucket.index()], storageOffset[bucket.index()] + spec.offset() - bucket.start(), shape);
        }
        this.weights = globals(paramViews);
        this.grads = globals(gradViews);
        this.blockWeights = new BlockTensors[nLayer];
        this.blockGrads = new BlockTensors[nLayer];
        for (int l = 0; l < nLayer; l++) {
            blockWeights[l] = new BlockTensors(l, name -> paramViews[layout.get(name).index()]);
            blockGrads[l] = new BlockTensors(l, name -> gradViews[layout.get(name).index()]);
        }
        this.acts = new Acts[maxBatchSize];
        this.blockParams = new Tensor[nLayer];
        for (int l = 0; l < nLayer; l++) {
            ParameterLayout.Bucket bucket = layout.blockBucket(l);
            blockParams[l] = backend.view(paramBuf, bucket.start(), Math.toIntExact(bucket.length()));
        }
        this.copyHolds = new boolean[nLayer + 1];
        this.partCopies = wc == null ? null : new Tensor[nLayer + 1];
        if (wc != null) {
            for (int l = 0; l < nLayer; l++) {
                ParameterLayout.Bucket bucket = layout.blockBucket(l);
                partCopies[l] = backend.view(wc, bucket.start() - copyFrom, Math.toIntExact(bucket.length()));
            }
            ParamSpec head = layout.get("head.weight");
            partCopies[nLayer] = backend.view(wc, head.offset() - copyFrom, Math.toIntExact(head.numel()));
        }
    }

    /**
     * The parameters of a block whose gradient one op writes, not adds to, in a step (backwardBlock): the linear
     * projections' weights and the LoRA chains' matrices and biases. With the head's weight (written by its first chunk
     * of rows, then added to: step) they are most of the model; the rest is added to and zeroed first: the embedding's
     * scatter-add, the column sums of the norms, the token-shift mixes, ln_x, k_k, k_a and r_k, and layer 0's v LoRA,
     * which nothing writes (layer 0's v is v_first).
     */
    private static final Set<String> WRITTEN_IN_BLOCK = Set.of("att.receptance.weight", "att.key.weight",
            "att.value.weight", "att.output.weight", "ffn.key.weight", "ffn.value.weight", "att.w1", "att.w2", "att.w0",
            "att.a1", "att.a2", "att.a0", "att.g1", "att.g2", "att.v1", "att.v2", "att.v0");
    private static final Set<String> V_LORA = Set.of("att.v1", "att.v2", "att.v0");

    /** Whether the step writes {@code spec}'s gradient (its first writer: nothing to zero) rather than adds to it. */
    static boolean gradientWritten(ParamSpec spec) {
        if (spec.layer() < 0) {
            return spec.name().equals("head.weight");
        }
        String inBlock = spec.name().substring(("blocks." + spec.layer() + ".").length());
        return WRITTEN_IN_BLOCK.contains(inBlock) && !(spec.layer() == 0 && V_LORA.contains(inBlock));
    }

    /**
     * [start, end) pairs (touching ranges merged) of the specs whose gradient is added to, each at
     * {@code position(spec)}; the specs in ascending position.
     */
    private static long[] addedRanges(List<ParamSpec> specs, ToLongFunction<ParamSpec> position) {
        long[] ranges = new long[2 * specs.size()];
        int n = 0;
        for (ParamSpec spec : specs) {
            if (gradientWritten(spec)) {
                continue;
            }
            long start = position.applyAsLong(spec);
            if (n > 0 && ranges[n - 1] == start) {
                ranges[n - 1] = start + spec.numel();
            } else {
                ranges[n++] = start;
                ranges[n++] = start + spec.numel();
            }
        }
        return Arrays.copyOf(ranges, n);
    }

    /** The bucket holding {@code spec} (bucket ranges are sorted and cover the layout). */
    private ParameterLayout.Bucket bucketOf(ParamSpec spec) {
        for (ParameterLayout.Bucket bucket : layout.buckets()) {
            if (spec.offset() >= bucket.start() && spec.end() <= bucket.end()) {
                return bucket;
            }
        }
        throw new IllegalStateException(spec.name() + " is in no gradient bucket");
    }

    private Globals globals(Tensor[] views) {
        return new Globals(views[layout.get("emb.weight").index()], views[layout.get("ln_out.weight").index()],
                views[layout.get("ln_out.bias").index()], views[layout.get("head.weight").index()]);
    }

    private static int[] intShape(long[] shape) {
        int[] out = new int[shape.length];
        for (int i = 0; i < shape.length; i++) {
            out[i] = Math.toIntExact(shape[i]);
        }
        return out;
    }

    // -------------------------------------------------------------------------------------------- accessors

    @Override
    public ModelConfig config() {
        return config;
    }

    @Override
    public ParameterLayout layout() {
        return layout;
    }

    @Override
    public Backend backend() {
        return backend;
    }

    @Override
    public DeviceTrainable onDevice() {
        return this;
    }

    @Override
    public Tensor masterParameters() {
        return paramBuf;
    }

    /** The whole gradient buffer; a model with block gradient slots has none. */
    @Override
    public Tensor gradients() {
        requireWholeGradients();
        return gradBuf;
    }

    @Override
    public long gradientElements() {
        return gradientElements;
    }

    /** Whether gradients live in the non-block buffer and two block slots instead of one whole buffer. */
    public boolean blockGradientSlots() {
        return gradBuf == null;
    }

    private void requireWholeGradients() {
        if (gradBuf == null) {
            throw new IllegalStateException("this model keeps block gradients in two slots (ZeRO-2): there is no whole gradient "
                    + "buffer; train it through forwardBackward with a GradientSink");
        }
    }

    /**
     * fp32 compute reads the masters themselves; the weight copy (if any) is trusted no more: every part is converted
     * again before a GEMM reads it.
     */
    @Override
    public void parametersUpdated() {
        Arrays.fill(copyHolds, false);
        if (weightCopy != null) {
            weightCopy.forget();
        }
    }

    /** The converted copy of the GEMM weights that the optimizer may write (null without one). */
    @Override
    public WeightCopy weightCopy() {
        return weightCopy;
    }

    /** The bytes of the {@link #weightCopy} (0 without one). */
    public long weightCopyBytes() {
        return weightCopy == null ? 0 : weightCopy.tensor().numel() * weightCopyDtype.bytes;
    }

    public DType dtype() {
        return dtype;
    }

    public int maxBatchSize() {
        return maxBatchSize;
    }

    public boolean gradCheckpoint() {
        return gradCheckpoint;
    }

    /** The --keep level: 0 recomputes all it can in the backward pass, MAX_KEEP keeps it all per layer. */
    public int keep() {
        return keep;
    }

    /** The bytes --keep adds at {@link #maxBatchSize} (0 at keep 0): the activation layout less keep 0's. */
    public long keptBytes() {
        return keptBytes;
    }

    /** Elements of the activation tensor (forward activations and backward scratch for {@link #maxBatchSize}). */
    public long activationElements() {
        return activationElements;
    }

    // -------------------------------------------------------------------------------------------- parameters

    @Override
    public void setParameters(float[] master) {
        checkLength(master.length, "parameters");
        backend.upload(master, paramBuf);
        parametersUpdated();
    }

    /** Loads float64 parameters (finite-difference checks of an F64 model; an F32 model rounds them). */
    public void setParameters(double[] master) {
        checkLength(master.length, "parameters");
        backend.upload(master, paramBuf);
        parametersUpdated();
    }

    private void checkLength(int length, String what) {
        if (length != layout.totalElements()) {
            throw new IllegalArgumentException(what + ": " + length + " values, the layout has " + layout.totalElements());
        }
    }

    // -------------------------------------------------------------------------------------------- entry points

    @Override
    public double forwardBackward(int[] inputs, int[] targets, int batchSize, float[] gradsOut) {
        checkLength(gradsOut.length, "grads");
        requireWholeGradients();
        double loss = step(inputs, targets, batchSize, null);
        backend.download(gradBuf, gradsOut);
        return loss;
    }

    @Override
    public double forwardBackward(int[] inputs, int[] targets, int batchSize) {
        requireWholeGradients();
        return step(inputs, targets, batchSize, null);
    }

    @Override
    public double forwardBackward(int[] inputs, int[] targets, int batchSize, GradientSink sink) {
        if (sink == null) {
            throw new IllegalArgumentException("no gradient sink");
        }
        return step(inputs, targets, batchSize, sink);
    }

    /** {@link #forwardBackward(int[], int[], int, float[])} with float64 gradients (checks of an F64 model). */
    public double forwardBackward(int[] inputs, int[] targets, int batchSize, double[] gradsOut) {
        checkLength(gradsOut.length, "grads");
        requireWholeGradients();
        double loss = step(inputs, targets, batchSize, null);
        backend.download(gradBuf, gradsOut);
        return loss;
    }

    @Override
    public double loss(int[] inputs, int[] targets, int batchSize) {
        Acts a = prepare(inputs, targets, batchSize);
        forward(a);
        headChunks(a, (r0, rows, logits) ->
                backend.crossEntropyForward(logits, rowsOf(a.targets, r0, rows, 1), rowsOf(a.losses, r0, rows, 1), rows, V));
        return meanLoss(a);
    }

    /** The logits of the parallel forward pass, {@code out[(b·T + t)·V + v]} ({@code out.length = batchSize·T·V}). */
    public void logits(int[] inputs, int batchSize, float[] out) {
        Acts a = prepare(inputs, null, batchSize);
        forward(a);
        float[] chunk = new float[a.headRows * V];
        headChunks(a, (r0, rows, logits) -> {
            float[] part = rows == a.headRows ? chunk : new float[rows * V];
            backend.download(logits, part);
            System.arraycopy(part, 0, out, r0 * V, rows * V);
        });
    }

    /** {@link #logits(int[], int, float[])} in float64. */
    public void logits(int[] inputs, int batchSize, double[] out) {
        Acts a = prepare(inputs, null, batchSize);
        forward(a);
        double[] chunk = new double[a.headRows * V];
        headChunks(a, (r0, rows, logits) -> {
            double[] part = rows == a.headRows ? chunk : new double[rows * V];
            backend.download(logits, part);
            System.arraycopy(part, 0, out, r0 * V, rows * V);
        });
    }

    /** Forward and backward; {@code sink}, when not null, gets each bucket as it is finished. */
    private double step(int[] inputs, int[] targets, int batchSize, GradientSink sink) {
        Acts a = prepare(inputs, targets, batchSize);
        forward(a);
        // Most gradients are written by their one op (the weights' GEMMs, gradientWritten); the rest accumulate (+=)
        // into their views and are zeroed here. With slots, each block's ranges of its slot are zeroed just before the
        // block runs (backward), since the slot still holds the block two layers up.
        backend.zeroRanges(gradBuf != null ? gradBuf : globalGradBuf, addedRanges);
        // The head and the loss, forward and backward, a chunk of rows at a time: the full [B·T, V] logits (8.6 GB
        // in fp32 at B·T = 32768, V = 65536) never exist, only one chunk of them.
        headChunks(a, (r0, rows, logits) -> {
            Tensor chunkTargets = rowsOf(a.targets, r0, rows, 1);
            // the losses, and dLogits = softmax − onehot (+ L2Wrap) over B·T, written over the logits (in the GEMM-input
            // dtype: bf16 logits and dLogits under bf16 GEMMs, the losses still computed in fp32)
            backend.crossEntropyForwardBackward(logits, chunkTargets, rowsOf(a.losses, r0, rows, 1), logits, rows, V, 1.0 / a.N);
            // from dLogits, each chunk writes its own rows of dLn (the chunks cover them all); the first chunk writes
            // the head's gradient, the others add to it
            if (r0 == 0) {
                backend.linearBackwardOverwriting(logits, rowsOf(a.lnOut, r0, rows, C), weights.head,
                        rowsOf(a.dLn, r0, rows, C), grads.head, rows, C, V);
            } else {
                backend.linearBackwardOverwritingDx(logits, rowsOf(a.lnOut, r0, rows, C), weights.head,
                        rowsOf(a.dLn, r0, rows, C), grads.head, rows, C, V);
            }
        });
        backward(a, sink);
        // read after the backward pass is queued: reading it before would idle the GPU until the host queued more
        return meanLoss(a);
    }

    /** What is done with one chunk of logits: rows [r0, r0 + rows) of the micro-batch. */
    private interface HeadChunk {
        void run(int r0, int rows, Tensor logits);
    }

    /** The head over the micro-batch a chunk of rows at a time, each chunk's logits (in the chunk buffer) handed to body. */
    private void headChunks(Acts a, HeadChunk body) {
        holdGemmWeights(nLayer, weights.head);
        try {
            for (int r0 = 0; r0 < a.N; r0 += a.headRows) {
                int rows = Math.min(a.headRows, a.N - r0);
                Tensor logits = backend.view(a.logits, 0, rows, V);
                backend.linearForward(rowsOf(a.lnOut, r0, rows, C), weights.head, logits, rows, C, V);
                body.run(r0, rows, logits);
            }
        } finally {
            backend.releaseGemmOperand();
        }
    }

    /** Rows [r0, r0 + rows) of a row-major [N, width] tensor. */
    private Tensor rowsOf(Tensor t, int r0, int rows, int width) {
        return rows == t.numel() / width ? t : backend.view(t, (long) r0 * width, rows, width);
    }

    private Acts prepare(int[] inputs, int[] targets, int batchSize) {
        if (batchSize < 1 || batchSize > maxBatchSize) {
            throw new IllegalArgumentException("batch size " + batchSize + " outside 1.." + maxBatchSize + " (the model's maxBatchSize)");
        }
        int n = batchSize * T;
        checkTokens(inputs, n, "inputs");
        if (targets != null) {
            checkTokens(targets, n, "targets");
        }
        Acts a = acts[batchSize - 1];
        if (a == null) {
            a = new Acts(new Arena(backend, actBuf), gemmInputBuf == null ? null : new Arena(backend, gemmInputBuf), batchSize, keep);
            acts[batchSize - 1] = a;
        }
        backend.upload(inputs, a.tokens);
        if (targets != null) {
            backend.upload(targets, a.targets);
        }
        return a;
    }

    private void checkTokens(int[] tokens, int n, String what) {
        if (tokens.length != n) {
            throw new IllegalArgumentException(what + ": " + tokens.length + " tokens, expected batch × ctx_len = " + n);
        }
        for (int i = 0; i < n; i++) {
            if (tokens[i] < 0 || tokens[i] >= V) {
                throw new GoslingException(what + ": token id " + tokens[i] + " at position " + i + " is outside the model's vocab (0.."
                        + (V - 1) + "); the data needs --vocab_size above " + tokens[i]);
            }
        }
    }

    /** The mean of the per-row losses the head chunks wrote. */
    private double meanLoss(Acts a) {
        backend.download(a.losses, a.lossHost);
        double sum = 0;
        for (double l : a.lossHost) {
            sum += l;
        }
        return sum / a.N;
    }

    // -------------------------------------------------------------------------------------------- forward

    private void forward(Acts a) {
        Backend be = backend;
        int N = a.N;
        BlockTensors b0 = blockWeights[0];
        be.embeddingForward(a.tokens, weights.emb, a.emb, N, V, C);
        be.layerNormForward(a.emb, b0.ln0W, b0.ln0B, a.blockIn[0], a.ln0Mean, a.ln0Rstd, N, C);
        // the copy is trusted in this pass only as the optimizer wrote it; else each part is converted again
        Arrays.fill(copyHolds, weightCopy != null && weightCopy.takeWritten());
        for (int l = 0; l < nLayer; l++) {
            holdGemmWeights(l, blockParams[l]);
            try {
                forwardBlock(l, a, a.layer(l), a.blockIn[l], a.blockIn[l + 1]);
            } finally {
                be.releaseGemmOperand();
            }
        }
        be.layerNormForward(a.blockIn[nLayer], weights.lnOutW, weights.lnOutB, a.lnOut, a.lnOutMean, a.lnOutRstd, N, C);
    }

    /**
     * Tells the backend that part p's weights (block p's bucket of the parameters, contiguous, or p = nLayer: the
     * head's) are read by many GEMMs and not changed until {@link Backend#releaseGemmOperand}: under bf16 GEMMs the
     * CUDA backend casts them once instead of each weight at each GEMM (a launch each). With a weight copy the cast
     * goes into the copy, and only where the copy does not hold the part already ({@link #copyHolds}: written by the
     * optimizer, or converted earlier in the pass — the backward pass and grad_cp's recomputation read what the
     * forward pass converted). The copy is not used should the backend's copy dtype have changed since the model was
     * made (another GEMM precision).
     */
    private void holdGemmWeights(int p, Tensor w) {
        if (weightCopy == null || backend.gemmWeightCopyDtype(dtype) != weightCopyDtype) {
            Arrays.fill(copyHolds, false);
            backend.holdGemmOperand(w);
            return;
        }
        boolean convert = !copyHolds[p];
        copyHolds[p] = false; // until the hold has converted it
        backend.holdGemmOperand(w, partCopies[p], convert);
        copyHolds[p] = true;
    }

    /**
     * One block (§6.4): time mix and channel mix with pre-LN residuals. {@code hOut} null is the recomputation for the
     * backward pass (gradient checkpointing, keep 0), which stops after LN2 and its mix: the channel mix's backward
     * recomputes the ffn key output and relu² itself at keep 0.
     */
    private void forwardBlock(int l, Acts a, LayerActs s, Tensor hIn, Tensor hOut) {
        Backend be = backend;
        BlockTensors w = blockWeights[l];
        int B = a.B;
        int N = a.N;

        // time mix
        // LN1 and the six token-shift mixes of its output in one pass over hIn (LN1's output itself is never kept),
        // into shared buffers unless --keep keeps them per layer; the backward pass recomputes them otherwise, as the
        // other Recomputed tensors.
        Tensor[] xm = s.attMixes;
        be.layerNormTokenShiftForward(hIn, w.ln1W, w.ln1B, s.mean1, s.rstd1, false, w.attMixes, xm, B, T, C);
        be.linearForward(xm[MIX_R], w.receptance, s.r, N, C, C);
        be.linearForward(xm[MIX_K], w.key, s.k, N, C, C);
        be.loraForward(xm[MIX_W], w.w1, w.w2, w.w0, Activation.TANH, Activation.NONE, s.wHidden, s.wRaw, N, C, lora.decay(), C);
        Tensor v;
        if (l == 0) {
            be.linearForward(xm[MIX_V], w.value, a.vFirst, N, C, C);
            v = a.vFirst;
        } else {
            be.linearForward(xm[MIX_V], w.value, s.vRaw, N, C, C);
            // the v gate's pre-activation v0 + (x_v·v1)·v2: the value residual applies the sigmoid
            be.loraForward(xm[MIX_V], w.v1, w.v2, w.v0, Activation.NONE, Activation.NONE, s.vHidden, s.vGatePre, N, C, lora.mv(), C);
            v = s.vMixed;
        }
        // α's pre-activation a0 + (x_a·a1)·a2: the key preparation applies the sigmoid
        be.loraForward(xm[MIX_A], w.a1, w.a2, w.a0, Activation.NONE, Activation.NONE, s.aHidden, s.alphaPre, N, C, lora.aaa(), C);
        be.loraForward(xm[MIX_G], w.g1, w.g2, null, Activation.SIGMOID, Activation.NONE, s.gHidden, s.g, N, C, lora.gate(), C);
        // the mixes are dead from here on: v (mixed with v_first), κ̃, a, b, ln_x and the gate product take their slots
        if (l > 0) {
            be.valueResidualForward(s.vRaw, a.vFirst, s.vGatePre, s.vMixed, N, C);
        }
        be.keyPrepareForward(s.k, s.alphaPre, w.kK, w.kA, s.kTilde, s.kA, s.kB, N, C);
        be.wkv7Forward(s.r, s.wRaw, s.kTilde, v, s.kA, s.kB, s.y, s.wkvSaved, B, T, H);
        lnxBonusGate(s, w, v, N);
        be.linearForwardResidual(s.gated, w.output, hIn, s.hMid, N, C, C);

        // channel mix: LN2 and its mix in one pass
        be.layerNormTokenShiftForward(s.hMid, w.ln2W, w.ln2B, s.mean2, s.rstd2, false, w.ffnMixes, s.ffnMix, B, T, C);
        if (hOut != null) {
            // the ffn key output is squared in place: the backward pass reads relu²'s output only
            be.linearForward(s.ffnMix[0], w.ffnKey, s.ffnAct, N, C, F);
            be.reluSquaredForward(s.ffnAct, s.ffnAct, N, F);
            be.linearForwardResidual(s.ffnAct, w.ffnValue, s.hMid, hOut, N, F, C);
        }
    }

    /** ln_x = GroupNorm(y) plus the bonus term (in place), then the gate product: forward, and again in backward. */
    private void lnxBonusGate(LayerActs s, BlockTensors w, Tensor v, int N) {
        backend.lnxBonusGateForward(s.y, w.lnXW, w.lnXB, s.r, s.kTilde, v, w.rK, s.g, null, s.gated, s.meanX,
                s.rstdX, N, C);
    }

    // -------------------------------------------------------------------------------------------- backward

    /**
     * The backward pass. With a sink, each bucket is handed over as soon as it is complete: ln_out and head first, then
     * blocks L−1 … 1 after their block backward, block 0 after ln0 (which lies in block 0's range), emb last. A bucket
     * is not written again after it is handed over, with one exception: with block slots, block l zeroes and fills the
     * slot that block l + 2 was handed over in, and the sink hears of it first ({@link GradientSink#beforeReuse}: a
     * reduction still reading the slot on another stream is waited for there).
     */
    private void backward(Acts a, GradientSink sink) {
        Backend be = backend;
        int N = a.N;
        List<ParameterLayout.Bucket> buckets = layout.buckets();
        // on entry: the gradients that are added to zeroed (but the slots'), dLn = dL/d(ln_out output) from the head
        // chunks
        be.layerNormBackward(a.dLn, a.blockIn[nLayer], weights.lnOutW, a.lnOutMean, a.lnOutRstd, a.dH, gemmCopy(a),
                true, grads.lnOutW, grads.lnOutB, N, C);
        ready(sink, buckets.get(buckets.size() - 1));
        be.zero(a.dVFirst);
        for (int l = nLayer - 1; l >= 0; l--) {
            LayerActs s = a.layer(l);
            if (slotBuf != null) {
                ParameterLayout.Bucket bucket = layout.blockBucket(l);
                if (l + 2 < nLayer) {
                    sink.beforeReuse(bucket, bucketGrads[bucket.index()]); // the slot held block l + 2
                }
                be.zeroRanges(bucketGrads[bucket.index()], blockAddedRanges[l]);
            }
            holdGemmWeights(l, blockParams[l]);
            // nothing reads block l's parameter gradients before it is handed over below
            be.deferParameterSums();
            try {
                if (gradCheckpoint) {
                    forwardBlock(l, a, s, a.blockIn[l], null);
                }
                backwardBlock(l, a, s, a.blockIn[l]);
            } finally {
                be.finishParameterSums();
                be.releaseGemmOperand();
            }
            if (l > 0) {
                ready(sink, layout.blockBucket(l));
            }
        }
        BlockTensors w0 = blockWeights[0];
        BlockTensors g0 = blockGrads[0];
        be.layerNormBackward(a.dH, a.emb, w0.ln0W, a.ln0Mean, a.ln0Rstd, a.dLn, null, true, g0.ln0W, g0.ln0B, N, C);
        ready(sink, layout.blockBucket(0));
        be.embeddingBackward(a.tokens, a.dLn, grads.emb, N, V, C);
        ready(sink, buckets.get(0));
    }

    /** Where a norm backward writing dH puts the copy the GEMMs read: null when they read dH itself. */
    private static Tensor gemmCopy(Acts a) {
        return a.dHGemm == a.dH ? null : a.dHGemm;
    }

    private void ready(GradientSink sink, ParameterLayout.Bucket bucket) {
        if (sink != null) {
            sink.bucketReady(bucket, bucketGrads[bucket.index()]);
        }
    }

    /** On entry {@code a.dH} holds dL/d(block output); on exit dL/d(block input) {@code hIn}. */
    private void backwardBlock(int l, Acts a, LayerActs s, Tensor hIn) {
        Backend be = backend;
        BlockTensors w = blockWeights[l];
        BlockTensors g = blockGrads[l];
        int B = a.B;
        int N = a.N;
        Tensor dH = a.dH;

        // channel mix: hOut = hMid + ffn(LN2(hMid))
        Recomputed re = a.re;
        // The mix (from hMid and LN2's saved statistics), and relu²'s output (the ffn key output, one more GEMM,
        // squared in place) are recomputed unless --keep kept them per layer
        Tensor[] ffnMix = s.ffnMix;
        if (keep < KEEP_KEY) {
            be.layerNormTokenShiftForward(s.hMid, w.ln2W, w.ln2B, s.mean2, s.rstd2, true, w.ffnMixes, ffnMix, B, T, C);
        }
        if (keep < KEEP_FFN_ACT) {
            be.linearForward(ffnMix[0], w.ffnKey, s.ffnAct, N, C, F);
            be.reluSquaredForward(s.ffnAct, s.ffnAct, N, F);
        }
        // The overwriting variants spare zeroing what they write (and reading it): each weight's gradient too
        // (gradientWritten). relu²'s backward reads its output (dPre = dAct·2·√act, the same formula at every keep
        // level) and writes over it, dead once the value projection's backward has read it, in the GEMM-input dtype:
        // only the key projection's backward reads it.
        // With narrowGemmGradients the value projection's dx (dFfnAct) and the key projection's (dFfnMix) are written
        // in bf16 by their GEMMs too, and read so by relu² and the token shift.
        be.linearBackwardOverwriting(a.dHGemm, s.ffnAct, w.ffnValue, a.dFfnAct, g.ffnValue, N, F, C);
        Tensor dFfnPre = s.ffnAct;
        be.reluSquaredBackwardOverwriting(a.dFfnAct, s.ffnAct, dFfnPre, N, F);
        be.linearBackwardOverwriting(dFfnPre, ffnMix[0], w.ffnKey, a.dFfnMix[0], g.ffnKey, N, C, F);
        // the mix's and LN2's backward in one pass (LN2's output recomputed from hMid), adding to dH
        be.layerNormTokenShiftBackward(a.dFfnMix, s.hMid, w.ln2W, w.ln2B, s.mean2, s.rstd2, w.ffnMixes, dH, gemmCopy(a),
                false, g.ln2W, g.ln2B, g.ffnMixes, B, T, C);

        // time mix: hMid = hIn + output(gate(bonus(ln_x(wkv)))); dH now holds dL/dhMid; what --keep did not keep is
        // recomputed
        Tensor v = l == 0 ? a.vFirst : s.vMixed;
        if (l > 0 && keep < KEEP_GATE) {
            be.valueResidualForward(s.vRaw, a.vFirst, s.vGatePre, s.vMixed, N, C);
        }
        if (keep < KEEP_KEY) {
            be.keyPrepareForward(s.k, s.alphaPre, w.kK, w.kA, s.kTilde, s.kA, s.kB, N, C);
        }
        if (keep < KEEP_GATE) {
            lnxBonusGate(s, w, v, N);
        }
        be.linearBackwardOverwriting(a.dHGemm, s.gated, w.output, a.dGated, g.output, N, C, C);
        be.lnxBonusGateBackward(a.dGated, null, s.g, s.y, w.lnXW, w.lnXB, s.meanX, s.rstdX, s.r, s.kTilde, v, w.rK, a.dLnx,
                a.dG, a.dRShare, a.dKTilde, a.dV, a.dY, g.lnXW, g.lnXB, g.rK, N, C);
        // the WKV backward adds to dκ̃ and dv (after the bonus), writes dw, da and db, and dr = the bonus's share
        // (dRShare) + its own (in place, or with narrowWkvGradients into the bf16 dR that the GEMM reads)
        be.wkv7BackwardOverwritingWab(a.dY, s.r, s.wRaw, s.kTilde, v, s.kA, s.kB, s.wkvSaved,
                a.dRShare, a.dR, a.dWRaw, a.dKTilde, a.dV, a.dKA, a.dKB, B, T, H);
        be.keyPrepareBackwardOverwriting(a.dKTilde, a.dKA, a.dKB, s.k, s.alphaPre, w.kK, w.kA, a.dK, a.dAlphaPre, g.kK, g.kA, N, C);

        // The six mixed inputs, recomputed in one pass from hIn and LN1's saved statistics (into the slots of κ̃, a, b
        // and the gate product, which are dead now) unless --keep kept them; each branch's input gradient goes to its
        // own slot of dMixGrads (those of dL/d(gate product), dL/d(ln_x), dκ̃, dy, da and db, dead now too; or bf16
        // slots, see Acts), and one pass does the six mixes' and LN1's backward, adding to dH and the mixes' and LN1's
        // parameter gradients.
        Tensor[] xm = s.attMixes;
        Tensor[] dm = a.dMixGrads;
        if (keep < KEEP_MIXES) {
            be.layerNormTokenShiftForward(hIn, w.ln1W, w.ln1B, s.mean1, s.rstd1, true, w.attMixes, xm, B, T, C);
        }
        // each mix gradient is written by the first backward reaching it (v's LoRA then adds to v's: in bf16, that
        // sum is rounded a second time); every weight's gradient is written
        be.linearBackwardOverwriting(a.dR, xm[MIX_R], w.receptance, dm[MIX_R], g.receptance, N, C, C);
        be.linearBackwardOverwriting(a.dK, xm[MIX_K], w.key, dm[MIX_K], g.key, N, C, C);
        be.loraBackwardOverwriting(a.dG, xm[MIX_G], w.g1, w.g2, null, Activation.SIGMOID, Activation.NONE, s.gHidden, s.g, null,
                a.dHidden[GATE], dm[MIX_G], g.g1, g.g2, null, N, C, lora.gate(), C);
        be.loraBackwardOverwriting(a.dAlphaPre, xm[MIX_A], w.a1, w.a2, w.a0, Activation.NONE, Activation.NONE, s.aHidden,
                s.alphaPre, null, a.dHidden[AAA], dm[MIX_A], g.a1, g.a2, g.a0, N, C, lora.aaa(), C);
        Tensor dVRaw;
        if (l == 0) {
            // layer 0's v is v_first: add what the later layers' value residuals sent back
            be.accumulate(a.dVFirst, a.dV);
            dVRaw = a.dV;
        } else {
            be.valueResidualBackwardOverwriting(a.dV, s.vRaw, a.vFirst, s.vGatePre, a.dVRaw, a.dVFirst, a.dVGatePre, N, C);
            dVRaw = a.dVRaw;
        }
        be.linearBackwardOverwriting(dVRaw, xm[MIX_V], w.value, dm[MIX_V], g.value, N, C, C);
        if (l > 0) {
            be.loraBackwardOverwritingWeights(a.dVGatePre, xm[MIX_V], w.v1, w.v2, w.v0, Activation.NONE,
                    Activation.NONE, s.vHidden, s.vGatePre, null, a.dHidden[MV], dm[MIX_V], g.v1, g.v2, g.v0, N, C,
                    lora.mv(), C);
        }
        be.loraBackwardOverwriting(a.dWRaw, xm[MIX_W], w.w1, w.w2, w.w0, Activation.TANH, Activation.NONE, s.wHidden, s.wRaw, null,
                a.dHidden[DECAY], dm[MIX_W], g.w1, g.w2, g.w0, N, C, lora.decay(), C);
        be.layerNormTokenShiftBackward(dm, hIn, w.ln1W, w.ln1B, s.mean1, s.rstd1, w.attMixes, dH, gemmCopy(a), false,
                g.ln1W, g.ln1B, g.attMixes, B, T, C);
    }

    @Override
    public void close() {
        paramBuf.close();
        for (Tensor t : new Tensor[] {gradBuf, globalGradBuf, slotBuf}) {
            if (t != null) {
                t.close();
            }
        }
        actBuf.close();
        if (gemmInputBuf != null) {
            gemmInputBuf.close();
        }
        idBuf.close();
        if (weightCopy != null) {
            weightCopy.tensor().close();
        }
    }

    // -------------------------------------------------------------------------------------------- activation layout

    /**
     * Bytes of logits per head chunk: 512 MiB, i.e. 4096 rows of bf16 or 2048 of fp32 at V = 65536. The head's weight
     * gradient adds each chunk's product into its fp32 [V, C] gradient, so fewer, larger chunks spend less time reading
     * and writing it (on an H100 at C = 2048, 2048-row chunks ran the head's dW GEMM at 580 TFLOP/s, the head's other
     * GEMMs at 750).
     */
    private static final long HEAD_CHUNK_BYTES = 512L << 20;
    /** Logits elements per head chunk; 0: as many as fit {@link #HEAD_CHUNK_BYTES}. */
    private int headChunkElements = 0;

    /** Smaller head chunks, so tests on tiny models run the chunked path; before the first step only. */
    void headChunkElementsForTests(int elements) {
        if (java.util.Arrays.stream(acts).anyMatch(java.util.Objects::nonNull) || elements < 1) {
            throw new IllegalStateException("set the head chunk before the first step, to at least 1");
        }
        headChunkElements = elements;
    }

    /**
     * Fills every gradient buffer (the whole one, or the non-block one and the two slots) with {@code value}, so that
     * tests can tell that a step writes every gradient it hands out.
     */
    void fillGradientsForTests(double value) {
        for (Tensor t : new Tensor[] {gradBuf, globalGradBuf, slotBuf}) {
            if (t != null) {
                double[] fill = new double[Math.toIntExact(t.numel())];
                Arrays.fill(fill, value);
                backend.upload(fill, t);
            }
        }
    }

    /**
     * The --keep levels, each keeping per layer what the levels below keep and more, in the order of time saved per
     * byte kept: 1 relu²'s output (the backward pass skips a C → 4C GEMM and relu²; relu²'s backward reads only its
     * output); 2 the gate product and v mixed with v_first (skips the ln_x/bonus/gate and value-residual forward); 3
     * κ̃, a, b and the channel mix's token-shift mix (skips the key preparation and the fused LN2 + mix); 4 the time
     * mix's six token-shift mixes (nothing is recomputed).
     */
    static final int KEEP_FFN_ACT = 1;
    static final int KEEP_GATE = 2;
    static final int KEEP_KEY = 3;
    static final int KEEP_MIXES = 4;
    /** The highest --keep level. */
    public static final int MAX_KEEP = KEEP_MIXES;
    /** The --keep levels in words, for help texts and errors. */
    public static final String KEEP_LEVELS = "1 keeps relu²'s output, 2 also the gate product and v, 3 also κ̃, a, b and the"
            + " channel mix's input, 4 also the time mix's inputs";

    /** Index of a time-mix token-shift mix in BlockTensors.attMixes, Recomputed.attMixes and Acts.dMixes. */
    private static final int MIX_R = 0;
    private static final int MIX_K = 1;
    private static final int MIX_W = 2;
    private static final int MIX_V = 3;
    private static final int MIX_A = 4;
    private static final int MIX_G = 5;
    private static final int MIX_COUNT = 6;

    /** Index of a LoRA chain in the per-rank views of a shared [N, rank] region. */
    private static final int DECAY = 0;
    private static final int AAA = 1;
    private static final int MV = 2;
    private static final int GATE = 3;

    /**
     * Hands out consecutive views of one tensor. With a null base it only counts, so the same code that builds the
     * views computes the size to allocate.
     */
    private static final class Arena {
        /** Offsets are kept at multiples of 16 elements (64 bytes in F32). */
        private static final int ALIGN = 16;
        /** The allocation is [elements / ROW, ROW], so it may exceed 2^31 elements. */
        private static final int ROW = 1024;

        private final Backend backend;
        private final Tensor base;
        long offset;

        Arena(Backend backend, Tensor base) {
            this.backend = backend;
            this.base = base;
        }

        static int[] shapeOf(long elements) {
            long rows = (elements + ROW - 1) / ROW;
            return new int[] {Math.toIntExact(Math.max(1, rows)), ROW};
        }

        Tensor take(int... shape) {
            long n = 1;
            for (int d : shape) {
                n = Math.multiplyExact(n, d);
            }
            Tensor t = base == null ? null : backend.view(base, offset, shape);
            offset += (n + ALIGN - 1) / ALIGN * ALIGN;
            return t;
        }

        /** A view at {@code offset} elements (inside a region reserved by {@link #overlay}); null when only counting. */
        Tensor at(long offset, int... shape) {
            return base == null ? null : backend.view(base, offset, shape);
        }

        /** Views of different shapes over one region of {@code elements} (scratch that is never live twice at once). */
        Tensor[] overlay(long elements, int[]... shapes) {
            Tensor[] out = new Tensor[shapes.length];
            for (int i = 0; i < shapes.length; i++) {
                out[i] = base == null ? null : backend.view(base, offset, shapes[i]);
            }
            offset += (elements + ALIGN - 1) / ALIGN * ALIGN;
            return out;
        }
    }

    /**
     * Everything one block's backward pass reads from its forward pass, for N = B·T rows. The tensors from {@code z}
     * on are the ones --keep may keep: the layer's own when kept, else the shared {@link Recomputed} buffers (the
     * forward pass writes them there for its own use, and the backward pass recomputes them before reading).
     */
    private final class LayerActs {
        /** LN1's statistics: its output is never kept (the fused LayerNorm + token-shift ops recompute it from hIn). */
        final Tensor mean1, rstd1;
        final Tensor r, k, vRaw;
        final Tensor wHidden, aHidden, vHidden, gHidden;
        /** wRaw; the pre-activations of α and the v gate (their sigmoids are taken by their readers); g. */
        final Tensor wRaw, alphaPre, vGatePre, g;
        final Tensor wkvSaved;
        final Tensor y, meanX, rstdX, hMid;
        final Tensor mean2, rstd2;
        /**
         * relu²'s output (kept from level 1): the ffn key output, squared in place; the backward pass writes its
         * gradient over it.
         */
        final Tensor ffnAct;
        /** The gate product and v mixed with v_first (kept from level 2; v mixed not in layer 0, whose v is v_first). */
        final Tensor gated, vMixed;
        /** κ̃, a and b of the WKV kernel and the channel mix's token-shift mix (kept from level 3). */
        final Tensor kTilde, kA, kB;
        final Tensor[] ffnMix;
        /** The time mix's six token-shift mixes, indexed MIX_R … (kept from level 4). */
        final Tensor[] attMixes;

        /**
         * {@code narrow}: where k, v, the α and v-gate pre-activations and g go (bf16 where the backend keeps them so);
         * {@code wkv}: where r, wRaw, the WKV output y and the kept κ̃, a, b and v mixed go (bf16 where the backend keeps
         * the WKV7 kernel's inputs and output so, as the official kernel); {@code gemm}: where the tensors only GEMMs
         * read go (the kept relu² output, gate product and mixes).
         */
        LayerActs(Arena arena, Arena narrow, Arena wkv, Arena gemm, int B, boolean first, Recomputed re, int keep) {
            int N = B * T;
            mean1 = arena.take(N);
            rstd1 = arena.take(N);
            r = wkv.take(N, C);
            k = narrow.take(N, C);
            vRaw = narrow.take(N, C);
            wHidden = arena.take(N, lora.decay());
            wRaw = wkv.take(N, C);
            aHidden = arena.take(N, lora.aaa());
            alphaPre = narrow.take(N, C);
            vHidden = arena.take(N, lora.mv());
            vGatePre = narrow.take(N, C);
            gHidden = arena.take(N, lora.gate());
            g = narrow.take(N, C);
            // sized for the WKV inputs' dtype (the CUDA backend's tensor-core path keeps a bf16 layout)
            wkvSaved = arena.take(Math.toIntExact(backend.wkv7SavedElements(B, T, H, narrowWkv ? gemmInputDtype : dtype)));
            y = wkv.take(N, C);
            meanX = arena.take(N, H);
            rstdX = arena.take(N, H);
            hMid = arena.take(N, C);
            mean2 = arena.take(N);
            rstd2 = arena.take(N);
            ffnAct = keep >= KEEP_FFN_ACT ? gemm.take(N, F) : re.ffnAct;
            gated = keep >= KEEP_GATE ? gemm.take(N, C) : re.gated;
            vMixed = keep >= KEEP_GATE && !first ? wkv.take(N, C) : re.vMixed;
            boolean key = keep >= KEEP_KEY;
            kTilde = key ? wkv.take(N, C) : re.kTilde;
            kA = key ? wkv.take(N, C) : re.kA;
            kB = key ? wkv.take(N, C) : re.kB;
            ffnMix = key ? new Tensor[] {gemm.take(N, C)} : re.ffnMix;
            if (keep >= KEEP_MIXES) {
                attMixes = new Tensor[MIX_COUNT];
                for (int j = 0; j < MIX_COUNT; j++) {
                    attMixes[j] = gemm.take(N, C);
                }
            } else {
                attMixes = re.attMixes;
            }
        }
    }

    /**
     * Activations that are cheap to recompute from the saved ones, held once for all layers: written by a block's
     * forward pass for its own use and rewritten by its backward pass just before they are read, unless --keep keeps
     * them per layer (then the shared buffer is not allocated). Six [N, C] slots serve two groups that are never live
     * together: the time mix's six token-shift mixes (forward: until the projections have read them; backward:
     * recomputed once the WKV and output backward are done), then κ̃, a, b, the gate product and v mixed with v_first
     * in slots 0–4; the channel mix's mix takes slot 0 (LN1's and LN2's outputs are never stored: the fused LayerNorm +
     * token-shift ops recompute them).
     */
    private final class Recomputed {
        /** The time mix's six token-shift mixes x_r … x_g, indexed MIX_R …; slot j of the six. */
        final Tensor[] attMixes;
        /** The channel mix's token-shift mix x_k: slot 0. */
        final Tensor[] ffnMix;
        /**
         * κ̃, a and b of the WKV kernel (keyPrepareForward of the saved k and α pre-activation): slots 0, 1, 2; bf16
         * buffers of their own where the WKV inputs are bf16 (narrowWkv), as v mixed.
         */
        final Tensor kTilde, kA, kB;
        /** ln_x output ⊙ g: slot 3. */
        final Tensor gated;
        /** v mixed with v_first (layers after the first): slot 4. */
        final Tensor vMixed;
        /**
         * relu²'s output, the ffn key output squared in place (null when each layer keeps its own): its GEMM writes it
         * in the GEMM-input dtype, relu² squares it, the value projection's GEMMs read it.
         */
        final Tensor ffnAct;

        Recomputed(Arena arena, Arena gemmInputs, int N, int keep) {
            boolean mixesShared = keep < KEEP_MIXES;
            boolean keyShared = keep < KEEP_KEY;
            boolean gateShared = keep < KEEP_GATE;
            Tensor[] slots = new Tensor[MIX_COUNT];
            for (int j = 0; j < MIX_COUNT; j++) {
                // with bf16 GEMM inputs the mixes and the gate product have their own buffers: slots 3 and 5 are
                // not needed (ln_x itself is never kept: the fused backward recomputes it)
                // with the WKV inputs in bf16 (narrowWkv) κ̃, a, b and v mixed have their own bf16 buffers: then no
                // slot is left; and a slot no layer shares is not allocated
                boolean used = (gemmInputs == null && mixesShared)
                        || (j <= 2 && keyShared && !narrowWkv) || (j == 3 && gemmInputs == null && gateShared)
                        || (j == 4 && gateShared && !narrowWkv);
                slots[j] = used ? arena.take(N, C) : null;
            }
            if (gemmInputs == null) {
                attMixes = slots;
                gated = slots[3];
                ffnAct = keep < KEEP_FFN_ACT ? arena.take(N, F) : null;
            } else {
                attMixes = new Tensor[MIX_COUNT];
                for (int j = 0; j < MIX_COUNT && mixesShared; j++) {
                    attMixes[j] = gemmInputs.take(N, C);
                }
                gated = gateShared ? gemmInputs.take(N, C) : null;
                ffnAct = keep < KEEP_FFN_ACT ? gemmInputs.take(N, F) : null;
            }
            ffnMix = new Tensor[] {attMixes[0]};
            kTilde = !keyShared ? null : narrowWkv ? gemmInputs.take(N, C) : slots[0];
            kA = !keyShared ? null : narrowWkv ? gemmInputs.take(N, C) : slots[1];
            kB = !keyShared ? null : narrowWkv ? gemmInputs.take(N, C) : slots[2];
            vMixed = !gateShared ? null : narrowWkv ? gemmInputs.take(N, C) : slots[4];
        }
    }

    /** The activation and scratch views for one batch size. */
    private final class Acts {
        final int B;
        final int N;
        final Tensor tokens, targets;
        final Tensor emb, ln0Mean, ln0Rstd;
        /** blockIn[l] is block l's input; blockIn[L] the last block's output. */
        final Tensor[] blockIn;
        final Tensor vFirst;
        /** One per layer, or a single shared one with gradient checkpointing. */
        final LayerActs[] layers;
        final Recomputed re;
        final Tensor lnOut, lnOutMean, lnOutRstd, losses;
        /**
         * One chunk of headRows rows of logits, then of their gradient (written over them), in the GEMM-input dtype:
         * only the head's GEMMs and the cross-entropy touch it (bf16 under bf16 GEMMs, as the official trainer's logits).
         */
        final Tensor logits;
        final int headRows;
        final double[] lossHost;
        // backward scratch, shared by all layers
        /**
         * dL/d(residual stream) as the GEMMs read it: a bf16 copy of dH that every norm backward writing dH makes too,
         * with bf16 GEMM inputs (else dH itself).
         */
        final Tensor dHGemm;
        final Tensor dH, dLn, dFfnAct, dGated, dLnx, dG, dR, dKTilde, dV, dVRaw, dVFirst, dVGatePre, dY,
                dWRaw, dKA, dKB, dK, dAlphaPre;
        /**
         * The ln_x/bonus/gate backward's share of dL/dr, which the WKV7 backward reads and adds its own to, into dR:
         * dR itself (added in place), or with narrowWkvGradients an fp32 slot of its own (dy's slot of dMixes, dy being
         * in the GEMM-input buffer then) and dR the bf16 sum that the receptance projection's backward reads.
         */
        final Tensor dRShare;
        /**
         * Six [N, C] slots: the gradients of the time mix's six token-shift mixes (indexed MIX_R …), live only in the
         * last part of a block's backward pass; before it, within the same block, the slots hold dL/d(gate product),
         * dL/d(ln_x), dκ̃, dy, da and db (dGated … dKB), and first the channel mix's mix gradient (slot 0, dFfnMix).
         * With narrowGemmGradients slot 0 is null (its tensors are bf16 views, dMixGrads) and slot 3 holds the
         * bonus's share of dr where dy is bf16 (narrowWkvGradients).
         */
        final Tensor[] dMixes;
        /**
         * The gradients of the six mixes as the projections' backward GEMMs write them and the token-shift backward
         * reads them: dMixes itself, or (narrowGemmGradients) six bf16 [N, C] views of one region of the GEMM-input
         * buffer that holds dFfnAct during the channel mix's backward (never live together).
         */
        final Tensor[] dMixGrads;
        /** The channel mix's mix gradient: slot 0 of dMixGrads. */
        final Tensor[] dFfnMix;
        /** [N, rank] views of one region, indexed DECAY, AAA, MV, GATE. */
        final Tensor[] dHidden;

        /**
         * {@code gemmInputs}: where the tensors only GEMMs read go when their dtype differs (else null: arena);
         * {@code keep}: the --keep level the layout is for.
         */
        Acts(Arena arena, Arena gemmInputs, int B, int keep) {
            this.B = B;
            this.N = B * T;
            if (arena.base != null) {
                tokens = backend.view(idBuf, 0, N);
                targets = backend.view(idBuf, (long) maxBatchSize * T, N);
            } else {
                tokens = null;
                targets = null;
            }
            emb = arena.take(N, C);
            ln0Mean = arena.take(N);
            ln0Rstd = arena.take(N);
            blockIn = new Tensor[nLayer + 1];
            for (int l = 0; l <= nLayer; l++) {
                blockIn[l] = arena.take(N, C);
            }
            vFirst = (narrowWkv ? gemmInputs : arena).take(N, C); // the first layer's v: a WKV input
            re = new Recomputed(arena, gemmInputs, N, keep);
            layers = new LayerActs[gradCheckpoint ? 1 : nLayer];
            for (int l = 0; l < layers.length; l++) {
                layers[l] = new LayerActs(arena, narrowSaved ? gemmInputs : arena, narrowWkv ? gemmInputs : arena,
                        gemmInputs == null ? arena : gemmInputs, B, l == 0, re, keep);
            }
            lnOut = arena.take(N, C);
            lnOutMean = arena.take(N);
            lnOutRstd = arena.take(N);
            long chunkElements = headChunkElements > 0 ? headChunkElements
                    : HEAD_CHUNK_BYTES / (gemmInputs == null ? dtype.bytes : gemmInputDtype.bytes);
            headRows = (int) Math.min(N, Math.max(1, chunkElements / V));
            logits = gemmInputs == null ? arena.take(headRows, V) : gemmInputs.take(headRows, V);
            losses = arena.take(N);
            lossHost = arena.base == null ? null : new double[N];

            dH = arena.take(N, C);
            dHGemm = gemmInputs == null ? dH : gemmInputs.take(N, C);
            dLn = arena.take(N, C);
            dMixes = new Tensor[MIX_COUNT];
            for (int j = 0; j < MIX_COUNT; j++) {
                // slot 0 holds dGated and the mixes' first gradient, which narrowGemmGradients puts in the GEMM-input
                // buffer: then it is not taken (null)
                dMixes[j] = j == 0 && narrowGemmGradients ? null : arena.take(N, C);
            }
            dLnx = dMixes[1];
            dKTilde = dMixes[2];
            dKA = dMixes[4];
            dKB = dMixes[5];
            if (narrowGemmGradients) {
                // the value projection's dx (read by relu²'s backward) and the mixes' gradients written in bf16 by
                // their GEMMs, in one region: dFfnAct is dead before any mix gradient is written
                long start = gemmInputs.offset;
                gemmInputs.overlay(Math.max((long) N * F, (long) MIX_COUNT * N * C));
                dFfnAct = gemmInputs.at(start, N, F);
                dMixGrads = new Tensor[MIX_COUNT];
                for (int j = 0; j < MIX_COUNT; j++) {
                    dMixGrads[j] = gemmInputs.at(start + (long) j * N * C, N, C);
                }
                // and between them the output projection's dx, dL/d(gate product), read by the ln_x/bonus/gate backward
                // (dFfnAct is dead then, and no mix gradient is written yet), and beside it (narrowWkvGradients) dy,
                // written by that backward and read by the WKV7 backward, before any mix gradient is written
                dGated = gemmInputs.at(start, N, C);
                dY = narrowWkvGradients ? gemmInputs.at(start + (long) N * C, N, C) : dMixes[3];
            } else {
                dY = dMixes[3];
                dFfnAct = arena.take(N, F);
                dMixGrads = dMixes;
                dGated = dMixes[0];
            }
            dFfnMix = new Tensor[] {dMixGrads[0]};
            // the gradients only GEMMs read (those of the v gate's and α's pre-activations: their LoRAs' GEMMs, and the
            // column sums of their bias gradients), written in bf16 by their ops where the saved projections are bf16
            Arena narrow = narrowSaved ? gemmInputs : arena;
            dG = narrow.take(N, C);
            // dR and dWRaw: only GEMMs read them (the receptance projection's, the decay LoRA's with its bias column
            // sums), in bf16 with narrowWkvGradients
            dR = (narrowWkvGradients ? gemmInputs : arena).take(N, C);
            dRShare = narrowWkvGradients ? dMixes[3] : dR;
            dV = arena.take(N, C);
            dVRaw = narrow.take(N, C);
            dVFirst = arena.take(N, C);
            dVGatePre = narrow.take(N, C); // read only by the v-gate LoRA's backward
            dWRaw = (narrowWkvGradients ? gemmInputs : arena).take(N, C);
            dK = narrow.take(N, C);
            dAlphaPre = narrow.take(N, C); // read only by the α LoRA's backward
            int maxRank = Math.max(Math.max(lora.decay(), lora.aaa()), Math.max(lora.mv(), lora.gate()));
            dHidden = arena.overlay((long) N * maxRank, new int[] {N, lora.decay()}, new int[] {N, lora.aaa()},
                    new int[] {N, lora.mv()}, new int[] {N, lora.gate()});
        }

        LayerActs layer(int l) {
            return layers[gradCheckpoint ? 0 : l];
        }
    }
}
