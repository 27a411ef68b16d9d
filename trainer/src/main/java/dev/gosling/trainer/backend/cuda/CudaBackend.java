package dev.gosling.trainer.backend.cuda;

import static dev.gosling.trainer.backend.BackendChecks.activations;
import static dev.gosling.trainer.backend.BackendChecks.dims;
import static dev.gosling.trainer.backend.BackendChecks.elementwise;
import static dev.gosling.trainer.backend.BackendChecks.heads;
import static dev.gosling.trainer.backend.BackendChecks.indexedNames;
import static dev.gosling.trainer.backend.BackendChecks.mixCount;
import static dev.gosling.trainer.backend.BackendChecks.sequenceDims;
import static dev.gosling.trainer.backend.BackendChecks.vocab;

import static org.bytedeco.cuda.global.cublas.CUBLAS_COMPUTE_32F;
import static org.bytedeco.cuda.global.cublas.CUBLAS_GEMM_DEFAULT;
import static org.bytedeco.cuda.global.cublas.CUBLAS_OP_N;
import static org.bytedeco.cuda.global.cublas.CUBLAS_OP_T;
import static org.bytedeco.cuda.global.cublas.cublasCreate_v2;
import static org.bytedeco.cuda.global.cublas.cublasDestroy_v2;
import static org.bytedeco.cuda.global.cublas.cublasGemmEx;
import static org.bytedeco.cuda.global.cublas.cublasGetStatusString;
import static org.bytedeco.cuda.global.cublas.cublasGetVersion_v2;
import static org.bytedeco.cuda.global.cublas.cublasSetStream_v2;
import static org.bytedeco.cuda.global.cudart.CUDA_R_16BF;
import static org.bytedeco.cuda.global.cudart.CUDA_R_32F;
import static org.bytedeco.cuda.global.cudart.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES;
import static org.bytedeco.cuda.global.cudart.CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT;
import static org.bytedeco.cuda.global.cudart.CU_SHAREDMEM_CARVEOUT_MAX_SHARED;
import static org.bytedeco.cuda.global.cudart.cuFuncSetAttribute;
import static org.bytedeco.cuda.global.cudart.cuOccupancyMaxActiveBlocksPerMultiprocessor;
import static org.bytedeco.cuda.global.cudart.cuInit;
import static org.bytedeco.cuda.global.cudart.cudaDriverGetVersion;
import static org.bytedeco.cuda.global.cudart.cudaEventCreate;
import static org.bytedeco.cuda.global.cudart.cudaEventDestroy;
import static org.bytedeco.cuda.global.cudart.cudaEventElapsedTime;
import static org.bytedeco.cuda.global.cudart.cudaEventRecord;
import static org.bytedeco.cuda.global.cudart.cudaEventSynchronize;
import static org.bytedeco.cuda.global.cudart.cudaFree;
import static org.bytedeco.cuda.global.cudart.cudaGetDeviceProperties;
import static org.bytedeco.cuda.global.cudart.cudaMemGetInfo;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyAsync;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyDeviceToDevice;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyDeviceToHost;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyHostToDevice;
import static org.bytedeco.cuda.global.cudart.cudaMemsetAsync;
import static org.bytedeco.cuda.global.cudart.cudaRuntimeGetVersion;
import static org.bytedeco.cuda.global.cudart.cudaSetDevice;
import static org.bytedeco.cuda.global.cudart.cudaStreamCreate;
import static org.bytedeco.cuda.global.cudart.cudaStreamDestroy;
import static org.bytedeco.cuda.global.cudart.cudaStreamSynchronize;

import dev.gosling.kernels.Cuda;
import dev.gosling.kernels.CudaException;
import dev.gosling.kernels.Kernel;
import dev.gosling.kernels.KernelLoader;
import dev.gosling.kernels.LaunchArgs;
import dev.gosling.kernels.LaunchProfiler;
import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.backend.Activation;
import dev.gosling.trainer.backend.AdamWSegments;
import dev.gosling.trainer.backend.Backend;
import dev.gosling.trainer.backend.BackendChecks;
import dev.gosling.trainer.backend.DType;
import dev.gosling.trainer.backend.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.cuda.cublas.cublasContext;
import org.bytedeco.cuda.cudart.CUevent_st;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.cudart.cudaDeviceProp;
import org.bytedeco.cuda.global.cublas;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.ShortPointer;
import org.bytedeco.javacpp.SizeTPointer;

/**
 * The CUDA backend: every op of {@link Backend} as a kernel of {@code kernels/src/main/cuda} (launched through the
 * driver API) or a cuBLAS GEMM (fp32 in, fp32 accumulate, no TF32), on one stream of one device. Tensors are F32 (or
 * I32 ids); device memory comes from a caching allocator, so a step that allocates what the previous step freed makes
 * no cudaMalloc. Parameter gradients (column sums over rows) are reduced in two deterministic passes through a
 * backend-owned partial-sum buffer that grows once and is then reused.
 *
 * <p>Invalid token or target ids cannot throw inside a kernel: the kernel records the first one in a device error
 * word and writes NaN; {@link #download} and {@link #synchronize} check the word and throw the same one-line
 * {@link GoslingException} the CPU backend throws at once. Not thread-safe: one caller at a time (the context is
 * re-bound when the calling thread changes).
 */
public final class CudaBackend implements Backend {

    private static final int THREADS = 256;
    private static final int N = HEAD_SIZE;
    /** Partial sums of a column reduction: one slice per this many rows, at most MAX_SLICES slices. */
    private static final int ROWS_PER_SLICE = 64;
    /** Thread rows of a column-finish block (common.cuh's FINISH_ROWS): they split the slices of 32 columns. */
    private static final int FINISH_ROWS = 16;
    private static final int MAX_SLICES = 256;
    /** Columns of one block of reduce.cu's column_sums_bf16x8 (COLUMN_SUMS_COLS: 32 threads of 8 columns). */
    private static final int COLUMN_SUMS_COLS = 256;
    /**
     * Blocks of a column_sums_bf16x8 launch to aim for: about 2 an SM on an H100 (132 SMs), each thread with 8 rows'
     * 16-byte loads in flight. On an H100 (kernels/dev/column_sums_bench.cu) 128 to 256 blocks were the fastest at the
     * model's shapes; 512 were 1-2 µs slower (more partials for the last blocks to add), 2048 8-15 µs.
     */
    private static final int COLUMN_SUMS_BLOCKS = 256;
    private static final int CE_THREADS = 1024;

    private final int device;
    private final String deviceName;
    private final int ccMajor;
    private final int ccMinor;
    private final int multiprocessors;
    private final long totalMemory;
    private final CUstream_st stream;
    private final cublasContext cublasHandle;
    private final KernelLoader loader;
    private final DeviceAllocator allocator = new DeviceAllocator();
    private final LaunchArgs args = new LaunchArgs(32);
    /**
     * The held-back sums' launch arguments: apart from {@link #args}, since that launch may come from inside an op
     * building its own ({@link #partials} growing the buffer).
     */
    private final LaunchArgs sumArgs = new LaunchArgs(3 * FINISH_BATCH);
    /** The token-shift backward's dOut, mix and dMix addresses (no allocation per call). */
    private final long[] tokenShiftPtrs = new long[3 * MAX_MIXES];
    private final DevicePointer pa = new DevicePointer();
    private final DevicePointer pb = new DevicePointer();
    private final DevicePointer pc = new DevicePointer();
    private final FloatPointer one = new FloatPointer(1f);
    private final FloatPointer betaHost = new FloatPointer(1);
    private Thread boundThread;
    private boolean closed;
    private GemmPrecision gemmPrecision = GemmPrecision.FP32;
    private GemmLibrary gemmLibrary = GemmLibrary.of(System.getProperty("gosling.gemm"));
    private LtGemms ltGemms;
    private long ltWorkspace;

    /**
     * How cuBLAS multiplies the fp32 tensors. FP32 is exact fp32 (the op checks); BF16 casts both operands of each
     * GEMM to bf16 (round to nearest even, {@code cast.cu}) and multiplies them on the tensor cores with fp32
     * accumulation into the fp32 output — the mixed precision of the reference trainer's GEMMs. (cuBLAS's own
     * CUBLAS_COMPUTE_32F_FAST_16BF on fp32 operands gives the same products but ran at 140–220 TFLOP/s on an H100,
     * a third of bf16 operands' rate, worth far more than the casts.) TF32 keeps 10 mantissa bits instead of bf16's 7.
     */
    public enum GemmPrecision {
        FP32(CUBLAS_COMPUTE_32F), TF32(cublas.CUBLAS_COMPUTE_32F_FAST_TF32), BF16(CUBLAS_COMPUTE_32F);

        final int computeType;

        GemmPrecision(int computeType) {
            this.computeType = computeType;
        }
    }

    /** Error word: [0] 1 + position of a bad token id (0: none), [1] the id; [2], [3] the same for targets. */
    private final long errorWord;
    /** Host staging for uploads and downloads, grown as needed. */
    private BytePointer staging = new BytePointer(1 << 20);
    /** {@link #zeroRanges}' pieces: at most this many elements, zeroed by one block of THREADS threads. */
    static final int ZERO_PIECE = 1 << 14;
    /** The most {@link #zeroRanges} tables kept (the oldest goes first). */
    private static final int ZERO_TABLES = 16;
    /** The ranges a table was made from, its device address (0 when empty) and its number of pieces. */
    private record ZeroTable(long[] ranges, long address, int pieces) {
    }

    private final List<ZeroTable> zeroTables = new ArrayList<>();
    /** Column-reduction partial sums, grown as needed. */
    private long partials;
    private long partialsBytes;
    /**
     * Between {@link #deferParameterSums} and {@link #finishParameterSums}: the bytes of {@link #partials} handed out
     * (each op's partial sums get a region of their own, read by a held-back finish), and the finishes held back.
     */
    private boolean deferSums;
    private long partialsUsed;
    private int pendingSums;
    private final long[] pendingSumWords = new long[3 * FINISH_BATCH];
    private int pendingMaxColumns;
    /** Entries of one column_finish_batch launch (reduce.cu's FINISH_BATCH). */
    static final int FINISH_BATCH = 24;
    /** The bit of a held-back entry's shape word saying "store the sum" (reduce.cu's FINISH_STORE). */
    private static final long STORE_BIT = 1L << 31;
    /** column_sums_bf16x8's tickets, one per column group, zero between launches (each launch sets them back). */
    private long columnTickets;
    private long columnTicketsBytes;
    /** {@link #loraScratch}. */
    private long loraScratch;
    private long loraScratchBytes;
    /**
     * Scratch for the bf16 copies of GEMM operands under {@link GemmPrecision#BF16}, grown as needed: A and B of the
     * GEMM at hand, and an operand shared by two GEMMs of one op (dOut in linearBackward), cast once.
     */
    private static final int SLOT_A = 0, SLOT_B = 1, SLOT_SHARED = 2, SLOT_SHARED2 = 3;
    private final long[] bf16Operand = new long[4];
    private final long[] bf16OperandBytes = new long[4];
    /**
     * The weight held in bf16 by {@link #holdGemmOperand}: its fp32 address and size, and the copy (0: none), which is
     * the backend's own (freed on release) unless it is the caller's ({@link #holdGemmOperand(Tensor, Tensor, boolean)}).
     */
    private long heldAddress;
    private long heldNumel;
    private long heldBf16;
    private boolean heldOwned;
    /** Whether a model may keep a bf16 copy of its GEMM weights under bf16 GEMMs ({@link #gemmWeightCopyDtype}). */
    private static final boolean WEIGHT_COPY = !"false".equals(System.getProperty("gosling.weightCopy"));
    /** AdamW segment tables on the device, and the host copies they were made from. */
    private long segmentTables;
    private long segmentTablesBytes;
    private long[] lastEnds;
    private float[] lastLr;
    private float[] lastDecay;

    /** The register-resident norm kernels (norm.cu's NORM_V4): J float4 per lane, groups of up to 128·J channels. */
    private static final int[] NORM_V4_J = {1, 2, 4, 8, 16};
    private final Kernel[] normFwdV4, normBwdXV4;
    /**
     * The LayerNorm backward with dWeight/dBias in the same pass (norm.cu's NORM_FUSED): {J, W} — J float4 per lane, W
     * warps a row, rows of up to 128·J·W channels; a kernel is null where the device refused its shared memory.
     */
    private static final int[][] NORM_FUSED_JW = {{1, 1}, {2, 1}, {4, 1}, {6, 1}, {8, 1}, {8, 2}, {8, 4}};
    private final Kernel[] normBwdFused;
    /**
     * The fused LayerNorm backward is used for C ≤ normFusedMaxC (0: never, the dx kernel then the column kernel as
     * before; -Dgosling.lnFused=false); its row slices: one per normFusedRowsPerSlice rows, at most normFusedMaxSlices.
     */
    private int normFusedMaxC = "false".equals(System.getProperty("gosling.lnFused")) ? 0 : 4096;
    private int normFusedRowsPerSlice = ROWS_PER_SLICE;
    private int normFusedMaxSlices = MAX_SLICES;
    /** AdamW kernels by tile: adamw_step_tiles_{1,2,4} (1024·VEC elements a block). */
    private static final int[] ADAMW_VECS = {1, 2, 4};
    private final Kernel[] adamwTiles;
    /**
     * The AdamW kernel: tiles of 1024·adamwVec elements, or 0: the per-element search kernel (-Dgosling.adamw=old).
     * 1 by default: 14.2 against 15.4 ms for tiles of 4096 at 1.53 B parameters on an H100, bit for bit in the checks.
     */
    private int adamwVec = "old".equals(System.getProperty("gosling.adamw")) ? 0 : 1;
    private final Kernel addF32, accumulateF32, fillF32, zeroRangesF32, fillUniform, gateFwd, gateBwd, valueResidualFwd, valueResidualBwd,
            reluSqFwd, reluSqBwd, biasActivate, activateBf16Copy, activationBwd, activationBwdBf16Dz, embeddingFwd, embeddingBwd, normFwd, normBwdX,
            normBwdParams, tokenShiftFwd4, tokenShiftFwd1, tokenShiftBwd4, tokenShiftBwd1, tokenShiftFinish,
            keyPrepareFwd, keyPrepareBwd, bonusFwd, bonusBwd, ceFwd, ceBwd, columnFinish, columnFinishBatch, columnPartial, columnSumsBf16,
            sumSquaresPartial, adamw, castBf16, gateFwdBf16, reluSqFwdBf16, tokenShiftFwdBf16_4, tokenShiftFwdBf16_1, ceBwdBf16,
            ceFwdBf16Logits, ceBwdBf16Logits,
            reluSqFwdBf16x, reluSqBwdBf16a, lnxBonusGateFwd, lnxBonusGateFwdBf16, lnxBonusGateBwd,
            lnxBonusGateFwdBf16G, lnxBonusGateBwdBf16, valueResidualFwdBf16, valueResidualBwdBf16, keyPrepareFwdBf16,
            keyPrepareBwdBf16, biasActivateBf16, activationBwdBf16Y, keyPrepareBwdBf16Dk, valueResidualBwdBf16Dv,
            lnxBonusGateBwdBf16Dg, lnxBonusGateBwdBf16DgDgated, activationBwdColumns, activationBwdColumnsBf16Y,
            activationBwdColumnsBf16YD, activationBwdColumns2, activationBwdColumns2Bf16Y, activationBwdColumns2Bf16YD,
            keyPrepareBwdBf16DkDa, valueResidualBwdBf16DvDg, reluSqBwdBf16ad,
            tokenShiftBwdBf16_4, tokenShiftBwdBf16_1, keyPrepareFwdBf16Out, valueResidualFwdBf16All,
            valueResidualBwdBf16DvDgVf, lnxBonusGateFwdBf16In, lnxBonusGateBwdBf16In,
            lnxBonusGateBwdBf16InDgatedF32, lnxBonusGateBwdBf16InDy, lnxBonusGateBwdBf16InDgatedF32Dy, castBf16F32;
    /**
     * LayerNorm fused with the token-shift mixes of its output (token_shift.cu's ln_token_shift_*), indexed [J − 1]:
     * J float4 a thread, rows of up to 512·J channels. -Dgosling.lnShift=false: the unfused ops (Backend's defaults).
     */
    private final Kernel[] lnShiftFwd = new Kernel[2], lnShiftFwdBf16 = new Kernel[2], lnShiftBwd = new Kernel[2],
            lnShiftBwdBf16 = new Kernel[2];
    /**
     * The row-step forward (ln_token_shift_forward_rows[_bf16]: the row statistics merged by one warp, two float4s a
     * thread) that replaces the J = 1 forward (same outputs) except where it reads saved statistics for several mixes,
     * where the J = 1 kernel measured 3–8% faster. -Dgosling.lnShiftFwdRows=false: the J = 1 kernel always.
     */
    private final Kernel lnShiftFwdRows, lnShiftFwdRowsBf16;
    private final boolean lnShiftFwdRowsOn = !"false".equals(System.getProperty("gosling.lnShiftFwdRows"));
    private boolean lnShiftFused = !"false".equals(System.getProperty("gosling.lnShift"));
    /** The J = 1 bf16 backward that loads each row's inputs itself (-Dgosling.lnShiftPrefetch=false), for measurements. */
    private final Kernel lnShiftBwdBf16Serial;
    /**
     * The kernels with their inputs staged in shared memory rows ahead (token_shift.cu's _staged), where the one-row
     * register prefetch leaves every row waiting for memory: the J = 1 bf16 backward (C % 8 == 0, 16-byte aligned
     * dOuts) and the row-step forward computing the statistics of one mix. Same outputs. -Dgosling.lnShiftStaged=false:
     * the unstaged kernels, for measurements.
     */
    private final Kernel lnShiftBwdBf16Staged, lnShiftFwdRowsStaged, lnShiftFwdRowsStagedBf16;
    private final boolean lnShiftStaged = !"false".equals(System.getProperty("gosling.lnShiftStaged"));
    /** Dynamic shared memory a kernel (by name) was opted in to, past the default 48 KiB. */
    private final Map<String, Integer> sharedOptIn = new HashMap<>();
    private final boolean lnShiftPrefetch = !"false".equals(System.getProperty("gosling.lnShiftPrefetch"));
    /**
     * Whether a LoRA's bias is added in bf16 by the GEMM's epilogue when its output is bf16 (the decay LoRA's w0 into
     * wRaw); -Dgosling.loraBias=f32: the fp32 product with an fp32 bias, then a cast, for measurements.
     */
    private final boolean bf16LoraBias = !"f32".equals(System.getProperty("gosling.loraBias"));

    /** WKV7 kernels (wkv7.cu): v5 in use; v4 kept for comparison in {@link GpuBench}. */
    private final Kernel wkv7FwdV4, wkv7BwdV4;
    /**
     * The chunked tensor-core WKV7 (wkv7_tc.cu: forward and the backward's E chain; wkv7_tc_readout.cu: the backward's
     * readouts); null before sm_80 and where the device cannot give a block their shared memory (sm_86/89: 99 KiB).
     */
    private final Kernel wkv7TcForward, wkv7TcChain, wkv7TcReadout;
    /** Dynamic shared memory of the wkv7_tc.cu kernels: sizeof(TcShared) there (a kernel given less traps). */
    static final int WKV7_TC_SHARED = 176128;
    /** The readout kernel's block and dynamic shared memory (wkv7_tc_readout.cu: RO_THREADS, RO_SMEM1, one stage). */
    static final int WKV7_TC_READOUT_THREADS = 256, WKV7_TC_READOUT_SHARED = 87824;
    /**
     * v5 and chunked-forward kernels by name (the names of {@link #WKV7_ROW_KERNELS}, {@link #WKV7_COL_KERNELS} and
     * {@link #WKV7_CHUNK_KERNELS}).
     */
    private final Map<String, Kernel> wkv7Kernels = new HashMap<>();
    /**
     * The WKV7 kernels in use: {@link Wkv7Choice#AUTO} (v5 in the paired lane layout, configurations chosen from B·H
     * and the SM count) unless
     * the system property {@code gosling.wkv7=v4} asks for the old kernels (for benchmarks of whole steps);
     * {@code gosling.wkv7Bf16=_bf16sh} (or another of {@link #WKV7_BF16_STAGINGS}) picks the bf16 kernels' staging.
     */
    private Wkv7Choice wkv7Choice = "v4".equals(System.getProperty("gosling.wkv7")) ? Wkv7Choice.V4
            : Wkv7Choice.AUTO.bf16(System.getProperty("gosling.wkv7Bf16", "_bf16"))
                    .tc(!"false".equals(System.getProperty("gosling.wkv7Tc")));
    /**
     * The one-read cross-entropy kernels (cross_entropy.cu, {@code cross_entropy_rows_*}) by name, fp32 and bf16
     * dLogits each.
     */
    private final Map<String, Kernel> ceRowsKernels = new HashMap<>();
    /** Resident blocks per SM of a rows kernel at a dynamic shared-memory size (name + "/" + bytes). */
    private final Map<String, Integer> ceRowsOccupancy = new HashMap<>();
    /**
     * The fused cross-entropy kernels in use where they apply ({@link CeRows#applies}), for fp32 logits and for bf16
     * logits: {@link CeChoice#DEFAULT} unless the system property {@code gosling.ce} names another variant ({@code
     * old}: always the two-pass kernel; a packed variant: bf16 logits only; another: both). On an H100 at 2048 × 65536
     * with bf16 dLogits: 0.31 ms against the two-pass kernel's 0.68; bf16 logits (512_8_24_packed) 0.257 against
     * 1024_8_8's 0.300 (kernels/NOTES.md).
     */
    private CeChoice ceChoice = CeChoice.fromProperty(System.getProperty("gosling.ce"));
    /** Launches of a one-read kernel so far (the checks see which kernel a shape took). */
    private long ceRowsLaunches;
    /**
     * The WKV7 backward's scratch: dsa ([B·T, H·64] fp32), then dS at the column chunks' ends, or with the tensor-core
     * kernels the E chain's start state of every 16-step chunk (grows, is reused).
     */
    private long wkvScratch;
    private long wkvScratchBytes;

    /** The backend on device 0, kernels from the jar's fatbins (NVRTC where none fits). */
    public CudaBackend() {
        this(0, false);
    }

