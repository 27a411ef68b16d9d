package dev.gosling.trainer.backend.cuda;

import dev.gosling.kernels.CudaException;
import org.bytedeco.cuda.cublas.cublasLtContext;
import org.bytedeco.cuda.cublas.cublasLtMatmulAlgo_t;
import org.bytedeco.cuda.cublas.cublasLtMatmulDescOpaque_t;
import org.bytedeco.cuda.cublas.cublasLtMatmulHeuristicResult_t;
import org.bytedeco.cuda.cublas.cublasLtMatmulPreferenceOpaque_t;
import org.bytedeco.cuda.cublas.cublasLtMatrixLayoutOpaque_t;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;

import java.util.HashMap;
import java.util.Map;

import static org.bytedeco.cuda.global.cublas.CUBLASLT_EPILOGUE_BIAS;
import static org.bytedeco.cuda.global.cublas.CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE;
import static org.bytedeco.cuda.global.cublas.CUBLASLT_MATMUL_DESC_BIAS_POINTER;
import static org.bytedeco.cuda.global.cublas.CUBLASLT_MATMUL_DESC_EPILOGUE;
import static org.bytedeco.cuda.global.cublas.CUBLASLT_MATMUL_DESC_TRANSA;
import static org.bytedeco.cuda.global.cublas.CUBLASLT_MATMUL_DESC_TRANSB;
import static org.bytedeco.cuda.global.cublas.CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES;
import static org.bytedeco.cuda.global.cublas.CUBLAS_COMPUTE_32F;
import static org.bytedeco.cuda.global.cublas.CUBLAS_OP_N;
import static org.bytedeco.cuda.global.cublas.CUBLAS_OP_T;
import static org.bytedeco.cuda.global.cublas.CUBLAS_STATUS_SUCCESS;
import static org.bytedeco.cuda.global.cublas.cublasLtCreate;
import static org.bytedeco.cuda.global.cublas.cublasLtDestroy;
import static org.bytedeco.cuda.global.cublas.cublasLtGetStatusString;
import static org.bytedeco.cuda.global.cublas.cublasLtMatmul;
import static org.bytedeco.cuda.global.cublas.cublasLtMatmulAlgoGetHeuristic;
import static org.bytedeco.cuda.global.cublas.cublasLtMatmulDescCreate;
import static org.bytedeco.cuda.global.cublas.cublasLtMatmulDescDestroy;
import static org.bytedeco.cuda.global.cublas.cublasLtMatmulDescSetAttribute;
import static org.bytedeco.cuda.global.cublas.cublasLtMatmulPreferenceCreate;
import static org.bytedeco.cuda.global.cublas.cublasLtMatmulPreferenceDestroy;
import static org.bytedeco.cuda.global.cublas.cublasLtMatmulPreferenceSetAttribute;
import static org.bytedeco.cuda.global.cublas.cublasLtMatrixLayoutCreate;
import static org.bytedeco.cuda.global.cublas.cublasLtMatrixLayoutDestroy;
import static org.bytedeco.cuda.global.cudart.CUDA_R_32F;
import static org.bytedeco.cuda.global.cudart.CUDA_R_16BF;

/**
 * The bf16 GEMMs through cuBLASLt: one plan per shape (descriptors and an algorithm), made on the shape's first call
 * and reused. cublasGemmEx picks its kernel by a fixed heuristic with no say for us; on the weight-gradient shapes
 * of the training step (k = the batch's tokens, both operands k-strided) it ran at 80–270 TFLOP/s on an H100 against
 * 600–750 for the forward shapes. cuBLASLt returns several candidates with a workspace for split-K; the plan takes the
 * one {@link Select} says.
 *
 * <p>Column-major, as cuBLAS: D[m×n] = op(A)·op(B) + beta·C with C = D. The caller (CudaBackend.gemm) maps its
 * row-major product onto this, as it does for cublasGemmEx.
 */
final class LtGemms implements AutoCloseable {

    /** How a shape's algorithm is chosen. */
    enum Select {
        /** cuBLASLt's first candidate. */
        HEURISTIC,
        /** cublasGemmEx and the first {@link #CANDIDATES} candidates timed on the shape's first call; the fastest kept. */
        TUNED
    }

