package dev.gosling.trainer.backend.cuda;

import dev.gosling.trainer.backend.Activation;
import dev.gosling.trainer.backend.DType;
import dev.gosling.trainer.backend.Tensor;
import dev.gosling.trainer.model.ModelConfig;
import dev.gosling.trainer.model.ParameterLayout;
import dev.gosling.trainer.optim.AdamW;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Per-op device timings of the CUDA backend (fp32), each op on random data made on the device: 3 warm-up calls,
 * then 7 batches of calls timed with CUDA events; the row is the median batch's milliseconds per call. "GB/s" counts
 * each operand read once and each output written once; "TFLOP/s" is 2·m·n·k per GEMM. WKV7 is timed at the sizes of
 * peer-benchmarks.md §1b; the rest at the L12-D768, ctx 4096, micro-batch 8 step (rows = 32768).
 */
public final class GpuBench {

    /** One timed op. */
    public record Row(String op, String size, double ms, String rate) {
    }

    private final CudaBackend gpu;
    private final List<Tensor> live = new ArrayList<>();
    private long seed = 1;

    public GpuBench(CudaBackend gpu) {
        this.gpu = gpu;
    }

    /** n elements, as [n] or as [n / 65536, 65536] when n is over an int (the logits). */
    private static int[] shape(long n) {
        return n <= Integer.MAX_VALUE ? new int[] {(int) n} : new int[] {Math.toIntExact(n / 65536), 65536};
    }

    private Tensor rand(long n, float lo, float hi) {
        Tensor t = gpu.allocate(DType.F32, shape(n));
        live.add(t);
        gpu.fillUniform(t, seed++, lo, hi);
        return t;
    }

    private Tensor zeros(long n) {
        Tensor t = gpu.allocate(DType.F32, shape(n));
        live.add(t);
        return t;
    }

    private void freeAll() {
        gpu.synchronize();
        live.forEach(Tensor::close);
        live.clear();
    }

    /** Median milliseconds per call. */
    private double time(Runnable op) {
        for (int i = 0; i < 3; i++) {
            op.run();
        }
        gpu.synchronize();
        float once = gpu.time(op);
        int reps = Math.max(1, Math.min(50, (int) (20.0 / Math.max(once, 1e-3))));
        double[] batches = new double[7];
        for (int b = 0; b < batches.length; b++) {
            batches[b] = gpu.time(() -> {
                for (int i = 0; i < reps; i++) {
                    op.run();
                }
            }) / reps;
        }
        Arrays.sort(batches);
        return batches[batches.length / 2];
    }

    private static String gbs(double bytes, double ms) {
        return String.format("%.0f GB/s", bytes / (ms * 1e6));
    }

    private static String tflops(double flops, double ms) {
        return String.format("%.1f TFLOP/s", flops / (ms * 1e9));
    }

    public List<Row> run() {
        List<Row> rows = runWkv7();
        step(rows, 8, 4096, 768, 65536);
        rows.addAll(runCrossEntropy());
        return rows;
    }

    /**
     * The fused cross-entropy forward+backward at the training step's chunk (2048 rows × 65536): the two-pass kernel
     * ("old") and every one-read variant, fp32 logits with bf16 dLogits and with fp32 dLogits (fp32 GEMMs), then bf16
     * logits with bf16 dLogits (bf16 GEMMs; into their own buffer, as the step writes them over the logits: the same
     * bytes, and every call sees the same logits). GB/s counts the fewest bytes: the logits read once, dLogits
     * written once.
     */
    public List<Row> runCrossEntropy() {
        List<Row> rows = new ArrayList<>();
        int R = 2048, V = 65536;
        CudaBackend.CeChoice before = gpu.crossEntropyChoice();
        try {
            Tensor logits = rand((long) R * V, -8f, 8f);
            Tensor losses = zeros(R);
            Tensor targets = gpu.allocate(DType.I32, R);
            live.add(targets);
            gpu.upload(new SplittableRandom(3).ints(R, 0, V).toArray(), targets);
            Tensor dBf16 = gpu.allocate(DType.BF16, R, V);
            live.add(dBf16);
            Tensor dF32 = zeros((long) R * V);
            List<CudaBackend.CeRows> choices = new ArrayList<>();
            choices.add(null);
            choices.addAll(CudaBackend.CeRows.ALL);
            for (boolean bf16 : new boolean[] {true, false}) {
                for (CudaBackend.CeRows c : choices) {
                    if (c != null && c.packed()) {
                        continue;
                    }
                    gpu.useCrossEntropy(c);
                    // fp32 dLogits into their own buffer (the step writes them over the logits; the same bytes) so
                    // every call sees the same random logits
                    Tensor d = bf16 ? dBf16 : dF32;
                    double ms = time(() -> gpu.crossEntropyForwardBackward(logits, targets, losses, d, R, V, 1.0 / R));
                    rows.add(new Row("crossEntropy fwd+bwd " + (c == null ? "old" : c.label()),
                            "rows=" + R + " V=" + V + (bf16 ? " bf16 dL" : " f32 dL"), ms,
                            gbs((4.0 + (bf16 ? 2 : 4)) * R * V, ms)));
                }
            }
            Tensor logitsBf16 = gpu.allocate(DType.BF16, R, V);
            live.add(logitsBf16);
            gpu.roundToBf16(logits, logitsBf16);
            for (CudaBackend.CeRows c : choices) {
                gpu.useCrossEntropy(c);
                double ms = time(() -> gpu.crossEntropyForwardBackward(logitsBf16, targets, losses, dBf16, R, V, 1.0 / R));
                rows.add(new Row("crossEntropy fwd+bwd " + (c == null ? "old"
                        : c.label() + " (" + gpu.crossEntropyBlocksPerSm(c, V, true) + "/SM)"),
                        "rows=" + R + " V=" + V + " bf16 logits", ms, gbs(4.0 * R * V, ms)));
            }
        } finally {
            gpu.useCrossEntropy(before);
            freeAll();
        }
        return rows;
    }