    /**
     * @param device     CUDA device index
     * @param forceNvrtc compile every kernel with NVRTC (cached on disk) even when the jar has fatbins
     */
    public CudaBackend(int device, boolean forceNvrtc) {
        CudaProbe.Result probe = CudaProbe.probe();
        if (!probe.available()) {
            throw new GoslingException(probe.reason());
        }
        this.device = device;
        Cuda.checkDriver(cuInit(0), "cuInit");
        Cuda.check(cudaSetDevice(device), "cudaSetDevice(" + device + ")");
        Cuda.check(cudaFree(null), "cudaFree(null) (creating the context)");
        boundThread = Thread.currentThread();
        try (cudaDeviceProp prop = new cudaDeviceProp()) {
            Cuda.check(cudaGetDeviceProperties(prop, device), "cudaGetDeviceProperties");
            deviceName = prop.name().getString();
            ccMajor = prop.major();
            ccMinor = prop.minor();
            multiprocessors = prop.multiProcessorCount();
            totalMemory = prop.totalGlobalMem();
        }
        stream = new CUstream_st();
        Cuda.check(cudaStreamCreate(stream), "cudaStreamCreate");
        cublasHandle = new cublasContext();
        cublasCheck(cublasCreate_v2(cublasHandle), "cublasCreate");
        cublasCheck(cublasSetStream_v2(cublasHandle, stream), "cublasSetStream");
        loader = new KernelLoader(ccMajor, ccMinor, forceNvrtc, KernelLoader.defaultCacheDir());
        addF32 = loader.kernel("elementwise", "add_f32");
        accumulateF32 = loader.kernel("elementwise", "accumulate_f32");
        fillF32 = loader.kernel("elementwise", "fill_f32");
        zeroRangesF32 = loader.kernel("elementwise", "zero_ranges");
        fillUniform = loader.kernel("elementwise", "fill_uniform_f32");
        castBf16 = loader.kernel("cast", "cast_f32_bf16");
        castBf16F32 = loader.kernel("cast", "cast_bf16_f32");
        gateFwd = loader.kernel("elementwise", "gate_forward");
        gateFwdBf16 = loader.kernel("elementwise", "gate_forward_bf16");
        reluSqFwdBf16 = loader.kernel("elementwise", "relu_squared_forward_bf16");
        reluSqFwdBf16x = loader.kernel("elementwise", "relu_squared_forward_bf16x");
        reluSqBwdBf16a = loader.kernel("elementwise", "relu_squared_backward_bf16a");
        reluSqBwdBf16ad = loader.kernel("elementwise", "relu_squared_backward_bf16ad");
        tokenShiftFwdBf16_4 = loader.kernel("token_shift", "token_shift_mixes_forward_bf16_v4");
        tokenShiftFwdBf16_1 = loader.kernel("token_shift", "token_shift_mixes_forward_bf16_v1");
        gateBwd = loader.kernel("elementwise", "gate_backward");
        valueResidualFwd = loader.kernel("elementwise", "value_residual_forward");
        valueResidualBwd = loader.kernel("elementwise", "value_residual_backward");
        reluSqFwd = loader.kernel("elementwise", "relu_squared_forward");
        reluSqBwd = loader.kernel("elementwise", "relu_squared_backward");
        biasActivate = loader.kernel("lora", "bias_activate");
        activationBwd = loader.kernel("lora", "activation_backward");
        activationBwdBf16Dz = loader.kernel("lora", "activation_backward_bf16dz");
        activateBf16Copy = loader.kernel("lora", "activate_bf16_copy");
        embeddingFwd = loader.kernel("embedding", "embedding_forward");
        embeddingBwd = loader.kernel("embedding", "embedding_backward");
        normFwd = loader.kernel("norm", "norm_forward");
        normBwdX = loader.kernel("norm", "norm_backward_x");
        normBwdParams = loader.kernel("norm", "norm_backward_params");
        normFwdV4 = new Kernel[NORM_V4_J.length];
        normBwdXV4 = new Kernel[NORM_V4_J.length];
        for (int i = 0; i < NORM_V4_J.length; i++) {
            normFwdV4[i] = loader.kernel("norm", "norm_forward_v4_" + NORM_V4_J[i]);
            normBwdXV4[i] = loader.kernel("norm", "norm_backward_x_v4_" + NORM_V4_J[i]);
        }
        normBwdFused = new Kernel[NORM_FUSED_JW.length];
        for (int i = 0; i < NORM_FUSED_JW.length; i++) {
            int[] jw = NORM_FUSED_JW[i];
            Kernel k = loader.kernel("norm", "norm_backward_fused_" + jw[0] + "_" + jw[1]);
            int smem = normFusedSmem(jw[1], 128 * jw[0] * jw[1]);
            // over 48 KiB of shared memory a block needs the opt-in; a device without it takes the unfused kernels
            if (smem <= 48 * 1024 || cuFuncSetAttribute(k.function(), CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                    smem) == 0) {
                normBwdFused[i] = k;
            }
        }
        tokenShiftFwd4 = loader.kernel("token_shift", "token_shift_mixes_forward_v4");
        tokenShiftFwd1 = loader.kernel("token_shift", "token_shift_mixes_forward_v1");
        tokenShiftBwd4 = loader.kernel("token_shift", "token_shift_mixes_backward_v4");
        tokenShiftBwd1 = loader.kernel("token_shift", "token_shift_mixes_backward_v1");
        tokenShiftBwdBf16_4 = loader.kernel("token_shift", "token_shift_mixes_backward_bf16_v4");
        tokenShiftBwdBf16_1 = loader.kernel("token_shift", "token_shift_mixes_backward_bf16_v1");
        tokenShiftFinish = loader.kernel("token_shift", "token_shift_mixes_finish");
        lnShiftFwd[0] = loader.kernel("token_shift", "ln_token_shift_forward_j1");
        lnShiftFwd[1] = loader.kernel("token_shift", "ln_token_shift_forward_j2");
        lnShiftFwdBf16[0] = loader.kernel("token_shift", "ln_token_shift_forward_bf16_j1");
        lnShiftFwdBf16[1] = loader.kernel("token_shift", "ln_token_shift_forward_bf16_j2");
        lnShiftFwdRows = loader.kernel("token_shift", "ln_token_shift_forward_rows");
        lnShiftFwdRowsBf16 = loader.kernel("token_shift", "ln_token_shift_forward_rows_bf16");
        lnShiftBwd[0] = loader.kernel("token_shift", "ln_token_shift_backward_j1");
        lnShiftBwd[1] = loader.kernel("token_shift", "ln_token_shift_backward_j2");
        lnShiftBwdBf16[0] = loader.kernel("token_shift", "ln_token_shift_backward_bf16_j1");
        lnShiftBwdBf16[1] = loader.kernel("token_shift", "ln_token_shift_backward_bf16_j2");
        lnShiftBwdBf16Serial = loader.kernel("token_shift", "ln_token_shift_backward_bf16_j1_serial");
        lnShiftBwdBf16Staged = loader.kernel("token_shift", "ln_token_shift_backward_bf16_j1_staged");
        lnShiftFwdRowsStaged = loader.kernel("token_shift", "ln_token_shift_forward_rows_staged");
        lnShiftFwdRowsStagedBf16 = loader.kernel("token_shift", "ln_token_shift_forward_rows_staged_bf16");
        keyPrepareFwd = loader.kernel("key_prepare", "key_prepare_forward");
        keyPrepareBwd = loader.kernel("key_prepare", "key_prepare_backward");
        bonusFwd = loader.kernel("bonus", "bonus_forward");
        bonusBwd = loader.kernel("bonus", "bonus_backward");
        lnxBonusGateFwd = loader.kernel("bonus", "lnx_bonus_gate_forward");
        lnxBonusGateFwdBf16 = loader.kernel("bonus", "lnx_bonus_gate_forward_bf16");
        lnxBonusGateBwd = loader.kernel("bonus", "lnx_bonus_gate_backward");
        lnxBonusGateFwdBf16G = loader.kernel("bonus", "lnx_bonus_gate_forward_bf16g");
        lnxBonusGateBwdBf16 = loader.kernel("bonus", "lnx_bonus_gate_backward_bf16");
        valueResidualFwdBf16 = loader.kernel("elementwise", "value_residual_forward_bf16");
        valueResidualBwdBf16 = loader.kernel("elementwise", "value_residual_backward_bf16");
        keyPrepareFwdBf16 = loader.kernel("key_prepare", "key_prepare_forward_bf16");
        keyPrepareBwdBf16 = loader.kernel("key_prepare", "key_prepare_backward_bf16");
        biasActivateBf16 = loader.kernel("lora", "bias_activate_bf16");
        activationBwdBf16Y = loader.kernel("lora", "activation_backward_bf16y");
        keyPrepareBwdBf16Dk = loader.kernel("key_prepare", "key_prepare_backward_bf16_dk");
        valueResidualBwdBf16Dv = loader.kernel("elementwise", "value_residual_backward_bf16_dv");
        lnxBonusGateBwdBf16Dg = loader.kernel("bonus", "lnx_bonus_gate_backward_bf16_dg");
        lnxBonusGateBwdBf16DgDgated = loader.kernel("bonus", "lnx_bonus_gate_backward_bf16_dg_dgated");
        activationBwdColumns = loader.kernel("lora", "activation_backward_columns");
        activationBwdColumnsBf16Y = loader.kernel("lora", "activation_backward_columns_bf16y");
        activationBwdColumnsBf16YD = loader.kernel("lora", "activation_backward_columns_bf16yd");
        activationBwdColumns2 = loader.kernel("lora", "activation_backward_columns2");
        activationBwdColumns2Bf16Y = loader.kernel("lora", "activation_backward_columns2_bf16y");
        activationBwdColumns2Bf16YD = loader.kernel("lora", "activation_backward_columns2_bf16yd");
        keyPrepareBwdBf16DkDa = loader.kernel("key_prepare", "key_prepare_backward_bf16_dk_da");
        valueResidualBwdBf16DvDg = loader.kernel("elementwise", "value_residual_backward_bf16_dv_dg");
        keyPrepareFwdBf16Out = loader.kernel("key_prepare", "key_prepare_forward_bf16_out");
        valueResidualFwdBf16All = loader.kernel("elementwise", "value_residual_forward_bf16_all");
        valueResidualBwdBf16DvDgVf = loader.kernel("elementwise", "value_residual_backward_bf16_dv_dg_vf");
        lnxBonusGateFwdBf16In = loader.kernel("bonus", "lnx_bonus_gate_forward_bf16_in");
        lnxBonusGateBwdBf16In = loader.kernel("bonus", "lnx_bonus_gate_backward_bf16_in");
        lnxBonusGateBwdBf16InDgatedF32 = loader.kernel("bonus", "lnx_bonus_gate_backward_bf16_in_dgated_f32");
        lnxBonusGateBwdBf16InDy = loader.kernel("bonus", "lnx_bonus_gate_backward_bf16_in_dy");
        lnxBonusGateBwdBf16InDgatedF32Dy = loader.kernel("bonus", "lnx_bonus_gate_backward_bf16_in_dgated_f32_dy");
        wkv7FwdV4 = loader.kernel("wkv7", "wkv7_forward_v4");
        wkv7BwdV4 = loader.kernel("wkv7", "wkv7_backward_v4");
        // the tensor-core WKV7 needs mma.sync with bf16 and tf32 (sm_80+): before, its modules are not even compiled
        Kernel tcFwd = null, tcChain = null, tcReadout = null;
        boolean tcFits = false;
        if (ccMajor >= 8) {
            tcFwd = loader.kernel("wkv7_tc", "wkv7_tc_forward");
            tcChain = loader.kernel("wkv7_tc", "wkv7_tc_backward_chain");
            tcReadout = loader.kernel("wkv7_tc_readout", "wkv7_tc_readout");
            tcFits = cuFuncSetAttribute(tcFwd.function(), CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                    WKV7_TC_SHARED) == 0 && cuFuncSetAttribute(tcChain.function(),
                    CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, WKV7_TC_SHARED) == 0
                    && cuFuncSetAttribute(tcReadout.function(), CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                    WKV7_TC_READOUT_SHARED) == 0;
        }
        wkv7TcForward = tcFits ? tcFwd : null;
        wkv7TcChain = tcFits ? tcChain : null;
        wkv7TcReadout = tcFits ? tcReadout : null;
        for (Kernel k : new Kernel[] {loader.kernel("wkv7", "wkv7_forward_v5_64_2_4"),
                loader.kernel("wkv7", "wkv7_forward_v5_32_2_8"), loader.kernel("wkv7", "wkv7_forward_v5_16_1_8"),
                loader.kernel("wkv7", "wkv7_backward_rows_v5_64_2_4"),
                loader.kernel("wkv7", "wkv7_backward_rows_v5_32_2_8"),
                loader.kernel("wkv7", "wkv7_backward_rows_v5_16_1_8"),
                loader.kernel("wkv7", "wkv7_backward_cols_v5_32_1_4"),
                loader.kernel("wkv7", "wkv7_backward_cols_v5_16_1_4"),
                loader.kernel("wkv7", "wkv7_backward_cols_v5_32_2_4"),
                loader.kernel("wkv7", "wkv7_backward_cols_v5_32_1_4p"),
                loader.kernel("wkv7", "wkv7_backward_cols_v5_16_1_4p"),
                loader.kernel("wkv7", "wkv7_backward_cols_v5_32_2_4p"),
                loader.kernel("wkv7", "wkv7_backward_cols_v5_32_1_4q"),
                loader.kernel("wkv7", "wkv7_backward_cols_v5_16_1_4q"),
                loader.kernel("wkv7", "wkv7_backward_cols_v5_32_2_4q"),
                loader.kernel("wkv7", "wkv7_forward_chunk_64_1_4"), loader.kernel("wkv7", "wkv7_forward_chunk_64_2_8"),
                loader.kernel("wkv7", "wkv7_forward_chunk_64_2_4"),
                loader.kernel("wkv7", "wkv7_forward_chunk_32_1_4"),
                loader.kernel("wkv7", "wkv7_forward_v5_64_2_4p"), loader.kernel("wkv7", "wkv7_forward_v5_32_2_8p"),
                loader.kernel("wkv7", "wkv7_forward_v5_16_1_8p"), loader.kernel("wkv7", "wkv7_backward_rows_v5_64_2_4p"),
                loader.kernel("wkv7", "wkv7_backward_rows_v5_32_2_8p"),
                loader.kernel("wkv7", "wkv7_backward_rows_v5_16_1_8p"),
                // bf16 inputs and y: the paired row kernels and the column kernels the launcher picks, in every staging
                // (WKV7_BF16_STAGINGS: _bf16 in use, the others for comparison)
                loader.kernel("wkv7", "wkv7_forward_v5_64_2_4p_bf16"),
                loader.kernel("wkv7", "wkv7_forward_v5_32_2_8p_bf16"),
                loader.kernel("wkv7", "wkv7_forward_v5_16_1_8p_bf16"),
                loader.kernel("wkv7", "wkv7_backward_rows_v5_64_2_4p_bf16"),
                loader.kernel("wkv7", "wkv7_backward_rows_v5_32_2_8p_bf16"),
                loader.kernel("wkv7", "wkv7_backward_rows_v5_16_1_8p_bf16"),
                loader.kernel("wkv7", "wkv7_backward_cols_v5_32_1_4p_bf16"),
                loader.kernel("wkv7", "wkv7_backward_cols_v5_16_1_4p_bf16"),
                loader.kernel("wkv7", "wkv7_forward_v5_64_2_4p_bf16a"),
                loader.kernel("wkv7", "wkv7_forward_v5_32_2_8p_bf16a"),
                loader.kernel("wkv7", "wkv7_forward_v5_16_1_8p_bf16a"),
                loader.kernel("wkv7", "wkv7_backward_rows_v5_64_2_4p_bf16a"),
                loader.kernel("wkv7", "wkv7_backward_rows_v5_32_2_8p_bf16a"),
                loader.kernel("wkv7", "wkv7_backward_rows_v5_16_1_8p_bf16a"),
                loader.kernel("wkv7", "wkv7_backward_cols_v5_32_1_4p_bf16a"),
                loader.kernel("wkv7", "wkv7_backward_cols_v5_16_1_4p_bf16a"),
                loader.kernel("wkv7", "wkv7_forward_v5_64_2_4p_bf16sh"),
                loader.kernel("wkv7", "wkv7_forward_v5_32_2_8p_bf16sh"),
                loader.kernel("wkv7", "wkv7_forward_v5_16_1_8p_bf16sh"),
                loader.kernel("wkv7", "wkv7_backward_rows_v5_64_2_4p_bf16sh"),
                loader.kernel("wkv7", "wkv7_backward_rows_v5_32_2_8p_bf16sh"),
                loader.kernel("wkv7", "wkv7_backward_rows_v5_16_1_8p_bf16sh"),
                loader.kernel("wkv7", "wkv7_backward_cols_v5_32_1_4p_bf16sh"),
                loader.kernel("wkv7", "wkv7_backward_cols_v5_16_1_4p_bf16sh")}) {
            wkv7Kernels.put(k.name, k);
        }
        ceFwd = loader.kernel("cross_entropy", "cross_entropy_forward");
        ceBwd = loader.kernel("cross_entropy", "cross_entropy_backward");
        ceBwdBf16 = loader.kernel("cross_entropy", "cross_entropy_backward_bf16");
        ceFwdBf16Logits = loader.kernel("cross_entropy", "cross_entropy_forward_bf16_logits");
        ceBwdBf16Logits = loader.kernel("cross_entropy", "cross_entropy_backward_bf16_logits");
        for (CeRows c : CeRows.ALL) {
            for (String name : c.kernels()) {
                Kernel k = loader.kernel("cross_entropy", name);
                // a stash over the device's shared memory per block (99 KiB on sm_86/89) leaves the variant out:
                // its rows take the two-pass kernel
                if (c.stashBytes() == 0 || cuFuncSetAttribute(k.function(), CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                        c.stashBytes()) == 0) {
                    ceRowsKernels.put(name, k);
                    if (c.packed()) {
                        // two blocks per SM need two stashes: ask for the largest shared-memory carveout (a hint)
                        cuFuncSetAttribute(k.function(), CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT,
                                CU_SHAREDMEM_CARVEOUT_MAX_SHARED);
                    }
                }
            }
        }
        columnFinish = loader.kernel("reduce", "column_finish");
        columnFinishBatch = loader.kernel("reduce", "column_finish_batch");
        columnPartial = loader.kernel("reduce", "column_partial");
        columnSumsBf16 = loader.kernel("reduce", "column_sums_bf16x8");
        sumSquaresPartial = loader.kernel("adamw", "sum_squares_partial");
        adamw = loader.kernel("adamw", "adamw_step");
        adamwTiles = new Kernel[ADAMW_VECS.length];
        for (int i = 0; i < ADAMW_VECS.length; i++) {
            adamwTiles[i] = loader.kernel("adamw", "adamw_step_tiles_" + ADAMW_VECS[i]);
        }
        errorWord = deviceAlloc(16, "the error word");
        Cuda.check(cudaMemsetAsync(pa.at(errorWord), 0, 16, stream), "cudaMemsetAsync");
        synchronize();
    }

    // ------------------------------------------------------------------------------------------------ device facts

    @Override
    public String name() {
        return "cuda(" + deviceName + ", sm_" + ccMajor + ccMinor + ")";
    }

    public String deviceName() {
        return deviceName;
    }

    public int computeCapability() {
        return ccMajor * 10 + ccMinor;
    }

    public int multiprocessors() {
        return multiprocessors;
    }

    public long totalMemoryBytes() {
        return totalMemory;
    }

    /** "runtime 13000, driver 13000, cuBLAS 130100" for logs. */
    public String versions() {
        bind();
        int[] rt = new int[1];
        int[] drv = new int[1];
        int[] cb = new int[1];
        cudaRuntimeGetVersion(rt);
        cudaDriverGetVersion(drv);
        cublasGetVersion_v2(cublasHandle, cb);
        return "runtime " + rt[0] + ", driver " + drv[0] + ", cuBLAS " + cb[0];
    }

    /** Where each kernel module came from (fatbin, NVRTC compiled, NVRTC cached). */
    public Map<String, KernelLoader.Origin> kernelOrigins() {
        return loader.origins();
    }

    /** Device memory held by this backend's allocator at its peak (live + cached), in bytes. */
    public long peakReservedBytes() {
        return allocator.peakReservedBytes();
    }

    /** cudaMalloc calls so far (a training step after the first should add none). */
    public long mallocCalls() {
        return allocator.mallocCalls();
    }

    /** Free and total device memory as the driver reports it. */
    public long[] memoryInfo() {
        bind();
        try (SizeTPointer free = new SizeTPointer(1); SizeTPointer total = new SizeTPointer(1)) {
            Cuda.check(cudaMemGetInfo(free, total), "cudaMemGetInfo");
            return new long[] {free.get(), total.get()};
        }
    }

    // ------------------------------------------------------------------------------------------------ for collectives

    /** The CUDA device ordinal this backend runs on. */
    public int device() {
        return device;
    }

    /**
     * The stream every op of this backend is queued on. A collective (NCCL, trainer/dist) runs its reductions on a
     * stream of its own and orders the two with events: its stream waits for this one before a reduction, and this one
     * waits for a reduction before the backend's work that overwrites or reads its memory.
     */
    public CUstream_st stream() {
        bindSettled();
        return stream;
    }

    /** The device address of element 0 of {@code t} (a tensor of this backend), for library calls such as NCCL's. */
    public long deviceAddress(Tensor t) {
        bindSettled();
        return own(t, "deviceAddress", "t").address;
    }

    /** Waits for all queued work, then throws if a kernel recorded an invalid id. */
    public void synchronize() {
        bind();
        Cuda.check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
        checkErrorWord();
    }

    /** Device-side timing: runs {@code body}, returns the milliseconds between events recorded around it. */
    public float time(Runnable body) {
        bind();
        CUevent_st start = new CUevent_st();
        CUevent_st stop = new CUevent_st();
        Cuda.check(cudaEventCreate(start), "cudaEventCreate");
        Cuda.check(cudaEventCreate(stop), "cudaEventCreate");
        try {
            Cuda.check(cudaEventRecord(start, stream), "cudaEventRecord");
            body.run();
            Cuda.check(cudaEventRecord(stop, stream), "cudaEventRecord");
            Cuda.check(cudaEventSynchronize(stop), "cudaEventSynchronize");
            float[] ms = new float[1];
            Cuda.check(cudaEventElapsedTime(ms, start, stop), "cudaEventElapsedTime");
            return ms[0];
        } finally {
            cudaEventDestroy(start);
            cudaEventDestroy(stop);
        }
    }

    /** Sets every element of an F32 tensor to {@code value} (tests poison outputs with NaN). */
    public void fill(Tensor t, float value) {
        bind();
        CudaTensor c = own(t, "fill", "t");
        if (c.dtype != DType.F32) {
            throw new IllegalArgumentException("fill: t must be F32, got " + c.dtype);
        }
        if (c.numel > 0) {
            launch1d(fillF32, c.numel, args.reset().ptr(c.address).f32(value).i64(c.numel));
        }
    }