    static final int CANDIDATES = 8;

    /**
     * One shape: transposes, sizes, leading dimensions, operand and output types, whether C is added, whether C is an
     * input apart from D (a residual), and whether a bias of m values is added to every column of D (the epilogue's
     * bias: a LoRA's), fp32 or with {@code biasBf16} bf16 (cuBLASLt 13.1 takes an fp32 bias only with an fp32 D).
     * cublasGemmEx can do neither of the last two.
     */
    record Shape(boolean transA, boolean transB, int m, int n, int k, int lda, int ldb, int ldc, int abType, int cType,
                 boolean accumulate, boolean separateC, boolean bias, boolean biasBf16) {

        Shape(boolean transA, boolean transB, int m, int n, int k, int lda, int ldb, int ldc, int abType, int cType,
              boolean accumulate, boolean separateC) {
            this(transA, transB, m, n, k, lda, ldb, ldc, abType, cType, accumulate, separateC, false, false);
        }

        /** Whether only cuBLASLt computes this product. */
        boolean ltOnly() {
            return separateC || bias;
        }
    }

    /** A shape's descriptors, its candidates and the algorithm in use. */
    static final class Plan implements AutoCloseable {
        final Shape shape;
        final cublasLtMatmulDescOpaque_t desc;
        final cublasLtMatrixLayoutOpaque_t a, b, c;
        final cublasLtMatmulHeuristicResult_t results;
        final int count;
        /** Candidate i's algorithm (a view into results) and the workspace it asks for. */
        final cublasLtMatmulAlgo_t[] algos;
        final long[] workspaceBytes;
        int chosen;
        /** Whether {@link #tune} has run for this plan. */
        boolean tuned;

        Plan(Shape shape, cublasLtMatmulDescOpaque_t desc, cublasLtMatrixLayoutOpaque_t a, cublasLtMatrixLayoutOpaque_t b,
             cublasLtMatrixLayoutOpaque_t c, cublasLtMatmulHeuristicResult_t results, int count) {
            this.shape = shape;
            this.desc = desc;
            this.a = a;
            this.b = b;
            this.c = c;
            this.results = results;
            this.count = count;
            this.algos = new cublasLtMatmulAlgo_t[count];
            this.workspaceBytes = new long[count];
            for (int i = 0; i < count; i++) {
                cublasLtMatmulHeuristicResult_t r = results.getPointer(i);
                algos[i] = r.algo();
                workspaceBytes[i] = r.workspaceSize();
            }
        }

        @Override
        public void close() {
            cublasLtMatmulDescDestroy(desc);
            cublasLtMatrixLayoutDestroy(a);
            cublasLtMatrixLayoutDestroy(b);
            cublasLtMatrixLayoutDestroy(c);
            results.close();
        }
    }

    private final cublasLtContext handle = new cublasLtContext();
    private final CUstream_st stream;
    private final long workspace;
    private final long workspaceBytes;
    private final Select select;
    private final Map<Shape, Plan> plans = new HashMap<>();
    private final DevicePointer pa = new DevicePointer();
    private final DevicePointer pb = new DevicePointer();
    private final DevicePointer pc = new DevicePointer();
    private final DevicePointer pd = new DevicePointer();
    private final DevicePointer pw = new DevicePointer();
    private final FloatPointer alpha = new FloatPointer(1f);
    private final FloatPointer beta = new FloatPointer(1);
    private final LongPointer biasPointer = new LongPointer(1);

    /**
     * @param workspace      device memory of {@code workspaceBytes} for split-K partial sums, owned by the caller
     * @param select         how each shape's algorithm is chosen
     */
    LtGemms(CUstream_st stream, long workspace, long workspaceBytes, Select select) {
        this.stream = stream;
        this.workspace = workspace;
        this.workspaceBytes = workspaceBytes;
        this.select = select;
        check(cublasLtCreate(handle), "cublasLtCreate");
    }

    Select select() {
        return select;
    }