    /**
     * The bf16 GEMMs of the training step (row-major m×n×k as the step's profile names them; "TN … ×k" with k the
     * tokens are the weight gradients, accumulated into fp32) through each library: cublasGemmEx, cuBLASLt's first
     * candidate, the tuned choice (timed on its first call), and the fastest of cuBLASLt's candidates here (its index
     * and how many there were).
     */
    public List<Row> runGemms() {
        List<Row> rows = new ArrayList<>();
        CudaBackend.GemmPrecision precision = gpu.gemmPrecision();
        CudaBackend.GemmLibrary library = gpu.gemmLibrary();
        gpu.setGemmPrecision(CudaBackend.GemmPrecision.BF16);
        try {
            // {transA, transB, m, n, k, accumulate, bf16 out}: L12-D768 (32768 tokens), L24-D1024 (32768), L24-D2048
            // (16384), the head's chunk of 2048 rows
            int[][] shapes = {
                    {1, 0, 3072, 768, 32768, 1, 0}, {1, 0, 768, 3072, 32768, 1, 0}, {1, 0, 768, 768, 32768, 1, 0},
                    {0, 1, 32768, 3072, 768, 0, 1}, {0, 0, 32768, 3072, 768, 0, 0}, {0, 0, 32768, 768, 3072, 0, 0},
                    {0, 1, 32768, 768, 768, 0, 0}, {1, 0, 65536, 768, 2048, 1, 0}, {0, 1, 2048, 65536, 768, 0, 1},
                    {0, 0, 2048, 768, 65536, 0, 0},
                    {1, 0, 4096, 1024, 32768, 1, 0}, {1, 0, 1024, 4096, 32768, 1, 0}, {1, 0, 1024, 1024, 32768, 1, 0},
                    {1, 0, 8192, 2048, 16384, 1, 0}, {1, 0, 2048, 8192, 16384, 1, 0}, {1, 0, 2048, 2048, 16384, 1, 0},
                    {0, 1, 16384, 8192, 2048, 0, 1}, {0, 0, 16384, 8192, 2048, 0, 0}, {0, 0, 16384, 2048, 8192, 0, 0},
                    {0, 1, 16384, 2048, 2048, 0, 0}, {0, 0, 16384, 2048, 2048, 0, 0}, {1, 0, 65536, 2048, 2048, 1, 0}};
            for (int[] g : shapes) {
                boolean ta = g[0] == 1, tb = g[1] == 1, acc = g[5] == 1, cBf16 = g[6] == 1;
                int m = g[2], n = g[3], k = g[4];
                Tensor a = bf16Rand((long) m * k);
                Tensor b = bf16Rand((long) k * n);
                Tensor c = cBf16 ? bf16Rand((long) m * n) : rand((long) m * n, -1f, 1f);
                long pa = ((CudaTensor) a).address, pb = ((CudaTensor) b).address, pc = ((CudaTensor) c).address;
                String size = (ta ? "T" : "N") + (tb ? "T" : "N") + " " + m + "×" + n + "×" + k + (acc ? " +=" : "");
                double flops = 2.0 * m * n * k;
                for (CudaBackend.GemmLibrary lib : CudaBackend.GemmLibrary.values()) {
                    gpu.useGemmLibrary(lib);
                    double ms = time(() -> gpu.gemmBf16(ta, tb, m, n, k, pa, pb, acc, pc, cBf16));
                    rows.add(new Row("gemm bf16 " + lib.name().toLowerCase(java.util.Locale.ROOT), size, ms, tflops(flops, ms)));
                }
                // the row-major product as the column-major one CudaBackend.gemm hands to cuBLAS(Lt)
                LtGemms lt = gpu.ltPlans();
                LtGemms.Shape shape = new LtGemms.Shape(tb, ta, n, m, k, tb ? k : n, ta ? m : k, n,
                        org.bytedeco.cuda.global.cudart.CUDA_R_16BF,
                        cBf16 ? org.bytedeco.cuda.global.cudart.CUDA_R_16BF : org.bytedeco.cuda.global.cudart.CUDA_R_32F, acc, false);
                int count = lt.candidates(shape);
                double best = Double.POSITIVE_INFINITY;
                int bestAt = -1;
                for (int i = 0; i < count; i++) {
                    int at = i;
                    double ms;
                    try {
                        ms = time(() -> lt.matmulWith(shape, at, pb, pa, pc));
                    } catch (RuntimeException e) {
                        continue;
                    }
                    if (ms < best) {
                        best = ms;
                        bestAt = i;
                    }
                }
                rows.add(new Row("gemm bf16 lt best " + bestAt + "/" + count, size, best, tflops(flops, best)));
                freeAll();
            }
        } finally {
            gpu.useGemmLibrary(library);
            gpu.setGemmPrecision(precision);
        }
        return rows;
    }