    /** Fills an F32 tensor with uniform values in [lo, hi) from a hash of (seed, index), made on the device. */
    public void fillUniform(Tensor t, long seed, float lo, float hi) {
        bind();
        CudaTensor c = own(t, "fillUniform", "t");
        if (c.dtype != DType.F32) {
            throw new IllegalArgumentException("fillUniform: t must be F32, got " + c.dtype);
        }
        if (c.numel > 0) {
            launch1d(fillUniform, c.numel, args.reset().ptr(c.address).i64(c.numel).i64(seed).f32(lo).f32(hi));
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        bindSettled();
        closed = true;
        cudaStreamSynchronize(stream);
        releaseGemmOperand();
        loader.close();
        cublasDestroy_v2(cublasHandle);
        if (ltGemms != null) {
            ltGemms.close();
        }
        allocator.close();
        cudaStreamDestroy(stream);
        args.close();
        sumArgs.close();
        one.close();
        betaHost.close();
        staging.close();
    }

    // ------------------------------------------------------------------------------------------------ memory

    @Override
    public Tensor allocate(DType dtype, int... shape) {
        bind();
        if (dtype == null) {
            throw new IllegalArgumentException("allocate: dtype is null");
        }
        if (dtype == DType.F64) {
            throw new IllegalArgumentException("allocate: the CUDA backend computes in F32 (F64 is the CPU backend's"
                    + " checking precision)");
        }
        long numel = CudaTensor.numel(shape);
        long bytes = numel * dtype.bytes;
        long address = deviceAlloc(bytes, "a " + dtype + Arrays.toString(shape) + " tensor");
        if (bytes > 0) {
            Cuda.check(cudaMemsetAsync(pa.at(address), 0, bytes, stream), "cudaMemsetAsync");
        }
        return new CudaTensor(this, dtype, shape, numel, address);
    }

    private long deviceAlloc(long bytes, String what) {
        long address = allocator.allocate(bytes);
        if (address == 0) {
            throw new GoslingException(String.format("GPU out of memory allocating %s (%.1f MiB) on %s: %.2f GiB in"
                            + " use of %.2f GiB; lower micro_bsz or ctx_len, or train with --grad_cp 1", what,
                    bytes / 1048576.0, deviceName, allocator.liveBytes() / 1073741824.0, totalMemory / 1073741824.0));
        }
        return address;
    }

    void release(CudaTensor t) {
        if (!closed) {
            allocator.free(t.address);
        }
    }

    @Override
    public Tensor view(Tensor base, long offset, int... shape) {
        return new CudaTensor(own(base, "view", "base"), offset, shape);
    }

    private BytePointer staging(long bytes) {
        if (staging.capacity() < bytes) {
            staging.close();
            staging = new BytePointer(Math.max(bytes, staging.capacity() * 2));
        }
        return staging;
    }

    private void toDevice(BytePointer host, long address, long bytes) {
        if (bytes > 0) {
            Cuda.check(cudaMemcpyAsync(pa.at(address), host, bytes, cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync");
            Cuda.check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
        }
    }

    private void toHost(long address, BytePointer host, long bytes) {
        Cuda.check(cudaMemcpyAsync(host, pa.at(address), bytes, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync");
        Cuda.check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
        checkErrorWord();
    }

    @Override
    public void upload(float[] src, Tensor dst) {
        bindSettled();
        CudaTensor t = f32(dst, "upload", "dst", src.length);
        BytePointer s = staging(4L * src.length);
        new FloatPointer(s).put(src);
        toDevice(s, t.address, 4L * src.length);
    }

    @Override
    public void upload(double[] src, Tensor dst) {
        bindSettled();
        CudaTensor t = f32(dst, "upload", "dst", src.length);
        BytePointer s = staging(4L * src.length);
        FloatPointer f = new FloatPointer(s);
        for (int i = 0; i < src.length; i++) {
            f.put(i, (float) src[i]);
        }
        toDevice(s, t.address, 4L * src.length);
    }

    @Override
    public void upload(int[] src, Tensor dst) {
        bindSettled();
        CudaTensor t = ids(dst, "upload", "dst", src.length);
        BytePointer s = staging(4L * src.length);
        new IntPointer(s).put(src);
        toDevice(s, t.address, 4L * src.length);
    }

    /** F32, or BF16 (a GEMM-input tensor, {@link #gemmInputDtype}: the head's logits), widened exactly. */
    @Override
    public void download(Tensor src, float[] dst) {
        bindSettled();
        CudaTensor t = floatLike(src, "download", "src", dst.length);
        if (t.dtype == DType.BF16) {
            downloadBf16(t, dst);
            return;
        }
        BytePointer s = staging(4L * dst.length);
        toHost(t.address, s, 4L * dst.length);
        new FloatPointer(s).get(dst);
    }

    @Override
    public void download(Tensor src, double[] dst) {
        bindSettled();
        CudaTensor t = floatLike(src, "download", "src", dst.length);
        if (t.dtype == DType.BF16) {
            BytePointer s = staging(2L * dst.length);
            toHost(t.address, s, 2L * dst.length);
            ShortPointer h = new ShortPointer(s);
            for (int i = 0; i < dst.length; i++) {
                dst[i] = Float.intBitsToFloat((h.get(i) & 0xffff) << 16);
            }
            return;
        }
        BytePointer s = staging(4L * dst.length);
        toHost(t.address, s, 4L * dst.length);
        FloatPointer f = new FloatPointer(s);
        for (int i = 0; i < dst.length; i++) {
            dst[i] = f.get(i);
        }
    }

    @Override
    public void download(Tensor src, int[] dst) {
        bindSettled();
        CudaTensor t = ids(src, "download", "src", dst.length);
        BytePointer s = staging(4L * dst.length);
        toHost(t.address, s, 4L * dst.length);
        new IntPointer(s).get(dst);
    }

    @Override
    public void zero(Tensor t) {
        bindSettled();
        CudaTensor c = own(t, "zero", "t");
        if (c.numel > 0) {
            zeroBytes(c.address, c.bytes());
        }
    }

    /**
     * One launch for all the ranges: a block for each piece of at most {@link #ZERO_PIECE} elements, from a device
     * table of (start, length) pieces made the first time these ranges are seen and kept (a model zeroes the same few
     * lists every step).
     */
    @Override
    public void zeroRanges(Tensor t, long[] ranges) {
        bindSettled();
        CudaTensor c = own(t, "zeroRanges", "t");
        f32(t, "zeroRanges", "t", c.numel);
        BackendChecks.ranges("zeroRanges", ranges, c.numel);
        ZeroTable table = zeroTable(ranges);
        if (table.pieces() > 0) {
            zeroRangesF32.launch(table.pieces(), 1, 1, THREADS, 1, 1, 0, stream,
                    args.reset().ptr(c.address).ptr(table.address()));
        }
    }

    /** The device table of {@code ranges}' pieces (made and uploaded on first use; at most {@link #ZERO_TABLES} kept). */
    private ZeroTable zeroTable(long[] ranges) {
        for (ZeroTable z : zeroTables) {
            if (Arrays.equals(z.ranges(), ranges)) {
                return z;
            }
        }
        long pieces = 0;
        for (int i = 0; i < ranges.length; i += 2) {
            pieces += ceil(ranges[i + 1] - ranges[i], ZERO_PIECE);
        }
        if (pieces > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("zeroRanges: " + pieces + " pieces of " + ZERO_PIECE + " elements are over the grid");
        }
        long address = 0;
        if (pieces > 0) {
            BytePointer host = staging(16 * pieces);
            LongPointer items = new LongPointer(host);
            long k = 0;
            for (int i = 0; i < ranges.length; i += 2) {
                for (long start = ranges[i]; start < ranges[i + 1]; start += ZERO_PIECE) {
                    items.put(k++, start);
                    items.put(k++, Math.min(ZERO_PIECE, ranges[i + 1] - start));
                }
            }
            address = deviceAlloc(16 * pieces, "the zeroRanges table");
            toDevice(host, address, 16 * pieces);
        }
        if (zeroTables.size() == ZERO_TABLES) {
            ZeroTable oldest = zeroTables.remove(0);
            if (oldest.address() != 0) {
                allocator.free(oldest.address()); // stream-ordered: launches that read it come before any reuse
            }
        }
        ZeroTable table = new ZeroTable(ranges.clone(), address, (int) pieces);
        zeroTables.add(table);
        return table;
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        bindSettled();
        CudaTensor s = own(src, "copy", "src");
        CudaTensor d = own(dst, "copy", "dst");
        if (s.dtype != d.dtype || s.numel != d.numel) {
            throw new IllegalArgumentException("copy: src " + s + " and dst " + d + " differ in dtype or size");
        }
        if (s.numel > 0) {
            copyBytes(s.address, d.address, s.bytes());
        }
    }

    @Override
    public void accumulate(Tensor src, Tensor dst) {
        bindSettled();
        long n = own(src, "accumulate", "src").numel;
        long s = f32(src, "accumulate", "src", n).address;
        long d = f32(dst, "accumulate", "dst", n).address;
        if (n > 0) {
            launch1d(accumulateF32, n, args.reset().ptr(s).ptr(d).i64(n));
        }
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        bindSettled();
        long n = own(a, "add", "a").numel;
        long x = f32(a, "add", "a", n).address;
        long y = f32(b, "add", "b", n).address;
        long o = f32(out, "add", "out", n).address;
        if (n > 0) {
            launch1d(addF32, n, args.reset().ptr(x).ptr(y).ptr(o).i64(n));
        }
    }

    // ------------------------------------------------------------------------------------------------ embedding

    @Override
    public void embeddingForward(Tensor tokens, Tensor weight, Tensor out, int rows, int vocab, int C) {
        String op = "embeddingForward";
        bind();
        dims(op, rows, vocab, C);
        long ids = ids(tokens, op, "tokens", rows).address;
        long w = f32(weight, op, "weight", (long) vocab * C).address;
        long o = f32(out, op, "out", (long) rows * C).address;
        if (rows == 0 || C == 0) {
            return;
        }
        args.reset().ptr(ids).ptr(w).ptr(o).i32(rows).i32(vocab).i32(C).ptr(errorWord);
        embeddingFwd.launch(Math.min(rows, multiprocessors * 16), 1, 1, THREADS, 1, 1, 0, stream, args);
    }

    @Override
    public void embeddingBackward(Tensor tokens, Tensor dOut, Tensor dWeight, int rows, int vocab, int C) {
        String op = "embeddingBackward";
        bind();
        dims(op, rows, vocab, C);
        long ids = ids(tokens, op, "tokens", rows).address;
        long d = f32(dOut, op, "dOut", (long) rows * C).address;
        long dw = f32(dWeight, op, "dWeight", (long) vocab * C).address;
        if (rows == 0 || C == 0) {
            return;
        }
        args.reset().ptr(ids).ptr(d).ptr(dw).i32(rows).i32(vocab).i32(C).ptr(errorWord);
        embeddingBwd.launch(Math.min(rows, multiprocessors * 16), 1, 1, THREADS, 1, 1, 0, stream, args);
    }

    // ------------------------------------------------------------------------------------------------ norms

    @Override
    public void layerNormForward(Tensor x, Tensor weight, Tensor bias, Tensor out, Tensor mean, Tensor rstd,
                                 int rows, int C) {
        normForward("layerNormForward", x, weight, bias, out, mean, rstd, rows, C, C, (float) LAYER_NORM_EPS);
    }

    @Override
    public void layerNormBackward(Tensor dOut, Tensor x, Tensor weight, Tensor mean, Tensor rstd,
                                  Tensor dx, Tensor dWeight, Tensor dBias, int rows, int C) {
        normBackward("layerNormBackward", dOut, x, weight, mean, rstd, dx, null, true, dWeight, dBias, rows, C, C);
    }

    @Override
    public void layerNormBackward(Tensor dOut, Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dx,
                                  Tensor dxCopy, boolean overwrite, Tensor dWeight, Tensor dBias, int rows, int C) {
        normBackward("layerNormBackward", dOut, x, weight, mean, rstd, dx, dxCopy, !overwrite, dWeight, dBias, rows,
                C, C);
    }

    @Override
    public void groupNormForward(Tensor x, Tensor weight, Tensor bias, Tensor out, Tensor mean, Tensor rstd,
                                 int rows, int C) {
        heads("groupNormForward", C);
        normForward("groupNormForward", x, weight, bias, out, mean, rstd, rows, C, N, (float) GROUP_NORM_EPS);
    }

    @Override
    public void groupNormBackward(Tensor dOut, Tensor x, Tensor weight, Tensor mean, Tensor rstd,
                                  Tensor dx, Tensor dWeight, Tensor dBias, int rows, int C) {
        heads("groupNormBackward", C);
        normBackward("groupNormBackward", dOut, x, weight, mean, rstd, dx, null, true, dWeight, dBias, rows, C, N);
    }

    @Override
    public void groupNormBackwardOverwriting(Tensor dOut, Tensor x, Tensor weight, Tensor mean, Tensor rstd,
                                             Tensor dx, Tensor dWeight, Tensor dBias, int rows, int C) {
        heads("groupNormBackwardOverwriting", C);
        normBackward("groupNormBackwardOverwriting", dOut, x, weight, mean, rstd, dx, null, false, dWeight, dBias,
                rows, C, N);
    }

    /**
     * The register-resident float4 form of a norm kernel for this group and these rows (norm.cu), or null where the
     * plain one must do: group % 4 != 0, more than 2048 channels, or a row not 16-byte aligned.
     */
    private Kernel normV4(Kernel[] byJ, int group, long... addresses) {
        if (group % 4 != 0 || group > 128 * NORM_V4_J[NORM_V4_J.length - 1]) {
            return null;
        }
        for (long a : addresses) {
            if (a % 16 != 0) {
                return null;
            }
        }
        int i = 0;
        while (128 * NORM_V4_J[i] < group) {
            i++;
        }
        return byJ[i];
    }

    /**
     * The index in {@link #NORM_FUSED_JW} of the fused LayerNorm backward for rows of C channels at these addresses,
     * or -1 where the unfused kernels must do: C % 4 != 0, C over normFusedMaxC or 4096, a row not 16-byte aligned,
     * or the kernel unavailable on this device.
     */
    private int normFused(int C, long... addresses) {
        if (C % 4 != 0 || C > normFusedMaxC) {
            return -1;
        }
        for (long a : addresses) {
            if (a % 16 != 0) {
                return -1;
            }
        }
        for (int i = 0; i < NORM_FUSED_JW.length; i++) {
            if (128 * NORM_FUSED_JW[i][0] * NORM_FUSED_JW[i][1] >= C) {
                return normBwdFused[i] == null ? -1 : i;
            }
        }
        return -1;
    }

    /** Dynamic shared memory of a fused LayerNorm backward block: (8/W) row units × dW and dB accumulators of C. */
    private static int normFusedSmem(int W, int C) {
        return (8 / W) * 2 * C * 4;
    }

    /**
     * For {@link GpuBench}: the fused LayerNorm backward up to C = maxC (0: the unfused kernels), one row slice per
     * rowsPerSlice rows, at most maxSlices slices.
     */
    void useNormBackward(int maxC, int rowsPerSlice, int maxSlices) {
        normFusedMaxC = maxC;
        normFusedRowsPerSlice = rowsPerSlice;
        normFusedMaxSlices = maxSlices;
    }

    int[] normBackwardChoice() {
        return new int[] {normFusedMaxC, normFusedRowsPerSlice, normFusedMaxSlices};
    }

    /** For {@link GpuBench}: the AdamW kernel, tiles of 1024·vec elements (1, 2, 4) or 0: the old per-element search. */
    void useAdamW(int vec) {
        adamwVec = vec;
    }

    int adamwChoice() {
        return adamwVec;
    }

    private void normForward(String op, Tensor x, Tensor weight, Tensor bias, Tensor out, Tensor mean, Tensor rstd,
                             int rows, int C, int group, float eps) {
        bind();
        dims(op, rows, C);
        long n = (long) rows * C;
        long units = C == 0 ? 0 : (long) rows * (C / group);
        long xs = f32(x, op, "x", n).address;
        long w = f32(weight, op, "weight", C).address;
        long b = f32(bias, op, "bias", C).address;
        long o = f32(out, op, "out", n).address;
        args.reset().ptr(xs).ptr(w).ptr(b).ptr(o)
                .ptr(f32(mean, op, "mean", units).address).ptr(f32(rstd, op, "rstd", units).address)
                .i64(units).i32(group).i32(C).f32(eps);
        if (units > 0) {
            Kernel v4 = normV4(normFwdV4, group, xs, w, b, o);
            (v4 != null ? v4 : normFwd).launch(blocks(units * 32), 1, 1, THREADS, 1, 1, 0, stream, args);
        }
    }

    /** accumulate: dx += …, else dx is written; dxCopy (nullable, fp32 or bf16) gets the new dx too. */
    private void normBackward(String op, Tensor dOut, Tensor x, Tensor weight, Tensor mean, Tensor rstd,
                              Tensor dx, Tensor dxCopy, boolean accumulate, Tensor dWeight, Tensor dBias, int rows,
                              int C, int group) {
        bind();
        dims(op, rows, C);
        long n = (long) rows * C;
        long units = C == 0 ? 0 : (long) rows * (C / group);
        long d = f32(dOut, op, "dOut", n).address;
        long xs = f32(x, op, "x", n).address;
        long w = f32(weight, op, "weight", C).address;
        long mu = f32(mean, op, "mean", units).address;
        long rs = f32(rstd, op, "rstd", units).address;
        long dxs = f32(dx, op, "dx", n).address;
        CudaTensor copy = dxCopy == null ? null : floatLike(dxCopy, op, "dxCopy", n);
        long dw = optional(dWeight, op, "dWeight", C);
        long db = optional(dBias, op, "dBias", C);
        if (units == 0) {
            return;
        }
        long bf16Copy = copy != null && copy.dtype == DType.BF16 ? copy.address : 0;
        int fused = group == C && (dw != 0 || db != 0) ? normFused(C, d, xs, w, dxs, bf16Copy) : -1;
        if (fused >= 0) {
            // dx and the dWeight/dBias partials in one pass
            int slices = Math.max(1, Math.min(normFusedMaxSlices, ceil(rows, normFusedRowsPerSlice)));
            long partial = partials(2L * slices * C);
            long partialB = partial + 4L * slices * C;
            args.reset().ptr(d).ptr(xs).ptr(w).ptr(mu).ptr(rs).ptr(dxs).ptr(bf16Copy).ptr(partial).ptr(partialB)
                    .i32(rows).i32(C).i32(accumulate ? 1 : 0);
            normBwdFused[fused].launch(slices, 1, 1, THREADS, 1, 1, normFusedSmem(NORM_FUSED_JW[fused][1], C), stream,
                    args);
            if (copy != null && copy.dtype != DType.BF16) {
                copy(dx, dxCopy);
            }
            finishColumns(partial, dw, slices, C);
            finishColumns(partialB, db, slices, C);
            return;
        }
        args.reset().ptr(d).ptr(xs).ptr(w).ptr(mu).ptr(rs).ptr(dxs).ptr(bf16Copy).i64(units).i32(group).i32(C)
                .i32(accumulate ? 1 : 0);
        Kernel v4 = normV4(normBwdXV4, group, d, xs, w, dxs, bf16Copy);
        (v4 != null ? v4 : normBwdX).launch(blocks(units * 32), 1, 1, THREADS, 1, 1, 0, stream, args);
        if (copy != null && copy.dtype != DType.BF16) {
            copy(dx, dxCopy);
        }
        if (dw == 0 && db == 0) {
            return;
        }
        int slices = slices(rows);
        long partial = partials(2L * slices * C);
        long partialB = partial + 4L * slices * C;
        args.reset().ptr(d).ptr(xs).ptr(mu).ptr(rs).ptr(partial).ptr(partialB).i32(rows).i32(group).i32(C);
        normBwdParams.launch(ceil(C, 32), slices, 1, 32, 8, 1, 0, stream, args);
        finishColumns(partial, dw, slices, C);
        finishColumns(partialB, db, slices, C);
    }

    // ------------------------------------------------------------------------------------------------ token shift

    private static final String[] MIXES = indexedNames("mixes");
    private static final String[] OUTS = indexedNames("outs");
    private static final String[] D_OUTS = indexedNames("dOuts");
    private static final String[] D_MIXES = indexedNames("dMixes");
    /** Thread rows of a token-shift block (TS_RUNS in token_shift.cu); the block is 32 × TS_RUNS. */
    private static final int TS_RUNS = 8;

    /**
     * token_shift.cu's layout: grid (⌈cols/32⌉, slices(rows)), block (32, TS_RUNS); float4 columns (_v4) when C % 4
     * == 0 and every pointer is 16-byte aligned ({@code addressBits}: the addresses or'ed together), else scalar.
     */
    private void launchTokenShift(Kernel v4, Kernel v1, int rows, int C, long addressBits) {
        boolean vec = C % 4 == 0 && (addressBits & 15) == 0;
        int cols = vec ? C / 4 : C;
        (vec ? v4 : v1).launch(ceil(cols, 32), slices(rows), 1, 32, TS_RUNS, 1, 0, stream, args);
    }

    private static int tokenShiftRows(String op, int B, int T) {
        if ((long) B * T > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(op + ": B·T = " + (long) B * T + " rows is over 2^31");
        }
        return B * T;
    }

    @Override
    public void tokenShiftMixesForward(Tensor x, Tensor[] mixes, Tensor[] outs, int B, int T, int C) {
        String op = "tokenShiftMixesForward";
        bind();
        long n = sequenceDims(op, B, T, C);
        int k = mixCount(op, mixes, outs, "outs", null);
        int rows = tokenShiftRows(op, B, T);
        long xs = f32(x, op, "x", n).address;
        long bits = xs;
        args.reset().ptr(xs);
        for (int j = 0; j < MAX_MIXES; j++) {
            long m = j < k ? f32(mixes[j], op, MIXES[j], C).address : 0;
            bits |= m;
            args.ptr(m);
        }
        DType outType = k > 0 ? own(outs[0], op, OUTS[0]).dtype : DType.F32;
        for (int j = 0; j < MAX_MIXES; j++) {
            CudaTensor o = j < k ? floatLike(outs[j], op, OUTS[j], n) : null;
            if (o != null && o.dtype != outType) {
                throw new IllegalArgumentException(op + ": the outputs mix " + outType + " and " + o.dtype);
            }
            // bf16 outputs need 8-byte alignment for the vector kernel: doubling their address checks that
            bits |= o == null ? 0 : outType == DType.BF16 ? 2 * o.address : o.address;
            args.ptr(o == null ? 0 : o.address);
        }
        args.i32(k).i32(rows).i32(T).i32(C);
        if (n > 0) {
            if (outType == DType.BF16) {
                launchTokenShift(tokenShiftFwdBf16_4, tokenShiftFwdBf16_1, rows, C, bits);
            } else {
                launchTokenShift(tokenShiftFwd4, tokenShiftFwd1, rows, C, bits);
            }
        }
    }

    @Override
    public void tokenShiftMixesBackward(Tensor[] dOuts, Tensor x, Tensor[] mixes, Tensor dx, Tensor[] dMixes,
                                        int B, int T, int C) {
        tokenShiftMixesBackward("tokenShiftMixesBackward", dOuts, x, mixes, dx, dMixes, B, T, C, true);
    }

    @Override
    public void tokenShiftMixesBackwardOverwriting(Tensor[] dOuts, Tensor x, Tensor[] mixes, Tensor dx,
                                                   Tensor[] dMixes, int B, int T, int C) {
        tokenShiftMixesBackward("tokenShiftMixesBackwardOverwriting", dOuts, x, mixes, dx, dMixes, B, T, C, false);
    }

    /**
     * The token-shift backwards' pointers into {@link #tokenShiftPtrs}: dOut_j, mix_j and dMix_j (0 past k, and for a
     * null dMix) at j, MAX_MIXES + j and 2·MAX_MIXES + j. The dOuts are all F32 or all BF16 ({@code dOutType}: the
     * mixes' gradients as the GEMMs write them, gemmGradientDtype). Returns the OR of the dOut and mix addresses for
     * the alignment test, a bf16 dOut's doubled (the vector kernels need 8-byte bf16 rows).
     */
    private long tokenShiftGradientPtrs(String op, Tensor[] dOuts, DType dOutType, Tensor[] mixes, Tensor[] dMixes,
                                        int k, long n, int C) {
        long[] d = tokenShiftPtrs;
        long bits = 0;
        for (int j = 0; j < MAX_MIXES; j++) {
            CudaTensor dOut = j < k ? floatLike(dOuts[j], op, D_OUTS[j], n) : null;
            if (dOut != null && dOut.dtype != dOutType) {
                throw new IllegalArgumentException(op + ": the dOuts mix " + dOutType + " and " + dOut.dtype);
            }
            d[j] = dOut == null ? 0 : dOut.address;
            d[MAX_MIXES + j] = j < k ? f32(mixes[j], op, MIXES[j], C).address : 0;
            d[2 * MAX_MIXES + j] = j < k && dMixes != null ? optional(dMixes[j], op, D_MIXES[j], C) : 0;
            bits |= (dOutType == DType.BF16 ? 2 * d[j] : d[j]) | d[MAX_MIXES + j];
        }
        return bits;
    }

    /** dMix_j += the k mixes' column partials (slices each), into the dMix pointers of {@link #tokenShiftPtrs}. */
    private void finishMixes(long partial, int k, int slices, int C) {
        if (deferSums) {
            for (int j = 0; j < k; j++) {
                finishColumns(partial + 4L * j * slices * C, tokenShiftPtrs[2 * MAX_MIXES + j], slices, C);
            }
            return;
        }
        args.reset().ptr(partial);
        for (int j = 0; j < MAX_MIXES; j++) {
            args.ptr(tokenShiftPtrs[2 * MAX_MIXES + j]);
        }
        args.i32(slices).i32(C);
        tokenShiftFinish.launch(ceil(C, 32), k, 1, 32, FINISH_ROWS, 1, 0, stream, args);
    }

    private void tokenShiftMixesBackward(String op, Tensor[] dOuts, Tensor x, Tensor[] mixes, Tensor dx,
                                         Tensor[] dMixes, int B, int T, int C, boolean accumulate) {
        bind();
        long n = sequenceDims(op, B, T, C);
        int k = mixCount(op, mixes, dOuts, "dOuts", dMixes);
        int rows = tokenShiftRows(op, B, T);
        long[] d = tokenShiftPtrs;
        DType dOutType = own(dOuts[0], op, D_OUTS[0]).dtype;
        long bits = tokenShiftGradientPtrs(op, dOuts, dOutType, mixes, dMixes, k, n, C);
        long xs = f32(x, op, "x", n).address;
        long dxs = f32(dx, op, "dx", n).address;
        boolean anyMix = false;
        for (int j = 0; j < k; j++) {
            anyMix |= d[2 * MAX_MIXES + j] != 0;
        }
        if (n == 0) {
            return;
        }
        int slices = slices(rows);
        long partial = anyMix ? partials((long) k * slices * C) : 0;
        args.reset();
        for (int j = 0; j < MAX_MIXES; j++) {
            args.ptr(d[j]);
        }
        args.ptr(xs);
        for (int j = 0; j < MAX_MIXES; j++) {
            args.ptr(d[MAX_MIXES + j]);
        }
        args.ptr(dxs).ptr(partial).i32(k).i32(rows).i32(T).i32(C).i32(accumulate ? 1 : 0);
        if (dOutType == DType.BF16) {
            launchTokenShift(tokenShiftBwdBf16_4, tokenShiftBwdBf16_1, rows, C, bits | xs | dxs);
        } else {
            launchTokenShift(tokenShiftBwd4, tokenShiftBwd1, rows, C, bits | xs | dxs);
        }
        if (anyMix) {
            finishMixes(partial, k, slices, C);
        }
    }

    // ------------------------------------------------------------------------------------------------ LayerNorm + token shift

    /**
     * The fused kernels walk their rows one after another, so they take one wave of blocks (as many as the device holds
     * at once: a second, partial wave would leave most of it idle) of at least this many rows each, forward and
     * backward (whose blocks are the column-partial slices, ≤ LN_SHIFT_MAX_SLICES); -Dgosling.lnShiftRows=FWD,BWD for
     * measurements.
     */
    private static final int[] LN_SHIFT_ROWS = lnShiftRows(System.getProperty("gosling.lnShiftRows", "8,16"));
    private static final int LN_SHIFT_FWD_ROWS = LN_SHIFT_ROWS[0];
    private static final int LN_SHIFT_BWD_ROWS = LN_SHIFT_ROWS[1];
    private static final int LN_SHIFT_MAX_SLICES = 1024;
    /** Warps a block of the fused kernels may have (LTS_MAX_WARPS in token_shift.cu). */
    private static final int LN_SHIFT_MAX_WARPS = 16;
    /** Float4s of a row a thread of ln_token_shift_forward_rows (LTS_ROWS_J in token_shift.cu). */
    private static final int LN_SHIFT_ROWS_J = 2;
    /** Rows the _staged kernels copy ahead (LTS_ROWS_STAGES, LTS_BWD_STAGES): a shared-memory slot each, one more. */
    private static final int LN_SHIFT_ROWS_STAGES = 2;
    private static final int LN_SHIFT_BWD_STAGES = 2;

    /**
     * J (float4 a thread, 1 or 2) of the fused LayerNorm + token-shift kernels for rows of C channels at these
     * addresses ({@code addressBits}: or'ed, bf16 ones doubled), or 0 where the unfused ops must do: C % 4 != 0, C over
     * 4096, a row not 16-byte aligned (8 for bf16), or the fusion turned off.
     */
    private int lnShiftJ(int C, long addressBits) {
        if (!lnShiftFused || C % 4 != 0 || (addressBits & 15) != 0) {
            return 0;
        }
        int C4 = C / 4;
        return C4 <= 32 * LN_SHIFT_MAX_WARPS ? 1 : C4 <= 64 * LN_SHIFT_MAX_WARPS ? 2 : 0;
    }

    private static int[] lnShiftRows(String value) {
        String[] parts = value.split(",");
        int[] rows = {Integer.parseInt(parts[0].trim()), Integer.parseInt(parts[1].trim())};
        if (rows[0] < 1 || rows[1] < 1) {
            throw new IllegalArgumentException("gosling.lnShiftRows: " + value);
        }
        return rows;
    }

    /** Resident blocks per SM of a fused kernel at a block size (name + "/" + threads). */
    private final Map<String, Integer> lnShiftOccupancy = new HashMap<>();

    /**
     * One wave of blocks of the fused kernel k (threads a block, smem bytes of dynamic shared memory), each of at least
     * minRows of the rows.
     */
    private int lnShiftBlocks(Kernel k, int threads, int smem, int rows, int minRows) {
        int resident = lnShiftOccupancy.computeIfAbsent(k.name + "/" + threads + "/" + smem, key -> {
            int[] n = new int[1];
            Cuda.checkDriver(cuOccupancyMaxActiveBlocksPerMultiprocessor(n, k.function(), threads, smem),
                    "cuOccupancyMaxActiveBlocksPerMultiprocessor(" + k.name + ")");
            return Math.max(1, n[0]);
        });
        return Math.max(1, Math.min(ceil(rows, minRows), multiprocessors * resident));
    }

    /** Whether kernel k may take bytes of dynamic shared memory (opted in past 48 KiB, once per size it grows to). */
    private boolean sharedFits(Kernel k, int bytes) {
        if (bytes <= 48 * 1024 || sharedOptIn.getOrDefault(k.name, 0) >= bytes) {
            return true;
        }
        boolean ok = cuFuncSetAttribute(k.function(), CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes) == 0;
        if (ok) {
            sharedOptIn.put(k.name, bytes);
        }
        return ok;
    }

    /** The fused kernels' block: 32·W threads, W the fewest warps holding a row of C4 float4s at J a thread. */
    private static int lnShiftThreads(int C, int J) {
        return 32 * ceil(C / 4, 32 * J);
    }

    /** For {@link GpuBench} and the checks: the fused LayerNorm + token-shift kernels on or off (the unfused ops). */
    void useLnShiftFused(boolean fused) {
        lnShiftFused = fused;
    }

    @Override
    public void layerNormTokenShiftForward(Tensor x, Tensor lnWeight, Tensor lnBias, Tensor mean, Tensor rstd,
                                           boolean savedStats, Tensor[] mixes, Tensor[] outs, int B, int T, int C) {
        String op = "layerNormTokenShiftForward";
        bind();
        long n = sequenceDims(op, B, T, C);
        int k = mixCount(op, mixes, outs, "outs", null);
        int rows = tokenShiftRows(op, B, T);
        long xs = f32(x, op, "x", n).address;
        long w = f32(lnWeight, op, "lnWeight", C).address;
        long b = f32(lnBias, op, "lnBias", C).address;
        long mu = f32(mean, op, "mean", rows).address;
        long rs = f32(rstd, op, "rstd", rows).address;
        long bits = xs | w | b;
        DType outType = own(outs[0], op, OUTS[0]).dtype;
        for (int j = 0; j < k; j++) {
            CudaTensor o = floatLike(outs[j], op, OUTS[j], n);
            if (o.dtype != outType) {
                throw new IllegalArgumentException(op + ": the outputs mix " + outType + " and " + o.dtype);
            }
            // bf16 outputs need 8-byte alignment for the vector kernel: doubling their address checks that
            bits |= f32(mixes[j], op, MIXES[j], C).address | (outType == DType.BF16 ? 2 * o.address : o.address);
        }
        int J = lnShiftJ(C, bits);
        if (J == 0) {
            Backend.super.layerNormTokenShiftForward(x, lnWeight, lnBias, mean, rstd, savedStats, mixes, outs, B, T, C);
            return;
        }
        if (n == 0) {
            return;
        }
        args.reset().ptr(xs).ptr(w).ptr(b).ptr(mu).ptr(rs).i32(savedStats ? 1 : 0);
        for (int j = 0; j < MAX_MIXES; j++) {
            args.ptr(j < k ? ((CudaTensor) mixes[j]).address : 0);
        }
        for (int j = 0; j < MAX_MIXES; j++) {
            args.ptr(j < k ? ((CudaTensor) outs[j]).address : 0);
        }
        args.i32(k).i32(rows).i32(T).i32(C).f32((float) LAYER_NORM_EPS);
        Kernel kernel;
        int threads;
        int smem = 0;
        if (J == 1 && lnShiftFwdRowsOn && !(savedStats && k > 1)) {
            kernel = outType == DType.BF16 ? lnShiftFwdRowsBf16 : lnShiftFwdRows;
            threads = 32 * ceil(ceil(C / 4, 32), LN_SHIFT_ROWS_J);
            if (lnShiftStaged && !savedStats && k == 1) {
                kernel = outType == DType.BF16 ? lnShiftFwdRowsStagedBf16 : lnShiftFwdRowsStaged;
                smem = (LN_SHIFT_ROWS_STAGES + 1) * threads * (16 * LN_SHIFT_ROWS_J + 8);  // ≤ 30 KiB
            }
        } else {
            kernel = (outType == DType.BF16 ? lnShiftFwdBf16 : lnShiftFwd)[J - 1];
            threads = lnShiftThreads(C, J);
        }
        kernel.launch(lnShiftBlocks(kernel, threads, smem, rows, LN_SHIFT_FWD_ROWS), 1, 1, threads, 1, 1, smem, stream,
                args);
    }

    @Override
    public void layerNormTokenShiftBackward(Tensor[] dOuts, Tensor x, Tensor lnWeight, Tensor lnBias, Tensor mean,
                                            Tensor rstd, Tensor[] mixes, Tensor dx, Tensor dxCopy, boolean overwrite,
                                            Tensor dLnWeight, Tensor dLnBias, Tensor[] dMixes, int B, int T, int C) {
        String op = "layerNormTokenShiftBackward";
        bind();
        long n = sequenceDims(op, B, T, C);
        int k = mixCount(op, mixes, dOuts, "dOuts", dMixes);
        int rows = tokenShiftRows(op, B, T);
        long[] d = tokenShiftPtrs;
        DType dOutType = own(dOuts[0], op, D_OUTS[0]).dtype;
        long bits = tokenShiftGradientPtrs(op, dOuts, dOutType, mixes, dMixes, k, n, C);
        long xs = f32(x, op, "x", n).address;
        long w = f32(lnWeight, op, "lnWeight", C).address;
        long b = f32(lnBias, op, "lnBias", C).address;
        long mu = f32(mean, op, "mean", rows).address;
        long rs = f32(rstd, op, "rstd", rows).address;
        long dxs = f32(dx, op, "dx", n).address;
        CudaTensor copy = dxCopy == null ? null : floatLike(dxCopy, op, "dxCopy", n);
        long bf16Copy = copy != null && copy.dtype == DType.BF16 ? copy.address : 0;
        long dw = optional(dLnWeight, op, "dLnWeight", C);
        long db = optional(dLnBias, op, "dLnBias", C);
        int J = lnShiftJ(C, bits | xs | w | b | dxs | 2 * bf16Copy);
        if (J == 0) {
            Backend.super.layerNormTokenShiftBackward(dOuts, x, lnWeight, lnBias, mean, rstd, mixes, dx, dxCopy,
                    overwrite, dLnWeight, dLnBias, dMixes, B, T, C);
            return;
        }
        if (n == 0) {
            return;
        }
        // one column-partial slice per block: the k mixes' sums, then dWeight's and dBias's
        Kernel kernel = dOutType == DType.BF16 && J == 1 && !lnShiftPrefetch ? lnShiftBwdBf16Serial
                : (dOutType == DType.BF16 ? lnShiftBwdBf16 : lnShiftBwd)[J - 1];
        int threads = lnShiftThreads(C, J);
        int smem = 0;
        if (dOutType == DType.BF16 && J == 1 && lnShiftPrefetch && lnShiftStaged && C % 8 == 0) {
            long dOutBits = 0;
            for (int j = 0; j < k; j++) {
                dOutBits |= d[j];
            }
            // a slot: x of the row before, dx and the k dOuts of a row, the statistics (120 KiB at C = 2048, k = 6)
            int staged = (LN_SHIFT_BWD_STAGES + 1) * (8 * C + 2 * k * C + 16);
            if ((dOutBits & 15) == 0 && sharedFits(lnShiftBwdBf16Staged, staged)) {
                kernel = lnShiftBwdBf16Staged;
                smem = staged;
            }
        }
        int slices = Math.min(LN_SHIFT_MAX_SLICES, lnShiftBlocks(kernel, threads, smem, rows, LN_SHIFT_BWD_ROWS));
        long partial = partials((long) (k + 2) * slices * C);
        args.reset();
        for (int j = 0; j < MAX_MIXES; j++) {
            args.ptr(d[j]);
        }
        args.ptr(xs).ptr(w).ptr(b).ptr(mu).ptr(rs);
        for (int j = 0; j < MAX_MIXES; j++) {
            args.ptr(d[MAX_MIXES + j]);
        }
        args.ptr(dxs).ptr(bf16Copy).ptr(partial).i32(k).i32(rows).i32(T).i32(C).i32(overwrite ? 0 : 1);
        kernel.launch(slices, 1, 1, threads, 1, 1, smem, stream, args);
        if (copy != null && copy.dtype != DType.BF16) {
            copy(dx, dxCopy);
        }
        if (dMixes != null) {
            finishMixes(partial, k, slices, C);
        }
        finishColumns(partial + 4L * k * slices * C, dw, slices, C);
        finishColumns(partial + 4L * (k + 1) * slices * C, db, slices, C);
    }

    // ------------------------------------------------------------------------------------------------ linear

    /** BF16 under bf16 GEMMs: a model keeps the tensors only GEMMs read (token-shift mixes, …) in bf16. */
    @Override
    public DType gemmInputDtype(DType computeDtype) {
        return castsOperands() ? DType.BF16 : computeDtype;
    }

    /** BF16 under bf16 GEMMs, as {@link #gemmInputDtype}: the saved projections k, v, α, the v gate and g too. */
    @Override
    public DType savedActivationDtype(DType computeDtype) {
        return gemmInputDtype(computeDtype);
    }

    /** Whether {@link #wkvInputDtype} is BF16 under bf16 GEMMs: true unless -Dgosling.wkvInputs=f32 (for comparisons). */
    private static final boolean BF16_WKV_INPUTS = !"f32".equals(System.getProperty("gosling.wkvInputs"));

    /** BF16 under bf16 GEMMs, as {@link #savedActivationDtype} (the WKV7 kernels' _bf16 variants). */
    @Override
    public DType wkvInputDtype(DType computeDtype) {
        return BF16_WKV_INPUTS ? savedActivationDtype(computeDtype) : computeDtype;
    }

    /**
     * Whether {@link #gemmGradientDtype} is BF16 under bf16 GEMMs: true unless -Dgosling.gemmGradients=f32 (the fp32
     * gradients as before, for a whole-step comparison in one build).
     */
    private static final boolean BF16_GEMM_GRADIENTS = !"f32".equals(System.getProperty("gosling.gemmGradients"));

    /**
     * BF16 under bf16 GEMMs, as {@link #gemmInputDtype}: linear and LoRA backward then write such a dx in bf16 (fp32
     * accumulation, rounded once), relu²'s backward and the token-shift backward read such a dOut.
     */
    @Override
    public DType gemmGradientDtype(DType computeDtype) {
        return BF16_GEMM_GRADIENTS ? gemmInputDtype(computeDtype) : computeDtype;
    }

    /** Whether {@link #wkvGradientDtype} is BF16 under bf16 GEMMs: true unless -Dgosling.wkvGradients=f32. */
    private static final boolean BF16_WKV_GRADIENTS = !"f32".equals(System.getProperty("gosling.wkvGradients"));

    /**
     * BF16 where the WKV inputs are ({@link #wkvInputDtype}): lnxBonusGateBackward then writes dy in bf16 (with bf16
     * y, r, k, v), the WKV7 backward reads it and writes dr's sum and dwRaw in bf16 (the tensor-core kernels; the
     * serial ones through fp32 scratch), the GEMMs read them as they are.
     */
    @Override
    public DType wkvGradientDtype(DType computeDtype) {
        return BF16_WKV_GRADIENTS ? wkvInputDtype(computeDtype) : computeDtype;
    }

    /** dst = bf16(src), round to nearest even (the checks make bf16 inputs with it). */
    void roundToBf16(Tensor src, Tensor dst) {
        bind();
        CudaTensor s = f32(src, "roundToBf16", "src", own(src, "roundToBf16", "src").numel);
        CudaTensor d = own(dst, "roundToBf16", "dst");
        if (d.dtype != DType.BF16 || d.numel != s.numel) {
            throw new IllegalArgumentException("roundToBf16: dst " + d + " is not BF16 of " + s.numel + " elements");
        }
        if (s.numel > 0) {
            launch1d(castBf16, (s.numel + 3) / 4, args.reset().ptr(s.address).ptr(d.address).i64(s.numel));
        }
    }

    /** Sets how every later GEMM computes (see {@link GemmPrecision}); FP32 until set. */
    public void setGemmPrecision(GemmPrecision precision) {
        this.gemmPrecision = precision;
    }

    public GemmPrecision gemmPrecision() {
        return gemmPrecision;
    }

    /**
     * Row-major C[m, n] = op(A)[m, k]·op(B)[k, n] + beta·C, as cuBLAS's column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: fp32
     * operands and accumulation, products as {@link #gemmPrecision}.
     */
    private void gemm(boolean transA, boolean transB, int m, int n, int k, long a, int lda, long b, int ldb,
                      float beta, long c, int ldc) {
        gemm(transA, transB, m, n, k, a, false, lda, b, false, ldb, beta, c, ldc);
    }

    /**
     * As above; {@code aIsBf16}/{@code bIsBf16}: that operand is already the bf16 copy made by {@link #bf16Operand}
     * (an operand two GEMMs of one op read is cast once).
     */
    private void gemm(boolean transA, boolean transB, int m, int n, int k, long a, boolean aIsBf16, int lda, long b,
                      boolean bIsBf16, int ldb, float beta, long c, int ldc) {
        gemm(transA, transB, m, n, k, a, aIsBf16, lda, b, bIsBf16, ldb, beta, c, false, ldc);
    }

    /** As above; {@code cIsBf16}: C is written in bf16 (fp32 accumulation, rounded once; bf16 GEMMs only). */
    private void gemm(boolean transA, boolean transB, int m, int n, int k, long a, boolean aIsBf16, int lda, long b,
                      boolean bIsBf16, int ldb, float beta, long c, boolean cIsBf16, int ldc) {
        gemm(transA, transB, m, n, k, a, aIsBf16, lda, b, bIsBf16, ldb, beta, 0, c, cIsBf16, ldc, 0, false);
    }

    /** Whether a GEMM with this beta runs through cuBLASLt (which can also add a bias: {@link #gemm}'s last). */
    private boolean viaLt(float beta) {
        return gemmPrecision == GemmPrecision.BF16 && gemmLibrary != GemmLibrary.EX && (beta == 0f || beta == 1f);
    }

    /**
     * As above, with {@code beta·residual} added instead of beta·C when {@code residual} is not 0 (fp32, C's layout,
     * not aliasing C): through cuBLASLt, whose epilogue reads a C apart from D; else C = residual first, then the
     * product added to it. And {@code bias} (n fp32 values added to every row of C) when not 0: only where
     * {@link #viaLt}.
     */
    private void gemm(boolean transA, boolean transB, int m, int n, int k, long a, boolean aIsBf16, int lda, long b,
                      boolean bIsBf16, int ldb, float beta, long residual, long c, boolean cIsBf16, int ldc, long bias,
                      boolean biasBf16) {
        if (m == 0 || n == 0) {
            return;
        }
        boolean separateC = residual != 0 && residual != c;
        boolean viaLt = viaLt(beta);
        if (bias != 0 && !viaLt) {
            throw new IllegalStateException("a bias in the GEMM needs cuBLASLt (bf16 GEMMs, -Dgosling.gemm=lt or tuned)");
        }
        if (separateC && !viaLt) {
            long bytes = (long) (m - 1) * ldc * 4 + (long) n * 4;
            Cuda.check(cudaMemcpyAsync(pa.at(c), pb.at(residual), bytes, cudaMemcpyDeviceToDevice, stream), "cudaMemcpyAsync");
            separateC = false;
        }
        betaHost.put(0, beta);
        int operandType = CUDA_R_32F;
        if (gemmPrecision == GemmPrecision.BF16) {
            a = aIsBf16 ? a : bf16Operand(SLOT_A, a, transA ? k : m, transA ? m : k, lda);
            b = bIsBf16 ? b : bf16Operand(SLOT_B, b, transB ? n : k, transB ? k : n, ldb);
            operandType = CUDA_R_16BF;
        }
        long aa = a;
        long bb = b;
        int type = operandType;
        if (viaLt) {
            // the same column-major product as below, through a cuBLASLt plan
            LtGemms.Shape shape = new LtGemms.Shape(transB, transA, n, m, k, ldb, lda, ldc, CUDA_R_16BF,
                    cIsBf16 ? CUDA_R_16BF : CUDA_R_32F, beta != 0f, separateC, bias != 0, biasBf16);
            long cIn = separateC ? residual : c;
            LtGemms lt = ltGemms();
            LtGemms.Tuning tuning = new LtGemms.Tuning() {
                @Override
                public void viaGemmEx(long d) {
                    gemmEx(transA, transB, m, n, k, aa, lda, bb, ldb, type, d, cIsBf16, ldc);
                }

                @Override
                public double time(Runnable body) {
                    return CudaBackend.this.time(body);
                }

                @Override
                public long scratch(long bytes) {
                    return deviceAlloc(bytes, "a GEMM tuning output");
                }

                @Override
                public void freeScratch(long address) {
                    synchronize();
                    allocator.free(address);
                }
            };
            LaunchProfiler.around(() -> "gemm " + (transA ? "T" : "N") + (transB ? "T" : "N") + " " + m + "×" + n + "×" + k, stream,
                    () -> lt.matmul(shape, bb, aa, cIn, c, bias, tuning));
            return;
        }
        LaunchProfiler.around(() -> "gemm " + (transA ? "T" : "N") + (transB ? "T" : "N") + " " + m + "×" + n + "×" + k, stream,
                () -> gemmEx(transA, transB, m, n, k, aa, lda, bb, ldb, type, c, cIsBf16, ldc));
    }

    /** {@link #gemm}'s product through cublasGemmEx, beta from betaHost. */
    private void gemmEx(boolean transA, boolean transB, int m, int n, int k, long a, int lda, long b, int ldb,
                        int operandType, long c, boolean cIsBf16, int ldc) {
        cublasCheck(cublasGemmEx(cublasHandle, transB ? CUBLAS_OP_T : CUBLAS_OP_N,
                transA ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, one, pb.at(b), operandType, ldb, pa.at(a), operandType,
                lda, betaHost, pc.at(c), cIsBf16 ? CUDA_R_16BF : CUDA_R_32F, ldc, gemmPrecision.computeType,
                CUBLAS_GEMM_DEFAULT), "cublasGemmEx");
    }

    /**
     * Which cuBLAS API runs the bf16 GEMMs (-Dgosling.gemm=ex|lt|tuned). TUNED by default: on an H100 the step took
     * 168.5 ms against 170.9 (LT) and 171.4 (EX) at L12-D768 ctx 4096 bsz 8, 507.3 against 513.8 and 514.1 at
     * L24-D2048 ctx 4096 bsz 4 (kernels/NOTES.md). Its choice is timed, so two processes may pick different
     * algorithms for a shape and differ in the last bits; LT is a fixed choice.
     */
    enum GemmLibrary {
        /** cublasGemmEx with its default algorithm. */
        EX,
        /** cuBLASLt, its first candidate per shape. */
        LT,
        /** cuBLASLt, the fastest of its candidates per shape, timed on the shape's first call. */
        TUNED;

        static GemmLibrary of(String name) {
            return switch (name == null ? "tuned" : name) {
                case "ex" -> EX;
                case "tuned" -> TUNED;
                case "lt" -> LT;
                default -> throw new IllegalArgumentException("-Dgosling.gemm=" + name + ": use ex, lt or tuned");
            };
        }
    }

    /** The split-K workspace of the cuBLASLt plans. */
    static final long LT_WORKSPACE_BYTES = 32L << 20;

    /** The cuBLASLt plans, made on the first bf16 GEMM that uses them. */
    private LtGemms ltGemms() {
        if (ltGemms == null || ltGemms.select() != (gemmLibrary == GemmLibrary.TUNED ? LtGemms.Select.TUNED : LtGemms.Select.HEURISTIC)) {
            if (ltGemms != null) {
                synchronize();
                ltGemms.close();
                allocator.free(ltWorkspace);
            }
            ltWorkspace = deviceAlloc(LT_WORKSPACE_BYTES, "the cuBLASLt workspace");
            ltGemms = new LtGemms(stream, ltWorkspace, LT_WORKSPACE_BYTES,
                    gemmLibrary == GemmLibrary.TUNED ? LtGemms.Select.TUNED : LtGemms.Select.HEURISTIC);
        }
        return ltGemms;
    }

    /** Sets the library of the bf16 GEMMs (benchmarks compare them). */
    void useGemmLibrary(GemmLibrary library) {
        this.gemmLibrary = library;
    }

    GemmLibrary gemmLibrary() {
        return gemmLibrary;
    }

    /** The cuBLASLt plans (made if needed), for benchmarks that time every candidate. */
    LtGemms ltPlans() {
        return ltGemms();
    }

    /**
     * Row-major C[m, n] = op(A)·op(B) (+ C when {@code accumulate}) on bf16 operands already on the device (row-major,
     * packed), through the current library: for the GEMM benchmark.
     */
    void gemmBf16(boolean transA, boolean transB, int m, int n, int k, long a, long b, boolean accumulate, long c,
                  boolean cBf16) {
        bind();
        gemm(transA, transB, m, n, k, a, true, transA ? m : k, b, true, transB ? k : n, accumulate ? 1f : 0f, c, cBf16, n);
    }

    /** Whether GEMM operands are cast to bf16 (then an op may cast a shared operand once, {@link #bf16Operand}). */
    private boolean castsOperands() {
        return gemmPrecision == GemmPrecision.BF16;
    }

    /**
     * The bf16 copy of a row-major fp32 operand of {@code rows} rows of {@code cols} values {@code ld} apart, in
     * scratch {@code slot} (same layout); returns its address. The held weight ({@link #holdGemmOperand}) is not
     * cast again.
     */
    private long bf16Operand(int slot, long address, int rows, int cols, int ld) {
        if (rows == 0 || cols == 0) {
            return address; // k = 0: cuBLAS reads no operand
        }
        long n = (long) (rows - 1) * ld + cols;
        if (heldBf16 != 0 && address >= heldAddress && address + 4 * n <= heldAddress + 4 * heldNumel) {
            return heldBf16 + (address - heldAddress) / 2;
        }
        long copy = bf16Slot(slot, n);
        launch1d(castBf16, (n + 3) / 4, args.reset().ptr(address).ptr(copy).i64(n));
        return copy;
    }

    /** The scratch of bf16 operand {@code slot}, grown to hold n values. */
    private long bf16Slot(int slot, long n) {
        if (bf16OperandBytes[slot] < 2 * n) {
            if (bf16Operand[slot] != 0) {
                allocator.free(bf16Operand[slot]);
            }
            bf16Operand[slot] = deviceAlloc(2 * n, "bf16 GEMM operand");
            bf16OperandBytes[slot] = 2 * n;
        }
        return bf16Operand[slot];
    }

    /**
     * Under bf16 GEMMs, casts {@code weight} once and lets every GEMM read that copy until {@link #releaseGemmOperand}
     * (the head's weight is read by three GEMMs of every row chunk). The caller must not change the weight meanwhile.
     */
    @Override
    public void holdGemmOperand(Tensor weight) {
        bind();
        releaseGemmOperand();
        if (!castsOperands()) {
            return;
        }
        CudaTensor w = f32(weight, "holdGemmOperand", "weight", own(weight, "holdGemmOperand", "weight").numel);
        if (w.numel == 0) {
            return;
        }
        heldBf16 = deviceAlloc(2 * w.numel, "bf16 copy of a weight");
        heldOwned = true;
        heldAddress = w.address;
        heldNumel = w.numel;
        launch1d(castBf16, (w.numel + 3) / 4, args.reset().ptr(w.address).ptr(heldBf16).i64(w.numel));
    }

    /** BF16 under bf16 GEMMs, unless -Dgosling.weightCopy=false; null otherwise (fp32 GEMMs read the weights). */
    @Override
    public DType gemmWeightCopyDtype(DType computeDtype) {
        return castsOperands() && WEIGHT_COPY ? DType.BF16 : null;
    }

    /** A BF16 copy: the GEMM operand cast (cast_f32_bf16, round to nearest even); an F32 one: a plain copy. */
    @Override
    public void convertGemmWeight(Tensor weight, Tensor copy) {
        bind();
        CudaTensor c = own(copy, "convertGemmWeight", "copy");
        if (c.dtype == DType.BF16) {
            roundToBf16(weight, copy);
        } else {
            copy(weight, copy);
        }
    }

    /**
     * Under bf16 GEMMs, holds {@code weight} with its bf16 copy in {@code copy} (cast there first when {@code convert});
     * the GEMMs read the copy until {@link #releaseGemmOperand}, which leaves it to the caller. Under fp32 GEMMs nothing
     * (the GEMMs read the weight; the copy is neither read nor written).
     */
    @Override
    public void holdGemmOperand(Tensor weight, Tensor copy, boolean convert) {
        String op = "holdGemmOperand";
        bind();
        releaseGemmOperand();
        CudaTensor w = f32(weight, op, "weight", own(weight, op, "weight").numel);
        CudaTensor c = own(copy, op, "copy");
        if (c.dtype != DType.BF16 || c.numel != w.numel) {
            throw new IllegalArgumentException(op + ": copy is " + c.numel + " × " + c.dtype + ", expected " + w.numel + " × BF16");
        }
        if (!castsOperands() || w.numel == 0) {
            return;
        }
        if (convert) {
            launch1d(castBf16, (w.numel + 3) / 4, args.reset().ptr(w.address).ptr(c.address).i64(w.numel));
        }
        heldBf16 = c.address;
        heldOwned = false;
        heldAddress = w.address;
        heldNumel = w.numel;
    }

    @Override
    public void releaseGemmOperand() {
        if (heldBf16 != 0) {
            if (heldOwned) {
                allocator.free(heldBf16);
            }
            heldBf16 = 0;
            heldOwned = false;
            heldAddress = 0;
            heldNumel = 0;
        }
    }

    @Override
    public void linearForwardResidual(Tensor x, Tensor weight, Tensor residual, Tensor out, int rows, int in, int outDim) {
        String op = "linearForwardResidual";
        bind();
        dims(op, rows, in, outDim);
        CudaTensor xt = gemmInput(x, op, "x", (long) rows * in);
        long w = f32(weight, op, "weight", (long) outDim * in).address;
        long res = f32(residual, op, "residual", (long) rows * outDim).address;
        long o = f32(out, op, "out", (long) rows * outDim).address;
        if (res == o) {
            throw new IllegalArgumentException(op + ": residual and out are the same tensor");
        }
        if (in == 0) {
            copy(residual, out);
            return;
        }
        gemm(false, true, rows, outDim, in, xt.address, xt.dtype == DType.BF16, in, w, false, in, 1f, res, o, false, outDim, 0, false);
    }

    @Override
    public void linearForward(Tensor x, Tensor weight, Tensor out, int rows, int in, int outDim) {
        String op = "linearForward";
        bind();
        dims(op, rows, in, outDim);
        CudaTensor xt = gemmInput(x, op, "x", (long) rows * in);
        long w = f32(weight, op, "weight", (long) outDim * in).address;
        CudaTensor o = gemmInput(out, op, "out", (long) rows * outDim); // bf16 only under bf16 GEMMs
        gemm(false, true, rows, outDim, in, xt.address, xt.dtype == DType.BF16, in, w, false, in, 0f, o.address,
                o.dtype == DType.BF16, outDim);
    }

    @Override
    public void linearBackward(Tensor dOut, Tensor x, Tensor weight, Tensor dx, Tensor dWeight,
                               int rows, int in, int outDim) {
        linearBackward("linearBackward", dOut, x, weight, dx, dWeight, rows, in, outDim, 1f, 1f);
    }

    @Override
    public void linearBackwardOverwritingDx(Tensor dOut, Tensor x, Tensor weight, Tensor dx, Tensor dWeight,
                                            int rows, int in, int outDim) {
        linearBackward("linearBackwardOverwritingDx", dOut, x, weight, dx, dWeight, rows, in, outDim, 0f, 1f);
    }

    @Override
    public void linearBackwardOverwriting(Tensor dOut, Tensor x, Tensor weight, Tensor dx, Tensor dWeight,
                                          int rows, int in, int outDim) {
        linearBackward("linearBackwardOverwriting", dOut, x, weight, dx, dWeight, rows, in, outDim, 0f, 0f);
    }

    /**
     * dxBeta 1: dx accumulates; 0: dx is written. dwBeta likewise for dWeight (0: the GEMM does not read the old
     * dWeight, which need not be zeroed).
     */
    private void linearBackward(String op, Tensor dOut, Tensor x, Tensor weight, Tensor dx, Tensor dWeight,
                                int rows, int in, int outDim, float dxBeta, float dwBeta) {
        bind();
        dims(op, rows, in, outDim);
        CudaTensor dt = gemmInput(dOut, op, "dOut", (long) rows * outDim);
        long d = dt.address;
        CudaTensor xt = gemmInput(x, op, "x", (long) rows * in);
        long xs = xt.address;
        long w = f32(weight, op, "weight", (long) outDim * in).address;
        CudaTensor dxt = dx == null ? null : gemmOutput(dx, op, "dx", (long) rows * in);
        long dxs = dxt == null ? 0 : dxt.address;
        long dw = optional(dWeight, op, "dWeight", (long) outDim * in);
        if (rows == 0 || in == 0 || outDim == 0) {
            // an empty sum, written
            if (dxs != 0 && dxBeta == 0f && rows > 0 && in > 0) {
                zero(dx);
            }
            if (dw != 0 && dwBeta == 0f && in > 0 && outDim > 0) {
                zero(dWeight);
            }
            return;
        }
        // dOut is read by both GEMMs: cast once (or not at all when it is already bf16)
        boolean shared = dt.dtype == DType.BF16;
        if (!shared && castsOperands() && dxs != 0 && dw != 0) {
            d = bf16Operand(SLOT_SHARED, d, rows, outDim, outDim);
            shared = true;
        }
        if (dxs != 0) {
            // a bf16 dx: rounded once when written (dxBeta 0); added to (dxBeta 1), it is read and rounded again
            gemm(false, false, rows, in, outDim, d, shared, outDim, w, false, in, dxBeta, dxs, dxt.dtype == DType.BF16, in);
        }
        if (dw != 0) {
            gemm(true, false, outDim, in, rows, d, shared, outDim, xs, xt.dtype == DType.BF16, in, dwBeta, dw, in);
        }
    }

    @Override
    public void loraForward(Tensor x, Tensor down, Tensor up, Tensor bias, Activation hiddenAct, Activation outAct,
                            Tensor hidden, Tensor out, int rows, int in, int rank, int outDim) {
        String op = "loraForward";
        bind();
        dims(op, rows, in, rank, outDim);
        activations(op, hiddenAct, outAct);
        CudaTensor xt = gemmInput(x, op, "x", (long) rows * in);
        long dn = f32(down, op, "down", (long) in * rank).address;
        long u = f32(up, op, "up", (long) rank * outDim).address;
        long bs = optional(bias, op, "bias", outDim);
        long h = f32(hidden, op, "hidden", (long) rows * rank).address;
        CudaTensor ot = gemmInput(out, op, "out", (long) rows * outDim); // bf16: a saved projection kept in bf16
        long o = ot.address;
        if (rows == 0) {
            return;
        }
        gemm(false, false, rows, rank, in, xt.address, xt.dtype == DType.BF16, in, dn, false, rank, 0f, h, rank);
        // the up GEMM's operand: under bf16 GEMMs the activation writes the hidden's bf16 copy as it goes (no cast)
        long hn = (long) rows * rank;
        long hOp = h;
        boolean hBf16 = castsOperands() && hiddenAct != Activation.NONE;
        if (hBf16) {
            hOp = bf16Slot(SLOT_SHARED2, hn);
            launch1d(activateBf16Copy, hn, args.reset().ptr(h).i32(hiddenAct.ordinal()).ptr(hOp).i64(hn));
        } else {
            activate(h, 0, hiddenAct, hn, rank);
        }
        long n = (long) rows * outDim;
        if (ot.dtype != DType.BF16 && bs != 0 && outAct == Activation.NONE && viaLt(0f)) {
            // the bias added by the GEMM's epilogue (the decay LoRA's w0): no pass over out
            gemm(false, false, rows, outDim, rank, hOp, hBf16, rank, u, false, outDim, 0f, 0, o, false, outDim, bs, false);
        } else if (ot.dtype != DType.BF16) {
            gemm(false, false, rows, outDim, rank, hOp, hBf16, rank, u, false, outDim, 0f, o, outDim);
            activate(o, bs, outAct, n, outDim);
        } else if (bs == 0 && outAct == Activation.NONE) {
            gemm(false, false, rows, outDim, rank, hOp, hBf16, rank, u, false, outDim, 0f, o, true, outDim);
        } else if (outAct == Activation.NONE && viaLt(0f) && bf16LoraBias) {
            // the decay LoRA's w0 into a bf16 wRaw, a0 and v0 into the bf16 α and v-gate pre-activations, by the GEMM's
            // epilogue: cuBLASLt (13.1) refuses an fp32 bias with a bf16 D, so the bias is cast to bf16 first (outDim
            // values; as the reference's bf16 parameters), not the product (rows·outDim values written in fp32 and
            // cast: -Dgosling.loraBias=f32)
            long b16 = bf16Slot(SLOT_SHARED, outDim);
            launch1d(castBf16, (outDim + 3) / 4, args.reset().ptr(bs).ptr(b16).i64(outDim));
            gemm(false, false, rows, outDim, rank, hOp, hBf16, rank, u, false, outDim, 0f, 0, o, true, outDim, b16, true);
        } else if (outAct == Activation.NONE && viaLt(0f)) {
            // the fp32 product with the bias in its epilogue, then one vectorised cast (rounded once, as
            // bias_activate_bf16)
            long z = loraScratch(n);
            gemm(false, false, rows, outDim, rank, hOp, hBf16, rank, u, false, outDim, 0f, 0, z, false, outDim, bs, false);
            launch1d(castBf16, (n + 3) / 4, args.reset().ptr(z).ptr(o).i64(n));
        } else {
            // the fp32 product, then bias and activation rounded once into the bf16 out
            long z = loraScratch(n);
            gemm(false, false, rows, outDim, rank, hOp, hBf16, rank, u, false, outDim, 0f, z, outDim);
            launch1d(biasActivateBf16, n, args.reset().ptr(z).ptr(bs).i32(outAct.ordinal()).ptr(o).i64(n).i32(outDim));
        }
    }

    /** fp32 scratch of n floats for a LoRA output kept in bf16 before its bias and activation (grows, is reused). */
    private long loraScratch(long n) {
        if (loraScratchBytes < 4 * n) {
            if (loraScratch != 0) {
                allocator.free(loraScratch);
            }
            loraScratch = deviceAlloc(4 * n, "LoRA output scratch");
            loraScratchBytes = 4 * n;
        }
        return loraScratch;
    }

    private void activate(long y, long bias, Activation act, long n, int cols) {
        if ((bias == 0 && act == Activation.NONE) || n == 0) {
            return;
        }
        launch1d(biasActivate, n, args.reset().ptr(y).ptr(bias).i32(act.ordinal()).i64(n).i32(cols));
    }

    @Override
    public void loraBackward(Tensor dOut, Tensor x, Tensor down, Tensor up, Tensor bias, Activation hiddenAct,
                             Activation outAct, Tensor hidden, Tensor out, Tensor dPreScratch, Tensor dHiddenScratch,
                             Tensor dx, Tensor dDown, Tensor dUp, Tensor dBias, int rows, int in, int rank, int outDim) {
        loraBackward("loraBackward", dOut, x, down, up, bias, hiddenAct, outAct, hidden, out, dPreScratch,
                dHiddenScratch, dx, dDown, dUp, dBias, rows, in, rank, outDim, 1f, true);
    }

    @Override
    public void loraBackwardOverwritingDx(Tensor dOut, Tensor x, Tensor down, Tensor up, Tensor bias,
                                          Activation hiddenAct, Activation outAct, Tensor hidden, Tensor out,
                                          Tensor dPreScratch, Tensor dHiddenScratch, Tensor dx, Tensor dDown,
                                          Tensor dUp, Tensor dBias, int rows, int in, int rank, int outDim) {
        loraBackward("loraBackwardOverwritingDx", dOut, x, down, up, bias, hiddenAct, outAct, hidden, out, dPreScratch,
                dHiddenScratch, dx, dDown, dUp, dBias, rows, in, rank, outDim, 0f, true);
    }

    @Override
    public void loraBackwardOverwritingWeights(Tensor dOut, Tensor x, Tensor down, Tensor up, Tensor bias,
                                               Activation hiddenAct, Activation outAct, Tensor hidden, Tensor out,
                                               Tensor dPreScratch, Tensor dHiddenScratch, Tensor dx, Tensor dDown,
                                               Tensor dUp, Tensor dBias, int rows, int in, int rank, int outDim) {
        loraBackward("loraBackwardOverwritingWeights", dOut, x, down, up, bias, hiddenAct, outAct, hidden, out,
                dPreScratch, dHiddenScratch, dx, dDown, dUp, dBias, rows, in, rank, outDim, 1f, false);
    }

    @Override
    public void loraBackwardOverwriting(Tensor dOut, Tensor x, Tensor down, Tensor up, Tensor bias,
                                        Activation hiddenAct, Activation outAct, Tensor hidden, Tensor out,
                                        Tensor dPreScratch, Tensor dHiddenScratch, Tensor dx, Tensor dDown,
                                        Tensor dUp, Tensor dBias, int rows, int in, int rank, int outDim) {
        loraBackward("loraBackwardOverwriting", dOut, x, down, up, bias, hiddenAct, outAct, hidden, out, dPreScratch,
                dHiddenScratch, dx, dDown, dUp, dBias, rows, in, rank, outDim, 0f, false);
    }

    /**
     * dxBeta 1: dx accumulates; 0: dx is written. {@code addWeights}: dDown, dUp and dBias accumulate; false: they are
     * written (their GEMMs with beta 0, the bias's column sums stored).
     */
    private void loraBackward(String op, Tensor dOut, Tensor x, Tensor down, Tensor up, Tensor bias,
                              Activation hiddenAct, Activation outAct, Tensor hidden, Tensor out, Tensor dPreScratch,
                              Tensor dHiddenScratch, Tensor dx, Tensor dDown, Tensor dUp, Tensor dBias, int rows,
                              int in, int rank, int outDim, float dxBeta, boolean addWeights) {
        bind();
        dims(op, rows, in, rank, outDim);
        activations(op, hiddenAct, outAct);
        long outN = (long) rows * outDim;
        // a bf16 dOut (dG, the α and v-gate pre-activations' gradients: written so by the op before; bf16 GEMMs only);
        // through an output activation only from a bf16 out (the activation's backward kernel reads both in bf16)
        CudaTensor dt = gemmInput(dOut, op, "dOut", outN);
        long d = dt.address;
        CudaTensor xt = gemmInput(x, op, "x", (long) rows * in);
        long xs = xt.address;
        long dn = f32(down, op, "down", (long) in * rank).address;
        long u = f32(up, op, "up", (long) rank * outDim).address;
        long bs = optional(bias, op, "bias", outDim);
        long h = f32(hidden, op, "hidden", (long) rows * rank).address;
        CudaTensor ot = floatLike(out, op, "out", outN);
        long o = ot.address;
        long dPre = outAct == Activation.NONE ? optional(dPreScratch, op, "dPreScratch", outN)
                : f32(dPreScratch, op, "dPreScratch", outN).address;
        long dh = f32(dHiddenScratch, op, "dHiddenScratch", (long) rows * rank).address;
        CudaTensor dxt = gemmOutput(dx, op, "dx", (long) rows * in);
        long dxs = dxt.address;
        long ddn = optional(dDown, op, "dDown", (long) in * rank);
        long du = optional(dUp, op, "dUp", (long) rank * outDim);
        long db = optional(dBias, op, "dBias", outDim);
        boolean biasGrad = bs != 0 && db != 0;
        if (rows == 0) {
            if (!addWeights) {
                // empty sums, written
                for (Tensor g : new Tensor[] {ddn == 0 ? null : dDown, du == 0 ? null : dUp, biasGrad ? dBias : null}) {
                    if (g != null) {
                        zero(g);
                    }
                }
            }
            return;
        }
        float weightBeta = addWeights ? 1f : 0f;
        long preOperand;
        boolean preShared;
        // already the bf16 operand (dG; the α and v-gate pre-activations' gradients, written so by the key preparation
        // and the value residual; the decay LoRA's dwRaw, written so by the WKV7 backward: wkvGradientDtype): the
        // GEMMs read it as it is, and a bias gradient takes only its column sums (no bf16 copy written)
        boolean dOutIsOperand = dt.dtype == DType.BF16 && outAct == Activation.NONE;
        if (dOutIsOperand || (castsOperands() && (outAct != Activation.NONE || biasGrad))) {
            // under bf16 GEMMs, one pass: the activation's backward written in bf16 for both GEMMs (unless dOut is
            // that operand already), with the bias gradient's column sums
            long dz = dOutIsOperand ? 0 : bf16Slot(SLOT_SHARED, outN);
            preOperand = dOutIsOperand ? d : dz;
            preShared = true;
            if (dz == 0 && biasGrad && columnSumsBf16Fits(d, outDim)) {
                // only the bias gradient, from the bf16 operand: 16-byte loads, finished in the same launch
                addColumnSumsBf16(d, db, rows, outDim, addWeights);
            } else if (dz != 0 || biasGrad) {
                int slices = slices(rows);
                long partial = biasGrad ? partials((long) slices * outDim) : 0;
                args.reset().ptr(d).ptr(outAct == Activation.NONE ? 0 : o).i32(outAct.ordinal()).ptr(dz)
                        .ptr(partial).i32(rows).i32(outDim);
                if (dt.dtype == DType.BF16 && outAct != Activation.NONE && ot.dtype != DType.BF16) {
                    throw new IllegalArgumentException(op + ": a bf16 dOut through an output activation needs a bf16 out");
                }
                // two columns a thread (pair loads and stores) where C is even and every pointer is aligned to a pair
                boolean pairs = outDim % 2 == 0 && d % (2L * dt.dtype.bytes) == 0 && dz % 4 == 0
                        && (outAct == Activation.NONE || o % (2L * ot.dtype.bytes) == 0);
                if (pairs) {
                    (dt.dtype == DType.BF16 ? activationBwdColumns2Bf16YD : ot.dtype == DType.BF16
                            ? activationBwdColumns2Bf16Y : activationBwdColumns2)
                            .launch(ceil(outDim, 64), slices, 1, 32, 8, 1, 0, stream, args);
                } else {
                    (dt.dtype == DType.BF16 ? activationBwdColumnsBf16YD : ot.dtype == DType.BF16
                            ? activationBwdColumnsBf16Y : activationBwdColumns)
                            .launch(ceil(outDim, 32), slices, 1, 32, 8, 1, 0, stream, args);
                }
                if (biasGrad) {
                    finishColumns(partial, db, slices, outDim, addWeights);
                }
            }
        } else {
            long pre = d;
            if (outAct != Activation.NONE) {
                pre = dPre;
                launch1d(ot.dtype == DType.BF16 ? activationBwdBf16Y : activationBwd, outN,
                        args.reset().ptr(d).ptr(o).i32(outAct.ordinal()).ptr(pre).i64(outN));
            }
            if (biasGrad) {
                int slices = slices(rows);
                long partial = partials((long) slices * outDim);
                args.reset().ptr(pre).ptr(partial).i32(rows).i32(outDim);
                columnPartial.launch(ceil(outDim, 32), slices, 1, 32, 8, 1, 0, stream, args);
                finishColumns(partial, db, slices, outDim, addWeights);
            }
            // pre is read by two GEMMs: under bf16 GEMMs it is cast once
            preShared = castsOperands() && du != 0;
            preOperand = preShared ? bf16Operand(SLOT_SHARED, pre, rows, outDim, outDim) : pre;
        }
        if (du != 0) {
            gemm(true, false, rank, outDim, rows, h, false, rank, preOperand, preShared, outDim, weightBeta, du, outDim);
        }
        // under bf16 GEMMs dh goes to the two GEMMs that read it in bf16: written so by its GEMM (no hidden
        // activation) or by the hidden activation's backward
        long hn = (long) rows * rank;
        boolean dhShared = castsOperands();
        long dhOperand = dhShared ? bf16Slot(SLOT_SHARED2, hn) : dh;
        boolean gemmWritesBf16 = dhShared && hiddenAct == Activation.NONE;
        gemm(false, true, rows, rank, outDim, preOperand, preShared, outDim, u, false, outDim, 0f,
                gemmWritesBf16 ? dhOperand : dh, gemmWritesBf16, rank);
        if (hiddenAct != Activation.NONE) {
            launch1d(dhShared ? activationBwdBf16Dz : activationBwd, hn,
                    args.reset().ptr(dh).ptr(h).i32(hiddenAct.ordinal()).ptr(dhOperand).i64(hn));
        }
        if (ddn != 0) {
            gemm(true, false, in, rank, rows, xs, xt.dtype == DType.BF16, in, dhOperand, dhShared, rank, weightBeta, ddn, rank);
        }
        // a bf16 dx: rounded once when written; added to (dxBeta 1: the v LoRA's share of dx_v), rounded again
        gemm(false, true, rows, in, rank, dhOperand, dhShared, rank, dn, false, rank, dxBeta, dxs,
                dxt.dtype == DType.BF16, in);
    }

    // ------------------------------------------------------------------------------------------------ time mix pieces

    @Override
    public void valueResidualForward(Tensor v, Tensor vFirst, Tensor gatePre, Tensor out, int rows, int C) {
        String op = "valueResidualForward";
        bind();
        long n = elementwise(op, rows, C);
        boolean bf16 = savedPair(op, v, "v", gatePre, "gatePre", n);
        // vFirst and out bf16 (the WKV7 kernel's v): with bf16 v and gatePre only
        boolean bf16All = savedPair(op, vFirst, "vFirst", out, "out", n);
        if (bf16All && !bf16) {
            throw new IllegalArgumentException(op + ": a bf16 vFirst and out need bf16 v and gatePre");
        }
        args.reset().ptr(own(v, op, "v").address).ptr(own(vFirst, op, "vFirst").address)
                .ptr(own(gatePre, op, "gatePre").address).ptr(own(out, op, "out").address).i64(n);
        if (n > 0) {
            launch1d(bf16All ? valueResidualFwdBf16All : bf16 ? valueResidualFwdBf16 : valueResidualFwd, n, args);
        }
    }

    @Override
    public void valueResidualBackward(Tensor dOut, Tensor v, Tensor vFirst, Tensor gatePre,
                                      Tensor dv, Tensor dvFirst, Tensor dGatePre, int rows, int C) {
        valueResidualBackward("valueResidualBackward", dOut, v, vFirst, gatePre, dv, dvFirst, dGatePre, rows, C, true);
    }

    @Override
    public void valueResidualBackwardOverwriting(Tensor dOut, Tensor v, Tensor vFirst, Tensor gatePre, Tensor dv,
                                                 Tensor dvFirst, Tensor dGatePre, int rows, int C) {
        valueResidualBackward("valueResidualBackwardOverwriting", dOut, v, vFirst, gatePre, dv, dvFirst, dGatePre, rows,
                C, false);
    }

    private void valueResidualBackward(String op, Tensor dOut, Tensor v, Tensor vFirst, Tensor gatePre, Tensor dv,
                                       Tensor dvFirst, Tensor dGatePre, int rows, int C, boolean accumulate) {
        bind();
        long n = elementwise(op, rows, C);
        boolean bf16 = savedPair(op, v, "v", gatePre, "gatePre", n);
        CudaTensor dvt = bf16GradientOut(op, dv, "dv", n, accumulate, bf16);
        CudaTensor dgt = bf16GradientOut(op, dGatePre, "dGatePre", n, accumulate, bf16);
        if (dgt.dtype == DType.BF16 && dvt.dtype != DType.BF16) {
            throw new IllegalArgumentException(op + ": a bf16 dGatePre needs a bf16 dv");
        }
        CudaTensor vf = floatLike(vFirst, op, "vFirst", n);
        if (vf.dtype == DType.BF16 && dgt.dtype != DType.BF16) {
            throw new IllegalArgumentException(op
                    + ": a bf16 vFirst needs bf16 dv and dGatePre (the model's combination)");
        }
        args.reset().ptr(f32(dOut, op, "dOut", n).address).ptr(own(v, op, "v").address)
                .ptr(vf.address).ptr(own(gatePre, op, "gatePre").address)
                .ptr(dvt.address).ptr(f32(dvFirst, op, "dvFirst", n).address)
                .ptr(dgt.address).i64(n).i32(accumulate ? 1 : 0);
        if (n > 0) {
            launch1d(vf.dtype == DType.BF16 ? valueResidualBwdBf16DvDgVf : dgt.dtype == DType.BF16 ? valueResidualBwdBf16DvDg
                    : dvt.dtype == DType.BF16 ? valueResidualBwdBf16Dv : bf16 ? valueResidualBwdBf16 : valueResidualBwd, n, args);
        }
    }

    @Override
    public void keyPrepareForward(Tensor k, Tensor alphaPre, Tensor kK, Tensor kA, Tensor kTilde, Tensor a, Tensor b,
                                  int rows, int C) {
        String op = "keyPrepareForward";
        bind();
        long n = elementwise(op, rows, C);
        heads(op, C);
        long units = (long) rows * (C / N);
        boolean bf16 = savedPair(op, k, "k", alphaPre, "alphaPre", n);
        // κ̃, a, b: all F32, or all BF16 (the WKV7 kernel's bf16 inputs; from bf16 k and alphaPre only)
        boolean bf16Out = sameFloatType(op, n, new Tensor[] {kTilde, a, b}, "kTilde", "a", "b");
        if (bf16Out && !bf16) {
            throw new IllegalArgumentException(op + ": bf16 kTilde, a and b need bf16 k and alphaPre");
        }
        args.reset().ptr(own(k, op, "k").address).ptr(own(alphaPre, op, "alphaPre").address)
                .ptr(f32(kK, op, "kK", C).address).ptr(f32(kA, op, "kA", C).address)
                .ptr(own(kTilde, op, "kTilde").address).ptr(own(a, op, "a").address)
                .ptr(own(b, op, "b").address).i64(units).i32(C);
        if (units > 0) {
            // eight lanes per (row, head)
            (bf16Out ? keyPrepareFwdBf16Out : bf16 ? keyPrepareFwdBf16 : keyPrepareFwd)
                    .launch(blocks(units * 8), 1, 1, THREADS, 1, 1, 0, stream, args);
        }
    }

    @Override
    public void keyPrepareBackward(Tensor dKTilde, Tensor dA, Tensor dB, Tensor k, Tensor alphaPre, Tensor kK,
                                   Tensor kA, Tensor dk, Tensor dAlphaPre, Tensor dKK, Tensor dKA, int rows, int C) {
        keyPrepareBackward("keyPrepareBackward", dKTilde, dA, dB, k, alphaPre, kK, kA, dk, dAlphaPre, dKK, dKA, rows,
                C, true);
    }

    @Override
    public void keyPrepareBackwardOverwriting(Tensor dKTilde, Tensor dA, Tensor dB, Tensor k, Tensor alphaPre,
                                              Tensor kK, Tensor kA, Tensor dk, Tensor dAlphaPre, Tensor dKK, Tensor dKA,
                                              int rows, int C) {
        keyPrepareBackward("keyPrepareBackwardOverwriting", dKTilde, dA, dB, k, alphaPre, kK, kA, dk, dAlphaPre, dKK,
                dKA, rows, C, false);
    }

    private void keyPrepareBackward(String op, Tensor dKTilde, Tensor dA, Tensor dB, Tensor k, Tensor alphaPre,
                                    Tensor kK, Tensor kA, Tensor dk, Tensor dAlphaPre, Tensor dKK, Tensor dKA, int rows,
                                    int C, boolean accumulate) {
        bind();
        long n = elementwise(op, rows, C);
        heads(op, C);
        long dkt = f32(dKTilde, op, "dKTilde", n).address;
        long da = f32(dA, op, "dA", n).address;
        long db = f32(dB, op, "dB", n).address;
        boolean bf16 = savedPair(op, k, "k", alphaPre, "alphaPre", n);
        long ks = own(k, op, "k").address;
        long al = own(alphaPre, op, "alphaPre").address;
        long kk = f32(kK, op, "kK", C).address;
        long ka = f32(kA, op, "kA", C).address;
        CudaTensor dkOut = bf16GradientOut(op, dk, "dk", n, accumulate, bf16);
        long dks = dkOut.address;
        CudaTensor dalOut = bf16GradientOut(op, dAlphaPre, "dAlphaPre", n, accumulate, bf16);
        if (dalOut.dtype == DType.BF16 && dkOut.dtype != DType.BF16) {
            throw new IllegalArgumentException(op + ": a bf16 dAlphaPre needs a bf16 dk");
        }
        long dal = dalOut.address;
        long dkk = optional(dKK, op, "dKK", C);
        long dka = optional(dKA, op, "dKA", C);
        if (n == 0) {
            return;
        }
        int slices = slices(rows);
        long partialKK = partials(2L * slices * C);
        long partialKA = partialKK + 4L * slices * C;
        args.reset().ptr(dkt).ptr(da).ptr(db).ptr(ks).ptr(al).ptr(kk).ptr(ka).ptr(dks).ptr(dal).ptr(partialKK)
                .ptr(partialKA).i32(rows).i32(C).i32(accumulate ? 1 : 0);
        Kernel kernel = dalOut.dtype == DType.BF16 ? keyPrepareBwdBf16DkDa : dkOut.dtype == DType.BF16 ? keyPrepareBwdBf16Dk
                : bf16 ? keyPrepareBwdBf16 : keyPrepareBwd;
        kernel.launch(C / N, slices, 1, 32, 1, 1, 0, stream, args);
        finishColumns(partialKK, dkk, slices, C);
        finishColumns(partialKA, dka, slices, C);
    }

    /**
     * A v5 row kernel (forward, backward row pass): ROWS rows of a head per block (64/ROWS blocks per head), R rows
     * and 64/L columns per thread, L lanes per row group; paired ({@code …p}): the lane layout in which lanes 2m and
     * 2m + 1 hold the same columns of two row groups (wkv7.cu, row_lanes), so a warp's 16-byte shared loads of the
     * step's vectors take 2 passes instead of 4.
     */
    record RowKernel(int rows, int r, int l, boolean paired) {
        int threads() {
            return rows / r * l;
        }

        int perHead() {
            return N / rows;
        }

        @Override
        public String toString() {
            return rows + "_" + r + "_" + l + (paired ? "p" : "");
        }
    }

    /**
     * A v5 column kernel (backward column pass): COLSB columns per block, CT columns and 64/RL rows per thread; lanes
     * 1 (plain), 2 ({@code …p}) or 4 ({@code …q}): that many adjacent lanes hold the same rows of different column
     * groups (wkv7.cu, col_lanes), so their 16-byte shared loads of the step's row vectors agree.
     */
    record ColKernel(int colsb, int ct, int rl, int lanes) {
        ColKernel(int colsb, int ct, int rl) {
            this(colsb, ct, rl, 1);
        }

        int threads() {
            return colsb / ct * rl;
        }

        int perHead() {
            return N / colsb;
        }

        @Override
        public String toString() {
            return colsb + "_" + ct + "_" + rl + (lanes == 2 ? "p" : lanes == 4 ? "q" : "");
        }
    }

    /**
     * A chunked forward kernel ({@code wkv7_forward_chunk_<rows>_<r>_<l>}, wkv7.cu): the recurrence over 16-step chunks
     * as products with the chunk's start state; ROWS rows of a head per block (64/ROWS blocks per head), R rows and
     * 64/L columns of the state per thread, L lanes per row group.
     */
    record ChunkKernel(int rows, int r, int l) {
        int threads() {
            return rows / r * l;
        }

        int perHead() {
            return N / rows;
        }

        @Override
        public String toString() {
            return rows + "_" + r + "_" + l;
        }
    }

    /** The chunked forward configurations instantiated in wkv7.cu. */
    static final ChunkKernel CHUNK_64_1_4 = new ChunkKernel(64, 1, 4), CHUNK_64_2_8 = new ChunkKernel(64, 2, 8),
            CHUNK_64_2_4 = new ChunkKernel(64, 2, 4), CHUNK_32_1_4 = new ChunkKernel(32, 1, 4);
    static final List<ChunkKernel> WKV7_CHUNK_KERNELS = List.of(CHUNK_64_1_4, CHUNK_64_2_8, CHUNK_64_2_4, CHUNK_32_1_4);

    /** The v5 configurations instantiated in wkv7.cu. */
    static final RowKernel ROWS_64_2_4 = new RowKernel(64, 2, 4, false), ROWS_32_2_8 = new RowKernel(32, 2, 8, false),
            ROWS_16_1_8 = new RowKernel(16, 1, 8, false), ROWS_64_2_4P = new RowKernel(64, 2, 4, true),
            ROWS_32_2_8P = new RowKernel(32, 2, 8, true), ROWS_16_1_8P = new RowKernel(16, 1, 8, true);
    static final ColKernel COLS_32_1_4 = new ColKernel(32, 1, 4), COLS_16_1_4 = new ColKernel(16, 1, 4),
            COLS_32_2_4 = new ColKernel(32, 2, 4), COLS_32_1_4P = new ColKernel(32, 1, 4, 2),
            COLS_16_1_4P = new ColKernel(16, 1, 4, 2), COLS_32_2_4P = new ColKernel(32, 2, 4, 2),
            COLS_32_1_4Q = new ColKernel(32, 1, 4, 4), COLS_16_1_4Q = new ColKernel(16, 1, 4, 4),
            COLS_32_2_4Q = new ColKernel(32, 2, 4, 4);
    static final List<RowKernel> WKV7_ROW_KERNELS = List.of(ROWS_64_2_4, ROWS_32_2_8, ROWS_16_1_8, ROWS_64_2_4P,
            ROWS_32_2_8P, ROWS_16_1_8P);
    static final List<ColKernel> WKV7_COL_KERNELS = List.of(COLS_32_1_4, COLS_16_1_4, COLS_32_2_4,
            COLS_32_1_4P, COLS_16_1_4P, COLS_32_2_4P, COLS_32_1_4Q, COLS_16_1_4Q, COLS_32_2_4Q);
    /** The bf16 kernels' stagings (name suffixes; {@link Wkv7Choice}): the first in use. */
    static final List<String> WKV7_BF16_STAGINGS = List.of("_bf16", "_bf16a", "_bf16sh");
    /** Column-pass time chunks measured by the benchmark (steps; multiples of the 16-step snapshot interval). */
    static final List<Integer> WKV7_CHUNKS = List.of(64, 128, 256, 512);

    /**
     * Which WKV7 kernels run: version 4 or 5; for v5 the forward, backward row pass and backward column pass
     * configurations (null: chosen from B·H); passes (v5 backward, for the benchmark): 1 the row pass only, 2 the
     * column pass only, 3 both; chunk: the column pass's time chunk in steps (a multiple of 16; 0: one chunk, all
     * of T, as before; −1: chosen from B, H, T); chunked: the chunked forward kernel (v5 only; null: the v5 forward
     * {@code fwd}, or when that is null too the forward chosen from B·H; never chosen automatically); bf16: the bf16
     * kernels' staging, the suffix of their names ({@link #WKV7_BF16_STAGINGS}; "_bf16", in use: per kernel the faster
     * of the two below (64_2_4p a stage ahead, the others as before), the forwards storing y after the state update;
     * "_bf16a": cp.async a stage ahead into a double-buffered bf16 area, widened by the copying thread at the last step
     * of the stage before; "_bf16sh": cp.async into one bf16 area, widened after copy_wait before the stage's barrier,
     * the kernels before, for comparison; kernels/NOTES.md); tc: bf16 inputs at T a multiple of 16 take the chunked
     * tensor-core kernels (wkv7_tc.cu, in the bf16 band, not the fp32 kernels' 1e-5; passes then 1: the E chain only,
     * 2: the readouts only), where the device runs them (AUTO; {@code -Dgosling.wkv7Tc=false} turns them off).
     */
    record Wkv7Choice(int version, RowKernel fwd, RowKernel rows, ColKernel cols, int passes, int chunk,
                      ChunkKernel chunked, String bf16, boolean tc) {
        static final Wkv7Choice AUTO = new Wkv7Choice(5, null, null, null, 3, -1, null, "_bf16", true);
        static final Wkv7Choice V4 = new Wkv7Choice(4, null, null, null, 3, -1, null, "_bf16", false);

        Wkv7Choice {
            if (chunk != -1 && (chunk < 0 || chunk % 16 != 0)) {
                throw new IllegalArgumentException("WKV7 column chunk " + chunk + ": not −1, 0 or a multiple of 16");
            }
        }

        static Wkv7Choice v5(RowKernel fwd, RowKernel rows, ColKernel cols) {
            return new Wkv7Choice(5, fwd, rows, cols, 3, -1, null, "_bf16", false);
        }

        /** The chunked forward {@code k}, the backward chosen from B·H. */
        static Wkv7Choice chunked(ChunkKernel k) {
            return new Wkv7Choice(5, null, null, null, 3, -1, k, "_bf16", false);
        }

        Wkv7Choice passes(int p) {
            return new Wkv7Choice(version, fwd, rows, cols, p, chunk, chunked, bf16, tc);
        }

        /** The bf16 kernels of staging {@code suffix} (one of {@link #WKV7_BF16_STAGINGS}). */
        Wkv7Choice bf16(String suffix) {
            if (!WKV7_BF16_STAGINGS.contains(suffix)) {
                throw new IllegalArgumentException("WKV7 bf16 staging " + suffix + ": not one of " + WKV7_BF16_STAGINGS);
            }
            return new Wkv7Choice(version, fwd, rows, cols, passes, chunk, chunked, suffix, tc);
        }

        Wkv7Choice chunk(int steps) {
            return new Wkv7Choice(version, fwd, rows, cols, passes, steps, chunked, bf16, tc);
        }

        /** With the chunked tensor-core kernels for bf16 inputs at T a multiple of 16 (on), or the serial ones. */
        Wkv7Choice tc(boolean on) {
            return new Wkv7Choice(version, fwd, rows, cols, passes, chunk, chunked, bf16, on);
        }

        @Override
        public String toString() {
            return version == 4 ? "v4" : "v5" + (fwd == null ? "" : " f" + fwd)
                    + (chunked == null ? "" : " chunk" + chunked) + (rows == null ? "" : " r" + rows)
                    + (cols == null ? "" : " c" + cols) + (chunk < 0 ? "" : " ch" + chunk)
                    + (passes == 1 ? " rows" : passes == 2 ? " cols" : "")
                    + ("_bf16".equals(bf16) ? "" : " " + bf16.substring(1)) + (tc ? " tc" : "");
        }
    }

    /**
     * A one-read cross-entropy kernel ({@code cross_entropy_rows_<threads>_<r4>_<s4>[_nopipe|_packed]}): a block of
     * {@code threads} per row keeps the row on chip, {@code r4} groups of 4 logits per thread in registers and {@code
     * s4} in shared memory, so rows of up to threads·(r4 + s4)·4 logits; {@code pipe}: the next row's loads are issued
     * as this row's gradient is written. The groups are fp32 (float4s; one block per SM), or with {@code packed} the
     * bf16 they were read as (8 bytes; bf16 logits only, two blocks per SM).
     */
    record CeRows(int threads, int r4, int s4, boolean pipe, boolean packed) {
        /** Every compiled variant (cross_entropy.cu's CE_ROWS and CE_ROWS_PACKED lines). */
        static final List<CeRows> ALL = List.of(new CeRows(1024, 8, 8, true, false),
                new CeRows(1024, 8, 8, false, false), new CeRows(512, 16, 16, true, false),
                new CeRows(512, 8, 24, false, true), new CeRows(256, 16, 48, false, true));
        /** The default for fp32 logits, and for bf16 logits. */
        static final CeRows DEFAULT = ALL.get(0);
        static final CeRows DEFAULT_BF16_LOGITS = ALL.get(3);

        static CeRows byLabel(String p) {
            for (CeRows c : ALL) {
                if (c.label().equals(p)) {
                    return c;
                }
            }
            throw new GoslingException("gosling.ce=" + p + ": expected old or one of "
                    + ALL.stream().map(CeRows::label).toList());
        }

        String label() {
            return threads + "_" + r4 + "_" + s4 + (packed ? "_packed" : pipe ? "" : "_nopipe");
        }

        /** bf16Logits: bf16 logits and dLogits (the _bf16_logits kernel); else fp32 logits, bf16Out: bf16 dLogits. */
        String kernel(boolean bf16Logits, boolean bf16Out) {
            return "cross_entropy_rows_" + label() + (bf16Logits ? "_bf16_logits" : bf16Out ? "_bf16" : "");
        }

        /** The kernels of this variant: fp32 logits to fp32 and to bf16 dLogits, bf16 logits (packed: only that). */
        String[] kernels() {
            return packed ? new String[] {kernel(true, true)}
                    : new String[] {kernel(false, false), kernel(false, true), kernel(true, true)};
        }

        int capacity() {
            return threads * (r4 + s4) * 4;
        }

        /** Bytes of one stash slot: 4 logits as fp32 (16), or packed as bf16 (8). */
        int slotBytes() {
            return packed ? 8 : 16;
        }

        /** Shared memory for the whole stash (rows of {@link #capacity()} logits). */
        int stashBytes() {
            return s4 * threads * slotBytes();
        }

        /** The stash a row of vocab logits uses: the shared chunks that hold any of them. */
        int stashBytes(int vocab) {
            int chunks = (vocab / 4 + threads - 1) / threads - r4;
            return Math.max(0, Math.min(s4, chunks)) * threads * slotBytes();
        }

        /**
         * vocab a multiple of 4 within the capacity, the rows 16-byte aligned (8 for bf16 logits or dLogits); a packed
         * variant takes bf16 logits only.
         */
        boolean applies(int vocab, long logits, long dLogits, boolean bf16Logits, boolean bf16Out) {
            return (bf16Logits || !packed) && vocab % 4 == 0 && vocab <= capacity()
                    && logits % (bf16Logits ? 8 : 16) == 0 && dLogits % (bf16Out ? 8 : 16) == 0;
        }
    }

    /**
     * The one-read kernels in use: for fp32 logits ({@code f32Logits}, not packed) and for bf16 logits; null: the
     * two-pass kernel.
     */
    record CeChoice(CeRows f32Logits, CeRows bf16Logits) {
        static final CeChoice DEFAULT = new CeChoice(CeRows.DEFAULT, CeRows.DEFAULT_BF16_LOGITS);

        /** {@code gosling.ce}: empty (the defaults), old, a packed variant (bf16 logits), another (both). */
        static CeChoice fromProperty(String p) {
            if (p == null || p.isEmpty()) {
                return DEFAULT;
            }
            if (p.equals("old")) {
                return new CeChoice(null, null);
            }
            return DEFAULT.with(CeRows.byLabel(p));
        }

        /** This choice with c for the logits it takes: a packed variant replaces the bf16 logits' kernel only. */
        CeChoice with(CeRows c) {
            return c != null && c.packed() ? new CeChoice(f32Logits, c) : new CeChoice(c, c);
        }
    }

    /**
     * Selects the fused cross-entropy kernel (null: the two-pass kernel) for the logits it takes (a packed variant:
     * bf16 logits, the fp32 logits' kernel stays); for the checks and the benchmark.
     */
    void useCrossEntropy(CeRows choice) {
        ceChoice = ceChoice.with(choice);
    }

    /** Restores a choice taken by {@link #crossEntropyChoice}. */
    void useCrossEntropy(CeChoice choice) {
        ceChoice = choice;
    }

    CeChoice crossEntropyChoice() {
        return ceChoice;
    }

    long crossEntropyRowsLaunches() {
        return ceRowsLaunches;
    }

    /** Resident blocks per SM of the variant's kernel for these logits at vocab (0: not available); for the benchmark. */
    int crossEntropyBlocksPerSm(CeRows c, int vocab, boolean bf16Logits) {
        Kernel k = ceRowsKernels.get(c.kernel(bf16Logits, true));
        return k == null ? 0 : ceRowsOccupancy(k, c.threads(), c.stashBytes(vocab));
    }

    /** Whether this device runs the variant (its stash fits the shared memory per block). */
    boolean crossEntropyAvailable(CeRows c) {
        return Arrays.stream(c.kernels()).allMatch(ceRowsKernels::containsKey);
    }

    /** Fills a tensor with 0xff bytes: NaN in F32 and in BF16 (the checks poison bf16 outputs so). */
    public void poisonBytes(Tensor t) {
        bind();
        CudaTensor c = own(t, "poisonBytes", "t");
        if (c.numel > 0) {
            Cuda.check(cudaMemsetAsync(pa.at(c.address), 0xff, c.bytes(), stream), "cudaMemsetAsync");
        }
    }

    /** Host values rounded to bf16 (nearest, ties to even) into a BF16 tensor (for the checks: bf16 logits). */
    void uploadBf16(float[] src, Tensor dst) {
        bind();
        CudaTensor t = own(dst, "uploadBf16", "dst");
        if (t.dtype != DType.BF16 || t.numel != src.length) {
            throw new IllegalArgumentException("uploadBf16: dst is " + t.dtype + " × " + t.numel + ", expected BF16 × "
                    + src.length);
        }
        BytePointer s = staging(2L * src.length);
        ShortPointer h = new ShortPointer(s);
        for (int i = 0; i < src.length; i++) {
            h.put(i, dev.gosling.trainer.model.Bf16.fromFloat(src[i]));
        }
        toDevice(s, t.address, 2L * src.length);
    }

    /** A BF16 tensor's values, exactly (for the checks: dLogits at a vocabulary too large for the identity GEMM). */
    void downloadBf16(Tensor src, float[] dst) {
        bind();
        CudaTensor t = own(src, "downloadBf16", "src");
        if (t.dtype != DType.BF16 || t.numel != dst.length) {
            throw new IllegalArgumentException("downloadBf16: src is " + t.dtype + " × " + t.numel + ", expected BF16 × "
                    + dst.length);
        }
        BytePointer s = staging(2L * dst.length);
        toHost(t.address, s, 2L * dst.length);
        ShortPointer h = new ShortPointer(s);
        for (int i = 0; i < dst.length; i++) {
            dst[i] = Float.intBitsToFloat((h.get(i) & 0xffff) << 16);
        }
    }

    /** Selects the WKV7 kernels; for the checks and the benchmark. */
    void useWkv7(Wkv7Choice choice) {
        wkv7Choice = choice;
    }

    Wkv7Choice wkv7Choice() {
        return wkv7Choice;
    }

    /**
     * The forward's kernel when not chosen (measured on an H100, kernels/NOTES.md): the paired layout, a head over
     * {@link #wkv7BlocksPerHead} blocks (1: 64_2_4p, 2: 32_2_8p, 4: 16_1_8p).
     */
    RowKernel wkv7AutoForward(int B, int H) {
        return switch (wkv7BlocksPerHead(B, H)) {
            case 1 -> ROWS_64_2_4P;
            case 2 -> ROWS_32_2_8P;
            default -> ROWS_16_1_8P;
        };
    }

    /**
     * Blocks per head (1, 2 or 4) for the row kernels: the fewest that give the busiest SM the least work, ⌈B·H·g /
     * SMs⌉ / g heads' worth. On an H100 (132 SMs): 4 at B·H = 96 (3 blocks of a quarter head on the busiest SMs, not
     * one whole head), 1 at 128, 2 at 192, 4 at 32 — the fastest paired kernels at those sizes, forward and row pass.
     */
    int wkv7BlocksPerHead(int B, int H) {
        long heads = (long) B * H;
        int best = 1;
        for (int g : new int[] {2, 4}) {
            // load(g) < load(best), in integers: ⌈heads·g/SMs⌉·best < ⌈heads·best/SMs⌉·g
            if (ceil(heads * g, multiprocessors) * best < ceil(heads * best, multiprocessors) * g) {
                best = g;
            }
        }
        return best;
    }

    /** The backward row pass's kernel when not chosen: as the forward's ({@link #wkv7AutoForward}). */
    RowKernel wkv7AutoRows(int B, int H) {
        return wkv7AutoForward(B, H);
    }

    /**
     * The backward column pass's kernel when not chosen, in the paired lane layout (bit-identical to the plain one,
     * kernels/NOTES.md): in time chunks 32 columns per block, 1 per thread (128 threads, 128 registers: twice the
     * warps of 32_2_4p's 216, and the paired loads take away the shared-memory cost that had made 32_2_4 faster; the
     * whole backward 4–7% faster than with 32_2_4p at the four benchmark sizes, one run); in one chunk (T ≤ 64) as
     * before: 16 columns per block (64 threads), 32 (128 threads) once B·H alone exceeds the SMs.
     */
    ColKernel wkv7AutoCols(int B, int H, int chunk) {
        if (chunk > 0) {
            return COLS_32_1_4P;
        }
        return (long) B * H > multiprocessors ? COLS_32_1_4P : COLS_16_1_4P;
    }

    /**
     * The column pass's time chunk when not chosen: 128 steps, 64 when that leaves fewer than 16 blocks (of 32
     * columns) per SM; 0 (one chunk) when T fits one. 64 to 512 measured within a few % of each other once the
     * blocks fill the GPU (kernels/NOTES.md); 128 holds half the dS of 64.
     */
    int wkv7AutoChunk(int B, int H, int T) {
        int ch = (long) B * H * 2 * ((T + 127) / 128) >= 16L * multiprocessors ? 128 : 64;
        return T <= ch ? 0 : ch;
    }

    /** The floats of dS at the column chunks' ends ([B, H, ⌈T/CH⌉ − 1, 64, 64]) for chunk CH (0: none). */
    static long wkv7BoundaryFloats(int B, int T, int H, int chunk) {
        return chunk == 0 ? 0 : (long) B * H * ((T - 1) / chunk) * N * N;
    }

    private Kernel wkv7Kernel(String name) {
        Kernel k = wkv7Kernels.get(name);
        if (k == null) {
            throw new IllegalArgumentException("no WKV7 kernel " + name);
        }
        return k;
    }

    /**
     * CUDA layout: the state after every 16th and the last step, [B, H, ⌈T/16⌉, 64, 64], then sa [B·T, H·64], fp32
     * (the serial kernels: fp32 inputs, as {@link #wkv7SavedElements(int, int, int, DType)} for F32).
     */
    @Override
    public long wkv7SavedElements(int B, int T, int H) {
        return wkv7SavedElements(B, T, H, DType.F32);
    }

    /**
     * The saved layout of the kernels that inputs of {@code inputDtype} take under the current {@link Wkv7Choice}: the
     * serial kernels' fp32 one, or where bf16 inputs take the tensor-core kernels (T a multiple of 16) the same in
     * bf16 (the states [B, H, T/16, 64, 64], then sa [B·T, H·64], rounded to nearest even: wkv7_tc.cu, read only by
     * wkv7_tc_readout.cu), half the fp32 elements. So the two layouts never have the same size, and a saved tensor
     * filled by one path is rejected by the other's backward (a choice changed in between).
     */
    @Override
    public long wkv7SavedElements(int B, int T, int H, DType inputDtype) {
        dims("wkv7SavedElements", B, T, H);
        long floats = (long) B * H * chunks(T) * N * N + (long) B * T * H * N;
        return inputDtype == DType.BF16 && wkv7Tc(wkv7Choice, T) ? floats / 2 : floats;
    }

    /**
     * The address of the saved tensor of a WKV7 call on the path {@code tc} (the tensor-core kernels or the serial
     * ones): its size must be that path's (one line that says which path it was sized for otherwise).
     */
    private long wkv7Saved(Tensor saved, String op, int B, int T, int H, boolean tc) {
        long want = wkv7SavedElements(B, T, H, tc ? DType.BF16 : DType.F32);
        CudaTensor c = own(saved, op, "saved");
        long other = tc ? 2 * want : want / 2;  // the other path's size (the tensor-core one only at T % 16 = 0)
        if (c.dtype == DType.F32 && c.numel == other && c.numel != want && T % 16 == 0) {
            throw new IllegalArgumentException(op + ": saved has the " + (tc ? "serial" : "tensor-core")
                    + " kernels' size (" + other + " × F32) but the " + (tc ? "tensor-core" : "serial")
                    + " kernels run (" + want + " × F32): size it by wkv7SavedElements with the WKV7 inputs' dtype, and"
                    + " keep the WKV7 choice between the forward and the backward");
        }
        return f32(saved, op, "saved", want).address;
    }

    private static int chunks(int T) {
        return (T + 15) / 16;
    }

    /** v5 copies 16-byte words: every WKV7 tensor must start on a 16-byte boundary (allocations and views by 4). */
    private static long aligned16(long address, String op, String name) {
        if ((address & 15) != 0) {
            throw new IllegalArgumentException(op + ": " + name + " is not 16-byte aligned (a view at an offset that"
                    + " is not a multiple of 4 elements)");
        }
        return address;
    }

    @Override
    public void wkv7Forward(Tensor r, Tensor wRaw, Tensor k, Tensor v, Tensor a, Tensor b, Tensor out, Tensor saved,
                            int B, int T, int H) {
        String op = "wkv7Forward";
        bind();
        long n = sequenceDims(op, B, T, H * N);
        boolean bf16 = sameFloatType(op, n, new Tensor[] {r, wRaw, k, v, a, b, out}, "r", "wRaw", "k", "v", "a", "b", "out");
        boolean tc = bf16 && wkv7Tc(wkv7Choice, T);
        long s = wkv7Saved(saved, op, B, T, H, tc);
        // the states, then sa: fp32, or bf16 on the tensor-core path
        long sa = s + (tc ? 2L : 4L) * B * H * chunks(T) * N * N;
        long rp = own(r, op, "r").address, wp = own(wRaw, op, "wRaw").address, kp = own(k, op, "k").address;
        long vp = own(v, op, "v").address, ap = own(a, op, "a").address, bp = own(b, op, "b").address;
        long yp = own(out, op, "out").address;
        if (n == 0) {
            return;
        }
        args.reset().i32(T).i32(H).ptr(rp).ptr(wp).ptr(kp).ptr(vp).ptr(ap).ptr(bp).ptr(yp).ptr(s).ptr(sa);
        Wkv7Choice c = wkv7Choice;
        if (bf16 && (c.version() == 4 || c.chunked() != null)) {
            throw new IllegalArgumentException(op + ": bf16 inputs need the v5 kernels, not " + c);
        }
        if (c.version() == 4) {
            wkv7FwdV4.launch(H, B, 1, 2 * N, 1, 1, 0, stream, args);
            return;
        }
        for (long p : new long[] {rp, wp, kp, vp, ap, bp, yp, s}) {
            aligned16(p, op, "a tensor");
        }
        if (tc) {
            wkv7TcForward.launch(H, B, 1, 512, 1, 1, WKV7_TC_SHARED, stream, args);
            return;
        }
        // the chunked forward only when chosen: it measured slower than v5 at every benchmark size (kernels/NOTES.md)
        ChunkKernel ck = c.chunked();
        if (ck != null) {
            wkv7Kernel("wkv7_forward_chunk_" + ck).launch(H * ck.perHead(), B, 1, ck.threads(), 1, 1, 0, stream, args);
            return;
        }
        RowKernel f = c.fwd() != null ? c.fwd() : wkv7AutoForward(B, H);
        wkv7Kernel("wkv7_forward_v5_" + f + (bf16 ? c.bf16() : "")).launch(H * f.perHead(), B, 1, f.threads(), 1, 1, 0,
                stream, args);
    }

    @Override
    public void wkv7Backward(Tensor dOut, Tensor r, Tensor wRaw, Tensor k, Tensor v, Tensor a, Tensor b, Tensor saved,
                             Tensor dr, Tensor dwRaw, Tensor dk, Tensor dv, Tensor da, Tensor db, int B, int T, int H) {
        wkv7Backward("wkv7Backward", dOut, r, wRaw, k, v, a, b, saved, dr, dr, dwRaw, dk, dv, da, db, B, T, H, false);
    }

    @Override
    public void wkv7BackwardOverwritingWab(Tensor dOut, Tensor r, Tensor wRaw, Tensor k, Tensor v, Tensor a, Tensor b,
                                           Tensor saved, Tensor dr, Tensor drSum, Tensor dwRaw, Tensor dk, Tensor dv,
                                           Tensor da, Tensor db, int B, int T, int H) {
        wkv7Backward("wkv7BackwardOverwritingWab", dOut, r, wRaw, k, v, a, b, saved, dr, drSum, dwRaw, dk, dv, da, db,
                B, T, H, true);
    }

    /**
     * wabWritten: dwRaw, da and db written, not added to (the v5 column pass; v4 zeroes them first); drSum = dr + the
     * WKV part (drSum may be dr). dOut, drSum and dwRaw (wabWritten only) may be BF16 ({@link #wkvGradientDtype}):
     * the tensor-core kernels read and write them so; the serial kernels (fp32 ones) go through fp32 scratch (dOut
     * widened, dr copied and added to there, then rounded into drSum, dwRaw written there and rounded), a slow path
     * that the model does not take (its bf16 WKV gradients come with bf16 inputs at T % 16 = 0). An fp32 dOut on the
     * tensor-core kernels is rounded to bf16 scratch first (the checks and benchmarks).
     */
    private void wkv7Backward(String op, Tensor dOut, Tensor r, Tensor wRaw, Tensor k, Tensor v, Tensor a, Tensor b,
                              Tensor saved, Tensor dr, Tensor drSum, Tensor dwRaw, Tensor dk, Tensor dv, Tensor da,
                              Tensor db, int B, int T, int H, boolean wabWritten) {
        bind();
        long n = sequenceDims(op, B, T, H * N);
        boolean bf16 = sameFloatType(op, n, new Tensor[] {r, wRaw, k, v, a, b}, "r", "wRaw", "k", "v", "a", "b");
        boolean tc = bf16 && wkv7Tc(wkv7Choice, T);
        long s = wkv7Saved(saved, op, B, T, H, tc);
        long sa = s + (tc ? 2L : 4L) * B * H * chunks(T) * N * N;
        long rp = own(r, op, "r").address, wp = own(wRaw, op, "wRaw").address, kp = own(k, op, "k").address;
        long vp = own(v, op, "v").address, ap = own(a, op, "a").address, bp = own(b, op, "b").address;
        CudaTensor dyt = floatLike(dOut, op, "dOut", n);
        long dyp = dyt.address;
        long drp = f32(dr, op, "dr", n).address;
        CudaTensor drst = floatLike(drSum, op, "drSum", n);
        CudaTensor dwt = wabWritten ? floatLike(dwRaw, op, "dwRaw", n) : f32(dwRaw, op, "dwRaw", n);
        long drsp = drst.address, dwp = dwt.address;
        long dkp = f32(dk, op, "dk", n).address, dvp = f32(dv, op, "dv", n).address;
        long dap = f32(da, op, "da", n).address, dbp = f32(db, op, "db", n).address;
        if (n == 0) {
            return;
        }
        Wkv7Choice c = wkv7Choice;
        if (bf16 && c.version() == 4) {
            throw new IllegalArgumentException(op + ": bf16 inputs need the v5 kernels, not " + c);
        }
        for (long p : c.version() == 4 ? new long[0] : new long[] {rp, wp, kp, vp, ap, bp, dyp, s, drp, drsp, dwp,
                dkp, dvp, dap, dbp}) {
            aligned16(p, op, "a tensor");
        }
        boolean dy16 = dyt.dtype == DType.BF16, drs16 = drst.dtype == DType.BF16, dw16 = dwt.dtype == DType.BF16;
        if (tc) {
            // scratch: dsa [B·T, H·64] fp32, then the E chain's start state of every chunk [B, H, T/16, 64, 64] bf16,
            // then (an fp32 dOut) dOut rounded to bf16
            long dsaFloats = n + (long) B * H * (T / 16) * N * N / 2;
            long dsa = wkvScratch(dsaFloats + (dy16 ? 0 : n / 2));
            long estates = dsa + 4L * n;
            long dy = dyp;
            if (!dy16) {
                dy = dsa + 4L * dsaFloats;
                launch1d(castBf16, (n + 3) / 4, args.reset().ptr(dyp).ptr(dy).i64(n));
            }
            if (wabWritten && (c.passes() & 2) == 0) {
                for (Tensor t : new Tensor[] {dwRaw, da, db}) {
                    zero(t);
                }
            }
            if ((c.passes() & 1) != 0) {
                args.reset().i32(T).i32(H).ptr(rp).ptr(wp).ptr(kp).ptr(ap).ptr(bp).ptr(dy).ptr(dvp).ptr(dsa)
                        .ptr(estates);
                wkv7TcChain.launch(H, B, 1, 512, 1, 1, WKV7_TC_SHARED, stream, args);
            }
            if ((c.passes() & 2) != 0) {
                args.reset().i32(T).i32(H).ptr(rp).ptr(wp).ptr(kp).ptr(vp).ptr(ap).ptr(bp).ptr(dy).ptr(s).ptr(sa)
                        .ptr(estates).ptr(dsa).ptr(drp).ptr(drsp).ptr(dwp).ptr(dkp).ptr(dap).ptr(dbp)
                        .i32(wabWritten ? 1 : 0).i32((drs16 ? 1 : 0) | (dw16 ? 2 : 0));
                wkv7TcReadout.launch(T / 16, H, B, WKV7_TC_READOUT_THREADS, 1, 1, WKV7_TC_READOUT_SHARED, stream, args);
            }
            return;
        }
        int chunk = c.version() == 4 ? 0 : c.chunk() >= 0 ? c.chunk() : wkv7AutoChunk(B, H, T);
        if (chunk >= T) {
            chunk = 0;
        }
        // scratch: dsa [B·T, H·64], then dS at the column chunks' ends (v5), then the fp32 copies of bf16 gradients
        long boundary = wkv7BoundaryFloats(B, T, H, chunk);
        long base = c.version() == 4 ? 0 : n + boundary;
        long scratch = wkvScratch(base + n * ((dy16 ? 1 : 0) + (drs16 ? 1 : 0) + (dw16 ? 1 : 0)));
        long dsa = scratch;
        long dsb = dsa + 4L * n;
        long next = scratch + 4L * base;
        if (dy16) {
            launch1d(castBf16F32, n, args.reset().ptr(dyp).ptr(next).i64(n));
            dyp = next;
            next += 4L * n;
        }
        long drAcc = drp;
        if (drs16) {
            drAcc = next;
            next += 4L * n;
            copyBytes(drp, drAcc, 4L * n);
        } else if (drsp != drp) {
            drAcc = drsp;
            copyBytes(drp, drAcc, 4L * n);
        }
        long dwAcc = dw16 ? next : dwp;
        if (c.version() == 4 || (wabWritten && (c.passes() & 2) == 0)) {
            for (long p : wabWritten ? new long[] {dwAcc, dap, dbp} : new long[0]) {
                zeroBytes(p, 4L * n);
            }
        }
        if (c.version() == 4) {
            args.reset().i32(T).i32(H).ptr(rp).ptr(wp).ptr(kp).ptr(vp).ptr(ap).ptr(bp).ptr(dyp).ptr(s).ptr(sa)
                    .ptr(drAcc).ptr(dwAcc).ptr(dkp).ptr(dvp).ptr(dap).ptr(dbp);
            wkv7BwdV4.launch(H, B, 1, 2 * N, 1, 1, 0, stream, args);
        } else {
            ColKernel cols = c.cols() != null ? c.cols() : wkv7AutoCols(B, H, chunk);
            if ((c.passes() & 1) != 0) {
                RowKernel f = c.rows() != null ? c.rows() : wkv7AutoRows(B, H);
                args.reset().i32(T).i32(H).ptr(rp).ptr(wp).ptr(kp).ptr(ap).ptr(bp).ptr(dyp).ptr(dvp).ptr(dsa)
                        .i32(chunk).ptr(dsb);
                wkv7Kernel("wkv7_backward_rows_v5_" + f + (bf16 ? c.bf16() : "")).launch(H * f.perHead(), B, 1,
                        f.threads(), 1, 1, 0, stream, args);
            }
            if ((c.passes() & 2) != 0) {
                int z = chunk == 0 ? 1 : (T + chunk - 1) / chunk;
                args.reset().i32(T).i32(H).ptr(rp).ptr(wp).ptr(kp).ptr(vp).ptr(ap).ptr(bp).ptr(dyp).ptr(s).ptr(sa)
                        .ptr(dsa).ptr(drAcc).ptr(dwAcc).ptr(dkp).ptr(dap).ptr(dbp).i32(chunk).ptr(dsb)
                        .i32(wabWritten ? 1 : 0);
                wkv7Kernel("wkv7_backward_cols_v5_" + cols + (bf16 ? c.bf16() : "")).launch(H * cols.perHead(), B, z,
                        cols.threads(), 1, 1, 0, stream, args);
            }
        }
        if (drs16) {
            launch1d(castBf16, (n + 3) / 4, args.reset().ptr(drAcc).ptr(drsp).i64(n));
        }
        if (dw16) {
            launch1d(castBf16, (n + 3) / 4, args.reset().ptr(dwAcc).ptr(dwp).i64(n));
        }
    }

    /** dst ← src, {@code bytes} bytes on the stream (device to device). */
    private void copyBytes(long src, long dst, long bytes) {
        LaunchProfiler.around("memcpy d2d", stream, () -> Cuda.check(cudaMemcpyAsync(pa.at(dst), pb.at(src), bytes,
                cudaMemcpyDeviceToDevice, stream), "cudaMemcpyAsync"));
    }

    /** {@code bytes} zero bytes at address p, on the stream. */
    private void zeroBytes(long p, long bytes) {
        LaunchProfiler.around("memset", stream,
                () -> Cuda.check(cudaMemsetAsync(pa.at(p), 0, bytes, stream), "cudaMemsetAsync"));
    }

    /** Whether choice c runs bf16 inputs of T steps on the chunked tensor-core kernels. */
    private boolean wkv7Tc(Wkv7Choice c, int T) {
        return c.tc() && c.version() == 5 && T % 16 == 0 && wkv7TcForward != null;
    }

    /** Whether this device runs the chunked tensor-core WKV7 kernels (their shared memory fits a block). */
    boolean wkv7TcAvailable() {
        return wkv7TcForward != null;
    }

    /**
     * The WKV7 backward's scratch (dsa, then dS at the column chunks' ends), at least {@code floats} fp32 values
     * (grows, then is reused).
     */
    private long wkvScratch(long floats) {
        long bytes = 4L * floats;
        if (wkvScratchBytes < bytes) {
            if (wkvScratch != 0) {
                allocator.free(wkvScratch);
            }
            wkvScratch = deviceAlloc(bytes, "the WKV7 backward's scratch (dsa, dS at chunk ends)");
            wkvScratchBytes = bytes;
        }
        return wkvScratch;
    }

    @Override
    public void bonusForward(Tensor x, Tensor r, Tensor k, Tensor v, Tensor rK, Tensor out, int rows, int C) {
        String op = "bonusForward";
        bind();
        long n = elementwise(op, rows, C);
        heads(op, C);
        long units = (long) rows * (C / N);
        args.reset().ptr(f32(x, op, "x", n).address).ptr(f32(r, op, "r", n).address).ptr(f32(k, op, "k", n).address)
                .ptr(f32(v, op, "v", n).address).ptr(f32(rK, op, "rK", C).address).ptr(f32(out, op, "out", n).address)
                .i64(units).i32(C);
        if (units > 0) {
            bonusFwd.launch(blocks(units * 32), 1, 1, THREADS, 1, 1, 0, stream, args);
        }
    }

    @Override
    public void lnxBonusGateForward(Tensor y, Tensor lnXW, Tensor lnXB, Tensor r, Tensor k, Tensor v, Tensor rK,
                                    Tensor g, Tensor lnx, Tensor gated, Tensor mean, Tensor rstd, int rows, int C) {
        String op = "lnxBonusGateForward";
        bind();
        long n = elementwise(op, rows, C);
        heads(op, C);
        long units = (long) rows * (C / N);
        CudaTensor gt = floatLike(gated, op, "gated", n);
        CudaTensor gs = floatLike(g, op, "g", n);
        if (gs.dtype == DType.BF16 && gt.dtype != DType.BF16) {
            throw new IllegalArgumentException(op + ": a bf16 g needs a bf16 gated");
        }
        // y, r, k, v: all F32, or all BF16 (the WKV7 kernel's bf16 output and inputs; with bf16 g and gated only)
        boolean bf16In = sameFloatType(op, n, new Tensor[] {y, r, k, v}, "y", "r", "k", "v");
        if (bf16In && gs.dtype != DType.BF16) {
            throw new IllegalArgumentException(op + ": bf16 y, r, k and v need a bf16 g");
        }
        Kernel kernel = bf16In ? lnxBonusGateFwdBf16In : gs.dtype == DType.BF16 ? lnxBonusGateFwdBf16G
                : gt.dtype == DType.BF16 ? lnxBonusGateFwdBf16 : lnxBonusGateFwd;
        args.reset().ptr(own(y, op, "y").address).ptr(f32(lnXW, op, "lnXW", C).address)
                .ptr(f32(lnXB, op, "lnXB", C).address).ptr(own(r, op, "r").address).ptr(own(k, op, "k").address)
                .ptr(own(v, op, "v").address).ptr(f32(rK, op, "rK", C).address).ptr(gs.address)
                .ptr(lnx == null ? 0 : f32(lnx, op, "lnx", n).address).ptr(gt.address).ptr(f32(mean, op, "mean", units).address)
                .ptr(f32(rstd, op, "rstd", units).address).i64(units).i32(C).f32((float) GROUP_NORM_EPS);
        if (units > 0) {
            kernel.launch(blocks(units * 8), 1, 1, THREADS, 1, 1, 0, stream, args);  // eight lanes per (row, head)
        }
    }

    @Override
    public void lnxBonusGateBackward(Tensor dGated, Tensor lnx, Tensor g, Tensor y, Tensor lnXW, Tensor lnXB,
                                     Tensor mean, Tensor rstd, Tensor r, Tensor k, Tensor v, Tensor rK,
                                     Tensor dLnxScratch, Tensor dG, Tensor dr, Tensor dk, Tensor dv, Tensor dy,
                                     Tensor dLnXW, Tensor dLnXB, Tensor dRK, int rows, int C) {
        // lnx is recomputed in the kernel (from y, mean, rstd, lnXW, lnXB and the bonus), given or not
        String op = "lnxBonusGateBackward";
        bind();
        long n = elementwise(op, rows, C);
        heads(op, C);
        long units = (long) rows * (C / N);
        CudaTensor gs = floatLike(g, op, "g", n);
        CudaTensor dgt = floatLike(dGated, op, "dGated", n);
        boolean dGBf16 = own(dG, op, "dG").dtype == DType.BF16;
        if (dgt.dtype == DType.BF16 && (gs.dtype != DType.BF16 || !dGBf16)) {
            throw new IllegalArgumentException(op + ": a bf16 dGated needs bf16 g and dG");
        }
        // y, r, k, v: all F32, or all BF16 (with bf16 g and dG only: the model's combination; dGated either)
        boolean bf16In = sameFloatType(op, n, new Tensor[] {y, r, k, v}, "y", "r", "k", "v");
        if (bf16In && (gs.dtype != DType.BF16 || !dGBf16)) {
            throw new IllegalArgumentException(op + ": bf16 y, r, k and v need bf16 g and dG");
        }
        // dy: F32, or BF16 (wkvGradientDtype) with bf16 y, r, k, v only
        boolean dy16 = floatLike(dy, op, "dy", n).dtype == DType.BF16;
        if (dy16 && !bf16In) {
            throw new IllegalArgumentException(op + ": a bf16 dy needs bf16 y, r, k and v");
        }
        args.reset().ptr(dgt.address).ptr(f32(lnXB, op, "lnXB", C).address)
                .ptr(gs.address).ptr(own(y, op, "y").address).ptr(f32(lnXW, op, "lnXW", C).address)
                .ptr(f32(mean, op, "mean", units).address).ptr(f32(rstd, op, "rstd", units).address)
                .ptr(own(r, op, "r").address).ptr(own(k, op, "k").address).ptr(own(v, op, "v").address)
                .ptr(f32(rK, op, "rK", C).address)
                .ptr(bf16GradientOut(op, dG, "dG", n, false, gs.dtype == DType.BF16).address)
                .ptr(f32(dr, op, "dr", n).address)
                .ptr(f32(dk, op, "dk", n).address).ptr(f32(dv, op, "dv", n).address).ptr(own(dy, op, "dy").address);
        long dw = optional(dLnXW, op, "dLnXW", C);
        long db = optional(dLnXB, op, "dLnXB", C);
        long drk = optional(dRK, op, "dRK", C);
        if (n == 0) {
            return;
        }
        int slices = slices(rows);
        long partialRK = partials(3L * slices * C);
        long partialW = partialRK + 4L * slices * C;
        long partialB = partialW + 4L * slices * C;
        args.ptr(partialRK).ptr(partialW).ptr(partialB).i32(rows).i32(C);
        (bf16In ? (dgt.dtype == DType.BF16 ? (dy16 ? lnxBonusGateBwdBf16InDy : lnxBonusGateBwdBf16In)
                : dy16 ? lnxBonusGateBwdBf16InDgatedF32Dy : lnxBonusGateBwdBf16InDgatedF32)
                : dgt.dtype == DType.BF16 ? lnxBonusGateBwdBf16DgDgated : dGBf16 ? lnxBonusGateBwdBf16Dg
                : gs.dtype == DType.BF16 ? lnxBonusGateBwdBf16 : lnxBonusGateBwd)
                .launch(C / N, slices, 1, 32, 1, 1, 0, stream, args);
        finishColumns(partialRK, drk, slices, C);
        finishColumns(partialW, dw, slices, C);
        finishColumns(partialB, db, slices, C);
    }

    @Override
    public void bonusBackward(Tensor dOut, Tensor r, Tensor k, Tensor v, Tensor rK,
                              Tensor dx, Tensor dr, Tensor dk, Tensor dv, Tensor dRK, int rows, int C) {
        bonusBackward("bonusBackward", dOut, r, k, v, rK, dx, dr, dk, dv, dRK, rows, C, true);
    }

    @Override
    public void bonusBackwardOverwriting(Tensor dOut, Tensor r, Tensor k, Tensor v, Tensor rK, Tensor dx, Tensor dr,
                                         Tensor dk, Tensor dv, Tensor dRK, int rows, int C) {
        bonusBackward("bonusBackwardOverwriting", dOut, r, k, v, rK, dx, dr, dk, dv, dRK, rows, C, false);
    }

    private void bonusBackward(String op, Tensor dOut, Tensor r, Tensor k, Tensor v, Tensor rK, Tensor dx, Tensor dr,
                               Tensor dk, Tensor dv, Tensor dRK, int rows, int C, boolean accumulate) {
        bind();
        long n = elementwise(op, rows, C);
        heads(op, C);
        long d = f32(dOut, op, "dOut", n).address;
        long rs = f32(r, op, "r", n).address;
        long ks = f32(k, op, "k", n).address;
        long vs = f32(v, op, "v", n).address;
        long rk = f32(rK, op, "rK", C).address;
        long dxs = optional(dx, op, "dx", n);
        long drs = f32(dr, op, "dr", n).address;
        long dks = f32(dk, op, "dk", n).address;
        long dvs = f32(dv, op, "dv", n).address;
        long drk = optional(dRK, op, "dRK", C);
        if (n == 0) {
            return;
        }
        int slices = slices(rows);
        long partial = partials((long) slices * C);
        args.reset().ptr(d).ptr(rs).ptr(ks).ptr(vs).ptr(rk).ptr(dxs).ptr(drs).ptr(dks).ptr(dvs).ptr(partial)
                .i32(rows).i32(C).i32(accumulate ? 1 : 0);
        bonusBwd.launch(C / N, slices, 1, 32, 1, 1, 0, stream, args);
        finishColumns(partial, drk, slices, C);
    }

    @Override
    public void gateForward(Tensor x, Tensor gate, Tensor out, int rows, int C) {
        String op = "gateForward";
        bind();
        long n = elementwise(op, rows, C);
        CudaTensor o = floatLike(out, op, "out", n);
        args.reset().ptr(f32(x, op, "x", n).address).ptr(f32(gate, op, "gate", n).address).ptr(o.address).i64(n);
        if (n > 0) {
            launch1d(o.dtype == DType.BF16 ? gateFwdBf16 : gateFwd, n, args);
        }
    }

    @Override
    public void gateBackward(Tensor dOut, Tensor x, Tensor gate, Tensor dx, Tensor dGate, int rows, int C) {
        gateBackward("gateBackward", dOut, x, gate, dx, dGate, rows, C, true);
    }

    @Override
    public void gateBackwardOverwriting(Tensor dOut, Tensor x, Tensor gate, Tensor dx, Tensor dGate, int rows, int C) {
        gateBackward("gateBackwardOverwriting", dOut, x, gate, dx, dGate, rows, C, false);
    }

    private void gateBackward(String op, Tensor dOut, Tensor x, Tensor gate, Tensor dx, Tensor dGate, int rows, int C,
                              boolean accumulate) {
        bind();
        long n = elementwise(op, rows, C);
        args.reset().ptr(f32(dOut, op, "dOut", n).address).ptr(f32(x, op, "x", n).address)
                .ptr(f32(gate, op, "gate", n).address).ptr(f32(dx, op, "dx", n).address)
                .ptr(f32(dGate, op, "dGate", n).address).i64(n).i32(accumulate ? 1 : 0);
        if (n > 0) {
            launch1d(gateBwd, n, args);
        }
    }

    // ------------------------------------------------------------------------------------------------ channel mix

    @Override
    public void reluSquaredForward(Tensor x, Tensor out, int rows, int C) {
        String op = "reluSquaredForward";
        bind();
        long n = elementwise(op, rows, C);
        CudaTensor o = floatLike(out, op, "out", n);
        CudaTensor xt = floatLike(x, op, "x", n);
        if (xt.dtype == DType.BF16 && o.dtype != DType.BF16) {
            throw new IllegalArgumentException(op + ": a bf16 x needs a bf16 out (only GEMMs read relu² of it)");
        }
        args.reset().ptr(xt.address).ptr(o.address).i64(n);
        if (n > 0) {
            if (xt.dtype == DType.BF16) {
                launch1d(reluSqFwdBf16x, (n + 7) / 8, args); // eight elements a thread where aligned
            } else {
                launch1d(o.dtype == DType.BF16 ? reluSqFwdBf16 : reluSqFwd, n, args);
            }
        }
    }

    @Override
    public void reluSquaredBackwardOverwriting(Tensor dAct, Tensor act, Tensor dPre, int rows, int C) {
        String op = "reluSquaredBackwardOverwriting";
        bind();
        long n = elementwise(op, rows, C);
        CudaTensor a = floatLike(act, op, "act", n);
        CudaTensor d = floatLike(dAct, op, "dAct", n);
        CudaTensor p = floatLike(dPre, op, "dPre", n);
        // a bf16 act (relu²'s output, a GEMM input) gives a bf16 dPre (only the key projection's GEMMs read it), from
        // an fp32 dAct or a bf16 one (the value projection's dx, gemmGradientDtype); an fp32 act all fp32
        if (a.dtype == DType.BF16 ? p.dtype != DType.BF16 : p.dtype != DType.F32 || d.dtype != DType.F32) {
            throw new IllegalArgumentException(op + ": act " + a.dtype + ", dAct " + d.dtype + " and dPre " + p.dtype
                    + ": a bf16 act needs a bf16 dPre, an fp32 act an fp32 dAct and dPre");
        }
        args.reset().ptr(d.address).ptr(a.address).ptr(p.address).i64(n);
        if (n > 0) {
            if (a.dtype != DType.BF16) {
                launch1d(reluSqBwd, n, args);
            } else if (d.dtype == DType.BF16) {
                launch1d(reluSqBwdBf16ad, (n + 7) / 8, args); // eight elements a thread where aligned
            } else {
                launch1d(reluSqBwdBf16a, n, args);
            }
        }
    }

    // ------------------------------------------------------------------------------------------------ loss

    @Override
    public void crossEntropyForward(Tensor logits, Tensor targets, Tensor losses, int rows, int vocab) {
        String op = "crossEntropyForward";
        bind();
        dims(op, rows, vocab);
        vocab(op, vocab);
        CudaTensor x = floatLike(logits, op, "logits", (long) rows * vocab); // bf16: widened as read
        args.reset().ptr(x.address)
                .ptr(ids(targets, op, "targets", rows).address).ptr(f32(losses, op, "losses", rows).address)
                .i32(rows).i32(vocab).ptr(errorWord + 8);
        if (rows > 0) {
            (x.dtype == DType.BF16 ? ceFwdBf16Logits : ceFwd).launch(Math.min(rows, multiprocessors * 2), 1, 1, CE_THREADS, 1, 1, 0, stream, args);
        }
    }

    @Override
    public void crossEntropyBackward(Tensor logits, Tensor targets, Tensor dLogits, int rows, int vocab,
                                     double gradScale) {
        crossEntropyBackward("crossEntropyBackward", logits, targets, null, dLogits, rows, vocab, gradScale);
    }

    @Override
    public void crossEntropyForwardBackward(Tensor logits, Tensor targets, Tensor losses, Tensor dLogits, int rows,
                                            int vocab, double gradScale) {
        crossEntropyBackward("crossEntropyForwardBackward", logits, targets, losses, dLogits, rows, vocab, gradScale);
    }

    private void crossEntropyBackward(String op, Tensor logits, Tensor targets, Tensor losses, Tensor dLogits, int rows,
                                      int vocab, double gradScale) {
        bind();
        dims(op, rows, vocab);
        vocab(op, vocab);
        long n = (long) rows * vocab;
        CudaTensor d = floatLike(dLogits, op, "dLogits", n);
        CudaTensor x = floatLike(logits, op, "logits", n);
        boolean bf16Logits = x.dtype == DType.BF16;
        if (bf16Logits && d.dtype != DType.BF16) {
            throw new IllegalArgumentException(op + ": logits are BF16, so dLogits must be BF16 too (it is "
                    + d.dtype + ")");
        }
        args.reset().ptr(x.address).ptr(ids(targets, op, "targets", rows).address)
                .ptr(d.address).i32(rows).i32(vocab).f32((float) gradScale)
                .ptr(errorWord + 8).ptr(losses == null ? 0 : f32(losses, op, "losses", rows).address);
        if (rows == 0) {
            return;
        }
        boolean bf16 = d.dtype == DType.BF16;
        CeRows c = bf16Logits ? ceChoice.bf16Logits() : ceChoice.f32Logits();
        Kernel k = c != null && c.applies(vocab, x.address, d.address, bf16Logits, bf16)
                ? ceRowsKernels.get(c.kernel(bf16Logits, bf16)) : null;
        if (k != null) {
            ceRowsLaunches++;
            int smem = c.stashBytes(vocab);
            k.launch(Math.min(rows, multiprocessors * ceRowsOccupancy(k, c.threads(), smem)), 1, 1, c.threads(), 1, 1, smem,
                    stream, args);
        } else {
            (bf16Logits ? ceBwdBf16Logits : bf16 ? ceBwdBf16 : ceBwd).launch(Math.min(rows, multiprocessors * 2), 1, 1, CE_THREADS, 1, 1, 0, stream, args);
        }
    }

    /** Resident blocks per SM of a one-read cross-entropy kernel (at least 1): the persistent grid's size. */
    private int ceRowsOccupancy(Kernel k, int threads, int smem) {
        return ceRowsOccupancy.computeIfAbsent(k.name + "/" + smem, key -> {
            int[] n = new int[1];
            Cuda.checkDriver(cuOccupancyMaxActiveBlocksPerMultiprocessor(n, k.function(), threads, smem),
                    "cuOccupancyMaxActiveBlocksPerMultiprocessor(" + k.name + ")");
            return Math.max(1, n[0]);
        });
    }

    // ------------------------------------------------------------------------------------------------ optimizer

    @Override
    public double sumOfSquares(Tensor t) {
        String op = "sumOfSquares";
        bindSettled();
        CudaTensor c = f32(t, op, "t", own(t, op, "t").numel);
        if (c.numel == 0) {
            return 0.0;
        }
        int grid = (int) Math.min(ceil(c.numel, THREADS), multiprocessors * 8L);
        long partial = partials(2L * grid);
        args.reset().ptr(c.address).i64(c.numel).ptr(partial);
        sumSquaresPartial.launch(grid, 1, 1, THREADS, 1, 1, 0, stream, args);
        BytePointer s = staging(8L * grid);
        toHost(partial, s, 8L * grid);
        DoublePointer d = new DoublePointer(s);
        double sum = 0;
        for (int i = 0; i < grid; i++) {
            sum += d.get(i);
        }
        return sum;
    }

    @Override
    public void adamwStep(Tensor params, Tensor grads, Tensor m, Tensor v, long[] segmentEnds, float[] segmentLr,
                          float[] segmentDecay, float beta1, float beta2, float eps, float gradScale, float bc1,
                          float bc2) {
        adamwStep(params, grads, m, v, segmentEnds, segmentLr, segmentDecay, beta1, beta2, eps, gradScale, bc1, bc2, null, 0);
    }

    /**
     * The step, writing the bf16 copy in the same kernel (bf16_rn of each updated weight, the bits cast_f32_bf16
     * writes: 2 bytes more per element than the step alone, instead of a cast's 6 before each GEMM pass). A null copy:
     * the step alone.
     */
    @Override
    public void adamwStep(Tensor params, Tensor grads, Tensor m, Tensor v, long[] segmentEnds, float[] segmentLr,
                          float[] segmentDecay, float beta1, float beta2, float eps, float gradScale, float bc1,
                          float bc2, Tensor copy, long copyFrom) {
        String op = "adamwStep";
        bindSettled();
        long n = own(params, op, "params").numel;
        AdamWSegments.check(n, segmentEnds, segmentLr, segmentDecay);
        long p = f32(params, op, "params", n).address;
        long g = f32(grads, op, "grads", n).address;
        long ms = f32(m, op, "m", n).address;
        long vs = f32(v, op, "v", n).address;
        long c = 0;
        if (copy != null) {
            CudaTensor ct = own(copy, op, "copy");
            if (ct.dtype != DType.BF16 || copyFrom < 0 || copyFrom + ct.numel != n) {
                throw new IllegalArgumentException(op + ": copy is " + ct.numel + " × " + ct.dtype + " from element " + copyFrom
                        + ", expected BF16 from there to the end of the " + n + " params");
            }
            c = ct.address;
        }
        int segments = segmentEnds.length;
        if (!Arrays.equals(segmentEnds, lastEnds) || !Arrays.equals(segmentLr, lastLr)
                || !Arrays.equals(segmentDecay, lastDecay)) {
            long bytes = 16L * segments;
            if (segmentTablesBytes < bytes) {
                if (segmentTables != 0) {
                    allocator.free(segmentTables);
                }
                segmentTables = deviceAlloc(bytes, "the optimizer's segment table");
                segmentTablesBytes = bytes;
            }
            BytePointer s = staging(bytes);
            new LongPointer(s).put(segmentEnds);
            new FloatPointer(s).position(2L * segments).put(segmentLr);
            new FloatPointer(s).position(3L * segments).put(segmentDecay);
            toDevice(s, segmentTables, bytes);
            lastEnds = segmentEnds.clone();
            lastLr = segmentLr.clone();
            lastDecay = segmentDecay.clone();
        }
        args.reset().ptr(p).ptr(g).ptr(ms).ptr(vs).i64(n).ptr(segmentTables).ptr(segmentTables + 8L * segments)
                .ptr(segmentTables + 12L * segments).i32(segments).f32(beta1).f32(beta2).f32(eps).f32(gradScale)
                .f32(bc1).f32(bc2).ptr(c).i64(copyFrom);
        int vi = Arrays.binarySearch(ADAMW_VECS, adamwVec);
        if (vi < 0 || n == 0) {
            launch1d(adamw, n, args);
            return;
        }
        // one block per tile of 1024·VEC elements; float4 where all four buffers are 16-byte aligned (and the copy's
        // four elements 8-byte aligned)
        boolean copyVec = c == 0 || ((c & 7) == 0 && (copyFrom & 3) == 0);
        args.i32(((p | g | ms | vs) & 15) == 0 && copyVec ? 1 : 0);
        long tiles = ceil(n, 1024L * adamwVec);
        if (tiles > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("adamwStep: " + n + " elements are over the kernel's grid");
        }
        adamwTiles[vi].launch((int) tiles, 1, 1, THREADS, 1, 1, 0, stream, args);
    }

    // ------------------------------------------------------------------------------------------------ launch helpers

    private int blocks(long threads) {
        return (int) Math.min(ceil(threads, THREADS), Integer.MAX_VALUE);
    }

    /** A grid-stride kernel over n elements: 256 threads a block, at most 16 blocks per multiprocessor. */
    private void launch1d(Kernel k, long n, LaunchArgs a) {
        int grid = (int) Math.min(ceil(n, THREADS), multiprocessors * 16L);
        k.launch(grid, 1, 1, THREADS, 1, 1, 0, stream, a);
    }

    private static long ceil(long a, long b) {
        return (a + b - 1) / b;
    }

    private static int ceil(int a, int b) {
        return (a + b - 1) / b;
    }

    /** Row slices of a column reduction: one per 64 rows, 1 … 256; fixed by rows, so the sums are reproducible. */
    static int slices(int rows) {
        return Math.max(1, Math.min(MAX_SLICES, ceil(rows, ROWS_PER_SLICE)));
    }

    /**
     * Room for {@code floats} fp32 partial sums: the start of the buffer, reused by every op, or while sums are held
     * back the next free region of it (256-byte aligned). It grows as needed (then holding a whole window of held-back
     * sums at once), after the held-back finishes reading the old one are queued.
     */
    private long partials(long floats) {
        long bytes = (4L * floats + 255) / 256 * 256;
        long start = deferSums ? partialsUsed : 0;
        if (partialsBytes < start + bytes) {
            launchHeldSums();
            if (partials != 0) {
                allocator.free(partials);
            }
            partials = deviceAlloc(start + bytes, "column-reduction partial sums");
            partialsBytes = start + bytes;
            start = 0;
        }
        if (deferSums) {
            partialsUsed = start + bytes;
        }
        return partials + start;
    }

    /** Whether {@link #addColumnSumsBf16} takes a bf16 matrix at m with C columns: 8 columns a 16-byte load. */
    private static boolean columnSumsBf16Fits(long m, int C) {
        return C % 8 == 0 && m % 16 == 0;
    }

    /**
     * Row slices of column_sums_bf16x8: about {@link #COLUMN_SUMS_BLOCKS} blocks over the ⌈C/256⌉ column groups, at
     * least {@link #ROWS_PER_SLICE} rows a slice; fixed by rows and C, so the sums are reproducible.
     */
    static int columnSumsSlices(int rows, int C) {
        int groups = ceil(C, COLUMN_SUMS_COLS);
        return Math.max(1, Math.min(ceil(COLUMN_SUMS_BLOCKS, groups), ceil(rows, ROWS_PER_SLICE)));
    }

    /**
     * out[c] += Σ_rows m[row·C + c] (add false: out[c] = the sum) for a bf16 matrix m (columnSumsBf16Fits) in one
     * launch: column_sums_bf16x8 writes the slices' partial sums and the last block of each column group adds them, in a
     * fixed order.
     */
    private void addColumnSumsBf16(long m, long out, int rows, int C, boolean add) {
        int groups = ceil(C, COLUMN_SUMS_COLS);
        int slices = columnSumsSlices(rows, C);
        long partial = partials((long) slices * C);
        if (columnTicketsBytes < 4L * groups) {
            if (columnTickets != 0) {
                allocator.free(columnTickets);
            }
            columnTickets = deviceAlloc(4L * groups, "column-sum tickets");
            columnTicketsBytes = 4L * groups;
            zeroBytes(columnTickets, columnTicketsBytes);
        }
        columnSumsBf16.launch(groups, slices, 1, 32, 8, 1, 0, stream,
                args.reset().ptr(m).ptr(partial).ptr(columnTickets).ptr(out).i32(rows).i32(C).i32(add ? 1 : 0));
    }

    /** out[c] += Σ slices of partial (now, or held back); nothing when out is 0 (a null gradient). */
    private void finishColumns(long partial, long out, int slices, int C) {
        finishColumns(partial, out, slices, C, true);
    }

    /** As above; {@code add} false: out[c] = the sum (written, not added to). */
    private void finishColumns(long partial, long out, int slices, int C, boolean add) {
        if (out == 0 || C == 0) {
            return;
        }
        if (!deferSums) {
            columnFinish.launch(ceil(C, 32), 1, 1, 32, FINISH_ROWS, 1, 0, stream,
                    args.reset().ptr(partial).ptr(out).i32(slices).i32(C).i32(add ? 1 : 0));
            return;
        }
        if (pendingSums == FINISH_BATCH || overlapsHeldSum(out, C)) {
            launchHeldSums();
        }
        int e = pendingSums++;
        pendingSumWords[e] = partial;
        pendingSumWords[FINISH_BATCH + e] = out;
        pendingSumWords[2 * FINISH_BATCH + e] = slices | (add ? 0 : STORE_BIT) | (long) C << 32;
        pendingMaxColumns = Math.max(pendingMaxColumns, C);
    }

    /** Whether out[0, C) overlaps the out of a held-back finish (the batch's entries run in parallel). */
    private boolean overlapsHeldSum(long out, int C) {
        for (int e = 0; e < pendingSums; e++) {
            long o = pendingSumWords[FINISH_BATCH + e];
            long n = pendingSumWords[2 * FINISH_BATCH + e] >>> 32;
            if (out < o + 4 * n && o < out + 4L * C) {
                return true;
            }
        }
        return false;
    }

    /** The held-back finishes in one launch; the partial-sum regions they read stay reserved. */
    private void launchHeldSums() {
        if (pendingSums == 0) {
            return;
        }
        java.util.Arrays.fill(pendingSumWords, pendingSums, FINISH_BATCH, 0L);
        java.util.Arrays.fill(pendingSumWords, FINISH_BATCH + pendingSums, 2 * FINISH_BATCH, 0L);
        java.util.Arrays.fill(pendingSumWords, 2 * FINISH_BATCH + pendingSums, 3 * FINISH_BATCH, 0L);
        columnFinishBatch.launch(ceil(pendingMaxColumns, 32), pendingSums, 1, 32, FINISH_ROWS, 1, 0, stream,
                sumArgs.reset().struct(pendingSumWords));
        pendingSums = 0;
        pendingMaxColumns = 0;
    }

    /**
     * Holds back the last pass of the parameter-gradient column sums (column_finish, token_shift_mixes_finish) until
     * {@link #finishParameterSums}, which does them FINISH_BATCH to a launch: a block's backward pass leaves some twenty,
     * a few µs each. Every method that reads or writes memory outside an op (uploads, downloads, zero, copy, the
     * optimizer, the stream handed to a collective) finishes them first.
     */
    @Override
    public void deferParameterSums() {
        bind();
        deferSums = true;
    }

    @Override
    public void finishParameterSums() {
        bind();
        launchHeldSums();
        deferSums = false;
        partialsUsed = 0;
    }

    /** Frees the partial-sum buffer (it grows again on next use): for the check of a window that grows it. */
    void releasePartialSums() {
        bindSettled();
        if (partials != 0) {
            allocator.free(partials);
            partials = 0;
            partialsBytes = 0;
        }
    }

    /** {@link #bind}, with the held-back sums finished: for what may read a parameter gradient or the partial sums. */
    private void bindSettled() {
        bind();
        if (deferSums) {
            finishParameterSums();
        }
    }

    private void checkErrorWord() {
        try (IntPointer word = new IntPointer(4)) {
            Cuda.check(cudaMemcpyAsync(word, pa.at(errorWord), 16, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync");
            Cuda.check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
            int tokenAt = word.get(0);
            int targetAt = word.get(2);
            if (tokenAt == 0 && targetAt == 0) {
                return;
            }
            Cuda.check(cudaMemsetAsync(pa.at(errorWord), 0, 16, stream), "cudaMemsetAsync");
            Cuda.check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
            if (tokenAt != 0) {
                throw new GoslingException("token id " + word.get(1) + " at position " + (tokenAt - 1)
                        + " is outside the vocabulary: the data was tokenized for a different vocab_size than the"
                        + " model's");
            }
            throw new GoslingException("target token id " + word.get(3) + " at position " + (targetAt - 1)
                    + " is outside the vocabulary: the data was tokenized for a different vocab_size than the model's");
        }
    }

    private void bind() {
        if (closed) {
            throw new IllegalStateException("the CUDA backend was closed");
        }
        Thread current = Thread.currentThread();
        if (current != boundThread) {
            Cuda.check(cudaSetDevice(device), "cudaSetDevice(" + device + ")");
            boundThread = current;
        }
    }

    private static void cublasCheck(int status, String call) {
        if (status != cublas.CUBLAS_STATUS_SUCCESS) {
            BytePointer text = cublasGetStatusString(status);
            throw new CudaException(call, status, text == null ? "unknown cuBLAS status" : text.getString());
        }
    }

    // ------------------------------------------------------------------------------------------------ argument checks

    private CudaTensor own(Tensor t, String op, String name) {
        if (t == null) {
            throw new IllegalArgumentException(op + ": " + name + " is null");
        }
        if (!(t instanceof CudaTensor c) || c.owner != this) {
            throw new IllegalArgumentException(op + ": " + name + " belongs to another backend: " + t);
        }
        if (c.isClosed()) {
            throw new IllegalArgumentException(op + ": " + name + " was closed: " + t);
        }
        return c;
    }

    /** An F32 operand with exactly {@code numel} elements. */
    /** An F32 tensor, or a BF16 one (the GEMM inputs a model keeps in bf16, {@link #gemmInputDtype}). */
    private CudaTensor floatLike(Tensor t, String op, String name, long numel) {
        CudaTensor c = own(t, op, name);
        if ((c.dtype != DType.F32 && c.dtype != DType.BF16) || c.numel != numel) {
            throw new IllegalArgumentException(op + ": " + name + " is " + c.numel + " × " + c.dtype + ", expected "
                    + numel + " × F32 or BF16");
        }
        return c;
    }

    /**
     * A gradient an op writes: F32, or BF16 when only GEMMs read it next — then it must be written, not added to, and
     * the op's saved inputs must be bf16 too ({@code savedBf16}: the kernels that write bf16 read bf16).
     */
    private CudaTensor bf16GradientOut(String op, Tensor t, String name, long numel, boolean accumulate,
                                       boolean savedBf16) {
        CudaTensor c = floatLike(t, op, name, numel);
        if (c.dtype == DType.BF16 && (accumulate || !savedBf16)) {
            throw new IllegalArgumentException(op + ": a BF16 " + name + " is only written (the Overwriting variant),"
                    + " from bf16 saved inputs");
        }
        return c;
    }

    /**
     * Two saved activations an op reads together (k and α; v and its gate): both F32, or both BF16 (kept in bf16,
     * {@link #savedActivationDtype}); true for BF16.
     */
    private boolean savedPair(String op, Tensor a, String aName, Tensor b, String bName, long numel) {
        CudaTensor x = floatLike(a, op, aName, numel);
        CudaTensor y = floatLike(b, op, bName, numel);
        if (x.dtype != y.dtype) {
            throw new IllegalArgumentException(op + ": " + aName + " is " + x.dtype + " but " + bName + " is " + y.dtype
                    + " (both F32 or both BF16)");
        }
        return x.dtype == DType.BF16;
    }

    /**
     * Tensors an op reads (or writes) in one storage: all F32, or all BF16 (the WKV7 kernel's inputs and output and their
     * producers and readers, kept in bf16 under bf16 GEMMs); true for BF16.
     */
    private boolean sameFloatType(String op, long numel, Tensor[] ts, String... names) {
        DType first = floatLike(ts[0], op, names[0], numel).dtype;
        for (int i = 1; i < ts.length; i++) {
            if (floatLike(ts[i], op, names[i], numel).dtype != first) {
                throw new IllegalArgumentException(op + ": " + names[0] + " is " + first + " but " + names[i] + " is "
                        + ((CudaTensor) ts[i]).dtype + " (all F32 or all BF16)");
            }
        }
        return first == DType.BF16;
    }

    /** A GEMM input x (or linearForward's out): F32, or BF16 when the GEMMs take bf16 operands (then not cast again). */
    private CudaTensor gemmInput(Tensor t, String op, String name, long numel) {
        CudaTensor c = floatLike(t, op, name, numel);
        if (c.dtype == DType.BF16 && !castsOperands()) {
            throw new IllegalArgumentException(op + ": " + name + " is BF16 but the GEMMs are " + gemmPrecision
                    + " (bf16 GEMM inputs need GemmPrecision.BF16)");
        }
        return c;
    }

    /**
     * A GEMM's output (a backward's dx): F32, or BF16 under bf16 GEMMs ({@link #gemmGradientDtype}), which the GEMM
     * writes in bf16.
     */
    private CudaTensor gemmOutput(Tensor t, String op, String name, long numel) {
        return gemmInput(t, op, name, numel);
    }

    private CudaTensor f32(Tensor t, String op, String name, long numel) {
        CudaTensor c = own(t, op, name);
        if (c.dtype != DType.F32 || c.numel != numel) {
            throw new IllegalArgumentException(op + ": " + name + " is " + c.numel + " × " + c.dtype + ", expected "
                    + numel + " × F32");
        }
        return c;
    }

    /** The address of an optional F32 operand, 0 for null. */
    private long optional(Tensor t, String op, String name, long numel) {
        return t == null ? 0 : f32(t, op, name, numel).address;
    }

    private CudaTensor ids(Tensor t, String op, String name, long numel) {
        CudaTensor c = own(t, op, name);
        if (c.dtype != DType.I32 || c.numel != numel) {
            throw new IllegalArgumentException(op + ": " + name + " is " + c.numel + " × " + c.dtype + ", expected "
                    + numel + " × I32");
        }
        return c;
    }
}