    /** What the tuner needs besides the plan: cublasGemmEx on the same product, a timer and scratch outputs. */
    interface Tuning {
        /** The same product through cublasGemmEx, written to output {@code d}. */
        void viaGemmEx(long d);

        /** The milliseconds {@code body} takes on the stream. */
        double time(Runnable body);

        /** A device buffer of {@code bytes} for timing candidates of a product that accumulates; 0: none. */
        long scratch(long bytes);

        void freeScratch(long address);
    }

    /** Outputs over this size are not given a scratch copy for timing: cublasGemmEx takes them (the head's dW). */
    static final long MAX_TUNING_SCRATCH = 256L << 20;

    /**
     * D = op(A)·op(B) + (accumulate ? C : 0) (+ {@code bias}, the device address of m floats, when the shape has
     * one), column-major, fp32 accumulation; C is D unless the shape has a separate C. Under {@link Select#TUNED} the
     * shape's first call times cublasGemmEx and each candidate (a product that accumulates into a scratch output, so
     * that D gets it once) and keeps the fastest; {@code tuning} is used then, and to run cublasGemmEx's choice.
     */
    void matmul(Shape s, long a, long b, long c, long d, long bias, Tuning tuning) {
        Plan p = plans.get(s);
        if (p == null) {
            p = plan(s);
            plans.put(s, p);
        }
        if (s.bias()) {
            biasPointer.put(0, bias);
            check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, biasPointer, 8),
                    "cublasLtMatmulDescSetAttribute");
        }
        if (select == Select.TUNED && !p.tuned) {
            p.tuned = true;
            tune(p, a, b, c, d, tuning);
        }
        if (p.chosen == VIA_GEMM_EX) {
            tuning.viaGemmEx(d);
        } else {
            run(p, p.chosen, a, b, c, d);
        }
    }

    /** {@link Plan#chosen} when cublasGemmEx was the fastest. */
    static final int VIA_GEMM_EX = -1;

    /** Runs candidate {@code i} of the shape's plan (made if needed): for benchmarks of every candidate. */
    void matmulWith(Shape s, int i, long a, long b, long d) {
        Plan p = plans.computeIfAbsent(s, this::plan);
        run(p, i, a, b, d, d);
    }

    /** The candidates cuBLASLt offers for a shape (made if needed). */
    int candidates(Shape s) {
        return plans.computeIfAbsent(s, this::plan).count;
    }

    private void run(Plan p, int i, long a, long b, long c, long d) {
        beta.put(0, p.shape.accumulate() ? 1f : 0f);
        long ws = Math.min(workspaceBytes, p.workspaceBytes[i]);
        check(cublasLtMatmul(handle, p.desc, alpha, pa.at(a), p.a, pb.at(b), p.b, beta, pc.at(c), p.c, pd.at(d), p.c,
                p.algos[i], ws == 0 ? null : pw.at(workspace), ws, stream), "cublasLtMatmul");
    }

    private void tune(Plan p, long a, long b, long c, long d, Tuning tuning) {
        Shape s = p.shape;
        long bytes = (long) s.m() * s.n() * (s.cType() == CUDA_R_32F ? 4 : 2);
        // a product that accumulates into D is timed on a scratch D (D gets it once); one with a separate C reads C
        // and writes D only, so it is timed in place
        boolean scratch = s.accumulate() && !s.separateC();
        if (scratch && bytes > MAX_TUNING_SCRATCH) {
            p.chosen = s.ltOnly() ? 0 : VIA_GEMM_EX;
            return;
        }
        long out = scratch ? tuning.scratch(bytes) : d;
        long in = s.separateC() ? c : out;
        try {
            double best = Double.POSITIVE_INFINITY;
            if (!s.ltOnly()) {
                best = timed(tuning, () -> tuning.viaGemmEx(out));
                p.chosen = VIA_GEMM_EX;
            }
            for (int i = 0; i < p.count; i++) {
                int candidate = i;
                double ms;
                try {
                    ms = timed(tuning, () -> run(p, candidate, a, b, in, out));
                } catch (RuntimeException e) {
                    ms = Double.NaN; // a candidate that fails at run time is skipped
                }
                if (ms < best) {
                    best = ms;
                    p.chosen = i;
                }
            }
        } finally {
            if (out != d) {
                tuning.freeScratch(out);
            }
        }
    }

    /** One warm-up call, then the time of three. */
    private static double timed(Tuning tuning, Runnable call) {
        call.run();
        return tuning.time(() -> {
            for (int r = 0; r < 3; r++) {
                call.run();
            }
        });
    }

    private Plan plan(Shape s) {
        PointerPointer<Pointer> out = new PointerPointer<>(1);
        try {
            check(cublasLtMatmulDescCreate(out, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
            cublasLtMatmulDescOpaque_t desc = new cublasLtMatmulDescOpaque_t(out.get(0));
            try (IntPointer op = new IntPointer(1)) {
                op.put(0, s.transA() ? CUBLAS_OP_T : CUBLAS_OP_N);
                check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, op, 4), "cublasLtMatmulDescSetAttribute");
                op.put(0, s.transB() ? CUBLAS_OP_T : CUBLAS_OP_N);
                check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, op, 4), "cublasLtMatmulDescSetAttribute");
                if (s.bias()) {
                    op.put(0, CUBLASLT_EPILOGUE_BIAS);
                    check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, op, 4), "cublasLtMatmulDescSetAttribute");
                    op.put(0, s.biasBf16() ? CUDA_R_16BF : CUDA_R_32F);
                    check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, op, 4), "cublasLtMatmulDescSetAttribute");
                }
            }
            // stored shapes: A is m×k (k×m when transposed), B is k×n (n×k when transposed), C m×n
            cublasLtMatrixLayoutOpaque_t a = layout(out, s.abType(), s.transA() ? s.k() : s.m(), s.transA() ? s.m() : s.k(), s.lda());
            cublasLtMatrixLayoutOpaque_t b = layout(out, s.abType(), s.transB() ? s.n() : s.k(), s.transB() ? s.k() : s.n(), s.ldb());
            cublasLtMatrixLayoutOpaque_t c = layout(out, s.cType(), s.m(), s.n(), s.ldc());
            check(cublasLtMatmulPreferenceCreate(out), "cublasLtMatmulPreferenceCreate");
            cublasLtMatmulPreferenceOpaque_t pref = new cublasLtMatmulPreferenceOpaque_t(out.get(0));
            cublasLtMatmulHeuristicResult_t results = new cublasLtMatmulHeuristicResult_t(CANDIDATES);
            int count;
            try (LongPointer bytes = new LongPointer(1); IntPointer returned = new IntPointer(1)) {
                bytes.put(0, workspaceBytes);
                check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, bytes, 8),
                        "cublasLtMatmulPreferenceSetAttribute");
                check(cublasLtMatmulAlgoGetHeuristic(handle, desc, a, b, c, c, pref, CANDIDATES, results, returned),
                        "cublasLtMatmulAlgoGetHeuristic");
                count = returned.get(0);
            } finally {
                cublasLtMatmulPreferenceDestroy(pref);
            }
            if (count < 1) {
                throw new CudaException("cublasLtMatmulAlgoGetHeuristic found no algorithm for " + s);
            }
            return new Plan(s, desc, a, b, c, results, count);
        } finally {
            out.close();
        }
    }

    private static cublasLtMatrixLayoutOpaque_t layout(PointerPointer<Pointer> out, int type, long rows, long cols, long ld) {
        check(cublasLtMatrixLayoutCreate(out, type, rows, cols, ld), "cublasLtMatrixLayoutCreate");
        return new cublasLtMatrixLayoutOpaque_t(out.get(0));
    }

    static void check(int status, String call) {
        if (status != CUBLAS_STATUS_SUCCESS) {
            BytePointer text = cublasLtGetStatusString(status);
            throw new CudaException(call, status, text == null ? "unknown cuBLASLt status" : text.getString());
        }
    }

    @Override
    public void close() {
        plans.values().forEach(Plan::close);
        plans.clear();
        cublasLtDestroy(handle);
        alpha.close();
        beta.close();
        biasPointer.close();
    }
}