    /** n random bf16 values in [-1, 1). */
    private Tensor bf16Rand(long n) {
        Tensor f = rand(n, -1f, 1f);
        Tensor t = gpu.allocate(DType.BF16, shape(n));
        live.add(t);
        gpu.roundToBf16(f, t);
        return t;
    }

    /**
     * The LayerNorm backward (dx added, dWeight and dBias) at 32768 × 768 (L12-D768, ctx 4096, bsz 8), 16384 × 2048
     * (L24-D2048, bsz 4) and 16384 × 4096: the dx kernel then the column kernel ("old"), the fused kernel with its
     * default slices (64 rows, ≤ 256), with ≤ 512 slices of 32 rows and ≤ 256 of 128 rows, and the dx kernel alone (no dWeight/dBias: a
     * floor); GB/s counts dOut, x and dx read and dx written. AdamW at the L12-D768 and L24-D2048 parameter layouts
     * (their real segments, weight decay 0.1): the per-element search kernel ("old") and the tiled kernels, tiles of
     * 1024, 2048 and 4096; GB/s counts 28 bytes a parameter. Then, at L12-D768, one step of the old kernel and one of
     * each tiled kernel from the same state, compared bit for bit (the ms column holds the number of differing
     * elements, params + m + v).
     */
    public List<Row> runLnAdamW() {
        List<Row> rows = new ArrayList<>();
        int[] normBefore = gpu.normBackwardChoice();
        int adamBefore = gpu.adamwChoice();
        try {
            for (int[] d : new int[][] {{32768, 768}, {16384, 2048}, {16384, 4096}}) {
                int R = d[0], C = d[1];
                long n = (long) R * C;
                String size = "rows=" + R + " C=" + C;
                Tensor x = rand(n, -1f, 1f), y = zeros(n), dy = rand(n, -1f, 1f), dx = rand(n, -1f, 1f);
                Tensor wC = rand(C, 0.5f, 1.5f), bC = rand(C, -0.5f, 0.5f), gW = zeros(C), gB = zeros(C);
                Tensor mean = zeros(R), rstd = zeros(R);
                gpu.layerNormForward(x, wC, bC, y, mean, rstd, R, C);
                Object[][] variants = {{"old", new int[] {0, 64, 256}}, {"fused", new int[] {4096, 64, 256}},
                        {"fused 32r<=512s", new int[] {4096, 32, 512}}, {"fused 128r<=256s", new int[] {4096, 128, 256}}};
                for (Object[] v : variants) {
                    int[] c = (int[]) v[1];
                    gpu.useNormBackward(c[0], c[1], c[2]);
                    double ms = time(() -> gpu.layerNormBackward(dy, x, wC, mean, rstd, dx, gW, gB, R, C));
                    rows.add(new Row("layerNorm bwd " + v[0], size, ms, gbs(16.0 * n, ms)));
                }
                gpu.useNormBackward(normBefore[0], normBefore[1], normBefore[2]);
                double ms = time(() -> gpu.layerNormBackward(dy, x, wC, mean, rstd, dx, null, null, R, C));
                rows.add(new Row("layerNorm bwd dx only", size, ms, gbs(16.0 * n, ms)));
                freeAll();
            }
            for (int[] m : new int[][] {{12, 768}, {24, 2048}}) {
                ModelConfig config = ModelConfig.of(m[0], m[1], 65536, 4096);
                AdamW.Segments seg = AdamW.segments(new ParameterLayout(config), 0.1);
                long params = seg.ends()[seg.ends().length - 1];
                String size = "L" + m[0] + "-D" + m[1] + " " + params + " p " + seg.ends().length + " seg";
                Tensor p = rand(params, -0.1f, 0.1f), g = rand(params, -1e-3f, 1e-3f);
                Tensor mm = rand(params, -1e-3f, 1e-3f), vv = rand(params, 0f, 1e-6f);
                float[] lr = seg.learningRates(1e-3);
                for (int vec : new int[] {0, 1, 2, 4}) {
                    gpu.useAdamW(vec);
                    double ms = time(() -> gpu.adamwStep(p, g, mm, vv, seg.ends(), lr, seg.decays(), 0.9f, 0.99f,
                            1e-18f, 0.7f, 0.1f, 0.01f));
                    rows.add(new Row("adamw " + (vec == 0 ? "old" : "tiles " + 1024 * vec), size, ms,
                            gbs(28.0 * params, ms)));
                }
                if (m[0] == 12) {
                    for (int vec : new int[] {1, 2, 4}) {
                        rows.add(new Row("adamw tiles " + 1024 * vec + " vs old", "L12-D768 bits differing",
                                adamwDiffer(p, g, mm, vv, seg, lr, vec), ""));
                    }
                }
                freeAll();
            }
        } catch (RuntimeException e) {
            rows.add(new Row("ln/adamw", "-", Double.NaN, GpuOpChecks.oneLine(e)));
        } finally {
            gpu.useNormBackward(normBefore[0], normBefore[1], normBefore[2]);
            gpu.useAdamW(adamBefore);
            freeAll();
        }
        return rows;
    }

    /** One step of the old kernel and one of kernel {@code vec} from copies of one state: elements differing. */
    private double adamwDiffer(Tensor p, Tensor g, Tensor m, Tensor v, AdamW.Segments seg, float[] lr, int vec) {
        long n = p.numel();
        Tensor[] a = {p, m, v};
        Tensor[] b = {zeros(n), zeros(n), zeros(n)};
        for (int k = 0; k < 3; k++) {
            gpu.copy(a[k], b[k]);
        }
        gpu.useAdamW(0);
        gpu.adamwStep(a[0], g, a[1], a[2], seg.ends(), lr, seg.decays(), 0.9f, 0.99f, 1e-18f, 0.7f, 0.1f, 0.01f);
        gpu.useAdamW(vec);
        gpu.adamwStep(b[0], g, b[1], b[2], seg.ends(), lr, seg.decays(), 0.9f, 0.99f, 1e-18f, 0.7f, 0.1f, 0.01f);
        long differ = 0;
        float[] x = new float[(int) n];
        float[] y = new float[(int) n];
        for (int k = 0; k < 3; k++) {
            gpu.download(a[k], x);
            gpu.download(b[k], y);
            for (int i = 0; i < n; i++) {
                if (Float.floatToRawIntBits(x[i]) != Float.floatToRawIntBits(y[i])) {
                    differ++;
                }
            }
        }
        return differ;
    }

    /**
     * For a profiler: every WKV7 kernel once at B=8 T=4096 H=12: v4, the default, the plain-layout v5 row kernels and
     * every chunked forward (each followed by the default backward).
     */
    public void profileWkv7() {
        int B = 8, T = 4096, H = 12;
        long n = (long) B * T * H * 64;
        Tensor r = rand(n, -0.5f, 0.5f), w = rand(n, -4f, 4f), k = rand(n, -0.5f, 0.5f), v = rand(n, -0.5f, 0.5f);
        Tensor a = rand(n, -0.1f, 0.1f), b = rand(n, -0.1f, 0.1f), out = zeros(n), dy = rand(n, -1f, 1f);
        Tensor saved = zeros(gpu.wkv7SavedElements(B, T, H));
        Tensor[] g = {zeros(n), zeros(n), zeros(n), zeros(n), zeros(n), zeros(n)};
        List<CudaBackend.Wkv7Choice> choices = new ArrayList<>(List.of(CudaBackend.Wkv7Choice.V4,
                CudaBackend.Wkv7Choice.AUTO, CudaBackend.Wkv7Choice.v5(null, null, CudaBackend.COLS_32_2_4),
                CudaBackend.Wkv7Choice.v5(CudaBackend.ROWS_32_2_8,
                        CudaBackend.ROWS_64_2_4, null)));
        for (CudaBackend.ChunkKernel ck : CudaBackend.WKV7_CHUNK_KERNELS) {
            choices.add(CudaBackend.Wkv7Choice.chunked(ck));
        }
        for (CudaBackend.Wkv7Choice c : choices) {
            gpu.useWkv7(c);
            gpu.wkv7Forward(r, w, k, v, a, b, out, saved, B, T, H);
            gpu.wkv7Backward(dy, r, w, k, v, a, b, saved, g[0], g[1], g[2], g[3], g[4], g[5], B, T, H);
        }
        gpu.useWkv7(CudaBackend.Wkv7Choice.AUTO);
        freeAll();
    }

    /** The WKV7 rows alone. */
    public List<Row> runWkv7() {
        List<Row> rows = new ArrayList<>();
        for (int[] d : new int[][] {{8, 4096, 12}, {16, 512, 12}, {4, 4096, 32}, {1, 16384, 32}}) {
            wkv7(rows, d[0], d[1], d[2]);
        }
        return rows;
    }

    private void wkv7(List<Row> rows, int B, int T, int H) {
        String size = "B=" + B + " T=" + T + " H=" + H;
        try {
            long n = (long) B * T * H * 64;
            int rowsN = B * T;
            int C = H * 64;
            Tensor r = rand(n, -0.5f, 0.5f);
            Tensor w = rand(n, -4f, 4f);
            Tensor k = rand(n, -0.5f, 0.5f);
            Tensor v = rand(n, -0.5f, 0.5f);
            Tensor kRaw = rand(n, -1f, 1f);
            Tensor alphaPre = rand(n, -3f, 3f); // α = σ(alphaPre) in about (0.05, 0.95)
            Tensor kK = rand(C, 0.6f, 0.8f);
            Tensor kA = rand(C, 0.9f, 1.1f);
            Tensor a = zeros(n);
            Tensor b = zeros(n);
            gpu.keyPrepareForward(kRaw, alphaPre, kK, kA, zeros(n), a, b, rowsN, C);
            Tensor out = zeros(n);
            Tensor saved = zeros(gpu.wkv7SavedElements(B, T, H));
            Tensor dy = rand(n, -1f, 1f);
            Tensor[] g = {zeros(n), zeros(n), zeros(n), zeros(n), zeros(n), zeros(n)};
            CudaBackend.Wkv7Choice chosen = gpu.wkv7Choice();
            Runnable fwdOp = () -> gpu.wkv7Forward(r, w, k, v, a, b, out, saved, B, T, H);
            Runnable bwdOp = () -> gpu.wkv7Backward(dy, r, w, k, v, a, b, saved, g[0], g[1], g[2], g[3], g[4], g[5],
                    B, T, H);
            try {
                // the kernels in use (v5, automatic configurations) and v4, then every v5 kernel alone
                // "v5 f… r…": the default before the paired lane layout (plain kernels, the rule of then); "v5 c32_2_4":
                // the column kernel before the paired column kernels, "v5 c32_2_4p" the same paired (chunk and rows
                // automatic)
                long heads = (long) B * H;
                int sms = gpu.multiprocessors();
                CudaBackend.RowKernel pf = heads * 4 <= sms ? CudaBackend.ROWS_16_1_8 : CudaBackend.ROWS_32_2_8;
                CudaBackend.RowKernel pr = heads * 4 <= sms ? CudaBackend.ROWS_16_1_8 : heads * 2 <= sms
                        ? CudaBackend.ROWS_32_2_8 : heads <= sms ? CudaBackend.ROWS_64_2_4 : CudaBackend.ROWS_32_2_8;
                for (CudaBackend.Wkv7Choice c : List.of(CudaBackend.Wkv7Choice.AUTO,
                        CudaBackend.Wkv7Choice.v5(pf, pr, null), CudaBackend.Wkv7Choice.AUTO.chunk(0),
                        CudaBackend.Wkv7Choice.v5(null, null, CudaBackend.COLS_32_2_4),
                        CudaBackend.Wkv7Choice.v5(null, null, CudaBackend.COLS_32_2_4P),
                        CudaBackend.Wkv7Choice.V4)) {
                    gpu.useWkv7(c);
                    double fwd = time(fwdOp);
                    double bwd = time(bwdOp);
                    String tag = " " + c + (c.equals(chosen) ? "*" : "");
                    if (c.version() == 5 && c.chunk() < 0 && c.fwd() == null) {
                        tag += " (f" + gpu.wkv7AutoForward(B, H) + " r"
                                + gpu.wkv7AutoRows(B, H) + " c"
                                + gpu.wkv7AutoCols(B, H, gpu.wkv7AutoChunk(B, H, T)) + " ch"
                                + gpu.wkv7AutoChunk(B, H, T) + ")";
                    }
                    rows.add(new Row("wkv7 forward" + tag, size, fwd, ""));
                    rows.add(new Row("wkv7 backward" + tag, size, bwd, ""));
                    rows.add(new Row("wkv7 fwd+bwd" + tag, size, fwd + bwd, ""));
                }
                // the automatic kernels with fp32 inputs and with bf16 inputs and y (the training step's under bf16
                // GEMMs) in each staging (WKV7_BF16_STAGINGS: "bf16" in use, "bf16sh" the kernels before): forward,
                // row pass, column pass (the row pass's dS at the chunk ends from the whole backward before it),
                // whole backward
                Tensor[] in16 = new Tensor[6];
                Tensor[] in32 = {r, w, k, v, a, b};
                for (int i = 0; i < 6; i++) {
                    in16[i] = gpu.allocate(DType.BF16, shape(n));
                    live.add(in16[i]);
                    gpu.roundToBf16(in32[i], in16[i]);
                }
                Tensor out16 = gpu.allocate(DType.BF16, shape(n));
                live.add(out16);
                // dy in bf16 with bf16 inputs (wkvGradientDtype, the training step's; the tensor-core kernels read it
                // so, an fp32 one would be rounded first)
                Tensor dy16 = gpu.allocate(DType.BF16, shape(n));
                live.add(dy16);
                gpu.roundToBf16(dy, dy16);
                List<String> modes = new ArrayList<>(List.of("f32"));
                modes.addAll(CudaBackend.WKV7_BF16_STAGINGS);
                for (String mode : modes) {
                    boolean half = !mode.equals("f32");
                    Tensor[] in = half ? in16 : in32;
                    Tensor y = half ? out16 : out;
                    CudaBackend.Wkv7Choice c = half ? CudaBackend.Wkv7Choice.AUTO.bf16(mode) : CudaBackend.Wkv7Choice.AUTO;
                    gpu.useWkv7(c);
                    // bf16 inputs on the tensor-core path keep their own (bf16) saved layout
                    Tensor sv = half ? zeros(gpu.wkv7SavedElements(B, T, H, DType.BF16)) : saved;
                    Runnable f = () -> gpu.wkv7Forward(in[0], in[1], in[2], in[3], in[4], in[5], y, sv, B, T, H);
                    Tensor dyIn = half ? dy16 : dy;
                    Runnable bw = () -> gpu.wkv7Backward(dyIn, in[0], in[1], in[2], in[3], in[4], in[5], sv, g[0],
                            g[1], g[2], g[3], g[4], g[5], B, T, H);
                    String tag = " " + (half ? mode.substring(1) : "f32") + " inputs";
                    double fwd = time(f);
                    double bwd = time(bw);
                    gpu.useWkv7(c.passes(1));
                    double rowsMs = time(bw);
                    gpu.useWkv7(c);
                    bw.run();
                    gpu.useWkv7(c.passes(2));
                    double colsMs = time(bw);
                    rows.add(new Row("wkv7 auto forward" + tag, size, fwd, ""));
                    rows.add(new Row("wkv7 auto bwd rows" + tag, size, rowsMs, ""));
                    rows.add(new Row("wkv7 auto bwd cols" + tag, size, colsMs, ""));
                    rows.add(new Row("wkv7 auto backward" + tag, size, bwd, ""));
                    rows.add(new Row("wkv7 auto fwd+bwd" + tag, size, fwd + bwd, ""));
                }
                for (CudaBackend.ChunkKernel ck : CudaBackend.WKV7_CHUNK_KERNELS) {
                    gpu.useWkv7(CudaBackend.Wkv7Choice.chunked(ck));
                    rows.add(new Row("wkv7 forward chunk " + ck, size, time(fwdOp), ""));
                }
                for (CudaBackend.RowKernel rk : CudaBackend.WKV7_ROW_KERNELS) {
                    CudaBackend.Wkv7Choice c = CudaBackend.Wkv7Choice.v5(rk, rk, null);
                    gpu.useWkv7(c);
                    rows.add(new Row("wkv7 forward v5 " + rk, size, time(fwdOp), ""));
                    gpu.useWkv7(c.passes(1));
                    rows.add(new Row("wkv7 bwd rows v5 " + rk, size, time(bwdOp), ""));
                }
                for (CudaBackend.ColKernel ck : CudaBackend.WKV7_COL_KERNELS) {
                    CudaBackend.Wkv7Choice c = CudaBackend.Wkv7Choice.v5(null, null, ck);
                    gpu.useWkv7(c.chunk(0).passes(2));
                    rows.add(new Row("wkv7 bwd cols v5 " + ck + " ch0", size, time(bwdOp), ""));
                    for (int ch : CudaBackend.WKV7_CHUNKS) {
                        gpu.useWkv7(c.chunk(ch));
                        bwdOp.run();  // dS at this chunk's ends in the scratch
                        gpu.useWkv7(c.chunk(ch).passes(2));
                        rows.add(new Row("wkv7 bwd cols v5 " + ck + " ch" + ch, size, time(bwdOp), ""));
                    }
                }
                // the whole backward (automatic kernels) at each chunk, and the row pass with its boundary writes
                for (int ch : CudaBackend.WKV7_CHUNKS) {
                    gpu.useWkv7(CudaBackend.Wkv7Choice.AUTO.chunk(ch));
                    rows.add(new Row("wkv7 backward v5 ch" + ch, size, time(bwdOp), ""));
                    gpu.useWkv7(CudaBackend.Wkv7Choice.AUTO.chunk(ch).passes(1));
                    rows.add(new Row("wkv7 bwd rows v5 ch" + ch, size, time(bwdOp), ""));
                }
            } finally {
                gpu.useWkv7(chosen);
            }
        } catch (RuntimeException e) {
            rows.add(new Row("wkv7", size, Double.NaN, GpuOpChecks.oneLine(e)));
        } finally {
            freeAll();
        }
    }

    /** The heavy ops of one layer (and the head) at rows = B·T. */
    private void step(List<Row> rows, int B, int T, int C, int V) {
        int R = B * T;
        long n = (long) R * C;
        String size = "rows=" + R + " C=" + C;
        try {
            Tensor x = rand(n, -1f, 1f);
            Tensor y = zeros(n);
            Tensor dy = rand(n, -1f, 1f);
            Tensor dx = zeros(n);
            Tensor wC = rand(C, 0.5f, 1.5f);
            Tensor bC = rand(C, -0.5f, 0.5f);
            Tensor gC = zeros(C);
            Tensor gC2 = zeros(C);
            Tensor mean = zeros(R);
            Tensor rstd = zeros(R);
            double ms = time(() -> gpu.layerNormForward(x, wC, bC, y, mean, rstd, R, C));
            rows.add(new Row("layerNorm forward", size, ms, gbs(8.0 * n, ms)));
            ms = time(() -> gpu.layerNormBackward(dy, x, wC, mean, rstd, dx, gC, gC2, R, C));
            rows.add(new Row("layerNorm backward", size, ms, gbs(16.0 * n, ms)));
            Tensor gMean = zeros((long) R * (C / 64));
            Tensor gRstd = zeros((long) R * (C / 64));
            ms = time(() -> gpu.groupNormForward(x, wC, bC, y, gMean, gRstd, R, C));
            rows.add(new Row("groupNorm forward", size, ms, gbs(8.0 * n, ms)));
            ms = time(() -> gpu.groupNormBackward(dy, x, wC, gMean, gRstd, dx, gC, gC2, R, C));
            rows.add(new Row("groupNorm backward", size, ms, gbs(16.0 * n, ms)));
            // k mixes of x: the forward reads x and writes k outputs, the backward reads k dOut, x and dx and writes dx
            for (int k : new int[] {1, 6}) {
                Tensor[] mixes = new Tensor[k];
                Tensor[] outs = new Tensor[k];
                Tensor[] dOuts = new Tensor[k];
                Tensor[] dMixes = new Tensor[k];
                for (int j = 0; j < k; j++) {
                    mixes[j] = j == 0 ? wC : rand(C, 0f, 1f);
                    outs[j] = j == 0 ? y : zeros(n);
                    dOuts[j] = j == 0 ? dy : rand(n, -1f, 1f);
                    dMixes[j] = zeros(C);
                }
                ms = time(() -> gpu.tokenShiftMixesForward(x, mixes, outs, B, T, C));
                rows.add(new Row("tokenShiftMixes k=" + k + " forward", size, ms, gbs(4.0 * (1 + k) * n, ms)));
                ms = time(() -> gpu.tokenShiftMixesBackward(dOuts, x, mixes, dx, dMixes, B, T, C));
                rows.add(new Row("tokenShiftMixes k=" + k + " backward", size, ms, gbs(4.0 * (3 + k) * n, ms)));
            }
            Tensor alpha = rand(n, 0.05f, 0.95f);
            Tensor a = zeros(n);
            Tensor b = zeros(n);
            Tensor kt = zeros(n);
            ms = time(() -> gpu.keyPrepareForward(x, alpha, wC, bC, kt, a, b, R, C));
            rows.add(new Row("keyPrepare forward", size, ms, gbs(20.0 * n, ms)));
            ms = time(() -> gpu.keyPrepareBackward(dy, dy, dy, x, alpha, wC, bC, dx, y, gC, gC2, R, C));
            rows.add(new Row("keyPrepare backward", size, ms, gbs(36.0 * n, ms)));
            ms = time(() -> gpu.bonusForward(x, alpha, a, b, wC, y, R, C));
            rows.add(new Row("bonus forward", size, ms, gbs(20.0 * n, ms)));
            ms = time(() -> gpu.bonusBackward(dy, alpha, a, b, wC, null, dx, y, kt, gC, R, C));
            rows.add(new Row("bonus backward", size, ms, gbs(40.0 * n, ms)));
            ms = time(() -> gpu.valueResidualForward(x, a, alpha, y, R, C));
            rows.add(new Row("valueResidual forward", size, ms, gbs(16.0 * n, ms)));
            ms = time(() -> gpu.gateForward(x, alpha, y, R, C));
            rows.add(new Row("gate forward", size, ms, gbs(12.0 * n, ms)));
            ms = time(() -> gpu.gateBackward(dy, x, alpha, dx, y, R, C));
            rows.add(new Row("gate backward", size, ms, gbs(28.0 * n, ms)));

            Tensor wCC = rand((long) C * C, -0.03f, 0.03f);
            Tensor gCC = zeros((long) C * C);
            ms = time(() -> gpu.linearForward(x, wCC, y, R, C, C));
            rows.add(new Row("linear C>C forward", size, ms, tflops(2.0 * R * C * C, ms)));
            ms = time(() -> gpu.linearBackward(dy, x, wCC, dx, gCC, R, C, C));
            rows.add(new Row("linear C>C backward", size, ms, tflops(4.0 * R * C * C, ms)));
            int rank = 64;
            Tensor down = rand((long) C * rank, -0.1f, 0.1f);
            Tensor up = rand((long) rank * C, -0.1f, 0.1f);
            Tensor hidden = zeros((long) R * rank);
            Tensor dHidden = zeros((long) R * rank);
            Tensor gDown = zeros((long) C * rank);
            Tensor gUp = zeros((long) rank * C);
            ms = time(() -> gpu.loraForward(x, down, up, bC, Activation.TANH, Activation.NONE, hidden, y, R, C, rank, C));
            rows.add(new Row("lora forward (rank 64)", size, ms, ""));
            ms = time(() -> gpu.loraBackward(dy, x, down, up, bC, Activation.TANH, Activation.NONE, hidden, y, null,
                    dHidden, dx, gDown, gUp, gC, R, C, rank, C));
            rows.add(new Row("lora backward (rank 64)", size, ms, ""));
            freeAll();

            long n4 = 4L * n;
            Tensor xs = rand(n, -1f, 1f);
            Tensor k4 = rand((long) 4 * C * C, -0.03f, 0.03f);
            Tensor h4 = zeros(n4);
            Tensor dh4 = rand(n4, -1f, 1f);
            Tensor dxs = zeros(n);
            Tensor gk4 = zeros((long) 4 * C * C);
            ms = time(() -> gpu.linearForward(xs, k4, h4, R, C, 4 * C));
            rows.add(new Row("linear C>4C forward", size, ms, tflops(8.0 * R * C * C, ms)));
            ms = time(() -> gpu.linearBackward(dh4, xs, k4, dxs, gk4, R, C, 4 * C));
            rows.add(new Row("linear C>4C backward", size, ms, tflops(16.0 * R * C * C, ms)));
            ms = time(() -> gpu.reluSquaredForward(dh4, h4, R, 4 * C));
            rows.add(new Row("reluSquared forward", "rows=" + R + " 4C", ms, gbs(8.0 * n4, ms)));
            freeAll();

            String hs = "rows=" + R + " C=" + C + " V=" + V;
            Tensor xh = rand(n, -1f, 1f);
            Tensor head = rand((long) V * C, -0.02f, 0.02f);
            Tensor logits = zeros((long) R * V);
            Tensor losses = zeros(R);
            Tensor targets = gpu.allocate(DType.I32, R);
            live.add(targets);
            gpu.upload(new SplittableRandom(3).ints(R, 0, V).toArray(), targets);
            ms = time(() -> gpu.linearForward(xh, head, logits, R, C, V));
            rows.add(new Row("head linear forward", hs, ms, tflops(2.0 * R * C * V, ms)));
            gpu.fillUniform(logits, 99, -3f, 3f);
            ms = time(() -> gpu.crossEntropyForward(logits, targets, losses, R, V));
            rows.add(new Row("crossEntropy forward", hs, ms, gbs(4.0 * R * V, ms)));
            Tensor dLogits = zeros((long) R * V);
            ms = time(() -> gpu.crossEntropyBackward(logits, targets, dLogits, R, V, 1.0 / R));
            rows.add(new Row("crossEntropy backward", hs, ms, gbs(8.0 * R * V, ms)));
            Tensor dxh = zeros(n);
            Tensor gHead = zeros((long) V * C);
            ms = time(() -> gpu.linearBackward(dLogits, xh, head, dxh, gHead, R, C, V));
            rows.add(new Row("head linear backward", hs, ms, tflops(4.0 * R * C * V, ms)));
            freeAll();

            long params = 191_084_544L;
            Tensor p = rand(params, -0.1f, 0.1f);
            Tensor g = rand(params, -1e-3f, 1e-3f);
            Tensor m = zeros(params);
            Tensor v = zeros(params);
            long[] ends = {params / 2, params};
            float[] lr = {1e-3f, 2e-3f};
            float[] wd = {0.1f, 0f};
            ms = time(() -> gpu.adamwStep(p, g, m, v, ends, lr, wd, 0.9f, 0.99f, 1e-18f, 1f, 0.1f, 0.01f));
            rows.add(new Row("adamw step", "params=" + params, ms, gbs(28.0 * params, ms)));
            ms = time(() -> gpu.sumOfSquares(g));
            rows.add(new Row("sumOfSquares", "params=" + params, ms, gbs(4.0 * params, ms)));
        } catch (RuntimeException e) {
            rows.add(new Row("step ops", size, Double.NaN, GpuOpChecks.oneLine(e)));
        } finally {
            freeAll();
        }
    }
}
