package dev.gosling.trainer.backend.cuda;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.backend.Activation;
import dev.gosling.trainer.backend.Backend;
import dev.gosling.trainer.backend.DType;
import dev.gosling.trainer.backend.Tensor;
import dev.gosling.trainer.model.Bf16;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;

/**
 * Every CUDA op held against the CPU backend, llm.c style: fresh random inputs (rounded to float, so both backends
 * see the same numbers), the CPU backend in float64 as the reference, the GPU in float32. Forward outputs, saved
 * tensors and scratch are poisoned with NaN before the GPU runs (an element the op forgets to write fails), and
 * gradients start from random values rather than zero (an op that overwrites instead of accumulating fails); the
 * gradient compared is the change. Each quantity passes when ‖gpu − cpu‖/‖cpu‖ is within the case's tolerance and
 * the GPU result has no NaN or Inf.
 *
 * <p>Used by {@link GpuCheck} (the bundle's main, no Maven) and by the GPU test suite, so both run the same checks.
 */
public final class GpuOpChecks {
    private GpuOpChecks() {
    }

    /** fp32 against the float64 reference. */
    public static final double FP32_TOLERANCE = 1e-5;

    /** One compared quantity. failure is non-null when the check could not run or hit an unexpected error. */
    public record Row(String op, String size, String quantity, double error, double tolerance, boolean finite,
                      String failure) {
        public boolean passed() {
            return failure == null && finite && error <= tolerance;
        }
    }

    /** A named check producing rows. */
    public interface Check {
        String name();

        List<Row> run(CudaBackend gpu, Backend cpu);
    }

    // ------------------------------------------------------------------------------------------------ harness

    /** Tensors made on one backend in one precision, closed together. */
    static final class Dev implements AutoCloseable {
        final Backend backend;
        final DType dtype;
        private final List<Tensor> live = new ArrayList<>();

        Dev(Backend backend, DType dtype) {
            this.backend = backend;
            this.dtype = dtype;
        }

        Tensor tensor(double[] data) {
            Tensor t = keep(backend.allocate(dtype, data.length));
            backend.upload(data, t);
            return t;
        }

        /** An output, scratch or saved tensor, filled with NaN. */
        Tensor poisoned(long n) {
            double[] nan = new double[Math.toIntExact(n)];
            Arrays.fill(nan, Double.NaN);
            return tensor(nan);
        }

        /** An output kept in bf16 on the GPU (0xff bytes: NaN); on the CPU {@link #poisoned} in the compute dtype. */
        Tensor poisonedBf16OnGpu(long n) {
            if (backend instanceof CudaBackend gpu) {
                Tensor t = keep(gpu.allocate(DType.BF16, Math.toIntExact(n)));
                gpu.poisonBytes(t);
                return t;
            }
            return poisoned(n);
        }

        /** dst += src, a bf16 src widened first (a gradient an op writes in bf16). */
        void accumulateWidened(Tensor src, Tensor dst) {
            backend.accumulate(src.dtype() == DType.BF16 ? tensor(read(src)) : src, dst);
        }

        Tensor ids(int[] data) {
            Tensor t = keep(backend.allocate(DType.I32, data.length));
            backend.upload(data, t);
            return t;
        }

        double[] read(Tensor t) {
            double[] a = new double[Math.toIntExact(t.numel())];
            backend.download(t, a);
            return a;
        }

        private Tensor keep(Tensor t) {
            live.add(t);
            return t;
        }

        @Override
        public void close() {
            live.forEach(Tensor::close);
            live.clear();
        }
    }

    /**
     * One op pair: differentiable inputs with values, a forward that returns the compared outputs (and fills
     * {@code saved}), and a backward that accumulates into one gradient tensor per input.
     */
    abstract static class OpCase implements Check {
        final String op;
        String size;
        final double tolerance;
        final long seed;
        /**
         * Inputs the GPU gets as BF16 tensors (saved activations kept in bf16): their values are rounded to bf16 for
         * both backends, so the results still agree to fp32 rounding.
         */
        Set<String> bf16Inputs = Set.of();
        /** Whether the output gradients are rounded to bf16 for both backends and given to the GPU as BF16 tensors. */
        boolean bf16DOuts;
        private LinkedHashMap<String, double[]> inputs;

        OpCase(String op, String size, double tolerance, long seed) {
            this.op = op;
            this.size = size;
            this.tolerance = tolerance;
            this.seed = seed;
        }

        @Override
        public String name() {
            return op + " " + size;
        }

        /** This case with {@code names} given to the GPU in bf16. */
        OpCase withBf16(String... names) {
            bf16Inputs = Set.of(names);
            size += " bf16 " + String.join(",", new TreeSet<>(bf16Inputs));
            return this;
        }

        /** This case with its output gradients in bf16 ({@link #bf16DOuts}). */
        OpCase withBf16DOuts() {
            bf16DOuts = true;
            size += " bf16 dOut";
            return this;
        }

        /** The tolerance of one compared quantity ("out", "out0", …, "d" + input): {@link #tolerance} by default. */
        double toleranceOf(String quantity) {
            return tolerance;
        }

        abstract void makeInputs(SplittableRandom rng, LinkedHashMap<String, double[]> in);

        abstract List<Tensor> forward(Dev d, Map<String, Tensor> in, Map<String, Tensor> saved);

        abstract void backward(Dev d, Map<String, Tensor> in, Map<String, Tensor> saved, List<Tensor> dOuts,
                               Map<String, Tensor> grads);

        LinkedHashMap<String, double[]> inputs() {
            if (inputs == null) {
                inputs = new LinkedHashMap<>();
                makeInputs(new SplittableRandom(seed), inputs);
                inputs.replaceAll((k, v) -> toFloat(v));
                for (String k : bf16Inputs) {
                    double[] v = inputs.get(k);
                    for (int i = 0; i < v.length; i++) {
                        v[i] = Bf16.round((float) v[i]);
                    }
                }
            }
            return inputs;
        }

        private record Result(List<double[]> outputs, Map<String, double[]> gradDeltas) {
        }

        private Result runOn(Backend backend, DType dtype, List<double[]> dOuts, Map<String, double[]> g0) {
            try (Dev d = new Dev(backend, dtype)) {
                Map<String, Tensor> in = new LinkedHashMap<>();
                inputs().forEach((k, v) -> in.put(k, d.tensor(v)));
                if (backend instanceof CudaBackend gpu) {
                    for (String k : bf16Inputs) {
                        Tensor b = d.keep(gpu.allocate(DType.BF16, Math.toIntExact(in.get(k).numel())));
                        gpu.roundToBf16(in.get(k), b);
                        in.put(k, b);
                    }
                }
                Map<String, Tensor> saved = new LinkedHashMap<>();
                List<Tensor> outs = forward(d, in, saved);
                List<double[]> outValues = new ArrayList<>();
                for (Tensor t : outs) {
                    outValues.add(d.read(t));
                }
                Map<String, double[]> deltas = new LinkedHashMap<>();
                if (dOuts != null) {
                    List<Tensor> dOutTensors = new ArrayList<>();
                    for (double[] r : dOuts) {
                        Tensor t = d.tensor(r);
                        if (bf16DOuts && backend instanceof CudaBackend gpu) {
                            Tensor b = d.keep(gpu.allocate(DType.BF16, r.length));
                            gpu.roundToBf16(t, b); // r is bf16-exact: the same values
                            t = b;
                        }
                        dOutTensors.add(t);
                    }
                    Map<String, Tensor> grads = new LinkedHashMap<>();
                    g0.forEach((k, v) -> grads.put(k, d.tensor(v)));
                    backward(d, in, saved, dOutTensors, grads);
                    grads.forEach((k, t) -> {
                        double[] after = d.read(t);
                        double[] start = g0.get(k);
                        for (int i = 0; i < after.length; i++) {
                            after[i] -= start[i];
                        }
                        deltas.put(k, after);
                    });
                }
                return new Result(outValues, deltas);
            }
        }

        @Override
        public List<Row> run(CudaBackend gpu, Backend cpu) {
            List<Row> rows = new ArrayList<>();
            try {
                SplittableRandom rng = new SplittableRandom(seed ^ 0x5DEECE66DL);
                Result shape = runOn(cpu, DType.F64, null, null);
                List<double[]> dOuts = new ArrayList<>();
                for (double[] o : shape.outputs()) {
                    double[] dOut = toFloat(gaussian(rng, o.length, 1.0));
                    if (bf16DOuts) {
                        for (int i = 0; i < dOut.length; i++) {
                            dOut[i] = Bf16.round((float) dOut[i]);
                        }
                    }
                    dOuts.add(dOut);
                }
                Map<String, double[]> g0 = new LinkedHashMap<>();
                inputs().forEach((k, v) -> g0.put(k, toFloat(gaussian(rng, v.length, 0.5))));
                Result ref = runOn(cpu, DType.F64, dOuts, g0);
                Result got = runOn(gpu, DType.F32, dOuts, g0);
                for (int i = 0; i < ref.outputs().size(); i++) {
                    String q = "out" + (ref.outputs().size() > 1 ? i : "");
                    rows.add(compare(op, size, q, got.outputs().get(i), ref.outputs().get(i), toleranceOf(q)));
                }
                for (String k : ref.gradDeltas().keySet()) {
                    rows.add(compare(op, size, "d" + k, got.gradDeltas().get(k), ref.gradDeltas().get(k),
                            toleranceOf("d" + k)));
                }
            } catch (RuntimeException e) {
                rows.add(new Row(op, size, "-", Double.NaN, tolerance, false, oneLine(e)));
            }
            return rows;
        }
    }

    static Row compare(String op, String size, String quantity, double[] got, double[] ref, double tolerance) {
        boolean finite = true;
        for (double x : got) {
            if (!Double.isFinite(x)) {
                finite = false;
                break;
            }
        }
        return new Row(op, size, quantity, relError(got, ref), tolerance, finite, null);
    }

    /** ‖a − b‖ / ‖b‖ (0 when both are 0; NaN propagates). */
    public static double relError(double[] a, double[] b) {
        if (a.length != b.length) {
            throw new IllegalArgumentException("lengths " + a.length + " and " + b.length);
        }
        double diff = 0;
        double ref = 0;
        for (int i = 0; i < a.length; i++) {
            double d = a[i] - b[i];
            diff += d * d;
            ref += b[i] * b[i];
        }
        if (ref == 0) {
            return diff == 0 ? 0 : Double.POSITIVE_INFINITY;
        }
        return Math.sqrt(diff / ref);
    }

    static String oneLine(Throwable e) {
        String m = e.getClass().getSimpleName() + ": " + e.getMessage();
        return m.replace('\n', ' ');
    }

    static double[] gaussian(SplittableRandom rng, int n, double scale) {
        double[] a = new double[n];
        for (int i = 0; i < n; i += 2) {
            double u = rng.nextDouble();
            double v = rng.nextDouble();
            double r = Math.sqrt(-2 * Math.log(1 - u)) * scale;
            a[i] = r * Math.cos(2 * Math.PI * v);
            if (i + 1 < n) {
                a[i + 1] = r * Math.sin(2 * Math.PI * v);
            }
        }
        return a;
    }

    /** The n×n identity, row-major: a GEMM with it reads a bf16 tensor back exactly. */
    static double[] identity(int n) {
        double[] eye = new double[n * n];
        for (int i = 0; i < n; i++) {
            eye[i * n + i] = 1;
        }
        return eye;
    }

    static double[] uniform(SplittableRandom rng, int n, double lo, double hi) {
        double[] a = new double[n];
        for (int i = 0; i < n; i++) {
            a[i] = lo + (hi - lo) * rng.nextDouble();
        }
        return a;
    }

    static double[] toFloat(double[] a) {
        double[] b = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            b[i] = (float) a[i];
        }
        return b;
    }

    // ------------------------------------------------------------------------------------------------ the cases

    /** The bf16 band: GEMM inputs rounded to bf16 (8 significant bits), fp32 accumulation. */
    public static final double BF16_TOLERANCE = 1e-2;

    /**
     * The ops that run on cuBLAS (linear, the LoRA chains), for a backend whose GEMMs round their inputs to bf16
     * ({@link CudaBackend.GemmPrecision#BF16}), within {@link #BF16_TOLERANCE}.
     */
    public static List<Check> gemms() {
        List<Check> c = new ArrayList<>();
        long s = 101;
        for (int[] d : new int[][] {{33, 96, 80}, {512, 768, 3072}, {256, 768, 16384}}) {
            c.add(linear(d[0], d[1], d[2], BF16_TOLERANCE, s++));
        }
        for (int[] d : new int[][] {{100, 128, 32, 128}, {1000, 768, 64, 768}}) {
            c.add(lora(d[0], d[1], d[2], d[3], Activation.TANH, Activation.NONE, true, BF16_TOLERANCE, s++));
            c.add(lora(d[0], d[1], d[2], d[3], Activation.NONE, Activation.SIGMOID, true, BF16_TOLERANCE, s++));
            // the α and v-gate chains as the model runs them: the pre-activation (bias, no output activation)
            c.add(lora(d[0], d[1], d[2], d[3], Activation.NONE, Activation.NONE, true, BF16_TOLERANCE, s++));
        }
        // the bias gradient's column sums from a bf16 dOut: column_sums_bf16x8 (C % 8 == 0: the model's shape with odd
        // rows, a partial column group, fewer rows than thread rows) and the column-partial kernels (C even, C odd)
        for (int[] d : new int[][] {{4097, 2048}, {1000, 776}, {7, 512}, {333, 8}, {301, 770}, {51, 99}}) {
            c.add(loraBiasSums(d[0], d[1], s++));
        }
        c.add(linear(257, 96, 1000, BF16_TOLERANCE, true, s++));
        c.add(linear(257, 96, 1000, BF16_TOLERANCE, false, true, s++));
        // the weight gradients written by the GEMMs (beta 0), as the model runs them: the projections, and the four
        // LoRA chains (α, v gate and decay from a bf16 dOut, the bias from its column sums; g through its sigmoid)
        c.add(linear(257, 96, 1000, BF16_TOLERANCE, false, true, true, s++));
        c.add(linear(512, 768, 3072, BF16_TOLERANCE, false, true, true, s++));
        for (int[] d : new int[][] {{100, 128, 32, 128}, {1000, 768, 64, 768}}) {
            c.add(((OpCase) lora(d[0], d[1], d[2], d[3], Activation.NONE, Activation.NONE, true, BF16_TOLERANCE, true,
                    true, s++)).withBf16DOuts());
            c.add(((OpCase) lora(d[0], d[1], d[2], d[3], Activation.NONE, Activation.NONE, true, BF16_TOLERANCE, false,
                    true, s++)).withBf16DOuts());
            c.add(((OpCase) lora(d[0], d[1], d[2], d[3], Activation.TANH, Activation.NONE, true, BF16_TOLERANCE, true,
                    true, s++)).withBf16DOuts());
            c.add(lora(d[0], d[1], d[2], d[3], Activation.TANH, Activation.NONE, true, BF16_TOLERANCE, true, true, s++));
            c.add(lora(d[0], d[1], d[2], d[3], Activation.SIGMOID, Activation.NONE, false, BF16_TOLERANCE, true, true,
                    s++));
        }
        c.add(linearHeldCopy(257, 96, 1000, BF16_TOLERANCE, 9101)); // its own seed: the cases after keep theirs
        // the residual added by the GEMM (cuBLASLt's separate C), the block's bf16 input and fp32 output
        c.add(linearResidual(257, 96, 1000, BF16_TOLERANCE, s++));
        c.add(linearResidual(512, 3072, 768, BF16_TOLERANCE, s++));
        c.add(bf16Inputs(2, 50, 768, s++));
        c.add(crossEntropyBf16(37, 1000, s++));
        // the training step's head under bf16 GEMMs: bf16 logits, the cross-entropy's bf16 dLogits over them
        c.add(headBf16(333, 65536, 64, false, s++));  // one-read kernel
        c.add(headBf16(257, 50257, 96, false, s++));  // odd vocabulary: the two-pass kernel
        c.add(headBf16(333, 65536, 64, true, s++));
        c.add(headBf16(257, 50257, 96, true, s++));
        c.add(bf16Inputs(3, 17, 99, s++));
        c.add(bf16Rounding(37, 13, s++));
        c.add(bf16Rounding(64, 96, s++));
        // C = 2048 (the bf16 backward's staged kernels: one 512-thread block an SM; 16-row slices inside samples)
        c.add(bf16Inputs(2, 300, 2048, s++));
        return c;
    }

    /**
     * Tensors kept in bf16 because only GEMMs read them (GemmPrecision.BF16): the ops that write them (six token-shift
     * mixes, the gate product, relu²) against the CPU's fp32 results, each read back through a GEMM with the identity
     * (exact); then linear and LoRA forward and backward with such a bf16 x (a token-shift mix with mix = 0, i.e. x
     * rounded to bf16) against the CPU with the fp32 x. All within the bf16 band; C = 99 takes the scalar kernels.
     */
    static Check bf16Inputs(int B, int T, int C, long seed) {
        String size = "B=" + B + " T=" + T + " C=" + C;
        int rows = B * T;
        return new Check() {
            public String name() {
                return "bf16 GEMM inputs " + size;
            }

            public List<Row> run(CudaBackend gpu, Backend cpu) {
                List<Row> out = new ArrayList<>();
                try (Dev g = new Dev(gpu, DType.F32); Dev c = new Dev(cpu, DType.F32)) {
                    SplittableRandom rng = new SplittableRandom(seed);
                    double[] x = toFloat(gaussian(rng, rows * C, 1.0));
                    double[] gate = toFloat(gaussian(rng, rows * C, 1.0));
                    double[][] mixes = new double[6][];
                    for (int j = 0; j < 6; j++) {
                        mixes[j] = toFloat(uniform(rng, C, 0, 1));
                    }
                    double[] eye = identity(C);
                    Tensor eyeG = g.tensor(eye);
                    Tensor xg = g.tensor(x);
                    Tensor xc = c.tensor(x);
                    Tensor[] mg = new Tensor[6];
                    Tensor[] mc = new Tensor[6];
                    Tensor[] og = new Tensor[6];
                    Tensor[] oc = new Tensor[6];
                    for (int j = 0; j < 6; j++) {
                        mg[j] = g.tensor(mixes[j]);
                        mc[j] = c.tensor(mixes[j]);
                        og[j] = g.keep(gpu.allocate(DType.BF16, rows, C));
                        oc[j] = c.poisoned((long) rows * C);
                    }
                    gpu.tokenShiftMixesForward(xg, mg, og, B, T, C);
                    cpu.tokenShiftMixesForward(xc, mc, oc, B, T, C);
                    for (int j = 0; j < 6; j++) {
                        out.add(compare("bf16 out", size, "tokenShiftMixes out" + j, readBf16(g, og[j], eyeG, rows, C),
                                c.read(oc[j]), BF16_TOLERANCE));
                    }
                    // the same from LayerNorm fused in (its statistics computed, then read back: the same bf16 mixes)
                    double[] lnW1 = toFloat(gaussian(rng, C, 1.0));
                    double[] lnB1 = toFloat(gaussian(rng, C, 0.5));
                    Tensor[] lsG = new Tensor[6];
                    Tensor[] lsG2 = new Tensor[6];
                    Tensor[] lsC = new Tensor[6];
                    for (int j = 0; j < 6; j++) {
                        lsG[j] = poisonedBf16(g, (long) rows * C);
                        lsG2[j] = poisonedBf16(g, (long) rows * C);
                        lsC[j] = c.poisoned((long) rows * C);
                    }
                    Tensor meanG = g.poisoned(rows);
                    Tensor rstdG = g.poisoned(rows);
                    gpu.layerNormTokenShiftForward(xg, g.tensor(lnW1), g.tensor(lnB1), meanG, rstdG, false, mg, lsG, B, T, C);
                    gpu.layerNormTokenShiftForward(xg, g.tensor(lnW1), g.tensor(lnB1), meanG, rstdG, true, mg, lsG2, B, T, C);
                    cpu.layerNormTokenShiftForward(xc, c.tensor(lnW1), c.tensor(lnB1), c.poisoned(rows), c.poisoned(rows),
                            false, mc, lsC, B, T, C);
                    for (int j = 0; j < 6; j++) {
                        double[] first = readBf16(g, lsG[j], eyeG, rows, C);
                        out.add(compare("bf16 out", size, "lnTokenShift out" + j, first, c.read(lsC[j]), BF16_TOLERANCE));
                        out.add(compare("bf16 out", size, "lnTokenShift out" + j + " from saved stats", readBf16(g, lsG2[j],
                                eyeG, rows, C), first, 0));
                    }
                    Tensor gg = g.keep(gpu.allocate(DType.BF16, rows, C));
                    Tensor gc = c.poisoned((long) rows * C);
                    gpu.gateForward(xg, g.tensor(gate), gg, rows, C);
                    cpu.gateForward(xc, c.tensor(gate), gc, rows, C);
                    out.add(compare("bf16 out", size, "gate out", readBf16(g, gg, eyeG, rows, C), c.read(gc), BF16_TOLERANCE));
                    Tensor rg = g.keep(gpu.allocate(DType.BF16, rows, C));
                    Tensor rc = c.poisoned((long) rows * C);
                    gpu.reluSquaredForward(xg, rg, rows, C);
                    cpu.reluSquaredForward(xc, rc, rows, C);
                    out.add(compare("bf16 out", size, "reluSquared out", readBf16(g, rg, eyeG, rows, C), c.read(rc), BF16_TOLERANCE));
                    // relu²'s backward from that bf16 output and an fp32 dAct into a bf16 dPre (written; the CPU from
                    // its fp32 output), and in place over a copy of the output (as the model does: the same values)
                    double[] dy0 = toFloat(gaussian(rng, rows * C, 1.0));
                    Tensor drg = poisonedBf16(g, (long) rows * C);
                    Tensor drc = c.poisoned((long) rows * C);
                    gpu.reluSquaredBackwardOverwriting(g.tensor(dy0), rg, drg, rows, C);
                    cpu.reluSquaredBackwardOverwriting(c.tensor(dy0), rc, drc, rows, C);
                    double[] dPreOut = readBf16(g, drg, eyeG, rows, C);
                    out.add(compare("bf16 out", size, "reluSquared dPre from bf16 act", dPreOut, c.read(drc),
                            BF16_TOLERANCE));
                    Tensor overAct = poisonedBf16(g, (long) rows * C);
                    gpu.copy(rg, overAct);
                    gpu.reluSquaredBackwardOverwriting(g.tensor(dy0), overAct, overAct, rows, C);
                    out.add(compare("bf16 out", size, "reluSquared dPre from bf16 act, over it",
                            readBf16(g, overAct, eyeG, rows, C), dPreOut, 0));
                    // the fused ln_x, bonus and gate with a bf16 gate product (the gate product as above, from its lnx)
                    if (C % 64 == 0) {
                        double[] y = toFloat(gaussian(rng, rows * C, 1.0));
                        double[] lnxW = toFloat(gaussian(rng, C, 0.5));
                        double[] rK = toFloat(gaussian(rng, C, 0.3));
                        Tensor lnxG = g.poisoned((long) rows * C);
                        Tensor gatedG = g.keep(gpu.allocate(DType.BF16, rows, C));
                        gpu.lnxBonusGateForward(g.tensor(y), g.tensor(lnxW), g.tensor(lnxW), xg, g.tensor(gate), xg,
                                g.tensor(rK), g.tensor(gate), lnxG, gatedG, g.poisoned(rows * (C / 64)),
                                g.poisoned(rows * (C / 64)), rows, C);
                        Tensor lnxC = c.poisoned((long) rows * C);
                        Tensor gatedC = c.poisoned((long) rows * C);
                        cpu.lnxBonusGateForward(c.tensor(y), c.tensor(lnxW), c.tensor(lnxW), xc, c.tensor(gate), xc,
                                c.tensor(rK), c.tensor(gate), lnxC, gatedC, c.poisoned(rows * (C / 64)),
                                c.poisoned(rows * (C / 64)), rows, C);
                        out.add(compare("bf16 out", size, "lnxBonusGate lnx", g.read(lnxG), c.read(lnxC), FP32_TOLERANCE));
                        out.add(compare("bf16 out", size, "lnxBonusGate gated", readBf16(g, gatedG, eyeG, rows, C),
                                c.read(gatedC), BF16_TOLERANCE));
                        // and with g itself in bf16 (against the CPU's fp32 g: the bf16 band)
                        Tensor gB = g.keep(gpu.allocate(DType.BF16, rows, C));
                        gpu.roundToBf16(g.tensor(gate), gB);
                        Tensor gatedG2 = g.keep(gpu.allocate(DType.BF16, rows, C));
                        gpu.lnxBonusGateForward(g.tensor(y), g.tensor(lnxW), g.tensor(lnxW), xg, g.tensor(gate), xg,
                                g.tensor(rK), gB, g.poisoned((long) rows * C), gatedG2, g.poisoned(rows * (C / 64)),
                                g.poisoned(rows * (C / 64)), rows, C);
                        out.add(compare("bf16 out", size, "lnxBonusGate gated, bf16 g", readBf16(g, gatedG2, eyeG, rows, C),
                                c.read(gatedC), BF16_TOLERANCE));
                    }
                    // LoRA outputs kept in bf16 (savedActivationDtype): with bias and sigmoid (through the fp32
                    // scratch), with neither (the GEMM writes bf16) and with a bias alone (the decay's w0 into a bf16
                    // wRaw, a0 and v0 into the α and v-gate pre-activations: the bias in the epilogue of the GEMM
                    // writing bf16), then the backward reading that output
                    for (int variant = 0; variant < 3; variant++) {
                        Activation outAct = variant == 0 ? Activation.SIGMOID : Activation.NONE;
                        int rank = 16;
                        double[] down = toFloat(gaussian(rng, C * rank, 1 / Math.sqrt(C)));
                        double[] up = toFloat(gaussian(rng, rank * C, 1 / Math.sqrt(rank)));
                        double[] bias = variant == 1 ? null : toFloat(gaussian(rng, C, 0.5));
                        double[] dyL = toFloat(gaussian(rng, rows * C, 1.0));
                        String what = "lora " + outAct + (bias != null ? " +bias" : "") + " bf16 out";
                        Tensor hG = g.poisoned((long) rows * rank);
                        Tensor oG = g.keep(gpu.allocate(DType.BF16, rows, C));
                        Tensor hC = c.poisoned((long) rows * rank);
                        Tensor oC = c.poisoned((long) rows * C);
                        Tensor[] wG = {g.tensor(down), g.tensor(up), bias == null ? null : g.tensor(bias)};
                        Tensor[] wC = {c.tensor(down), c.tensor(up), bias == null ? null : c.tensor(bias)};
                        gpu.loraForward(xg, wG[0], wG[1], wG[2], Activation.TANH, outAct, hG, oG, rows, C, rank, C);
                        cpu.loraForward(xc, wC[0], wC[1], wC[2], Activation.TANH, outAct, hC, oC, rows, C, rank, C);
                        out.add(compare("bf16 out", size, what, readBf16(g, oG, eyeG, rows, C), c.read(oC),
                                BF16_TOLERANCE));
                        double[][] gotL = loraGrads(g, xg, wG, hG, oG, g.tensor(dyL), outAct, rank);
                        double[][] refL = loraGrads(c, xc, wC, hC, oC, c.tensor(dyL), outAct, rank);
                        String[] names = {" dx", " ddown", " dup", " dbias"};
                        for (int k = 0; k < gotL.length; k++) {
                            out.add(compare("bf16 out", size, what + names[k], gotL[k], refL[k], BF16_TOLERANCE));
                        }
                        if (bias != null) {
                            // from a bf16 dOut, the CPU given the rounded values: through the sigmoid; and with no
                            // output activation (the α and v-gate pre-activations' gradients, written in bf16 by the
                            // key preparation and the value residual; the decay's dwRaw, wkvGradientDtype: the GEMMs
                            // read dOut itself, the bias gradient takes its column sums)
                            double[] dy16 = rounded(dyL);
                            double[][] gotB = loraGrads(g, xg, wG, hG, oG, bf16(g, dy16), outAct, rank);
                            double[][] refB = loraGrads(c, xc, wC, hC, oC, c.tensor(dy16), outAct, rank);
                            for (int k = 0; k < gotB.length; k++) {
                                out.add(compare("bf16 out", size, what + ", bf16 dOut:" + names[k], gotB[k], refB[k],
                                        BF16_TOLERANCE));
                            }
                        }
                    }
                    // gradients written in bf16 by their ops (only GEMMs read them): dk, the value residual's dv, dG,
                    // and the gate LoRA's backward from that bf16 dG; the saved inputs bf16, the CPU given them rounded
                    bf16Gradients(g, c, rng, eyeG, out);
                    // input gradients written in bf16 by the GEMMs (gemmGradientDtype), and the ops reading them
                    bf16GemmGradients(g, c, rng, eyeG, out);
                    // the ffn key output written in bf16 by its GEMM, and relu² forward and backward from it
                    double[] wSq = toFloat(gaussian(rng, C * C, 1 / Math.sqrt(C)));
                    Tensor preG = g.keep(gpu.allocate(DType.BF16, rows, C));
                    Tensor preC = c.poisoned((long) rows * C);
                    gpu.linearForward(xg, g.tensor(wSq), preG, rows, C, C);
                    cpu.linearForward(xc, c.tensor(wSq), preC, rows, C, C);
                    out.add(compare("bf16 out", size, "linear out", readBf16(g, preG, eyeG, rows, C), c.read(preC),
                            BF16_TOLERANCE));
                    Tensor actG = g.keep(gpu.allocate(DType.BF16, rows, C));
                    Tensor actC = c.poisoned((long) rows * C);
                    gpu.reluSquaredForward(preG, actG, rows, C);
                    cpu.reluSquaredForward(preC, actC, rows, C);
                    out.add(compare("bf16 out", size, "reluSquared out from bf16 x", readBf16(g, actG, eyeG, rows, C),
                            c.read(actC), BF16_TOLERANCE));
                    // the key output squared in place (the model's forward: the same values), and relu²'s backward
                    // from its output, the CPU's from its fp32 output of the fp32 key output
                    Tensor inPlaceG = poisonedBf16(g, (long) rows * C);
                    gpu.copy(preG, inPlaceG);
                    gpu.reluSquaredForward(inPlaceG, inPlaceG, rows, C);
                    out.add(compare("bf16 out", size, "reluSquared out from bf16 x, in place",
                            readBf16(g, inPlaceG, eyeG, rows, C), readBf16(g, actG, eyeG, rows, C), 0));
                    Tensor dPreG = poisonedBf16(g, (long) rows * C);
                    Tensor dPreC = c.poisoned((long) rows * C);
                    gpu.reluSquaredBackwardOverwriting(g.tensor(dy0), actG, dPreG, rows, C);
                    cpu.reluSquaredBackwardOverwriting(c.tensor(dy0), actC, dPreC, rows, C);
                    out.add(compare("bf16 out", size, "reluSquared dPre from the bf16 act of a bf16 x",
                            readBf16(g, dPreG, eyeG, rows, C), c.read(dPreC), BF16_TOLERANCE));
                    double[] lnW = toFloat(gaussian(rng, C, 1.0));
                    double[] lnB = toFloat(gaussian(rng, C, 0.5));
                    double[] lnDx0 = toFloat(gaussian(rng, rows * C, 1.0));
                    double[] lnDw0 = toFloat(gaussian(rng, C, 1.0));
                    // without dWeight/dBias (the dx kernel) and with them (the fused kernel where C allows)
                    for (boolean params : new boolean[] {false, true}) {
                        for (boolean overwrite : new boolean[] {false, true}) {
                            double[][] lnG = layerNormBackward(g, x, lnW, lnB, dy0, lnDx0, lnDw0, params, overwrite, eyeG);
                            double[][] lnC = layerNormBackward(c, x, lnW, lnB, dy0, lnDx0, lnDw0, params, overwrite, null);
                            String what = (overwrite ? "layerNorm dx written" : "layerNorm dx added")
                                    + (params ? " +dW" : "");
                            out.add(compare("bf16 out", size, what, lnG[0], lnC[0], FP32_TOLERANCE));
                            out.add(compare("bf16 out", size, what + ", bf16 copy", lnG[1], lnC[0], BF16_TOLERANCE));
                            if (params) {
                                out.add(compare("bf16 out", size, what + ", dWeight", lnG[2], lnC[2], FP32_TOLERANCE));
                                out.add(compare("bf16 out", size, what + ", dBias", lnG[3], lnC[3], FP32_TOLERANCE));
                            }
                        }
                    }

                    // x in bf16 (mix 0: out = x), into linear and LoRA
                    Tensor xb = g.keep(gpu.allocate(DType.BF16, rows, C));
                    gpu.tokenShiftMixesForward(xg, new Tensor[] {g.tensor(new double[C])}, new Tensor[] {xb}, B, T, C);
                    int o = 64;
                    int rank = 16;
                    double[] w = toFloat(gaussian(rng, o * C, 1 / Math.sqrt(C)));
                    double[] dy = toFloat(gaussian(rng, rows * o, 1.0));
                    double[] dx0 = toFloat(gaussian(rng, rows * C, 1.0));
                    double[] dw0 = toFloat(gaussian(rng, o * C, 1.0));
                    double[][] got = linear(g, xb, w, dy, dx0, dw0, o);
                    double[][] ref = linear(c, xc, w, dy, dx0, dw0, o);
                    String[] q = {"linear out", "linear dx", "linear dweight"};
                    for (int k = 0; k < 3; k++) {
                        out.add(compare("bf16 x", size, q[k], got[k], ref[k], BF16_TOLERANCE));
                    }
                    double[] down = toFloat(gaussian(rng, C * rank, 1 / Math.sqrt(C)));
                    double[] up = toFloat(gaussian(rng, rank * o, 1 / Math.sqrt(rank)));
                    double[] ddn0 = toFloat(gaussian(rng, C * rank, 1.0));
                    got = lora(g, xb, down, up, dy, dx0, ddn0, o, rank);
                    ref = lora(c, xc, down, up, dy, dx0, ddn0, o, rank);
                    String[] ql = {"lora out", "lora dx", "lora ddown"};
                    for (int k = 0; k < 3; k++) {
                        out.add(compare("bf16 x", size, ql[k], got[k], ref[k], BF16_TOLERANCE));
                    }
                } catch (RuntimeException e) {
                    out.add(new Row("bf16 x", size, "-", Double.NaN, BF16_TOLERANCE, false, oneLine(e)));
                }
                return out;
            }

            /**
             * LayerNorm forward, then its backward into dx (starting at dx0, or written over) with a copy of the new dx:
             * bf16 on the GPU (eye given: read back through it), none on the CPU. Returns dx and the copy.
             */
            /** dx, its copy (bf16 read back, or dx again), and with params the changes of dWeight and dBias from dw0. */
            private double[][] layerNormBackward(Dev d, double[] x, double[] w, double[] b, double[] dy, double[] dx0,
                                                 double[] dw0, boolean params, boolean overwrite, Tensor eye) {
                Tensor xt = d.tensor(x);
                Tensor wt = d.tensor(w);
                Tensor mean = d.poisoned(rows);
                Tensor rstd = d.poisoned(rows);
                d.backend.layerNormForward(xt, wt, d.tensor(b), d.poisoned((long) rows * C), mean, rstd, rows, C);
                Tensor dx = overwrite ? d.poisoned((long) rows * C) : d.tensor(dx0);
                Tensor copy = eye == null ? null : d.keep(d.backend.allocate(DType.BF16, rows, C));
                Tensor dw = params ? d.tensor(dw0) : null;
                Tensor db = params ? d.tensor(dw0) : null;
                d.backend.layerNormBackward(d.tensor(dy), xt, wt, mean, rstd, dx, copy, overwrite, dw, db, rows, C);
                double[] got = d.read(dx);
                return new double[][] {got, copy == null ? got : readBf16(d, copy, eye, rows, C),
                        params ? delta(d.read(dw), dw0) : null, params ? delta(d.read(db), dw0) : null};
            }

            /** dx rounded to bf16 on the host (what the GPU's bf16 copy of it holds). */
            private double[] rounded(double[] x) {
                double[] r = new double[x.length];
                for (int i = 0; i < r.length; i++) {
                    r[i] = Bf16.round((float) x[i]);
                }
                return r;
            }

            /** A bf16 GPU tensor holding {@code x} rounded. */
            private Tensor bf16(Dev g, double[] x) {
                Tensor t = g.keep(((CudaBackend) g.backend).allocate(DType.BF16, x.length));
                ((CudaBackend) g.backend).roundToBf16(g.tensor(x), t);
                return t;
            }

            private void bf16Gradients(Dev g, Dev c, SplittableRandom rng, Tensor eyeG, List<Row> out) {
                CudaBackend gpu = (CudaBackend) g.backend;
                Backend cpu = c.backend;
                long n = (long) rows * C;
                double[] a1 = rounded(toFloat(gaussian(rng, rows * C, 1.0)));
                double[] a2 = rounded(toFloat(uniform(rng, rows * C, 0.05, 0.95)));
                // the α and v-gate pre-activations (σ(±3) ≈ 0.05, 0.95)
                double[] pre = rounded(toFloat(uniform(rng, rows * C, -3, 3)));
                double[][] d = {toFloat(gaussian(rng, rows * C, 1.0)), toFloat(gaussian(rng, rows * C, 1.0)),
                        toFloat(gaussian(rng, rows * C, 1.0))};
                double[] perC = toFloat(uniform(rng, C, 0.6, 1.1));
                if (C % 64 == 0) {
                    // key preparation's backward into a bf16 dk (k and the α pre-activation bf16)
                    Tensor dkG = g.keep(gpu.allocate(DType.BF16, rows, C));
                    Tensor daG = g.poisoned(n);
                    gpu.keyPrepareBackwardOverwriting(g.tensor(d[0]), g.tensor(d[1]), g.tensor(d[2]), bf16(g, a1),
                            bf16(g, pre), g.tensor(perC), g.tensor(perC), dkG, daG, null, null, rows, C);
                    Tensor dkC = c.poisoned(n);
                    Tensor daC = c.poisoned(n);
                    cpu.keyPrepareBackwardOverwriting(c.tensor(d[0]), c.tensor(d[1]), c.tensor(d[2]), c.tensor(a1),
                            c.tensor(pre), c.tensor(perC), c.tensor(perC), dkC, daC, null, null, rows, C);
                    out.add(compare("bf16 out", size, "keyPrepare dk written in bf16", readBf16(g, dkG, eyeG, rows, C),
                            c.read(dkC), BF16_TOLERANCE));
                    out.add(compare("bf16 out", size, "keyPrepare dAlphaPre (bf16 k, alphaPre)", g.read(daG),
                            c.read(daC), FP32_TOLERANCE));
                    // and dAlphaPre in bf16 too
                    Tensor dkG2 = g.keep(gpu.allocate(DType.BF16, rows, C));
                    Tensor daG2 = g.keep(gpu.allocate(DType.BF16, rows, C));
                    gpu.keyPrepareBackwardOverwriting(g.tensor(d[0]), g.tensor(d[1]), g.tensor(d[2]), bf16(g, a1),
                            bf16(g, pre), g.tensor(perC), g.tensor(perC), dkG2, daG2, null, null, rows, C);
                    out.add(compare("bf16 out", size, "keyPrepare dk, dAlphaPre written in bf16",
                            concat(readBf16(g, dkG2, eyeG, rows, C), readBf16(g, daG2, eyeG, rows, C)),
                            concat(c.read(dkC), c.read(daC)), BF16_TOLERANCE));
                    // ln_x/bonus/gate backward into a bf16 dG (g bf16)
                    double[] y = toFloat(gaussian(rng, rows * C, 1.0));
                    Tensor dGG = g.keep(gpu.allocate(DType.BF16, rows, C));
                    Tensor dGC = c.poisoned(n);
                    Tensor[] restG = {g.poisoned(n), g.poisoned(n), g.poisoned(n), g.poisoned(n)};
                    Tensor[] restC = {c.poisoned(n), c.poisoned(n), c.poisoned(n), c.poisoned(n)};
                    Tensor meanG = g.poisoned((long) rows * (C / 64));
                    Tensor rstdG = g.poisoned((long) rows * (C / 64));
                    Tensor meanC = c.poisoned((long) rows * (C / 64));
                    Tensor rstdC = c.poisoned((long) rows * (C / 64));
                    Tensor lnxG = g.poisoned(n);
                    Tensor lnxC = c.poisoned(n);
                    gpu.lnxBonusGateForward(g.tensor(y), g.tensor(perC), g.tensor(perC), g.tensor(d[1]), g.tensor(d[2]),
                            g.tensor(a1), g.tensor(perC), bf16(g, a2), lnxG, g.keep(gpu.allocate(DType.BF16, rows, C)),
                            meanG, rstdG, rows, C);
                    cpu.lnxBonusGateForward(c.tensor(y), c.tensor(perC), c.tensor(perC), c.tensor(d[1]), c.tensor(d[2]),
                            c.tensor(a1), c.tensor(perC), c.tensor(a2), lnxC, c.poisoned(n), meanC, rstdC, rows, C);
                    gpu.lnxBonusGateBackward(g.tensor(d[0]), lnxG, bf16(g, a2), g.tensor(y), g.tensor(perC), g.tensor(perC), meanG,
                            rstdG, g.tensor(d[1]), g.tensor(d[2]), g.tensor(a1), g.tensor(perC), g.poisoned(n), dGG,
                            restG[0], restG[1], restG[2], restG[3], null, null, null, rows, C);
                    cpu.lnxBonusGateBackward(c.tensor(d[0]), lnxC, c.tensor(a2), c.tensor(y), c.tensor(perC), c.tensor(perC), meanC,
                            rstdC, c.tensor(d[1]), c.tensor(d[2]), c.tensor(a1), c.tensor(perC), c.poisoned(n), dGC,
                            restC[0], restC[1], restC[2], restC[3], null, null, null, rows, C);
                    out.add(compare("bf16 out", size, "lnxBonusGate dG written in bf16", readBf16(g, dGG, eyeG, rows, C),
                            c.read(dGC), BF16_TOLERANCE));
                    out.add(compare("bf16 out", size, "lnxBonusGate dy (bf16 g)", g.read(restG[3]), c.read(restC[3]),
                            FP32_TOLERANCE));
                    // the same from a bf16 dGated (the output projection's GEMM writes it so): the CPU gets the
                    // rounded values, lnx recomputed on both sides
                    double[] dGated16 = rounded(d[0]);
                    Tensor dGG2 = g.keep(gpu.allocate(DType.BF16, rows, C));
                    Tensor dGC2 = c.poisoned(n);
                    Tensor[] restG2 = {g.poisoned(n), g.poisoned(n), g.poisoned(n), g.poisoned(n)};
                    Tensor[] restC2 = {c.poisoned(n), c.poisoned(n), c.poisoned(n), c.poisoned(n)};
                    gpu.lnxBonusGateBackward(bf16(g, dGated16), null, bf16(g, a2), g.tensor(y), g.tensor(perC), g.tensor(perC),
                            meanG, rstdG, g.tensor(d[1]), g.tensor(d[2]), g.tensor(a1), g.tensor(perC), g.poisoned(n), dGG2,
                            restG2[0], restG2[1], restG2[2], restG2[3], null, null, null, rows, C);
                    cpu.lnxBonusGateBackward(c.tensor(dGated16), null, c.tensor(a2), c.tensor(y), c.tensor(perC), c.tensor(perC),
                            meanC, rstdC, c.tensor(d[1]), c.tensor(d[2]), c.tensor(a1), c.tensor(perC), c.poisoned(n), dGC2,
                            restC2[0], restC2[1], restC2[2], restC2[3], null, null, null, rows, C);
                    out.add(compare("bf16 out", size, "lnxBonusGate bf16 dGated: dG", readBf16(g, dGG2, eyeG, rows, C),
                            c.read(dGC2), BF16_TOLERANCE));
                    String[] rest = {"dr", "dk", "dv", "dy"};
                    for (int k = 0; k < rest.length; k++) {
                        out.add(compare("bf16 out", size, "lnxBonusGate bf16 dGated: " + rest[k], g.read(restG2[k]),
                                c.read(restC2[k]), FP32_TOLERANCE));
                    }
                    // the gate LoRA's backward from that bf16 dG (no output activation, no bias), against the CPU's fp32 dG
                    int rank = 16;
                    double[] down = toFloat(gaussian(rng, C * rank, 1 / Math.sqrt(C)));
                    double[] up = toFloat(gaussian(rng, rank * C, 1 / Math.sqrt(rank)));
                    double[] xl = toFloat(gaussian(rng, rows * C, 1.0));
                    double[][] got = gateLora(g, dGG, xl, down, up, rank);
                    double[][] ref = gateLora(c, dGC, xl, down, up, rank);
                    String[] q = {"gate lora from bf16 dG: dx", "ddown", "dup"};
                    for (int k = 0; k < 3; k++) {
                        out.add(compare("bf16 out", size, q[k], got[k], ref[k], BF16_TOLERANCE));
                    }
                }
                // the value residual's backward into a bf16 dv (v and the gate's pre-activation bf16)
                double[] vFirst = toFloat(gaussian(rng, rows * C, 1.0));
                Tensor dvG = g.keep(gpu.allocate(DType.BF16, rows, C));
                Tensor dvC = c.poisoned(n);
                Tensor[] rG = {g.tensor(new double[rows * C]), g.poisoned(n)};
                Tensor[] rC = {c.tensor(new double[rows * C]), c.poisoned(n)};
                gpu.valueResidualBackwardOverwriting(g.tensor(d[0]), bf16(g, a1), g.tensor(vFirst), bf16(g, pre),
                        dvG, rG[0], rG[1], rows, C);
                cpu.valueResidualBackwardOverwriting(c.tensor(d[0]), c.tensor(a1), c.tensor(vFirst), c.tensor(pre),
                        dvC, rC[0], rC[1], rows, C);
                out.add(compare("bf16 out", size, "valueResidual dv written in bf16", readBf16(g, dvG, eyeG, rows, C),
                        c.read(dvC), BF16_TOLERANCE));
                out.add(compare("bf16 out", size, "valueResidual dvFirst, dGatePre (bf16 v, gatePre)",
                        concat(g.read(rG[0]), g.read(rG[1])), concat(c.read(rC[0]), c.read(rC[1])), FP32_TOLERANCE));
                // and dGatePre in bf16 too
                Tensor dvG2 = g.keep(gpu.allocate(DType.BF16, rows, C));
                Tensor dGateG2 = g.keep(gpu.allocate(DType.BF16, rows, C));
                Tensor dvFirstG2 = g.tensor(new double[rows * C]);
                gpu.valueResidualBackwardOverwriting(g.tensor(d[0]), bf16(g, a1), g.tensor(vFirst), bf16(g, pre),
                        dvG2, dvFirstG2, dGateG2, rows, C);
                out.add(compare("bf16 out", size, "valueResidual dv, dGatePre written in bf16",
                        concat(readBf16(g, dvG2, eyeG, rows, C), readBf16(g, dGateG2, eyeG, rows, C)),
                        concat(c.read(dvC), c.read(rC[1])), BF16_TOLERANCE));
                out.add(compare("bf16 out", size, "valueResidual dvFirst (bf16 dv, dGatePre)", g.read(dvFirstG2),
                        c.read(rC[0]), FP32_TOLERANCE));
            }

            /** A bf16 GPU tensor of n NaNs (an output every element of which must be written). */
            private Tensor poisonedBf16(Dev g, long n) {
                double[] nan = new double[Math.toIntExact(n)];
                Arrays.fill(nan, Double.NaN);
                return bf16(g, nan);
            }

            /**
             * The dx of linear and LoRA backward written in bf16 by the GEMM (NaN-poisoned), and added to in bf16 (v's
             * slot: the value projection's dx, then its LoRA's), against the CPU's fp32 (bf16 band) and against the
             * GPU's own fp32 dx of the same GEMM rounded on the host (written: rounded once, within 1e-4, a rare tie
             * or a different summation order aside; added to: within one bf16 ulp); then relu²'s forward from a bf16
             * x and its backward from its bf16 output and a bf16 dAct (also in place and at an odd address: the scalar
             * paths) and the token-shift backward from bf16 dOuts (k = 6 and 1,
             * written and added), each against the CPU given the same bf16 values.
             */
            private void bf16GemmGradients(Dev g, Dev c, SplittableRandom rng, Tensor eyeG, List<Row> out) {
                CudaBackend gpu = (CudaBackend) g.backend;
                Backend cpu = c.backend;
                long n = (long) rows * C;
                int o = 3 * C / 2;
                double[] w = toFloat(gaussian(rng, o * C, 1 / Math.sqrt(C)));
                double[] x = toFloat(gaussian(rng, rows * C, 1.0));
                double[] dy = toFloat(gaussian(rng, rows * o, 1.0));
                // linear: dx written in bf16, dWeight alongside (fp32)
                Tensor dxB = poisonedBf16(g, n);
                Tensor dwG = g.tensor(new double[o * C]);
                gpu.linearBackwardOverwritingDx(g.tensor(dy), g.tensor(x), g.tensor(w), dxB, dwG, rows, C, o);
                Tensor dxF = g.poisoned(n);
                gpu.linearBackwardOverwritingDx(g.tensor(dy), g.tensor(x), g.tensor(w), dxF, null, rows, C, o);
                Tensor dxC = c.poisoned(n);
                Tensor dwC = c.tensor(new double[o * C]);
                cpu.linearBackwardOverwritingDx(c.tensor(dy), c.tensor(x), c.tensor(w), dxC, dwC, rows, C, o);
                double[] linearDx = readBf16(g, dxB, eyeG, rows, C);
                out.add(compare("bf16 dx", size, "linear dx written in bf16", linearDx, c.read(dxC), BF16_TOLERANCE));
                out.add(compare("bf16 dx", size, "linear dx vs bf16(fp32 dx)", linearDx, rounded(g.read(dxF)), 1e-4));
                out.add(compare("bf16 dx", size, "linear dweight (bf16 dx)", g.read(dwG), c.read(dwC), BF16_TOLERANCE));
                // LoRA: v's chain (no hidden activation, sigmoid out, bias) adding its dx to that bf16 dx, and the
                // decay's (tanh, no out activation) writing a bf16 dx
                int rank = 16;
                double[] dxBefore = linearDx;
                for (boolean add : new boolean[] {true, false}) {
                    Activation hiddenAct = add ? Activation.NONE : Activation.TANH;
                    Activation outAct = add ? Activation.SIGMOID : Activation.NONE;
                    double[] down = toFloat(gaussian(rng, C * rank, 1 / Math.sqrt(C)));
                    double[] up = toFloat(gaussian(rng, rank * C, 1 / Math.sqrt(rank)));
                    double[] bias = add ? toFloat(gaussian(rng, C, 0.5)) : null;
                    double[] dyL = toFloat(gaussian(rng, rows * C, 1.0));
                    double[][] got = loraDx(g, x, down, up, bias, hiddenAct, outAct, dyL, add ? dxB : poisonedBf16(g, n),
                            add, rank, eyeG);
                    // the GPU's fp32 dx of the same chain (from the same bf16 dx when adding), rounded on the host
                    double[][] f32 = loraDx(g, x, down, up, bias, hiddenAct, outAct, dyL,
                            add ? g.tensor(dxBefore) : g.poisoned(n), add, rank, null);
                    double[][] ref = loraDx(c, x, down, up, bias, hiddenAct, outAct, dyL, add ? dxC : c.poisoned(n),
                            add, rank, null);
                    String what = add ? "lora dx added to bf16 dx" : "lora dx written in bf16";
                    out.add(compare("bf16 dx", size, what, got[0], ref[0], BF16_TOLERANCE));
                    // added to, the bf16 dx is not always one rounding of the fp32 sum (on an H100: 1.3e-3 at C =
                    // 768, as if the product were rounded before the bf16 C is added; 0 at C = 99): one bf16 ulp (2^-8)
                    out.add(compare("bf16 dx", size, what + " vs bf16(fp32 dx)", got[0], rounded(f32[0]),
                            add ? 0x1p-8 : 1e-4));
                    String[] q = {" ddown", " dup", " dbias"};
                    for (int k = 1; k < got.length; k++) {
                        out.add(compare("bf16 dx", size, what + q[k - 1], got[k], ref[k], BF16_TOLERANCE));
                    }
                }

                // relu² forward and backward all in bf16 (n = rows·C: C = 99 leaves a tail of n % 8): the forward from
                // a bf16 x, the backward from its bf16 output and a bf16 dAct, against the kernels' fp32 arithmetic
                // emulated on the host (bf16(r·r), r = max(x, 0); bf16((2·dAct)·sqrtf(act)): exact), and the backward
                // against the CPU given the same bf16 values (its float64 result rounded: only the final rounding may
                // differ, a rare one-ulp tie); out of place, in place, and at an odd address (the scalar paths)
                double[] pre = rounded(x);
                double[] act = new double[pre.length];
                double[] dAct = rounded(toFloat(gaussian(rng, rows * C, 1.0)));
                double[] want = new double[pre.length];
                for (int i = 0; i < pre.length; i++) {
                    float r = Math.max((float) pre[i], 0f);
                    act[i] = Bf16.round(r * r);
                    want[i] = Bf16.round(((float) dAct[i] * 2f) * (float) Math.sqrt(act[i]));
                }
                Tensor preB = bf16(g, pre);
                Tensor actB = poisonedBf16(g, n);
                gpu.reluSquaredForward(preB, actB, rows, C);
                out.add(compare("bf16 out", size, "reluSquared out from bf16 x", readBf16(g, actB, eyeG, rows, C), act, 0));
                Tensor actIn = bf16(g, pre);
                gpu.reluSquaredForward(actIn, actIn, rows, C);
                out.add(compare("bf16 out", size, "reluSquared out from bf16 x, in place",
                        readBf16(g, actIn, eyeG, rows, C), act, 0));
                Tensor dPreC = c.poisoned(n);
                cpu.reluSquaredBackwardOverwriting(c.tensor(dAct), c.tensor(act), dPreC, rows, C);
                Tensor dPreB = poisonedBf16(g, n);
                gpu.reluSquaredBackwardOverwriting(bf16(g, dAct), actB, dPreB, rows, C);
                double[] dPreGot = readBf16(g, dPreB, eyeG, rows, C);
                out.add(compare("bf16 dx", size, "reluSquared dPre from bf16 dAct and act", dPreGot, want, 0));
                out.add(compare("bf16 dx", size, "reluSquared dPre from bf16 dAct and act vs the CPU", dPreGot,
                        rounded(c.read(dPreC)), 1e-3));
                Tensor overDAct = bf16(g, dAct);
                gpu.reluSquaredBackwardOverwriting(overDAct, actB, overDAct, rows, C);
                out.add(compare("bf16 dx", size, "reluSquared dPre from bf16 dAct and act, over dAct",
                        readBf16(g, overDAct, eyeG, rows, C), want, 0));
                Tensor overAct = bf16(g, act);
                gpu.reluSquaredBackwardOverwriting(bf16(g, dAct), overAct, overAct, rows, C);
                out.add(compare("bf16 dx", size, "reluSquared dPre from bf16 dAct and act, over act",
                        readBf16(g, overAct, eyeG, rows, C), want, 0));
                // one element in: 2-byte aligned views, the kernels' scalar paths
                Tensor preOdd = gpu.view(bf16(g, concat(new double[1], pre)), 1, rows, C);
                Tensor actOdd = gpu.view(poisonedBf16(g, n + 1), 1, rows, C);
                gpu.reluSquaredForward(preOdd, actOdd, rows, C);
                Tensor actAligned = poisonedBf16(g, n); // the GEMM that reads it back gets an aligned copy
                gpu.copy(actOdd, actAligned);
                out.add(compare("bf16 out", size, "reluSquared out from bf16 x, odd address",
                        readBf16(g, actAligned, eyeG, rows, C), act, 0));
                Tensor dActOdd = gpu.view(bf16(g, concat(new double[1], dAct)), 1, rows, C);
                Tensor dPreOdd = gpu.view(poisonedBf16(g, n + 1), 1, rows, C);
                gpu.reluSquaredBackwardOverwriting(dActOdd, actOdd, dPreOdd, rows, C);
                Tensor dPreAligned = poisonedBf16(g, n);
                gpu.copy(dPreOdd, dPreAligned);
                out.add(compare("bf16 dx", size, "reluSquared dPre from bf16 dAct and act, odd address",
                        readBf16(g, dPreAligned, eyeG, rows, C), want, 0));

                // the token-shift backward from bf16 dOuts: the time mix's six and the channel mix's one, dx written
                // (NaN-poisoned) and added to; the mix gradients added to random values
                double[] x1 = toFloat(gaussian(rng, rows * C, 1.0));
                for (int k : new int[] {6, 1}) {
                    for (boolean overwrite : new boolean[] {true, false}) {
                        double[][] dOuts = new double[k][];
                        double[][] mixes = new double[k][];
                        double[][] dMix0 = new double[k][];
                        for (int j = 0; j < k; j++) {
                            dOuts[j] = rounded(toFloat(gaussian(rng, rows * C, 1.0)));
                            mixes[j] = toFloat(uniform(rng, C, 0, 1));
                            dMix0[j] = toFloat(gaussian(rng, C, 1.0));
                        }
                        double[] dx0 = toFloat(gaussian(rng, rows * C, 1.0));
                        double[][] gotT = tokenShiftBackward(g, true, x1, dOuts, mixes, dMix0, dx0, overwrite);
                        double[][] refT = tokenShiftBackward(c, false, x1, dOuts, mixes, dMix0, dx0, overwrite);
                        String what = "tokenShift k=" + k + " bf16 dOuts, dx " + (overwrite ? "written" : "added");
                        out.add(compare("bf16 dx", size, what, gotT[0], refT[0], FP32_TOLERANCE));
                        double[] gm = new double[0];
                        double[] rm = new double[0];
                        for (int j = 0; j < k; j++) {
                            gm = concat(gm, gotT[1 + j]);
                            rm = concat(rm, refT[1 + j]);
                        }
                        out.add(compare("bf16 dx", size, what + ", dMixes", gm, rm, FP32_TOLERANCE));
                    }
                }

                // LayerNorm fused with the token shift, backward from bf16 dOuts into dx (written or added) and its bf16
                // copy, as the model calls it; the CPU given the same bf16 dOuts
                double[] lnW = toFloat(gaussian(rng, C, 1.0));
                double[] lnB = toFloat(gaussian(rng, C, 0.5));
                for (int k : new int[] {6, 1}) {
                    for (boolean overwrite : new boolean[] {true, false}) {
                        double[][] dOuts = new double[k][];
                        double[][] mixes = new double[k][];
                        double[][] dMix0 = new double[k][];
                        for (int j = 0; j < k; j++) {
                            dOuts[j] = rounded(toFloat(gaussian(rng, rows * C, 1.0)));
                            mixes[j] = toFloat(uniform(rng, C, 0, 1));
                            dMix0[j] = toFloat(gaussian(rng, C, 1.0));
                        }
                        double[] dx0 = toFloat(gaussian(rng, rows * C, 1.0));
                        double[] dw0 = toFloat(gaussian(rng, C, 1.0));
                        double[][] gotL = lnTokenShiftBackward(g, eyeG, x1, lnW, lnB, dOuts, mixes, dMix0, dx0, dw0, overwrite);
                        double[][] refL = lnTokenShiftBackward(c, null, x1, lnW, lnB, dOuts, mixes, dMix0, dx0, dw0, overwrite);
                        String what = "lnTokenShift k=" + k + " bf16 dOuts, dx " + (overwrite ? "written" : "added");
                        out.add(compare("bf16 dx", size, what, gotL[0], refL[0], FP32_TOLERANCE));
                        out.add(compare("bf16 dx", size, what + ", bf16 copy", gotL[1], refL[0], BF16_TOLERANCE));
                        out.add(compare("bf16 dx", size, what + ", dWeight", gotL[2], refL[2], FP32_TOLERANCE));
                        out.add(compare("bf16 dx", size, what + ", dBias", gotL[3], refL[3], FP32_TOLERANCE));
                        double[] gm = new double[0];
                        double[] rm = new double[0];
                        for (int j = 0; j < k; j++) {
                            gm = concat(gm, gotL[4 + j]);
                            rm = concat(rm, refL[4 + j]);
                        }
                        out.add(compare("bf16 dx", size, what + ", dMixes", gm, rm, FP32_TOLERANCE));
                    }
                }
            }

            /**
             * layerNormTokenShiftBackward of k mixes from dOuts (bf16 on the GPU, with a bf16 copy of dx read back
             * through {@code eye}; eye null: fp32 dOuts, no copy), the statistics from its forward; dx from dx0 (or
             * written over NaN), dWeight and dBias from dw0, dMixes from dMix0: {dx, the copy (or dx), the changes of
             * dWeight, dBias, dMix_0 … dMix_k−1}.
             */
            private double[][] lnTokenShiftBackward(Dev d, Tensor eye, double[] x, double[] w, double[] b,
                                                    double[][] dOuts, double[][] mixes, double[][] dMix0, double[] dx0,
                                                    double[] dw0, boolean overwrite) {
                int k = dOuts.length;
                long n = (long) rows * C;
                Tensor[] dOutT = new Tensor[k];
                Tensor[] mixT = new Tensor[k];
                Tensor[] dMixT = new Tensor[k];
                Tensor[] outs = new Tensor[k];
                for (int j = 0; j < k; j++) {
                    dOutT[j] = eye != null ? bf16(d, dOuts[j]) : d.tensor(dOuts[j]);
                    mixT[j] = d.tensor(mixes[j]);
                    dMixT[j] = d.tensor(dMix0[j]);
                    outs[j] = d.poisoned(n);
                }
                Tensor xt = d.tensor(x);
                Tensor wt = d.tensor(w);
                Tensor bt = d.tensor(b);
                Tensor mean = d.poisoned(rows);
                Tensor rstd = d.poisoned(rows);
                d.backend.layerNormTokenShiftForward(xt, wt, bt, mean, rstd, false, mixT, outs, B, T, C);
                Tensor dx = overwrite ? d.poisoned(n) : d.tensor(dx0);
                Tensor copy = eye == null ? null : poisonedBf16(d, n);
                Tensor dw = d.tensor(dw0);
                Tensor db = d.tensor(dw0);
                d.backend.layerNormTokenShiftBackward(dOutT, xt, wt, bt, mean, rstd, mixT, dx, copy, overwrite, dw, db,
                        dMixT, B, T, C);
                double[][] r = new double[4 + k][];
                r[0] = d.read(dx);
                r[1] = copy == null ? r[0] : readBf16(d, copy, eye, rows, C);
                r[2] = delta(d.read(dw), dw0);
                r[3] = delta(d.read(db), dw0);
                for (int j = 0; j < k; j++) {
                    r[4 + j] = delta(d.read(dMixT[j]), dMix0[j]);
                }
                return r;
            }

            /**
             * LoRA forward from x, then its backward from dy into dx (written, or added to: add), with dDown, dUp (and
             * dBias) from zero: {dx as read (through eye when given: a bf16 dx), dDown, dUp[, dBias]}.
             */
            private double[][] loraDx(Dev d, double[] x, double[] down, double[] up, double[] bias, Activation hiddenAct,
                                      Activation outAct, double[] dy, Tensor dx, boolean add, int rank, Tensor eye) {
                Tensor xt = d.tensor(x);
                Tensor dn = d.tensor(down);
                Tensor u = d.tensor(up);
                Tensor b = bias == null ? null : d.tensor(bias);
                Tensor h = d.poisoned((long) rows * rank);
                Tensor y = d.poisoned((long) rows * C);
                d.backend.loraForward(xt, dn, u, b, hiddenAct, outAct, h, y, rows, C, rank, C);
                Tensor ddn = d.tensor(new double[C * rank]);
                Tensor dup = d.tensor(new double[rank * C]);
                Tensor db = bias == null ? null : d.tensor(new double[C]);
                Tensor dPre = outAct == Activation.NONE ? null : d.poisoned((long) rows * C);
                Tensor dh = d.poisoned((long) rows * rank);
                if (add) {
                    d.backend.loraBackward(d.tensor(dy), xt, dn, u, b, hiddenAct, outAct, h, y, dPre, dh, dx, ddn, dup,
                            db, rows, C, rank, C);
                } else {
                    d.backend.loraBackwardOverwritingDx(d.tensor(dy), xt, dn, u, b, hiddenAct, outAct, h, y, dPre, dh,
                            dx, ddn, dup, db, rows, C, rank, C);
                }
                double[] dxRead = eye != null ? readBf16(d, dx, eye, rows, C) : d.read(dx);
                return db == null ? new double[][] {dxRead, d.read(ddn), d.read(dup)}
                        : new double[][] {dxRead, d.read(ddn), d.read(dup), d.read(db)};
            }

            /**
             * tokenShiftMixesBackward(Overwriting) of k mixes from dOuts (bf16 on the GPU: {@code bf16}), dx from dx0
             * (or written over NaN), dMixes from dMix0: {dx, the changes of dMix_0 … dMix_k−1}.
             */
            private double[][] tokenShiftBackward(Dev d, boolean bf16, double[] x, double[][] dOuts, double[][] mixes,
                                                  double[][] dMix0, double[] dx0, boolean overwrite) {
                int k = dOuts.length;
                Tensor[] dOutT = new Tensor[k];
                Tensor[] mixT = new Tensor[k];
                Tensor[] dMixT = new Tensor[k];
                for (int j = 0; j < k; j++) {
                    dOutT[j] = bf16 ? bf16(d, dOuts[j]) : d.tensor(dOuts[j]);
                    mixT[j] = d.tensor(mixes[j]);
                    dMixT[j] = d.tensor(dMix0[j]);
                }
                Tensor dx = overwrite ? d.poisoned((long) rows * C) : d.tensor(dx0);
                if (overwrite) {
                    d.backend.tokenShiftMixesBackwardOverwriting(dOutT, d.tensor(x), mixT, dx, dMixT, B, T, C);
                } else {
                    d.backend.tokenShiftMixesBackward(dOutT, d.tensor(x), mixT, dx, dMixT, B, T, C);
                }
                double[][] r = new double[1 + k][];
                r[0] = d.read(dx);
                for (int j = 0; j < k; j++) {
                    r[1 + j] = delta(d.read(dMixT[j]), dMix0[j]);
                }
                return r;
            }

            private double[] concat(double[] a, double[] b) {
                double[] r = Arrays.copyOf(a, a.length + b.length);
                System.arraycopy(b, 0, r, a.length, b.length);
                return r;
            }

            /** The gate LoRA's backward (hidden sigmoid, no output activation, no bias) from dG: dx, ddown, dup. */
            private double[][] gateLora(Dev d, Tensor dG, double[] x, double[] down, double[] up, int rank) {
                Tensor xt = d.tensor(x);
                Tensor dn = d.tensor(down);
                Tensor u = d.tensor(up);
                Tensor h = d.poisoned((long) rows * rank);
                Tensor o = d.poisoned((long) rows * C);
                d.backend.loraForward(xt, dn, u, null, Activation.SIGMOID, Activation.NONE, h, o, rows, C, rank, C);
                Tensor dx = d.poisoned((long) rows * C);
                Tensor ddn = d.tensor(new double[C * rank]);
                Tensor dup = d.tensor(new double[rank * C]);
                d.backend.loraBackwardOverwritingDx(dG, xt, dn, u, null, Activation.SIGMOID, Activation.NONE, h, o, null,
                        d.poisoned((long) rows * rank), dx, ddn, dup, null, rows, C, rank, C);
                return new double[][] {d.read(dx), d.read(ddn), d.read(dup)};
            }

            /** LoRA backward (hidden TANH) from a saved out of either dtype: dx (written), ddown, dup, dbias. */
            private double[][] loraGrads(Dev d, Tensor x, Tensor[] w, Tensor hidden, Tensor out, Tensor dy,
                                         Activation outAct, int rank) {
                Tensor dx = d.poisoned((long) rows * C);
                Tensor ddn = d.tensor(new double[C * rank]);
                Tensor dup = d.tensor(new double[rank * C]);
                Tensor db = w[2] == null ? null : d.tensor(new double[C]);
                Tensor dPre = outAct == Activation.NONE ? null : d.poisoned((long) rows * C);
                d.backend.loraBackwardOverwritingDx(dy, x, w[0], w[1], w[2], Activation.TANH, outAct, hidden,
                        out, dPre, d.poisoned((long) rows * rank), dx, ddn, dup, db, rows, C, rank, C);
                return db == null ? new double[][] {d.read(dx), d.read(ddn), d.read(dup)}
                        : new double[][] {d.read(dx), d.read(ddn), d.read(dup), d.read(db)};
            }

            /** A bf16 tensor read back exactly: times the identity into fp32. */
            private double[] readBf16(Dev g, Tensor t, Tensor eye, int rows, int C) {
                Tensor f = g.poisoned((long) rows * C);
                g.backend.linearForward(t, eye, f, rows, C, C);
                return g.read(f);
            }

            private double[][] linear(Dev d, Tensor x, double[] w, double[] dy, double[] dx0, double[] dw0, int o) {
                Tensor wt = d.tensor(w);
                Tensor y = d.poisoned((long) rows * o);
                d.backend.linearForward(x, wt, y, rows, C, o);
                Tensor dx = d.tensor(dx0);
                Tensor dw = d.tensor(dw0);
                d.backend.linearBackward(d.tensor(dy), x, wt, dx, dw, rows, C, o);
                return new double[][] {d.read(y), delta(d.read(dx), dx0), delta(d.read(dw), dw0)};
            }

            private double[][] lora(Dev d, Tensor x, double[] down, double[] up, double[] dy, double[] dx0, double[] ddn0,
                                    int o, int rank) {
                Tensor dn = d.tensor(down);
                Tensor u = d.tensor(up);
                Tensor h = d.poisoned((long) rows * rank);
                Tensor y = d.poisoned((long) rows * o);
                d.backend.loraForward(x, dn, u, null, Activation.TANH, Activation.NONE, h, y, rows, C, rank, o);
                Tensor dx = d.tensor(dx0);
                Tensor ddn = d.tensor(ddn0);
                d.backend.loraBackward(d.tensor(dy), x, dn, u, null, Activation.TANH, Activation.NONE, h, y, null,
                        d.poisoned((long) rows * rank), dx, ddn, null, null, rows, C, rank, o);
                return new double[][] {d.read(y), delta(d.read(dx), dx0), delta(d.read(ddn), ddn0)};
            }

            private double[] delta(double[] after, double[] before) {
                double[] r = new double[after.length];
                for (int i = 0; i < r.length; i++) {
                    r[i] = after[i] - before[i];
                }
                return r;
            }
        };
    }

    /**
     * The training step's fused cross-entropy with bf16 dLogits (GemmPrecision.BF16): the losses and the gradient
     * (read back through a GEMM with the identity) against the CPU's fp64 ops, then the head's linear backward from
     * that bf16 dLogits against the CPU's from its fp64 one; bf16 band.
     */
    static Check crossEntropyBf16(int rows, int vocab, long seed) {
        String size = "rows=" + rows + " V=" + vocab;
        return new Check() {
            public String name() {
                return "crossEntropy bf16 dLogits " + size;
            }

            public List<Row> run(CudaBackend gpu, Backend cpu) {
                List<Row> out = new ArrayList<>();
                try (Dev g = new Dev(gpu, DType.F32); Dev c = new Dev(cpu, DType.F64)) {
                    SplittableRandom rng = new SplittableRandom(seed);
                    double[] logits = toFloat(gaussian(rng, rows * vocab, 3.0));
                    int[] targets = rng.ints(rows, 0, vocab).toArray();
                    int in = 64;
                    double[] x = toFloat(gaussian(rng, rows * in, 1.0));
                    double[] w = toFloat(gaussian(rng, vocab * in, 0.1));
                    double[] eye = identity(vocab);
                    Tensor lossG = g.poisoned(rows);
                    Tensor dG = g.keep(gpu.allocate(DType.BF16, rows, vocab));
                    gpu.poisonBytes(dG);
                    gpu.crossEntropyForwardBackward(g.tensor(logits), g.ids(targets), lossG, dG, rows, vocab, 1.0 / rows);
                    Tensor[] ref = cpuCrossEntropy(c, c.tensor(logits), c.ids(targets), rows, vocab, 1.0 / rows);
                    Tensor dC = ref[1];
                    out.add(compare("crossEntropy", size + " bf16 dLogits", "losses", g.read(lossG), c.read(ref[0]), FP32_TOLERANCE));
                    Tensor back = g.poisoned((long) rows * vocab);
                    gpu.linearForward(dG, g.tensor(eye), back, rows, vocab, vocab);
                    out.add(compare("crossEntropy", size + " bf16 dLogits", "dLogits", g.read(back), c.read(dC), BF16_TOLERANCE));
                    Tensor dxG = g.tensor(new double[rows * in]);
                    Tensor dwG = g.tensor(new double[vocab * in]);
                    gpu.linearBackward(dG, g.tensor(x), g.tensor(w), dxG, dwG, rows, in, vocab);
                    Tensor dxC = c.tensor(new double[rows * in]);
                    Tensor dwC = c.tensor(new double[vocab * in]);
                    cpu.linearBackward(dC, c.tensor(x), c.tensor(w), dxC, dwC, rows, in, vocab);
                    out.add(compare("crossEntropy", size + " bf16 dLogits", "head dx", g.read(dxG), c.read(dxC), BF16_TOLERANCE));
                    out.add(compare("crossEntropy", size + " bf16 dLogits", "head dweight", g.read(dwG), c.read(dwC), BF16_TOLERANCE));
                } catch (RuntimeException e) {
                    out.add(new Row("crossEntropy", size + " bf16 dLogits", "-", Double.NaN, BF16_TOLERANCE, false, oneLine(e)));
                }
                return out;
            }
        };
    }

    /**
     * The training step's head under bf16 GEMMs (Rwkv7Model.step): linearForward writes bf16 logits, the fused
     * cross-entropy reads them and writes its bf16 dLogits over them, the head's backward GEMMs read that. Against the
     * CPU's fp64 head (unrounded logits), bf16 band: the logits, the losses, dLogits, dx and dweight; against the CPU's
     * cross-entropy of the GPU's own bf16 logits: the losses (fp32 band) and dLogits rounded to bf16 (1e-4: the kernel
     * itself). {@code badTarget}: one row's target is vocab: the error names it, that row's loss and gradient are NaN,
     * the other rows' are checked (dx and dweight are not: the NaN row reaches every dweight row).
     */
    static Check headBf16(int rows, int vocab, int in, boolean badTarget, long seed) {
        String size = "rows=" + rows + " V=" + vocab + " C=" + in + (badTarget ? " bad target" : "");
        return new Check() {
            public String name() {
                return "head bf16 logits " + size;
            }

            public List<Row> run(CudaBackend gpu, Backend cpu) {
                List<Row> out = new ArrayList<>();
                String op = "head bf16";
                try (Dev g = new Dev(gpu, DType.F32); Dev c = new Dev(cpu, DType.F64)) {
                    SplittableRandom rng = new SplittableRandom(seed);
                    double[] x = toFloat(gaussian(rng, rows * in, 1.0));
                    // logits of standard deviation ~3, as ceLogits'
                    double[] w = toFloat(gaussian(rng, vocab * in, 3.0 / Math.sqrt(in)));
                    int[] targets = rng.ints(rows, 0, vocab).toArray();
                    int bad = badTarget ? Math.min(157, rows - 1) : -1;
                    int[] gpuTargets = targets.clone();
                    if (badTarget) {
                        gpuTargets[bad] = vocab;
                    }
                    double scale = 1.0 / rows;
                    double[] dx0 = toFloat(gaussian(rng, rows * in, 0.01));
                    double[] dw0 = toFloat(gaussian(rng, vocab * in, 0.01));
                    // GPU: the step's sequence on one bf16 buffer
                    Tensor xg = g.tensor(x);
                    Tensor wg = g.tensor(w);
                    Tensor logitsG = g.keep(gpu.allocate(DType.BF16, rows, vocab));
                    gpu.poisonBytes(logitsG);
                    gpu.linearForward(xg, wg, logitsG, rows, in, vocab);
                    double[] gotLogits = g.read(logitsG);
                    Tensor lossG = g.poisoned(rows);
                    gpu.crossEntropyForwardBackward(logitsG, g.ids(gpuTargets), lossG, logitsG, rows, vocab, scale);
                    String message = null;
                    try {
                        g.read(lossG);
                    } catch (GoslingException e) {
                        message = e.getMessage();
                    }
                    double[] gotLoss = g.read(lossG);
                    double[] gotD = g.read(logitsG);
                    Tensor dxG = g.tensor(dx0);
                    Tensor dwG = g.tensor(dw0);
                    if (!badTarget) {
                        gpu.linearBackward(logitsG, xg, wg, dxG, dwG, rows, in, vocab);
                    }
                    // CPU fp64: the unrounded head
                    Tensor xc = c.tensor(x);
                    Tensor wc = c.tensor(w);
                    Tensor tc = c.ids(targets);
                    Tensor lc = c.poisoned((long) rows * vocab);
                    cpu.linearForward(xc, wc, lc, rows, in, vocab);
                    double[] refLogits = c.read(lc);
                    Tensor[] ref = cpuCrossEntropy(c, lc, tc, rows, vocab, scale);
                    Tensor dC = ref[1];
                    double[] refLoss = c.read(ref[0]);
                    double[] refD = c.read(dC);
                    // CPU fp64 cross-entropy of the GPU's bf16 logits: the kernel alone
                    Tensor[] kernel = cpuCrossEntropy(c, c.tensor(gotLogits), tc, rows, vocab, scale);
                    double[] kLoss = c.read(kernel[0]);
                    double[] kD = c.read(kernel[1]);
                    for (int i = 0; i < kD.length; i++) {
                        kD[i] = dev.gosling.trainer.model.Bf16.round((float) kD[i]);
                    }
                    out.add(compare(op, size, "logits", gotLogits, refLogits, BF16_TOLERANCE));
                    if (badTarget) {
                        String what = "target token id " + vocab + " at position " + bad;
                        boolean msgOk = message != null && message.startsWith(what) && !message.contains("\n");
                        out.add(new Row(op, size, "bad target error", msgOk ? 0 : 1, 0, true,
                                msgOk ? null : "expected \"" + what + "…\", got " + message));
                        boolean nanRow = Double.isNaN(gotLoss[bad]);
                        for (int v = 0; v < vocab; v++) {
                            nanRow &= Double.isNaN(gotD[bad * vocab + v]);
                        }
                        out.add(new Row(op, size, "bad row NaN", nanRow ? 0 : 1, 0, true,
                                nanRow ? null : "the bad target's loss or gradient row is not all NaN"));
                        gotLoss = withoutRow(gotLoss, bad, 1);
                        gotD = withoutRow(gotD, bad, vocab);
                        refLoss = withoutRow(refLoss, bad, 1);
                        refD = withoutRow(refD, bad, vocab);
                        kLoss = withoutRow(kLoss, bad, 1);
                        kD = withoutRow(kD, bad, vocab);
                    } else {
                        out.add(new Row(op, size, "no error", message == null ? 0 : 1, 0, true,
                                message == null ? null : "unexpected error: " + message));
                    }
                    String other = badTarget ? "other " : "";
                    out.add(compare(op, size, other + "losses", gotLoss, refLoss, BF16_TOLERANCE));
                    out.add(compare(op, size, other + "losses vs its logits", gotLoss, kLoss, FP32_TOLERANCE));
                    out.add(compare(op, size, other + "dLogits", gotD, refD, BF16_TOLERANCE));
                    out.add(compare(op, size, other + "dLogits vs its logits", gotD, kD, 1e-4));
                    if (!badTarget) {
                        Tensor dxC = c.tensor(dx0);
                        Tensor dwC = c.tensor(dw0);
                        cpu.linearBackward(dC, xc, wc, dxC, dwC, rows, in, vocab);
                        out.add(compare(op, size, "dx", minus(g.read(dxG), dx0), minus(c.read(dxC), dx0), BF16_TOLERANCE));
                        out.add(compare(op, size, "dweight", minus(g.read(dwG), dw0), minus(c.read(dwC), dw0),
                                BF16_TOLERANCE));
                    }
                } catch (RuntimeException e) {
                    out.add(new Row(op, size, "-", Double.NaN, BF16_TOLERANCE, false, oneLine(e)));
                }
                return out;
            }
        };
    }

    /** a − b, elementwise (what a gradient that accumulates onto b added). */
    private static double[] minus(double[] a, double[] b) {
        double[] r = new double[a.length];
        for (int i = 0; i < r.length; i++) {
            r[i] = a[i] - b[i];
        }
        return r;
    }

    /** a, a [n, width] row-major array, without row r. */
    private static double[] withoutRow(double[] a, int r, int width) {
        double[] b = new double[a.length - width];
        System.arraycopy(a, 0, b, 0, r * width);
        System.arraycopy(a, (r + 1) * width, b, r * width, a.length - (r + 1) * width);
        return b;
    }

    /**
     * The bf16 GEMM operands are rounded to nearest, ties to even, as {@link dev.gosling.trainer.model.Bf16}: x times
     * the identity (exact in bf16) must give bf16(x) bit for bit, for random values, exact ties and values that round
     * up into the next binade. Sizes not multiples of 4 take the kernel's scalar tail.
     */
    static Check bf16Rounding(int rows, int cols, long seed) {
        String size = "rows=" + rows + " cols=" + cols;
        return new Check() {
            public String name() {
                return "bf16 operand rounding " + size;
            }

            public List<Row> run(CudaBackend gpu, Backend cpu) {
                try (Dev g = new Dev(gpu, DType.F32)) {
                    SplittableRandom rng = new SplittableRandom(seed);
                    int n = rows * cols;
                    float[] x = new float[n];
                    for (int i = 0; i < n; i++) {
                        int bits = Float.floatToRawIntBits((float) rng.nextGaussian());
                        x[i] = switch (i % 4) {
                            case 0 -> Float.intBitsToFloat((bits & 0xFFFF0000) | 0x8000);  // a tie
                            case 1 -> Float.intBitsToFloat(bits | 0x7FFFFF);             // rounds into the next binade
                            default -> Float.intBitsToFloat(bits);
                        };
                    }
                    double[] eye = identity(cols);
                    Tensor y = g.poisoned((long) n);
                    gpu.linearForward(g.tensor(toDouble(x)), g.tensor(eye), y, rows, cols, cols);
                    float[] got = new float[n];
                    gpu.download(y, got);
                    int differ = 0;
                    for (int i = 0; i < n; i++) {
                        if (Float.floatToIntBits(got[i]) != Float.floatToIntBits(dev.gosling.trainer.model.Bf16.round(x[i]))) {
                            differ++;
                        }
                    }
                    return List.of(new Row("bf16Rounding", size, "elements differing from Bf16.round", differ, 0, true, null));
                } catch (RuntimeException e) {
                    return List.of(new Row("bf16Rounding", size, "-", Double.NaN, 0, false, oneLine(e)));
                }
            }
        };
    }

    /** Every check, small sizes first; {@code quick} keeps one size per op (for the NVRTC pass). */
    public static List<Check> all(boolean quick) {
        List<Check> c = new ArrayList<>();
        long s = 1;
        for (int[] d : quick ? new int[][] {{37, 50, 96}} : new int[][] {{37, 50, 96}, {1000, 3000, 768}}) {
            c.add(embedding(d[0], d[1], d[2], s++));
        }
        c.addAll(quick ? List.of(norm(33, 96, false, false, s++), norm(33, 96, false, true, s++)) : layerNormChecks(s));
        s += 200;
        for (int[] d : quick ? new int[][] {{33, 128}} : new int[][] {{33, 128}, {300, 768}}) {
            c.add(norm(d[0], d[1], true, false, s++));
            c.add(norm(d[0], d[1], true, true, s++));
        }
        // B, T, C, k, null dMix mask, misaligned (x and the outputs one float off 16 bytes: the scalar kernels at C % 4 == 0)
        int[][] shifts = quick ? new int[][] {{2, 17, 96, 6, 0, 0}, {3, 7, 99, 2, 0, 0}}
                : new int[][] {{2, 17, 96, 1, 0, 0}, {2, 17, 96, 6, 0, 0}, {3, 100, 768, 6, 0, 0}, {3, 100, 768, 1, 0, 0},
                        {1, 1, 5, 3, 0, 0}, {4, 1, 768, 2, 0, 0}, {3, 37, 99, 6, 0, 0}, {5, 4001, 128, 6, 0, 0},
                        {2, 33, 768, 6, 0b010010, 0}, {2, 33, 768, 3, 0b111, 0}, {2, 45, 96, 6, 0, 1}};
        for (int[] d : shifts) {
            c.add(tokenShift(d[0], d[1], d[2], d[3], d[4], d[5] != 0, false, s++));
        }
        // dx written, not added to: float4 and scalar kernels
        c.add(tokenShift(3, 100, 768, 6, 0, false, true, s++));
        c.add(tokenShift(3, 37, 99, 1, 0, false, true, s++));
        c.addAll(quick ? List.of(lnTokenShift(2, 17, 96, 6, 0, false, false, s++), lnTokenShift(3, 7, 99, 2, 0, false, true, s++))
                : lnTokenShiftChecks(s));
        s += 100;
        for (int[] d : quick ? new int[][] {{33, 96, 80}} : new int[][] {{33, 96, 80}, {512, 768, 3072}}) {
            c.add(linear(d[0], d[1], d[2], s++));
            c.add(linear(d[0], d[1], d[2], FP32_TOLERANCE, false, true, s++));
            c.add(linear(d[0], d[1], d[2], FP32_TOLERANCE, false, true, true, s++));
            c.add(linearResidual(d[0], d[1], d[2], FP32_TOLERANCE, s++));
        }
        int[][] loraSizes = quick ? new int[][] {{100, 128, 32, 128}}
                : new int[][] {{100, 128, 32, 128}, {1000, 768, 64, 768}};
        for (int[] d : loraSizes) {
            c.add(lora(d[0], d[1], d[2], d[3], Activation.TANH, Activation.NONE, true, s++));
            c.add(lora(d[0], d[1], d[2], d[3], Activation.NONE, Activation.SIGMOID, true, s++));
            c.add(lora(d[0], d[1], d[2], d[3], Activation.SIGMOID, Activation.NONE, false, s++));
            c.add(lora(d[0], d[1], d[2], d[3], Activation.NONE, Activation.SIGMOID, true, FP32_TOLERANCE, true, s++));
            // the weights' gradients written (the model's four chains: every chain's, the v gate's with dx added to)
            c.add(lora(d[0], d[1], d[2], d[3], Activation.TANH, Activation.NONE, true, FP32_TOLERANCE, true, true, s++));
            c.add(lora(d[0], d[1], d[2], d[3], Activation.NONE, Activation.NONE, true, FP32_TOLERANCE, true, true, s++));
            c.add(lora(d[0], d[1], d[2], d[3], Activation.NONE, Activation.NONE, true, FP32_TOLERANCE, false, true, s++));
            c.add(lora(d[0], d[1], d[2], d[3], Activation.SIGMOID, Activation.NONE, false, FP32_TOLERANCE, true, true, s++));
        }
        c.add(zeroRanges(s++));
        for (int[] d : quick ? new int[][] {{37, 96}} : new int[][] {{37, 96}, {1000, 768}}) {
            c.add(valueResidual(d[0], d[1], false, s++));
            c.add(valueResidual(d[0], d[1], true, s++));
            c.add(gate(d[0], d[1], false, s++));
            c.add(gate(d[0], d[1], true, s++));
            c.add(reluSquared(d[0], d[1], false, s++));
            c.add(reluSquared(d[0], d[1], true, s++));
        }
        for (int[] d : quick ? new int[][] {{37, 128}} : new int[][] {{37, 128}, {1000, 768}}) {
            c.add(keyPrepare(d[0], d[1], false, s++));
            c.add(keyPrepare(d[0], d[1], true, s++));
            c.add(bonus(d[0], d[1], false, s++));
            c.add(bonus(d[0], d[1], true, s++));
            c.add(lnxBonusGate(d[0], d[1], false, s++));
            c.add(lnxBonusGate(d[0], d[1], true, s++));
            // the saved projections kept in bf16 (savedActivationDtype): the ops reading them
            c.add(((OpCase) keyPrepare(d[0], d[1], true, s++)).withBf16("k", "alphaPre"));
            c.add(((OpCase) valueResidual(d[0], d[1], true, s++)).withBf16("v", "gatePre"));
            c.add(((OpCase) lnxBonusGate(d[0], d[1], true, s++)).withBf16("g"));
            // the WKV7 kernel's inputs and output in bf16 too: κ̃, a, b written in bf16, v mixed with a bf16 v_first
            // into bf16, the ln_x/bonus/gate forward and backward reading bf16 y, r, κ̃, v (outputs and gradients written in
            // bf16 in the bf16 band, the rest within 1e-5 of the CPU given the same rounded values)
            c.add(((OpCase) keyPrepare(d[0], d[1], true, true, s++)).withBf16("k", "alphaPre"));
            c.add(((OpCase) valueResidual(d[0], d[1], true, true, s++)).withBf16("v", "vFirst", "gatePre"));
            c.add(((OpCase) lnxBonusGate(d[0], d[1], true, s++)).withBf16("g", "y", "r", "k", "v").withBf16DOuts());
            c.add(((OpCase) lnxBonusGate(d[0], d[1], true, s++)).withBf16("g", "y", "r", "k", "v")); // fp32 dGated
            // dy written in bf16 too (wkvGradientDtype: only the WKV7 backward reads it), from either dGated
            c.add(((OpCase) lnxBonusGate(d[0], d[1], true, true, s++)).withBf16("g", "y", "r", "k", "v")
                    .withBf16DOuts());
            c.add(((OpCase) lnxBonusGate(d[0], d[1], true, true, s++)).withBf16("g", "y", "r", "k", "v"));
        }
        c.addAll(wkv7Checks(quick, s));
        s += 100;
        for (int[] d : quick ? new int[][] {{7, 1000}} : new int[][] {{7, 1000}, {64, 65536}}) {
            c.add(crossEntropy(d[0], d[1], false, s++));
            c.add(crossEntropy(d[0], d[1], true, s++));
            c.add(crossEntropy(d[0], d[1], true, true, s++));
        }
        c.addAll(quick ? List.of(crossEntropyRows(CudaBackend.CeRows.DEFAULT, 139, 4096, CeMode.F32, s++))
                : crossEntropyRowsChecks(false));
        c.addAll(quick ? List.of(optimizer(10_001, s++)) : optimizerChecks(s));
        s += 10;
        c.add(badIds());
        c.add(deferredSums(quick ? new int[] {128, 768} : new int[] {128, 768, 2048}, 3, 41, s++));
        return c;
    }

    /**
     * Parameter-gradient column sums held back (deferParameterSums … finishParameterSums) give the same bits as each
     * op finishing its own: one window of LayerNorm + six-mix, ln_x/bonus/gate and LoRA-bias backward passes at each C
     * of {@code widths} (multiples of the head size), {@code repeats} times over into the same gradients (more entries
     * than one launch takes; an out held back again goes to a later launch; the partial-sum buffer grows inside the
     * window, under an op that has begun its launch arguments). GPU only: the CPU finishes as it goes.
     */
    static Check deferredSums(int[] widths, int repeats, int T, long seed) {
        return new Check() {
            public String name() {
                return "deferredParameterSums";
            }

            public List<Row> run(CudaBackend gpu, Backend cpu) {
                List<Row> rows = new ArrayList<>();
                String size = "C=" + Arrays.toString(widths) + " B=2 T=" + T + " ×" + repeats;
                try (Dev d = new Dev(gpu, DType.F32)) {
                    SplittableRandom rng = new SplittableRandom(seed);
                    int B = 2;
                    int n = B * T;
                    List<double[]> initial = new ArrayList<>();
                    List<Tensor> grads = new ArrayList<>();
                    List<Runnable> ops = new ArrayList<>();
                    for (int C : widths) {
                        Tensor x = d.tensor(gaussian(rng, n * C, 1.0));
                        Tensor w = d.tensor(gaussian(rng, C, 0.5));
                        Tensor b = d.tensor(gaussian(rng, C, 0.5));
                        Tensor mean = d.poisoned(n);
                        Tensor rstd = d.poisoned(n);
                        Tensor[] mixes = new Tensor[6];
                        Tensor[] dOut = new Tensor[6];
                        Tensor[] dMix = new Tensor[6];
                        Tensor[] ignored = new Tensor[6];
                        for (int j = 0; j < 6; j++) {
                            mixes[j] = d.tensor(uniform(rng, C, 0, 1));
                            dOut[j] = d.tensor(gaussian(rng, n * C, 1.0));
                            ignored[j] = d.poisoned((long) n * C);
                        }
                        gpu.layerNormTokenShiftForward(x, w, b, mean, rstd, false, mixes, ignored, B, T, C);
                        Tensor dx = d.poisoned((long) n * C);
                        Tensor dW = d.tensor(gaussian(rng, C, 1.0));
                        Tensor dB = d.tensor(gaussian(rng, C, 1.0));
                        grads.add(dW);
                        grads.add(dB);
                        for (int j = 0; j < 6; j++) {
                            dMix[j] = d.tensor(gaussian(rng, C, 1.0));
                            grads.add(dMix[j]);
                        }
                        ops.add(() -> gpu.layerNormTokenShiftBackward(dOut, x, w, b, mean, rstd, mixes, dx, null, true,
                                dW, dB, dMix, B, T, C));
                        // ln_x/bonus/gate: its launch arguments are begun before its partial sums are placed (a
                        // growing buffer launches the held-back sums in between)
                        Tensor y = d.tensor(gaussian(rng, n * C, 1.0));
                        Tensor lnXW = d.tensor(gaussian(rng, C, 0.5));
                        Tensor lnXB = d.tensor(gaussian(rng, C, 0.5));
                        Tensor r = d.tensor(gaussian(rng, n * C, 1.0));
                        Tensor k = d.tensor(gaussian(rng, n * C, 1.0));
                        Tensor v = d.tensor(gaussian(rng, n * C, 1.0));
                        Tensor rK = d.tensor(gaussian(rng, C, 0.5));
                        Tensor g = d.tensor(gaussian(rng, n * C, 1.0));
                        Tensor meanX = d.poisoned((long) n * C / 64);
                        Tensor rstdX = d.poisoned((long) n * C / 64);
                        gpu.lnxBonusGateForward(y, lnXW, lnXB, r, k, v, rK, g, null, d.poisoned((long) n * C), meanX, rstdX, n, C);
                        Tensor dGated = d.tensor(gaussian(rng, n * C, 1.0));
                        Tensor[] scratch = new Tensor[6];
                        for (int j = 0; j < scratch.length; j++) {
                            scratch[j] = d.poisoned((long) n * C);
                        }
                        Tensor dLnXW = d.tensor(gaussian(rng, C, 1.0));
                        Tensor dLnXB = d.tensor(gaussian(rng, C, 1.0));
                        Tensor dRK = d.tensor(gaussian(rng, C, 1.0));
                        grads.addAll(List.of(dLnXW, dLnXB, dRK));
                        ops.add(() -> gpu.lnxBonusGateBackward(dGated, null, g, y, lnXW, lnXB, meanX, rstdX, r, k, v, rK,
                                scratch[0], scratch[1], scratch[2], scratch[3], scratch[4], scratch[5], dLnXW, dLnXB, dRK, n, C));
                        // a LoRA with a bias: its column sums over dOut
                        int rank = 16;
                        Tensor w1 = d.tensor(gaussian(rng, rank * C, 0.1));
                        Tensor w2 = d.tensor(gaussian(rng, C * rank, 0.1));
                        Tensor bias = d.tensor(gaussian(rng, C, 0.1));
                        Tensor hidden = d.poisoned((long) n * rank);
                        Tensor out = d.poisoned((long) n * C);
                        Tensor xin = d.tensor(gaussian(rng, n * C, 1.0));
                        gpu.loraForward(xin, w1, w2, bias, Activation.TANH, Activation.NONE, hidden, out, n, C, rank, C);
                        Tensor dLoraOut = d.tensor(gaussian(rng, n * C, 1.0));
                        Tensor dHidden = d.poisoned((long) n * rank);
                        Tensor dxLora = d.poisoned((long) n * C);
                        Tensor dW1 = d.tensor(gaussian(rng, rank * C, 1.0));
                        Tensor dW2 = d.tensor(gaussian(rng, C * rank, 1.0));
                        Tensor dBias = d.tensor(gaussian(rng, C, 1.0));
                        grads.add(dBias);
                        ops.add(() -> gpu.loraBackwardOverwritingDx(dLoraOut, xin, w1, w2, bias, Activation.TANH,
                                Activation.NONE, hidden, out, null, dHidden, dxLora, dW1, dW2, dBias, n, C, rank, C));
                    }
                    for (Tensor g : grads) {
                        initial.add(d.read(g));
                    }
                    // each op finishing its own sums
                    for (int r = 0; r < repeats; r++) {
                        ops.forEach(Runnable::run);
                    }
                    List<double[]> immediate = new ArrayList<>();
                    for (int i = 0; i < grads.size(); i++) {
                        immediate.add(d.read(grads.get(i)));
                        gpu.upload(initial.get(i), grads.get(i));
                    }
                    // the same, held back in one window, from an empty partial-sum buffer (it grows inside the window)
                    gpu.releasePartialSums();
                    gpu.deferParameterSums();
                    for (int r = 0; r < repeats; r++) {
                        ops.forEach(Runnable::run);
                    }
                    gpu.finishParameterSums();
                    double worst = 0;
                    boolean finite = true;
                    for (int i = 0; i < grads.size(); i++) {
                        double[] got = d.read(grads.get(i));
                        for (int e = 0; e < got.length; e++) {
                            finite &= Double.isFinite(got[e]);
                            worst = Math.max(worst, Math.abs(got[e] - immediate.get(i)[e]));
                        }
                    }
                    rows.add(new Row("deferredParameterSums", size, "max |held back − immediate| over " + grads.size()
                            + " gradients", worst, 0.0, finite, null));
                } catch (RuntimeException e) {
                    rows.add(new Row("deferredParameterSums", size, "run", Double.NaN, 0.0, false, oneLine(e)));
                }
                return rows;
            }
        };
    }

    /**
     * LayerNorm forward and backward (dx added and written), rows × C: C = 96, 256, 512, 768, 1000 (one warp a row,
     * J = 1 … 8 float4 a lane; 1000: the last lanes' float4s past the row), 2048 and 4096 (two and four warps a row)
     * take the fused dx + dWeight/dBias kernel, 99 the plain ones; rows 1, 5, 33, 513, 4097 (slices of 64 rows and
     * a last slice of one) and 20000 (slices of 79 rows: per-unit row counts differ).
     */
    static List<Check> layerNormChecks(long seed) {
        List<Check> c = new ArrayList<>();
        long s = seed;
        for (int C : new int[] {96, 768, 1000, 2048, 99, 4096}) {
            for (int rows : new int[] {1, 5, 33, 513, 4097}) {
                c.add(norm(rows, C, false, false, s++));
                c.add(norm(rows, C, false, true, s++));
            }
        }
        for (int[] d : new int[][] {{70, 256}, {300, 512}, {20000, 768}, {3000, 2048}}) {
            c.add(norm(d[0], d[1], false, false, s++));
            c.add(norm(d[0], d[1], false, true, s++));
        }
        return c;
    }

    /**
     * AdamW bit for bit: two segments over n; many short segments (lengths 1, 3, 4097, 4096, 4095, … so that tiles of
     * 1024, 2048 and 4096 elements hold boundaries, one or several, and whole ones lie between); the same with params
     * and grads one float off 16 bytes (the element-wise tiles).
     */
    static List<Check> optimizerChecks(long seed) {
        long[] lengths = {1, 3, 4097, 1, 4096, 4095, 3, 1, 1, 8192, 4097, 5000, 3, 12289, 1};
        return List.of(optimizer(1_000_003, seed), optimizer(1_000_003, lengths, false, seed + 1),
                optimizer(1_000_003, lengths, true, seed + 2), optimizer(4096 * 7, new long[] {4096, 1, 3}, false,
                        seed + 3), optimizer(5, new long[] {1, 3}, false, seed + 4),
                // with the bf16 weight copy: from a multiple of 4 (float4 tiles), from an odd element (element by
                // element), from element 0, a copy one bf16 off 8 bytes (element by element), misaligned params
                optimizer(1_000_003, null, false, 12_416, false, seed + 5),
                optimizer(1_000_003, lengths, false, 777, false, seed + 6),
                optimizer(4096 * 7, new long[] {4096, 1, 3}, false, 0, false, seed + 7),
                optimizer(1_000_003, null, false, 128, true, seed + 8),
                optimizer(1_000_003, lengths, true, 4100, false, seed + 9));
    }

    /** The checks of {@link #all} that the fused LayerNorm backward and the tiled AdamW touch (GpuCheck --ln-adamw). */
    public static List<Check> lnAdamwChecks() {
        List<Check> c = new ArrayList<>(layerNormChecks(7001));
        for (int[] d : new int[][] {{33, 128}, {300, 768}}) {
            c.add(norm(d[0], d[1], true, false, 7300 + d[0]));
            c.add(norm(d[0], d[1], true, true, 7400 + d[0]));
        }
        c.addAll(optimizerChecks(7501));
        return c;
    }

    /** bf16Inputs at C = 768, 99 and 2048 (the fused LayerNorm backward's dx copy is checked where dWeight is null). */
    public static List<Check> lnAdamwBf16Checks() {
        return List.of(bf16Inputs(2, 50, 768, 7601), bf16Inputs(3, 17, 99, 7602), bf16Inputs(2, 40, 2048, 7603));
    }

    private static String over(boolean overwrite) {
        return overwrite ? " overwriting" : "";
    }

    /**
     * The cross-entropy checks alone (GpuCheck --ce): those of {@link #all} (the kernel in use) and every one-read
     * variant's ({@link #crossEntropyRowsChecks}).
     */
    public static List<Check> crossEntropyChecks() {
        List<Check> c = new ArrayList<>();
        long s = 9001;
        for (int[] d : new int[][] {{7, 1000}, {64, 65536}}) {
            c.add(crossEntropy(d[0], d[1], false, s++));
            c.add(crossEntropy(d[0], d[1], true, s++));
            c.add(crossEntropy(d[0], d[1], true, true, s++));
        }
        c.addAll(crossEntropyRowsChecks(true));
        c.add(badIds());
        return c;
    }

    static Check embedding(int rows, int vocab, int C, long seed) {
        return new OpCase("embedding", "rows=" + rows + " V=" + vocab + " C=" + C, FP32_TOLERANCE, seed) {
            private final int[] tokens = new SplittableRandom(seed).ints(rows, 0, Math.max(1, vocab / 2)).toArray();

            void makeInputs(SplittableRandom rng, LinkedHashMap<String, double[]> in) {
                in.put("weight", gaussian(rng, vocab * C, 1.0));
            }

            List<Tensor> forward(Dev d, Map<String, Tensor> in, Map<String, Tensor> saved) {
                Tensor ids = d.ids(tokens);
                saved.put("tokens", ids);
                Tensor out = d.poisoned((long) rows * C);
                d.backend.embeddingForward(ids, in.get("weight"), out, rows, vocab, C);
                return List.of(out);
            }

            void backward(Dev d, Map<String, Tensor> in, Map<String, Tensor> saved, List<Tensor> dOuts,
                          Map<String, Tensor> g) {
                d.backend.embeddingBackward(saved.get("tokens"), dOuts.get(0), g.get("weight"), rows, vocab, C);
            }
        };
    }

    /** {@code overwrite}: the backward's Overwriting variant into NaN-poisoned outputs, then added to the gradients. */
    static Check norm(int rows, int C, boolean perHead, boolean overwrite, long seed) {
        return new OpCase(perHead ? "groupNorm" : "layerNorm", "rows=" + rows + " C=" + C + over(overwrite),
                FP32_TOLERANCE, seed) {
            void makeInputs(SplittableRandom rng, LinkedHashMap<String, double[]> in) {
                double[] x = gaussian(rng, rows * C, 1.0);
                for (int i = 0; i < x.length; i++) {
                    x[i] += 0.3;
                }
                in.put("x", x);
                double[] w = gaussian(rng, C, 0.5);
                for (int i = 0; i < w.length; i++) {
                    w[i] += 1.0;
                }
                in.put("weight", w);
                in.put("bias", gaussian(rng, C, 0.5));
            }

            List<Tensor> forward(Dev d, Map<String, Tensor> in, Map<String, Tensor> saved) {
                long stats = perHead ? (long) rows * (C / 64) : rows;
                Tensor out = d.poisoned((long) rows * C);
                Tensor mean = d.poisoned(stats);
                Tensor rstd = d.poisoned(stats);
                saved.put("mean", mean);
                saved.put("rstd", rstd);
                if (perHead) {
                    d.backend.groupNormForward(in.get("x"), in.get("weight"), in.get("bias"), out, mean, rstd, rows, C);
                } else {
                    d.backend.layerNormForward(in.get("x"), in.get("weight"), in.get("bias"), out, mean, rstd, rows, C);
                }
                return List.of(out);
            }

            void backward(Dev d, Map<String, Tensor> in, Map<String, Tensor> saved, List<Tensor> dOuts,
                          Map<String, Tensor> g) {
                if (overwrite) {
                    Tensor dx = d.poisoned((long) rows * C);
                    if (perHead) {
                        d.backend.groupNormBackwardOverwriting(dOuts.get(0), in.get("x"), in.get("weight"),
                                saved.get("mean"), saved.get("rstd"), dx, g.get("weight"), g.get("bias"), rows, C);
                    } else {
                        d.backend.layerNormBackward(dOuts.get(0), in.get("x"), in.get("weight"), saved.get("mean"),
                                saved.get("rstd"), dx, null, true, g.get("weight"), g.get("bias"), rows, C);
                    }
                    d.backend.accumulate(dx, g.get("x"));
                } else if (perHead) {
                    d.backend.groupNormBackward(dOuts.get(0), in.get("x"), in.get("weight"), saved.get("mean"),
                            saved.get("rstd"), g.get("x"), g.get("weight"), g.get("bias"), rows, C);
                } else {
                    d.backend.layerNormBackward(dOuts.get(0), in.get("x"), in.get("weight"), saved.get("mean"),
                            saved.get("rstd"), g.get("x"), g.get("weight"), g.get("bias"), rows, C);
                }
            }
        };
    }

    /** t itself, or with {@code misaligned} a copy of it one float into a larger tensor. */
    static Tensor placed(boolean misaligned, Dev d, Tensor t) {
        if (!misaligned) {
            return t;
        }
        Tensor big = d.poisoned(t.numel() + 1);
        Tensor view = d.backend.view(big, 1, Math.toIntExact(t.numel()));
        d.backend.copy(t, view);
        return view;
    }

    /** The inputs mix0 … mix(k−1). */
    static Tensor[] mixTensors(Map<String, Tensor> in, int k) {
        Tensor[] m = new Tensor[k];
        for (int j = 0; j < k; j++) {
            m[j] = in.get("mix" + j);
        }
        return m;
    }

    /**
     * k token-shift mixes of one x; dMix j is null where bit j of {@code nullMixes} is set (its gradient must stay
     * unchanged). {@code misaligned} runs the op on copies of x, the outputs and dx placed one float into larger
     * tensors, so the float4 kernels must give way to the scalar ones although C % 4 == 0.
     */
    static Check tokenShift(int B, int T, int C, int k, int nullMixes, boolean misaligned, boolean overwrite,
                            long seed) {
        String size = "B=" + B + " T=" + T + " C=" + C + " k=" + k + (nullMixes != 0 ? " null dMix " + Integer.toBinaryString(nullMixes) : "")
                + (misaligned ? " misaligned" : "") + over(overwrite);
        long n = (long) B * T * C;
        return new OpCase("tokenShiftMixes", size, FP32_TOLERANCE, seed) {
            void makeInputs(SplittableRandom rng, LinkedHashMap<String, double[]> in) {
                in.put("x", gaussian(rng, B * T * C, 1.0));
                for (int j = 0; j < k; j++) {
                    in.put("mix" + j, uniform(rng, C, 0, 1));
                }
            }

            List<Tensor> forward(Dev d, Map<String, Tensor> in, Map<String, Tensor> saved) {
                Tensor[] outs = new Tensor[k];
                for (int j = 0; j < k; j++) {
                    outs[j] = placed(misaligned, d, d.poisoned(n));
                }
                d.backend.tokenShiftMixesForward(placed(misaligned, d, in.get("x")), mixTensors(in, k), outs, B, T, C);
                return List.of(outs);
            }

            void backward(Dev d, Map<String, Tensor> in, Map<String, Tensor> saved, List<Tensor> dOuts,
                          Map<String, Tensor> g) {
                Tensor[] dMixes = new Tensor[k];
                for (int j = 0; j < k; j++) {
                    dMixes[j] = (nullMixes >> j & 1) != 0 ? null : g.get("mix" + j);
                }
                Tensor[] dOut = new Tensor[k];
                for (int j = 0; j < k; j++) {
                    dOut[j] = placed(misaligned, d, dOuts.get(j));
                }
                if (overwrite) {
                    Tensor dx = d.poisoned(n);
                    d.backend.tokenShiftMixesBackwardOverwriting(dOut, in.get("x"), mixTensors(in, k), dx, dMixes, B, T,
                            C);
                    d.backend.accumulate(dx, g.get("x"));
                    return;
                }
                Tensor dx = placed(misaligned, d, g.get("x"));
                d.backend.tokenShiftMixesBackward(dOut, placed(misaligned, d, in.get("x")), mixTensors(in, k), dx,
                        dMixes, B, T, C);
                if (dx != g.get("x")) {
                    d.backend.copy(dx, g.get("x"));
                }
            }
        };
    }

    /**
     * LayerNorm fused with the token-shift mixes of its output, B × T × C with k mixes (see {@link #lnTokenShift}): one
     * warp a row (C = 96, 128), several (768: 6; 1000: 8 with idle lanes; 2048: 16), two float4 a thread (2500, 4096),
     * the unfused ops (C = 99, 5; misaligned); T = 1, B = 1, a single row; slices and samples that do not line up (T =
     * 37, 401, 600: the forward's 32-row and the backward's 64-row slices start inside samples); null dMixes.
     */
    static List<Check> lnTokenShiftChecks(long seed) {
        List<Check> c = new ArrayList<>();
        long s = seed;
        // B, T, C, k, null dMix mask, misaligned, dx written
        int[][] cases = {{2, 17, 96, 6, 0, 0, 0}, {2, 17, 96, 1, 0, 0, 1}, {3, 100, 768, 6, 0, 0, 0}, {3, 100, 768, 1, 0, 0, 1},
            {3, 100, 768, 6, 0, 0, 1}, {1, 1, 768, 6, 0, 0, 0}, {4, 1, 128, 3, 0, 0, 1}, {1, 5, 1000, 6, 0, 0, 0},
            {3, 37, 1000, 2, 0, 0, 1}, {5, 401, 128, 6, 0, 0, 0}, {8, 600, 768, 6, 0, 0, 1}, {2, 33, 2048, 1, 0, 0, 0},
            {2, 33, 2048, 6, 0, 0, 1}, {2, 9, 2500, 6, 0, 0, 0}, {1, 70, 4096, 6, 0, 0, 1}, {3, 37, 99, 6, 0, 0, 0},
            {1, 1, 5, 3, 0, 0, 1}, {2, 45, 96, 6, 0, 1, 0}, {2, 33, 768, 6, 0b010010, 0, 0}, {2, 33, 768, 3, 0b111, 0, 1}};
        for (int[] d : cases) {
            c.add(lnTokenShift(d[0], d[1], d[2], d[3], d[4], d[5] != 0, d[6] != 0, s++));
        }
        return c;
    }

    /**
     * layerNormTokenShiftForward (statistics computed, then again from the saved statistics: both sets of mixes are
     * compared, and mean and rstd) and layerNormTokenShiftBackward (dx added to, or written over NaN: overwrite; dMix j
     * null where bit j of {@code nullMixes} is set). {@code misaligned}: x, the outputs and dx one float into larger
     * tensors, so the CUDA backend must take the unfused ops.
     */
    static Check lnTokenShift(int B, int T, int C, int k, int nullMixes, boolean misaligned, boolean overwrite,
                              long seed) {
        String size = "B=" + B + " T=" + T + " C=" + C + " k=" + k + (nullMixes != 0 ? " null dMix " + Integer.toBinaryString(nullMixes) : "")
                + (misaligned ? " misaligned" : "") + over(overwrite);
        int rows = B * T;
        long n = (long) rows * C;
        return new OpCase("lnTokenShift", size, FP32_TOLERANCE, seed) {
            void makeInputs(SplittableRandom rng, LinkedHashMap<String, double[]> in) {
                double[] x = gaussian(rng, rows * C, 1.0);
                for (int i = 0; i < x.length; i++) {
                    x[i] += 0.3;
                }
                in.put("x", x);
                double[] w = gaussian(rng, C, 0.5);
                for (int i = 0; i < w.length; i++) {
                    w[i] += 1.0;
                }
                in.put("weight", w);
                in.put("bias", gaussian(rng, C, 0.5));
                for (int j = 0; j < k; j++) {
                    in.put("mix" + j, uniform(rng, C, 0, 1));
                }
            }

            List<Tensor> forward(Dev d, Map<String, Tensor> in, Map<String, Tensor> saved) {
                Tensor mean = d.poisoned(rows);
                Tensor rstd = d.poisoned(rows);
                saved.put("mean", mean);
                saved.put("rstd", rstd);
                Tensor[] outs = new Tensor[k];
                Tensor[] again = new Tensor[k];
                for (int j = 0; j < k; j++) {
                    outs[j] = placed(misaligned, d, d.poisoned(n));
                    again[j] = placed(misaligned, d, d.poisoned(n));
                }
                Tensor x = placed(misaligned, d, in.get("x"));
                Tensor[] mixes = mixTensors(in, k);
                d.backend.layerNormTokenShiftForward(x, in.get("weight"), in.get("bias"), mean, rstd, false, mixes,
                        outs, B, T, C);
                d.backend.layerNormTokenShiftForward(x, in.get("weight"), in.get("bias"), mean, rstd, true, mixes,
                        again, B, T, C);
                List<Tensor> out = new ArrayList<>(List.of(outs));
                out.add(mean);
                out.add(rstd);
                out.addAll(List.of(again));
                return out;
            }

            void backward(Dev d, Map<String, Tensor> in, Map<String, Tensor> saved, List<Tensor> dOuts,
                          Map<String, Tensor> g) {
                Tensor[] dMixes = new Tensor[k];
                Tensor[] dOut = new Tensor[k];
                for (int j = 0; j < k; j++) {
                    dMixes[j] = (nullMixes >> j & 1) != 0 ? null : g.get("mix" + j);
                    dOut[j] = placed(misaligned, d, dOuts.get(j));
                }
                Tensor dx = overwrite ? placed(misaligned, d, d.poisoned(n)) : placed(misaligned, d, g.get("x"));
                d.backend.layerNormTokenShiftBackward(dOut, placed(misaligned, d, in.get("x")), in.get("weight"),
                        in.get("bias"), saved.get("mean"), saved.get("rstd"), mixTensors(in, k), dx, null, overwrite,
                        g.get("weight"), g.get("bias"), dMixes, B, T, C);
                if (overwrite) {
                    d.backend.accumulate(dx, g.get("x"));
                } else if (dx != g.get("x")) {
                    d.backend.copy(dx, g.get("x"));
                }
            }
        };
    }

    /**
     * The reference cross-entropy on {@code c}'s backend: {losses, dLogits (with the L2Wrap gradient, at scale)}, written
     * into NaN-poisoned tensors of {@code c}.
     */
    static Tensor[] cpuCrossEntropy(Dev c, Tensor logits, Tensor targets, int rows, int vocab, double scale) {
        Tensor loss = c.poisoned(rows);
        Tensor d = c.poisoned((long) rows * vocab);
        c.backend.crossEntropyForward(logits, targets, loss, rows, vocab);
        c.backend.crossEntropyBackward(logits, targets, d, rows, vocab, scale);
        return new Tensor[] {loss, d};
    }

    static Check linear(int rows, int in, int out, long seed) {
        return linear(rows, in, out, FP32_TOLERANCE, seed);
    }

    static Check linear(int rows, int in, int out, double tolerance, long seed) {
        return linear(rows, in, out, tolerance, false, seed);
    }

    static Check linear(int rows, int in, int out, double tolerance, boolean hold, long seed) {
        return linear(rows, in, out, tolerance, hold, false, seed);
    }

    static Check linear(int rows, int in, int out, double tolerance, boolean hold, boolean overwrite, long seed) {
        return linear(rows, in, out, tolerance, hold, overwrite, false, seed);
    }

    /**
     * {@code hold}: the weight is held ({@link Backend#holdGemmOperand}) through the forward and the backward;
     * {@code overwrite}: the backward is linearBackwardOverwritingDx into a NaN-poisoned dx, then added to the gradient;
     * {@code overwriteWeight} (with overwrite): linearBackwardOverwriting into a NaN-poisoned dx and dWeight, both then
     * added to the gradients.
     */
    static Check linear(int rows, int in, int out, double tolerance, boolean hold, boolean overwrite,
                        boolean overwriteWeight, long seed) {
        return new OpCase("linear", "rows=" + rows + " in=" + in + " out=" + out + (hold ? " held" : "")
                + (overwriteWeight ? " overwriting dx, dweight" : overwrite ? " overwriting dx" : ""), tolerance, seed) {
            void makeInputs(SplittableRandom rng, LinkedHashMap<String, double[]> m) {
                m.put("x", gaussian(rng, rows * in, 1.0));
                m.put("weight", gaussian(rng, out * in, 1 / Math.sqrt(in)));
            }

            List<Tensor> forward(Dev d, Map<String, Tensor> t, Map<String, Tensor> saved) {
                Tensor y = d.poisoned((long) rows * out);
                if (hold) {
                    d.backend.holdGemmOperand(t.get("weight"));
                }
                d.backend.linearForward(t.get("x"), t.get("weight"), y, rows, in, out);
                d.backend.releaseGemmOperand();
                return List.of(y);
            }

            void backward(Dev d, Map<String, Tensor> t, Map<String, Tensor> saved, List<Tensor> dOuts,
                          Map<String, Tensor> g) {
                if (hold) {
                    d.backend.holdGemmOperand(t.get("weight"));
                }
                if (overwriteWeight) {
                    Tensor dx = d.poisoned((long) rows * in);
                    Tensor dw = d.poisoned((long) out * in);
                    d.backend.linearBackwardOverwriting(dOuts.get(0), t.get("x"), t.get("weight"), dx, dw, rows, in, out);
                    d.backend.accumulate(dx, g.get("x"));
                    d.backend.accumulate(dw, g.get("weight"));
                } else if (overwrite) {
                    Tensor dx = d.poisoned((long) rows * in);
                    d.backend.linearBackwardOverwritingDx(dOuts.get(0), t.get("x"), t.get("weight"), dx, g.get("weight"),
                            rows, in, out);
                    d.backend.accumulate(dx, g.get("x"));
                } else {
                    d.backend.linearBackward(dOuts.get(0), t.get("x"), t.get("weight"), g.get("x"), g.get("weight"), rows,
                            in, out);
                }
                d.backend.releaseGemmOperand();
            }
        };
    }

    /**
     * linear with the weight held in a caller's copy ({@link Backend#holdGemmOperand(Tensor, Tensor, boolean)}), as the
     * model holds its weights: the forward converts the weight into a NaN-poisoned copy (a view 128 elements into a
     * larger buffer), the backward holds it without converting. Where the backend keeps such a copy, the backward is
     * given a NaN weight at another address: its dx is right only if the GEMMs read the copy, not the weight.
     */
    static Check linearHeldCopy(int rows, int in, int out, double tolerance, long seed) {
        return new OpCase("linear", "rows=" + rows + " in=" + in + " out=" + out + " held in a kept copy", tolerance, seed) {
            void makeInputs(SplittableRandom rng, LinkedHashMap<String, double[]> m) {
                m.put("x", gaussian(rng, rows * in, 1.0));
                m.put("weight", gaussian(rng, out * in, 1 / Math.sqrt(in)));
            }

            List<Tensor> forward(Dev d, Map<String, Tensor> t, Map<String, Tensor> saved) {
                long n = (long) out * in;
                Tensor copy = d.keep(d.backend.view(d.poisonedBf16OnGpu(n + 128), 128, Math.toIntExact(n)));
                saved.put("copy", copy);
                Tensor y = d.poisoned((long) rows * out);
                d.backend.holdGemmOperand(t.get("weight"), copy, true);
                d.backend.linearForward(t.get("x"), t.get("weight"), y, rows, in, out);
                d.backend.releaseGemmOperand();
                return List.of(y);
            }

            void backward(Dev d, Map<String, Tensor> t, Map<String, Tensor> saved, List<Tensor> dOuts,
                          Map<String, Tensor> g) {
                boolean kept = d.backend.gemmWeightCopyDtype(DType.F32) != null;
                Tensor weight = kept ? d.poisoned((long) out * in) : t.get("weight");
                d.backend.holdGemmOperand(weight, saved.get("copy"), false);
                d.backend.linearBackward(dOuts.get(0), t.get("x"), weight, g.get("x"), g.get("weight"), rows, in, out);
                d.backend.releaseGemmOperand();
            }
        };
    }

    /** linearForwardResidual: out = residual + x·weightᵀ, into a NaN-poisoned out; the residual's gradient is dOut. */
    static Check linearResidual(int rows, int in, int out, double tolerance, long seed) {
        return new OpCase("linear", "rows=" + rows + " in=" + in + " out=" + out + " +residual", tolerance, seed) {
            void makeInputs(SplittableRandom rng, LinkedHashMap<String, double[]> m) {
                m.put("x", gaussian(rng, rows * in, 1.0));
                m.put("weight", gaussian(rng, out * in, 1 / Math.sqrt(in)));
                m.put("residual", gaussian(rng, rows * out, 1.0));
            }

            List<Tensor> forward(Dev d, Map<String, Tensor> t, Map<String, Tensor> saved) {
                Tensor y = d.poisoned((long) rows * out);
                d.backend.linearForwardResidual(t.get("x"), t.get("weight"), t.get("residual"), y, rows, in, out);
                return List.of(y);
            }

            void backward(Dev d, Map<String, Tensor> t, Map<String, Tensor> saved, List<Tensor> dOuts,
                          Map<String, Tensor> g) {
                d.backend.linearBackward(dOuts.get(0), t.get("x"), t.get("weight"), g.get("x"), g.get("weight"), rows,
                        in, out);
                d.backend.accumulate(dOuts.get(0), g.get("residual"));
            }
        };
    }

    /**
     * A LoRA op case: x [rows, in], down [in, rank], up [rank, out] and (withBias) bias [out] drawn in that order, and
     * the forward into NaN-poisoned hidden and out (saved for the backward, which the subclass gives).
     */
    abstract static class LoraCase extends OpCase {
        final int rows, in, rank, out;
        final Activation hiddenAct, outAct;
        final boolean withBias;

        LoraCase(String op, String size, double tolerance, long seed, int rows, int in, int rank, int out,
                 Activation hiddenAct, Activation outAct, boolean withBias) {
            super(op, size, tolerance, seed);
            this.rows = rows;
            this.in = in;
            this.rank = rank;
            this.out = out;
            this.hiddenAct = hiddenAct;
            this.outAct = outAct;
            this.withBias = withBias;
        }

        void makeInputs(SplittableRandom rng, LinkedHashMap<String, double[]> m) {
            m.put("x", gaussian(rng, rows * in, 1.0));
            m.put("down", gaussian(rng, in * rank, 1 / Math.sqrt(in)));
            m.put("up", gaussian(rng, rank * out, 1 / Math.sqrt(rank)));
            if (withBias) {
                m.put("bias", gaussian(rng, out, 0.5));
            }
        }

        List<Tensor> forward(Dev d, Map<String, Tensor> t, Map<String, Tensor> saved) {
            Tensor hidden = d.poisoned((long) rows * rank);
            Tensor y = d.poisoned((long) rows * out);
            saved.put("hidden", hidden);
            saved.put("out", y);
            d.backend.loraForward(t.get("x"), t.get("down"), t.get("up"), t.get("bias"), hiddenAct, outAct, hidden, y,
                    rows, in, rank, out);
            return List.of(y);
        }
    }

    static Check lora(int rows, int in, int rank, int out, Activation hiddenAct, Activation outAct, boolean withBias,
                      long seed) {
        return lora(rows, in, rank, out, hiddenAct, outAct, withBias, FP32_TOLERANCE, seed);
    }

    static Check lora(int rows, int in, int rank, int out, Activation hiddenAct, Activation outAct, boolean withBias,
                      double tolerance, long seed) {
        return lora(rows, in, rank, out, hiddenAct, outAct, withBias, tolerance, false, seed);
    }

    static Check lora(int rows, int in, int rank, int out, Activation hiddenAct, Activation outAct, boolean withBias,
                      double tolerance, boolean overwrite, long seed) {
        return lora(rows, in, rank, out, hiddenAct, outAct, withBias, tolerance, overwrite, false, seed);
    }

    /**
     * {@code overwrite}: dx written into a NaN-poisoned tensor (loraBackwardOverwritingDx), then added to its gradient;
     * {@code overwriteWeights}: dDown, dUp and dBias written into NaN-poisoned tensors, then added to theirs
     * (loraBackwardOverwriting with overwrite, loraBackwardOverwritingWeights without: dx added to).
     */
    static Check lora(int rows, int in, int rank, int out, Activation hiddenAct, Activation outAct, boolean withBias,
                      double tolerance, boolean overwrite, boolean overwriteWeights, long seed) {
        String size = "rows=" + rows + " " + in + ">" + rank + ">" + out + " " + hiddenAct + "/" + outAct
                + (withBias ? " +bias" : "") + (overwriteWeights ? (overwrite ? " overwriting dx, weights"
                : " overwriting weights") : over(overwrite));
        return new LoraCase("lora", size, tolerance, seed, rows, in, rank, out, hiddenAct, outAct, withBias) {
            void backward(Dev d, Map<String, Tensor> t, Map<String, Tensor> saved, List<Tensor> dOuts,
                          Map<String, Tensor> g) {
                Tensor dPre = outAct == Activation.NONE ? null : d.poisoned((long) rows * out);
                if (overwriteWeights) {
                    Tensor dx = overwrite ? d.poisoned((long) rows * in) : g.get("x");
                    Tensor dDown = d.poisoned((long) in * rank);
                    Tensor dUp = d.poisoned((long) rank * out);
                    Tensor dBias = withBias ? d.poisoned(out) : null;
                    if (overwrite) {
                        d.backend.loraBackwardOverwriting(dOuts.get(0), t.get("x"), t.get("down"), t.get("up"),
                                t.get("bias"), hiddenAct, outAct, saved.get("hidden"), saved.get("out"), dPre,
                                d.poisoned((long) rows * rank), dx, dDown, dUp, dBias, rows, in, rank, out);
                        d.backend.accumulate(dx, g.get("x"));
                    } else {
                        d.backend.loraBackwardOverwritingWeights(dOuts.get(0), t.get("x"), t.get("down"), t.get("up"),
                                t.get("bias"), hiddenAct, outAct, saved.get("hidden"), saved.get("out"), dPre,
                                d.poisoned((long) rows * rank), dx, dDown, dUp, dBias, rows, in, rank, out);
                    }
                    d.backend.accumulate(dDown, g.get("down"));
                    d.backend.accumulate(dUp, g.get("up"));
                    if (withBias) {
                        d.backend.accumulate(dBias, g.get("bias"));
                    }
                    return;
                }
                if (overwrite) {
                    Tensor dx = d.poisoned((long) rows * in);
                    d.backend.loraBackwardOverwritingDx(dOuts.get(0), t.get("x"), t.get("down"), t.get("up"),
                            t.get("bias"), hiddenAct, outAct, saved.get("hidden"), saved.get("out"), dPre,
                            d.poisoned((long) rows * rank), dx, g.get("down"), g.get("up"), g.get("bias"), rows, in,
                            rank, out);
                    d.backend.accumulate(dx, g.get("x"));
                    return;
                }
                d.backend.loraBackward(dOuts.get(0), t.get("x"), t.get("down"), t.get("up"), t.get("bias"), hiddenAct,
                        outAct, saved.get("hidden"), saved.get("out"), dPre, d.poisoned((long) rows * rank),
                        g.get("x"), g.get("down"), g.get("up"), g.get("bias"), rows, in, rank, out);
            }
        };
    }

    /**
     * The LoRA bias gradient from a bf16 dOut with no output activation (the α and v-gate pre-activations' gradients,
     * the decay's dwRaw), under bf16 GEMMs: the column sums of the GEMMs' operand. The backward runs twice
     * (Overwriting into a NaN-poisoned dx, then accumulating), so the second launch must find column_sums_bf16x8's
     * tickets set back by the first. dbias within 1e-5 (the CPU is given the same bf16 dOut: only the order of the fp32
     * additions differs), the GEMMs' results in the bf16 band.
     */
    static Check loraBiasSums(int rows, int C, long seed) {
        int in = 64;
        int rank = 16;
        return new LoraCase("lora bias sums", "rows=" + rows + " " + in + ">" + rank + ">" + C, BF16_TOLERANCE, seed,
                rows, in, rank, C, Activation.NONE, Activation.NONE, true) {
            void backward(Dev d, Map<String, Tensor> t, Map<String, Tensor> saved, List<Tensor> dOuts,
                          Map<String, Tensor> g) {
                Tensor dx = d.poisoned((long) rows * in);
                d.backend.loraBackwardOverwritingDx(dOuts.get(0), t.get("x"), t.get("down"), t.get("up"),
                        t.get("bias"), Activation.NONE, Activation.NONE, saved.get("hidden"), saved.get("out"), null,
                        d.poisoned((long) rows * rank), dx, g.get("down"), g.get("up"), g.get("bias"), rows, in, rank,
                        C);
                d.backend.accumulate(dx, g.get("x"));
                d.backend.loraBackward(dOuts.get(0), t.get("x"), t.get("down"), t.get("up"), t.get("bias"),
                        Activation.NONE, Activation.NONE, saved.get("hidden"), saved.get("out"), null,
                        d.poisoned((long) rows * rank), g.get("x"), g.get("down"), g.get("up"), g.get("bias"), rows,
                        in, rank, C);
            }

            @Override
            double toleranceOf(String quantity) {
                return quantity.equals("dbias") ? FP32_TOLERANCE : tolerance;
            }
        }.withBf16DOuts();
    }

    /** {@code overwrite}: the backward's Overwriting variant into NaN-poisoned outputs, then added to the gradients. */
    static Check valueResidual(int rows, int C, boolean overwrite, long seed) {
        return valueResidual(rows, C, overwrite, false, seed);
    }

    /**
     * {@code bf16Out} (with v, vFirst and gatePre given in bf16, overwrite): out, dv and dGatePre written in bf16 on
     * the GPU (compared in the bf16 band), dvFirst within 1e-5. gatePre: the v gate's pre-activation (σ(±3) ≈ 0.05,
     * 0.95 at the ends of its range).
     */
    static Check valueResidual(int rows, int C, boolean overwrite, boolean bf16Out, long seed) {
        return new OpCase("valueResidual", "rows=" + rows + " C=" + C + over(overwrite) + (bf16Out ? " bf16 out" : ""),
                FP32_TOLERANCE, seed) {
            @Override
            double toleranceOf(String q) {
                return bf16Out && !q.equals("dvFirst") ? BF16_TOLERANCE : tolerance;
            }

            void makeInputs(SplittableRandom rng, LinkedHashMap<String, double[]> m) {
                m.put("v", gaussian(rng, rows * C, 1.0));
                m.put("vFirst", gaussian(rng, rows * C, 1.0));
                m.put("gatePre", uniform(rng, rows * C, -3, 3));
            }

            List<Tensor> forward(Dev d, Map<String, Tensor> t, Map<String, Tensor> saved) {
                Tensor out = bf16Out ? d.poisonedBf16OnGpu((long) rows * C) : d.poisoned((long) rows * C);
                d.backend.valueResidualForward(t.get("v"), t.get("vFirst"), t.get("gatePre"), out, rows, C);
                return List.of(out);
            }

            void backward(Dev d, Map<String, Tensor> t, Map<String, Tensor> saved, List<Tensor> dOuts,
                          Map<String, Tensor> g) {
                if (overwrite) {
                    Tensor dv = bf16Out ? d.poisonedBf16OnGpu((long) rows * C) : d.poisoned((long) rows * C);
                    Tensor dGatePre = bf16Out ? d.poisonedBf16OnGpu((long) rows * C) : d.poisoned((long) rows * C);
                    d.backend.valueResidualBackwardOverwriting(dOuts.get(0), t.get("v"), t.get("vFirst"),
                            t.get("gatePre"), dv, g.get("vFirst"), dGatePre, rows, C);
                    d.accumulateWidened(dv, g.get("v"));
                    d.accumulateWidened(dGatePre, g.get("gatePre"));
                    return;
                }
                d.backend.valueResidualBackward(dOuts.get(0), t.get("v"), t.get("vFirst"), t.get("gatePre"),
                        g.get("v"), g.get("vFirst"), g.get("gatePre"), rows, C);
            }
        };
    }

    /** {@code overwrite}: the backward's Overwriting variant into NaN-poisoned outputs, then added to the gradients. */
    static Check gate(int rows, int C, boolean overwrite, long seed) {
        return new OpCase("gate", "rows=" + rows + " C=" + C + over(overwrite), FP32_TOLERANCE, seed) {
            void makeInputs(SplittableRandom rng, LinkedHashMap<String, double[]> m) {
                m.put("x", gaussian(rng, rows * C, 1.0));
                m.put("gate", gaussian(rng, rows * C, 1.0));
            }

            List<Tensor> forward(Dev d, Map<String, Tensor> t, Map<String, Tensor> saved) {
                Tensor out = d.poisoned((long) rows * C);
                d.backend.gateForward(t.get("x"), t.get("gate"), out, rows, C);
                return List.of(out);
            }

            void backward(Dev d, Map<String, Tensor> t, Map<String, Tensor> saved, List<Tensor> dOuts,
                          Map<String, Tensor> g) {
                if (overwrite) {
                    Tensor dx = d.poisoned((long) rows * C);
                    Tensor dGate = d.poisoned((long) rows * C);
                    d.backend.gateBackwardOverwriting(dOuts.get(0), t.get("x"), t.get("gate"), dx, dGate, rows, C);
                    d.backend.accumulate(dx, g.get("x"));
                    d.backend.accumulate(dGate, g.get("gate"));
                    return;
                }
                d.backend.gateBackward(dOuts.get(0), t.get("x"), t.get("gate"), g.get("x"), g.get("gate"), rows, C);
            }
        };
    }

    /**
     * relu²'s backward from its output: reluSquaredBackwardOverwriting into a copy of the output (as the model writes
     * dPre over it) or, {@code inPlace}, into a copy of dAct, each NaN-poisoned before the copy; then added to dx.
     */
    static Check reluSquared(int rows, int C, boolean inPlace, long seed) {
        return new OpCase("reluSquared", "rows=" + rows + " C=" + C + (inPlace ? " over dAct" : " over act"), FP32_TOLERANCE,
                seed) {
            void makeInputs(SplittableRandom rng, LinkedHashMap<String, double[]> m) {
                m.put("x", gaussian(rng, rows * C, 1.0));
            }

            List<Tensor> forward(Dev d, Map<String, Tensor> t, Map<String, Tensor> saved) {
                Tensor out = d.poisoned((long) rows * C);
                d.backend.reluSquaredForward(t.get("x"), out, rows, C);
                saved.put("act", out);
                return List.of(out);
            }

            void backward(Dev d, Map<String, Tensor> t, Map<String, Tensor> saved, List<Tensor> dOuts,
                          Map<String, Tensor> g) {
                Tensor dPre = d.poisoned((long) rows * C);
                d.backend.copy(inPlace ? dOuts.get(0) : saved.get("act"), dPre);
                d.backend.reluSquaredBackwardOverwriting(inPlace ? dPre : dOuts.get(0), inPlace ? saved.get("act") : dPre,
                        dPre, rows, C);
                d.backend.accumulate(dPre, g.get("x"));
            }
        };
    }

    /** {@code overwrite}: the backward's Overwriting variant into NaN-poisoned outputs, then added to the gradients. */
    static Check keyPrepare(int rows, int C, boolean overwrite, long seed) {
        return keyPrepare(rows, C, overwrite, false, seed);
    }

    /**
     * {@code bf16Out} (with k and alphaPre given in bf16): κ̃, a and b written in bf16 on the GPU, in the bf16 band.
     * alphaPre: α's pre-activation, σ(±3) ≈ 0.05, 0.95 at the ends of its range.
     */
    static Check keyPrepare(int rows, int C, boolean overwrite, boolean bf16Out, long seed) {
        return new OpCase("keyPrepare", "rows=" + rows + " C=" + C + over(overwrite) + (bf16Out ? " bf16 out" : ""),
                FP32_TOLERANCE, seed) {
            @Override
            double toleranceOf(String q) {
                return bf16Out && q.startsWith("out") ? BF16_TOLERANCE : tolerance;
            }

            void makeInputs(SplittableRandom rng, LinkedHashMap<String, double[]> m) {
                m.put("k", gaussian(rng, rows * C, 1.0));
                m.put("alphaPre", uniform(rng, rows * C, -3, 3));
                m.put("kK", uniform(rng, C, 0.6, 0.8));
                m.put("kA", uniform(rng, C, 0.9, 1.1));
            }

            List<Tensor> forward(Dev d, Map<String, Tensor> t, Map<String, Tensor> saved) {
                long n = (long) rows * C;
                Tensor kTilde = bf16Out ? d.poisonedBf16OnGpu(n) : d.poisoned(n);
                Tensor a = bf16Out ? d.poisonedBf16OnGpu(n) : d.poisoned(n);
                Tensor b = bf16Out ? d.poisonedBf16OnGpu(n) : d.poisoned(n);
                d.backend.keyPrepareForward(t.get("k"), t.get("alphaPre"), t.get("kK"), t.get("kA"), kTilde, a, b,
                        rows, C);
                return List.of(kTilde, a, b);
            }

            void backward(Dev d, Map<String, Tensor> t, Map<String, Tensor> saved, List<Tensor> dOuts,
                          Map<String, Tensor> g) {
                if (overwrite) {
                    Tensor dk = d.poisoned((long) rows * C);
                    Tensor dAlphaPre = d.poisoned((long) rows * C);
                    d.backend.keyPrepareBackwardOverwriting(dOuts.get(0), dOuts.get(1), dOuts.get(2), t.get("k"),
                            t.get("alphaPre"), t.get("kK"), t.get("kA"), dk, dAlphaPre, g.get("kK"), g.get("kA"), rows,
                            C);
                    d.backend.accumulate(dk, g.get("k"));
                    d.backend.accumulate(dAlphaPre, g.get("alphaPre"));
                    return;
                }
                d.backend.keyPrepareBackward(dOuts.get(0), dOuts.get(1), dOuts.get(2), t.get("k"), t.get("alphaPre"),
                        t.get("kK"), t.get("kA"), g.get("k"), g.get("alphaPre"), g.get("kK"), g.get("kA"), rows, C);
            }
        };
    }

    /** {@code overwrite}: the backward's Overwriting variant into NaN-poisoned outputs, then added to the gradients. */
    static Check bonus(int rows, int C, boolean overwrite, long seed) {
        return new OpCase("bonus", "rows=" + rows + " C=" + C + over(overwrite), FP32_TOLERANCE, seed) {
            void makeInputs(SplittableRandom rng, LinkedHashMap<String, double[]> m) {
                m.put("x", gaussian(rng, rows * C, 1.0));
                m.put("r", gaussian(rng, rows * C, 1.0));
                m.put("k", gaussian(rng, rows * C, 1.0));
                m.put("v", gaussian(rng, rows * C, 1.0));
                m.put("rK", gaussian(rng, C, 0.3));
            }

            List<Tensor> forward(Dev d, Map<String, Tensor> t, Map<String, Tensor> saved) {
                Tensor out = d.poisoned((long) rows * C);
                d.backend.bonusForward(t.get("x"), t.get("r"), t.get("k"), t.get("v"), t.get("rK"), out, rows, C);
                return List.of(out);
            }

            void backward(Dev d, Map<String, Tensor> t, Map<String, Tensor> saved, List<Tensor> dOuts,
                          Map<String, Tensor> g) {
                if (overwrite) {
                    Tensor dr = d.poisoned((long) rows * C);
                    Tensor dk = d.poisoned((long) rows * C);
                    Tensor dv = d.poisoned((long) rows * C);
                    d.backend.bonusBackwardOverwriting(dOuts.get(0), t.get("r"), t.get("k"), t.get("v"), t.get("rK"),
                            g.get("x"), dr, dk, dv, g.get("rK"), rows, C);
                    d.backend.accumulate(dr, g.get("r"));
                    d.backend.accumulate(dk, g.get("k"));
                    d.backend.accumulate(dv, g.get("v"));
                    return;
                }
                d.backend.bonusBackward(dOuts.get(0), t.get("r"), t.get("k"), t.get("v"), t.get("rK"), g.get("x"),
                        g.get("r"), g.get("k"), g.get("v"), g.get("rK"), rows, C);
            }
        };
    }

    /**
     * The time mix's output chain in one call ({@link Backend#lnxBonusGateForward}; fused on the GPU): lnx and the
     * gate product; the backward is the three ops' backward (gate, bonus, GroupNorm, which reads the saved mean and
     * rstd), so every input's gradient checks the forward's saved values too. {@code fusedBackward}: only the gate
     * product is an output, and the backward is {@link Backend#lnxBonusGateBackward} (fused on the GPU).
     */
    static Check lnxBonusGate(int rows, int C, boolean fusedBackward, long seed) {
        return lnxBonusGate(rows, C, fusedBackward, false, seed);
    }

    /** {@code bf16Dy}: the fused backward writes dy in bf16 (with y, r, k, v given in bf16). */
    static Check lnxBonusGate(int rows, int C, boolean fusedBackward, boolean bf16Dy, long seed) {
        String size = "rows=" + rows + " C=" + C + (fusedBackward ? " fused backward" : "") + (bf16Dy ? " bf16 dy" : "");
        return new OpCase("lnxBonusGate", size, FP32_TOLERANCE, seed) {
            /** y, r, k, v given in bf16 (the WKV7 kernel's output and inputs; with g and the output gradient): dG bf16. */
            boolean bf16In() {
                return bf16Inputs.contains("y");
            }

            @Override
            double toleranceOf(String q) {
                return (bf16In() && q.equals("dg")) || (bf16Dy && q.equals("dy")) ? BF16_TOLERANCE : tolerance;
            }

            void makeInputs(SplittableRandom rng, LinkedHashMap<String, double[]> m) {
                double[] y = gaussian(rng, rows * C, 1.0);
                for (int i = 0; i < y.length; i++) {
                    y[i] += 0.2;
                }
                m.put("y", y);
                m.put("lnXW", gaussian(rng, C, 0.5));
                m.put("lnXB", gaussian(rng, C, 0.5));
                m.put("r", gaussian(rng, rows * C, 1.0));
                m.put("k", gaussian(rng, rows * C, 1.0));
                m.put("v", gaussian(rng, rows * C, 1.0));
                m.put("rK", gaussian(rng, C, 0.3));
                m.put("g", gaussian(rng, rows * C, 1.0));
            }

            List<Tensor> forward(Dev d, Map<String, Tensor> t, Map<String, Tensor> saved) {
                long n = (long) rows * C;
                Tensor lnx = d.poisoned(n);
                // a bf16 g needs a bf16 gate product, which is then not compared here (bf16Inputs reads it back)
                boolean bf16G = bf16Inputs.contains("g");
                Tensor gated = bf16G && d.backend instanceof CudaBackend gpu ? d.keep(gpu.allocate(DType.BF16, rows, C))
                        : d.poisoned(n);
                Tensor mean = d.poisoned((long) rows * (C / 64));
                Tensor rstd = d.poisoned((long) rows * (C / 64));
                d.backend.lnxBonusGateForward(t.get("y"), t.get("lnXW"), t.get("lnXB"), t.get("r"), t.get("k"),
                        t.get("v"), t.get("rK"), t.get("g"), lnx, gated, mean, rstd, rows, C);
                saved.put("lnx", lnx);
                saved.put("mean", mean);
                saved.put("rstd", rstd);
                if (bf16G) {
                    return List.of(lnx); // its dOut serves as dGated (fused backward)
                }
                return fusedBackward ? List.of(gated) : List.of(lnx, gated);
            }

            void backward(Dev d, Map<String, Tensor> t, Map<String, Tensor> saved, List<Tensor> dOuts,
                          Map<String, Tensor> g) {
                if (fusedBackward) {
                    // everything written into poisoned tensors, then added to the gradients
                    long n = (long) rows * C;
                    Tensor[] w = {bf16In() ? d.poisonedBf16OnGpu(n) : d.poisoned(n), d.poisoned(n), d.poisoned(n),
                            d.poisoned(n), bf16Dy ? d.poisonedBf16OnGpu(n) : d.poisoned(n)};
                    // lnx not given: recomputed (the model keeps none)
                    d.backend.lnxBonusGateBackward(dOuts.get(0), null, t.get("g"), t.get("y"),
                            t.get("lnXW"), t.get("lnXB"), saved.get("mean"), saved.get("rstd"), t.get("r"), t.get("k"), t.get("v"),
                            t.get("rK"), d.poisoned(n), w[0], w[1], w[2], w[3], w[4], g.get("lnXW"), g.get("lnXB"),
                            g.get("rK"), rows, C);
                    String[] names = {"g", "r", "k", "v", "y"};
                    for (int i = 0; i < names.length; i++) {
                        d.accumulateWidened(w[i], g.get(names[i]));
                    }
                    return;
                }
                Tensor dLnx = d.poisoned((long) rows * C);
                d.backend.copy(dOuts.get(0), dLnx);
                d.backend.gateBackward(dOuts.get(1), saved.get("lnx"), t.get("g"), dLnx, g.get("g"), rows, C);
                d.backend.bonusBackward(dLnx, t.get("r"), t.get("k"), t.get("v"), t.get("rK"), null, g.get("r"),
                        g.get("k"), g.get("v"), g.get("rK"), rows, C);
                d.backend.groupNormBackward(dLnx, t.get("y"), t.get("lnXW"), saved.get("mean"), saved.get("rstd"),
                        g.get("y"), g.get("lnXW"), g.get("lnXB"), rows, C);
            }
        };
    }

    /**
     * The WKV7 checks: the default kernels (configurations chosen from B·H and T) at sizes from T = 1 to 4096 (T
     * not a multiple of the 8-step stage or the 16-step snapshot interval among them), every v5 kernel and v4 at two
     * odd sizes, every chunked forward at six sizes, and the column pass in time chunks of 0, 16, 32 and 128 steps (T
     * a multiple of none, T < chunk).
     */
    public static List<Check> wkv7Checks(boolean quick, long seed) {
        List<Check> c = new ArrayList<>();
        long s = seed;
        int[][] sizes = quick ? new int[][] {{2, 20, 2}}
                : new int[][] {{1, 1, 1}, {2, 20, 2}, {1, 8, 1}, {1, 17, 3}, {3, 37, 5}, {2, 100, 3}, {1, 1024, 2},
                {2, 4096, 4}, {40, 64, 4}};
        for (int[] d : sizes) {
            c.add(wkv7(d[0], d[1], d[2], null, s++));
        }
        // bf16 inputs and y (the training step's under bf16 GEMMs): the serial kernels (fp32 products, 1e-5),
        // overwriting and adding
        int[][] bf16Sizes = quick ? new int[][] {{2, 20, 2}}
                : new int[][] {{1, 1, 1}, {2, 20, 2}, {1, 17, 3}, {3, 37, 5}, {2, 100, 3}, {1, 1024, 2}, {2, 4096, 4},
                {40, 64, 4}, {8, 200, 12}};
        CudaBackend.Wkv7Choice serial = CudaBackend.Wkv7Choice.AUTO.tc(false);
        for (int[] d : bf16Sizes) {
            c.add(wkv7(d[0], d[1], d[2], serial, true, true, s++));
        }
        c.add(wkv7(3, 37, 5, serial, false, true, s++));
        // ... and the chunked tensor-core kernels (the default at T a multiple of 16; the bf16 band): one chunk and
        // many, B·H below and above the SM count, overwriting and adding; T not a multiple of 16 takes the serial ones
        int[][] tcSizes = quick ? new int[][] {{2, 32, 2}}
                : new int[][] {{1, 16, 1}, {2, 32, 2}, {3, 48, 5}, {2, 256, 3}, {1, 1024, 2}, {2, 4096, 4}, {8, 256, 12},
                {40, 64, 4}, {2, 100, 3}};
        for (int[] d : tcSizes) {
            c.add(wkv7(d[0], d[1], d[2], CudaBackend.Wkv7Choice.AUTO, true, true, s++));
        }
        if (!quick) {
            c.add(wkv7(3, 48, 5, CudaBackend.Wkv7Choice.AUTO, false, true, s++));
            c.add(wkv7(2, 4096, 4, CudaBackend.Wkv7Choice.AUTO, false, true, s++));
        }
        c.add(wkv7SavedLayouts());
        // the training step's call under bf16 GEMMs (wkvGradientDtype): a bf16 dOut, dr's sum written into a bf16
        // drSum from an fp32 share, dwRaw written in bf16; on the tensor-core kernels, and on the serial ones (T not a
        // multiple of 16, the tensor-core kernels off, fp32 inputs, v4: through fp32 scratch); and an fp32 drSum apart
        // from the share
        int[][] gradSizes = quick ? new int[][] {{2, 32, 2}}
                : new int[][] {{1, 16, 1}, {2, 32, 2}, {3, 48, 5}, {2, 256, 3}, {2, 4096, 4}, {8, 256, 12}, {3, 37, 5}};
        for (int[] d : gradSizes) {
            c.add(wkv7(d[0], d[1], d[2], CudaBackend.Wkv7Choice.AUTO, true, true, WKV7_BF16_GRADS, s++));
        }
        if (!quick) {
            c.add(wkv7(2, 32, 2, serial, true, true, WKV7_BF16_GRADS, s++));
            c.add(wkv7(2, 100, 3, serial, true, true, WKV7_BF16_GRADS, s++));
            c.add(wkv7(3, 37, 5, null, true, false, WKV7_BF16_GRADS, s++));
            c.add(wkv7(2, 100, 3, CudaBackend.Wkv7Choice.V4, true, false, WKV7_BF16_GRADS, s++));
            c.add(wkv7(2, 256, 3, CudaBackend.Wkv7Choice.AUTO, true, true, WKV7_F32_DR_SUM, s++));
            c.add(wkv7(3, 37, 5, null, true, false, WKV7_F32_DR_SUM, s++));
        }
        if (!quick) {
            // every bf16 kernel (paired rows as forward and row pass, both column kernels) in one chunk and in chunks
            List<CudaBackend.RowKernel> rb = List.of(CudaBackend.ROWS_64_2_4P, CudaBackend.ROWS_32_2_8P,
                    CudaBackend.ROWS_16_1_8P);
            List<CudaBackend.ColKernel> cb = List.of(CudaBackend.COLS_32_1_4P, CudaBackend.COLS_16_1_4P);
            // in every staging (CudaBackend.WKV7_BF16_STAGINGS)
            for (String staging : CudaBackend.WKV7_BF16_STAGINGS) {
                for (int i = 0; i < rb.size(); i++) {
                    for (CudaBackend.ColKernel col : cb) {
                        CudaBackend.Wkv7Choice choice = CudaBackend.Wkv7Choice.v5(rb.get(i), rb.get((i + 1) % rb.size()),
                                col).bf16(staging);
                        c.add(wkv7(2, 100, 3, choice.chunk(0), true, true, s++));
                        c.add(wkv7(3, 45, 2, choice.chunk(16), true, true, s++));
                        c.add(wkv7(1, 300, 2, choice.chunk(32), false, true, s++));
                    }
                }
            }
        }
        // dwRaw, da and db written (the training step's call): one chunk and several, T = 1, and v4 (zeroed first)
        c.add(wkv7(3, 37, 5, null, true, s++));
        if (!quick) {
            c.add(wkv7(1, 1, 1, null, true, s++));
            c.add(wkv7(2, 4096, 4, null, true, s++));
            c.add(wkv7(2, 100, 3, CudaBackend.Wkv7Choice.V4, true, s++));
        }
        if (!quick) {
            // every v5 kernel at least twice, and v4
            List<CudaBackend.Wkv7Choice> choices = new ArrayList<>();
            choices.add(CudaBackend.Wkv7Choice.V4);
            List<CudaBackend.RowKernel> rk = CudaBackend.WKV7_ROW_KERNELS;
            List<CudaBackend.ColKernel> ck = CudaBackend.WKV7_COL_KERNELS;
            int nk = Math.max(rk.size(), ck.size());
            for (int i = 0; i < nk; i++) {
                choices.add(CudaBackend.Wkv7Choice.v5(rk.get(i % rk.size()), rk.get((i + 1) % rk.size()),
                        ck.get(i % ck.size())));
            }
            for (CudaBackend.Wkv7Choice choice : choices) {
                c.add(wkv7(2, 100, 3, choice, s++));
                c.add(wkv7(3, 45, 2, choice, s++));
            }
            // the column pass in time chunks (dS at the chunk ends from the row pass): every row kernel with a short
            // chunk (last chunk partial), every column kernel with 0 (one chunk), 16 and 32 steps, T < chunk, T = 1
            for (int i = 0; i < nk; i++) {
                CudaBackend.Wkv7Choice choice = CudaBackend.Wkv7Choice.v5(rk.get(i % rk.size()), rk.get(i % rk.size()),
                        ck.get(i % ck.size())).chunk(16);
                for (int[] d : new int[][] {{2, 100, 3}, {3, 45, 2}, {2, 20, 2}}) {
                    c.add(wkv7(d[0], d[1], d[2], choice, s++));
                }
            }
            // every chunked forward (the backward reads its snapshots and sa): T = 1, T < 16, T not a multiple of 16,
            // one chunk and many, B·H = 160; the plain-layout v5 forward beside the paired default
            for (CudaBackend.ChunkKernel k : CudaBackend.WKV7_CHUNK_KERNELS) {
                for (int[] d : new int[][] {{1, 1, 1}, {1, 17, 3}, {3, 37, 5}, {2, 100, 3}, {40, 64, 4}, {1, 1024, 2}}) {
                    c.add(wkv7(d[0], d[1], d[2], CudaBackend.Wkv7Choice.chunked(k), s++));
                }
                c.add(wkv7(2, 16, 2, CudaBackend.Wkv7Choice.chunked(k), true, s++));
            }
            for (int[] d : new int[][] {{1, 1, 1}, {3, 37, 5}, {2, 4096, 4}}) {
                c.add(wkv7(d[0], d[1], d[2], CudaBackend.Wkv7Choice.v5(CudaBackend.ROWS_32_2_8, null, null), s++));
            }
            for (CudaBackend.ColKernel col : ck) {
                CudaBackend.Wkv7Choice base = CudaBackend.Wkv7Choice.v5(null, null, col);
                c.add(wkv7(2, 100, 3, base.chunk(0), s++));
                for (int[] d : new int[][] {{1, 17, 3}, {3, 37, 5}, {2, 100, 3}, {1, 1, 1}, {40, 64, 4}}) {
                    c.add(wkv7(d[0], d[1], d[2], base.chunk(32), s++));
                }
                c.add(wkv7(2, 100, 3, base.chunk(16), s++));
                c.add(wkv7(1, 300, 2, base.chunk(128), s++));
            }
        }
        return c;
    }

    /**
     * Realistic WKV7 inputs: a = −κ̂ with κ̂ a unit vector per head, b = κ̂⊙α with α ∈ (0.05, 0.95). choice selects
     * the kernels (null: the backend's default).
     */
    static Check wkv7(int B, int T, int H, CudaBackend.Wkv7Choice choice, long seed) {
        return wkv7(B, T, H, choice, false, seed);
    }

    /** {@code overwrite}: wkv7BackwardOverwritingWab into NaN-poisoned dwRaw, da and db, then added to the gradients. */
    static Check wkv7(int B, int T, int H, CudaBackend.Wkv7Choice choice, boolean overwrite, long seed) {
        return wkv7(B, T, H, choice, overwrite, false, seed);
    }

    /**
     * {@code bf16}: r, wRaw, k, v, a, b given in bf16 (the CPU gets the same rounded values) and the output y written in
     * bf16 (the bf16 band); the gradients fp32 within 1e-5, or in the bf16 band where the choice takes the chunked
     * tensor-core kernels (tf32 and bf16 products: kernels/NOTES.md, "WKV7 on the tensor cores").
     */
    static Check wkv7(int B, int T, int H, CudaBackend.Wkv7Choice choice, boolean overwrite, boolean bf16, long seed) {
        return wkv7(B, T, H, choice, overwrite, bf16, 0, seed);
    }

    /** {@link #wkv7}'s {@code grads}: dr's sum into its own fp32 drSum (from an fp32 share of dr, not added in place). */
    static final int WKV7_F32_DR_SUM = 1;
    /** {@link #wkv7}'s {@code grads}: a bf16 dOut, drSum and dwRaw ({@link Backend#wkvGradientDtype}). */
    static final int WKV7_BF16_GRADS = 2;

    /**
     * {@code grads} (with {@code overwrite}): 0, dr added to in place; {@link #WKV7_F32_DR_SUM} or
     * {@link #WKV7_BF16_GRADS}, dr's share a fresh fp32 tensor (the same values on both backends) and the sum written
     * into a poisoned drSum, fp32 or bf16; then dr's change is drSum − share.
     */
    static Check wkv7(int B, int T, int H, CudaBackend.Wkv7Choice choice, boolean overwrite, boolean bf16, int grads,
                      long seed) {
        if (grads != 0 && !overwrite) {
            throw new IllegalArgumentException("wkv7 check: drSum and bf16 gradients come with overwrite");
        }
        String size = "B=" + B + " T=" + T + " H=" + H + (choice != null ? " " + choice : "") + over(overwrite)
                + (grads == WKV7_F32_DR_SUM ? " drSum" : grads == WKV7_BF16_GRADS ? " bf16 drSum,dwRaw" : "");
        OpCase c = new OpCase("wkv7", size, FP32_TOLERANCE, seed) {
            /**
             * At T = 1 the state starts at 0, so y = v (k·r) and dv = dy (k·r): one fp32 dot product of 64 terms
             * scales every element, and its relative error is eps·Σ|k_j r_j| / |Σ k_j r_j|, which a random draw can
             * make large. out and dv are held to the tolerance times that condition number (the largest over the
             * heads, of the inputs as given; 1 at T > 1, where many dot products make up the outputs).
             */
            double dotCondition() {
                double condition = 1;
                if (T == 1) {
                    double[] r = inputs().get("r");
                    double[] k = inputs().get("k");
                    for (int u = 0; u < r.length / 64; u++) {
                        double dot = 0;
                        double abs = 0;
                        for (int i = u * 64; i < u * 64 + 64; i++) {
                            dot += r[i] * k[i];
                            abs += Math.abs(r[i] * k[i]);
                        }
                        condition = Math.max(condition, abs / Math.abs(dot));
                    }
                }
                return condition;
            }

            @Override
            double toleranceOf(String q) {
                if (bf16 && choice != null && choice.tc() && T % 16 == 0) {
                    return BF16_TOLERANCE;
                }
                if (grads == WKV7_BF16_GRADS && (q.equals("dr") || q.equals("dwRaw"))) {
                    return BF16_TOLERANCE; // rounded to bf16 once
                }
                double scaled = q.equals("out") || q.equals("dv") ? tolerance * dotCondition() : tolerance;
                return bf16 && q.equals("out") ? Math.max(BF16_TOLERANCE, scaled) : scaled;
            }

            @Override
            public List<Row> run(CudaBackend gpu, Backend cpu) {
                CudaBackend.Wkv7Choice before = gpu.wkv7Choice();
                if (choice != null) {
                    gpu.useWkv7(choice);
                }
                try {
                    return super.run(gpu, cpu);
                } finally {
                    gpu.useWkv7(before);
                }
            }

            void makeInputs(SplittableRandom rng, LinkedHashMap<String, double[]> m) {
                int n = B * T * H * 64;
                double[] kappa = gaussian(rng, n, 1.0);
                for (int u = 0; u < n / 64; u++) {
                    double s = 0;
                    for (int i = 0; i < 64; i++) {
                        s += kappa[u * 64 + i] * kappa[u * 64 + i];
                    }
                    s = Math.sqrt(s);
                    for (int i = 0; i < 64; i++) {
                        kappa[u * 64 + i] /= s;
                    }
                }
                double[] alpha = uniform(rng, n, 0.05, 0.95);
                m.put("r", gaussian(rng, n, 0.5));
                m.put("wRaw", gaussian(rng, n, 2.0));
                m.put("k", gaussian(rng, n, 0.5));
                m.put("v", gaussian(rng, n, 0.5));
                double[] a = new double[n];
                double[] b = new double[n];
                for (int i = 0; i < n; i++) {
                    a[i] = -kappa[i];
                    b[i] = kappa[i] * alpha[i];
                }
                m.put("a", a);
                m.put("b", b);
            }

            List<Tensor> forward(Dev d, Map<String, Tensor> t, Map<String, Tensor> saved) {
                long n = (long) B * T * H * 64;
                Tensor out = bf16 ? d.poisonedBf16OnGpu(n) : d.poisoned(n);
                Tensor s = d.poisoned(d.backend.wkv7SavedElements(B, T, H, bf16 ? DType.BF16 : DType.F32));
                saved.put("saved", s);
                d.backend.wkv7Forward(t.get("r"), t.get("wRaw"), t.get("k"), t.get("v"), t.get("a"), t.get("b"), out, s,
                        B, T, H);
                return List.of(out);
            }

            void backward(Dev d, Map<String, Tensor> t, Map<String, Tensor> saved, List<Tensor> dOuts,
                          Map<String, Tensor> g) {
                if (overwrite) {
                    long n = (long) B * T * H * 64;
                    boolean bf16Grads = grads == WKV7_BF16_GRADS;
                    Tensor dw = bf16Grads ? d.poisonedBf16OnGpu(n) : d.poisoned(n);
                    Tensor da = d.poisoned(n);
                    Tensor db = d.poisoned(n);
                    Tensor dr = g.get("r");
                    Tensor drSum = dr;
                    double[] share = null;
                    if (grads != 0) {
                        share = toFloat(gaussian(new SplittableRandom(seed ^ 0x3C6EF372L), (int) n, 0.5));
                        dr = d.tensor(share);
                        drSum = bf16Grads ? d.poisonedBf16OnGpu(n) : d.poisoned(n);
                    }
                    d.backend.wkv7BackwardOverwritingWab(dOuts.get(0), t.get("r"), t.get("wRaw"), t.get("k"), t.get("v"),
                            t.get("a"), t.get("b"), saved.get("saved"), dr, drSum, dw, g.get("k"), g.get("v"), da, db,
                            B, T, H);
                    if (share != null) {
                        // dr's change: drSum − share
                        for (int i = 0; i < share.length; i++) {
                            share[i] = -share[i];
                        }
                        d.accumulateWidened(drSum, g.get("r"));
                        d.backend.accumulate(d.tensor(share), g.get("r"));
                    }
                    d.accumulateWidened(dw, g.get("wRaw"));
                    d.backend.accumulate(da, g.get("a"));
                    d.backend.accumulate(db, g.get("b"));
                    return;
                }
                d.backend.wkv7Backward(dOuts.get(0), t.get("r"), t.get("wRaw"), t.get("k"), t.get("v"), t.get("a"),
                        t.get("b"), saved.get("saved"), g.get("r"), g.get("wRaw"), g.get("k"), g.get("v"), g.get("a"),
                        g.get("b"), B, T, H);
            }
        };
        if (grads == WKV7_BF16_GRADS) {
            c.withBf16DOuts();
        }
        return bf16 ? c.withBf16("r", "wRaw", "k", "v", "a", "b") : c;
    }

    /**
     * The two saved layouts of bf16 WKV7 inputs: the tensor-core kernels' (bf16 states and sa) has half the elements
     * of the serial kernels' (fp32), and the saved tensor of one path given to the other path's backward (the choice
     * changed in between) is rejected with the one-line error that names the path, never read as the other layout.
     * Without the tensor-core kernels (before sm_80): both sizes are the fp32 one.
     */
    static Check wkv7SavedLayouts() {
        return new Check() {
            public String name() {
                return "wkv7 saved layouts";
            }

            public List<Row> run(CudaBackend gpu, Backend cpu) {
                String op = "wkv7 saved";
                int B = 1, T = 32, H = 1;
                String size = "B=" + B + " T=" + T + " H=" + H;
                List<Row> out = new ArrayList<>();
                CudaBackend.Wkv7Choice before = gpu.wkv7Choice();
                CudaBackend.Wkv7Choice tc = CudaBackend.Wkv7Choice.AUTO, serial = CudaBackend.Wkv7Choice.AUTO.tc(false);
                List<Tensor> live = new ArrayList<>();
                try {
                    gpu.useWkv7(tc);
                    long tcSize = gpu.wkv7SavedElements(B, T, H, DType.BF16);
                    long f32Size = gpu.wkv7SavedElements(B, T, H, DType.F32);
                    gpu.useWkv7(serial);
                    long serialSize = gpu.wkv7SavedElements(B, T, H, DType.BF16);
                    long full = (long) B * H * (T / 16) * 64 * 64 + (long) B * T * H * 64;
                    boolean onTc = gpu.wkv7TcAvailable();
                    long want = onTc ? full / 2 : full;
                    out.add(new Row(op, size, "sizes (tensor-core " + tcSize + ", serial " + serialSize + ", fp32 "
                            + f32Size + ")", tcSize == want && serialSize == full && f32Size == full ? 0 : 1, 0, true,
                            null));
                    if (!onTc) {
                        return out;
                    }
                    long n = (long) B * T * H * 64;
                    Tensor[] in = new Tensor[7];
                    for (int i = 0; i < in.length; i++) {
                        in[i] = gpu.allocate(DType.BF16, Math.toIntExact(n));
                        live.add(in[i]);
                        gpu.poisonBytes(in[i]);
                    }
                    Tensor[] grads = new Tensor[7];
                    for (int i = 0; i < grads.length; i++) {
                        grads[i] = gpu.allocate(DType.F32, Math.toIntExact(n));
                        live.add(grads[i]);
                    }
                    for (boolean tcForward : new boolean[] {true, false}) {
                        gpu.useWkv7(tcForward ? tc : serial);
                        Tensor saved = gpu.allocate(DType.F32, Math.toIntExact(tcForward ? tcSize : serialSize));
                        live.add(saved);
                        gpu.wkv7Forward(in[0], in[1], in[2], in[3], in[4], in[5], in[6], saved, B, T, H);
                        gpu.useWkv7(tcForward ? serial : tc);
                        String message = null;
                        try {
                            gpu.wkv7Backward(grads[6], in[0], in[1], in[2], in[3], in[4], in[5], saved, grads[0],
                                    grads[1], grads[2], grads[3], grads[4], grads[5], B, T, H);
                        } catch (IllegalArgumentException e) {
                            message = e.getMessage();
                        }
                        String expected = "saved has the " + (tcForward ? "tensor-core" : "serial") + " kernels' size";
                        boolean ok = message != null && message.contains(expected);
                        out.add(new Row(op, size, (tcForward ? "tensor-core" : "serial") + " saved to the "
                                + (tcForward ? "serial" : "tensor-core") + " backward rejected", ok ? 0 : 1, 0, true,
                                ok ? null : message == null ? "not rejected" : "another error: " + message));
                    }
                    gpu.synchronize();
                } catch (RuntimeException e) {
                    out.add(new Row(op, size, "-", Double.NaN, 0, false, oneLine(e)));
                } finally {
                    gpu.useWkv7(before);
                    live.forEach(Tensor::close);
                }
                return out;
            }
        };
    }

    /**
     * Cross-entropy: the losses, and the logit gradient that the backward WRITES (into a poisoned tensor, or over
     * the logits themselves when {@code aliased}); ties in the row maximum are planted so the argmax rule counts.
     */
    static Check crossEntropy(int rows, int vocab, boolean aliased, long seed) {
        return crossEntropy(rows, vocab, aliased, false, seed);
    }

    /** {@code fused}: the GPU runs crossEntropyForwardBackward (one kernel), the CPU the two ops. */
    static Check crossEntropy(int rows, int vocab, boolean aliased, boolean fused, long seed) {
        String size = "rows=" + rows + " V=" + vocab + (aliased ? " dLogits=logits" : "") + (fused ? " fused" : "");
        return new Check() {
            public String name() {
                return "crossEntropy " + size;
            }

            public List<Row> run(CudaBackend gpu, Backend cpu) {
                SplittableRandom rng = new SplittableRandom(seed);
                double[] logits = toFloat(gaussian(rng, rows * vocab, 3.0));
                int[] targets = rng.ints(rows, 0, vocab).toArray();
                for (int r = 0; r < rows; r += 3) {
                    // a tie for the maximum at two positions: the lower index must take the L2Wrap term
                    double max = Double.NEGATIVE_INFINITY;
                    for (int v = 0; v < vocab; v++) {
                        max = Math.max(max, logits[r * vocab + v]);
                    }
                    logits[r * vocab + (vocab - 1)] = max;
                    logits[r * vocab + vocab / 2] = max;
                }
                double scale = 1.0 / rows;
                try {
                    double[][] ref = runCe(cpu, DType.F64, logits, targets, scale);
                    double[][] got = runCe(gpu, DType.F32, logits, targets, scale);
                    return List.of(compare("crossEntropy", size, "losses", got[0], ref[0], FP32_TOLERANCE),
                            compare("crossEntropy", size, "dLogits", got[1], ref[1], FP32_TOLERANCE));
                } catch (RuntimeException e) {
                    return List.of(new Row("crossEntropy", size, "-", Double.NaN, FP32_TOLERANCE, false, oneLine(e)));
                }
            }

            private double[][] runCe(Backend b, DType dt, double[] logits, int[] targets, double scale) {
                try (Dev d = new Dev(b, dt)) {
                    Tensor x = d.tensor(logits);
                    Tensor t = d.ids(targets);
                    Tensor losses = d.poisoned(rows);
                    Tensor dx = aliased ? x : d.poisoned((long) rows * vocab);
                    if (fused) {
                        b.crossEntropyForwardBackward(x, t, losses, dx, rows, vocab, scale);
                    } else {
                        b.crossEntropyForward(x, t, losses, rows, vocab);
                        b.crossEntropyBackward(x, t, dx, rows, vocab, scale);
                    }
                    return new double[][] {d.read(losses), d.read(dx)};
                }
            }
        };
    }

    /**
     * The one-read cross-entropy kernels ({@code cross_entropy_rows_*}, {@link CudaBackend.CeRows}) and the dispatch
     * around them. {@code all}: every compiled variant at V = 65536 in every mode, then the default at the other
     * shapes; otherwise only the default's cases. Rows past the SM count make blocks loop over rows (the next row's
     * loads overlap the last one's stores).
     */
    public static List<Check> crossEntropyRowsChecks(boolean all) {
        List<Check> c = new ArrayList<>();
        long s = 7001;
        if (all) {
            for (CudaBackend.CeRows v : CudaBackend.CeRows.ALL) {
                if (v.packed()) {
                    // bf16 logits only: 600 rows (2 waves of two blocks per SM and a partial third), a row ending
                    // inside a stash chunk, 37 rows shorter than the registers' part (fewer rows than blocks)
                    c.add(crossEntropyRows(v, 600, 65536, CeMode.BF16_LOGITS, s++));
                    c.add(crossEntropyRows(v, 133, 65532, CeMode.BF16_LOGITS, s++));
                    c.add(crossEntropyRows(v, 201, 50000, CeMode.BF16_LOGITS, s++));
                    c.add(crossEntropyRows(v, 37, 1000, CeMode.BF16_LOGITS, s++));
                    c.add(crossEntropyBadTarget(v, 300, 65536, true, true, s++));
                    continue;
                }
                c.add(crossEntropyRows(v, 200, 65536, CeMode.F32, s++));
                c.add(crossEntropyRows(v, 133, 65532, CeMode.ALIASED, s++));
                c.add(crossEntropyRows(v, 200, 65536, CeMode.BF16, s++));
                c.add(crossEntropyRows(v, 201, 50000, CeMode.BF16, s++));
                c.add(crossEntropyRows(v, 200, 65536, CeMode.BF16_LOGITS, s++));
            }
        }
        CudaBackend.CeRows d = CudaBackend.CeRows.DEFAULT;
        CudaBackend.CeRows bl = CudaBackend.CeRows.DEFAULT_BF16_LOGITS;
        c.add(crossEntropyRows(d, 300, 65536, CeMode.ALIASED, s++));
        c.add(crossEntropyRows(d, 300, 65536, CeMode.BACKWARD, s++));
        c.add(crossEntropyRows(d, 2048, 65536, CeMode.BF16, s++));
        c.add(crossEntropyRows(d, 139, 4096, CeMode.F32, s++));
        c.add(crossEntropyRows(d, 37, 1000, CeMode.BF16, s++));
        // not a multiple of 4, over the capacity: the two-pass kernel
        c.add(crossEntropyRows(d, 150, 65537, CeMode.F32, s++));
        c.add(crossEntropyRows(d, 150, 65540, CeMode.BF16, s++));
        c.add(crossEntropyRows(d, 37, 999, CeMode.ALIASED, s++));
        // bf16 logits, bf16 dLogits over them (their default kernel): one-read, then the two-pass kernel
        c.add(crossEntropyRows(bl, 300, 65536, CeMode.BF16_LOGITS, s++));
        c.add(crossEntropyRows(bl, 2048, 65536, CeMode.BF16_LOGITS, s++));
        c.add(crossEntropyRows(bl, 37, 1000, CeMode.BF16_LOGITS, s++));
        c.add(crossEntropyRows(bl, 150, 65540, CeMode.BF16_LOGITS, s++));
        c.add(crossEntropyRows(bl, 37, 999, CeMode.BF16_LOGITS, s++));
        c.add(crossEntropyBadTarget(d, 300, 65536, false, false, s++));
        c.add(crossEntropyBadTarget(d, 300, 65536, true, false, s++));
        c.add(crossEntropyBadTarget(d, 150, 65537, false, false, s++));
        c.add(crossEntropyBadTarget(bl, 300, 65536, true, true, s++));
        return c;
    }

    /**
     * F32: fused into a poisoned fp32 dLogits; ALIASED: over the logits; BF16: fused into bf16; BACKWARD: no losses;
     * BF16_LOGITS: bf16 logits (the CPU reference gets the same rounded values), bf16 dLogits written over them.
     */
    enum CeMode { F32, ALIASED, BF16, BACKWARD, BF16_LOGITS }

    /** Random logits with ties for the maximum planted in two rows of three, at random and at structured positions. */
    private static double[] ceLogits(SplittableRandom rng, int rows, int vocab) {
        double[] logits = toFloat(gaussian(rng, rows * vocab, 3.0));
        for (int r = 0; r < rows; r++) {
            if (r % 3 == 2) {
                continue;
            }
            double max = Double.NEGATIVE_INFINITY;
            for (int v = 0; v < vocab; v++) {
                max = Math.max(max, logits[r * vocab + v]);
            }
            int p = rng.nextInt(vocab);
            int[] at = r % 3 == 0
                    // same float4, neighbour thread, same thread's next chunk (1024/512/256 threads), the far end
                    ? new int[] {p, p ^ 1, p + 4, p + 4096, p + 2048, p + 1024, vocab - 1}
                    // a lower index in a higher thread: thread 3's second chunk and thread 10's first (1024 threads)
                    : new int[] {rng.nextInt(vocab), rng.nextInt(vocab), 4 * 1024 + 12, 40, 4 * 512 + 12, 4 * 256 + 12};
            for (int v : at) {
                if (v >= 0 && v < vocab) {
                    logits[r * vocab + v] = max;
                }
            }
        }
        return logits;
    }

    static Check crossEntropyRows(CudaBackend.CeRows variant, int rows, int vocab, CeMode mode, long seed) {
        String size = "rows=" + rows + " V=" + vocab + " " + mode.name().toLowerCase() + " " + variant.label();
        return new Check() {
            public String name() {
                return "crossEntropy rows " + size;
            }

            public List<Row> run(CudaBackend gpu, Backend cpu) {
                CudaBackend.CeChoice before = gpu.crossEntropyChoice();
                String label = size + (gpu.crossEntropyAvailable(variant) ? "" : " (unavailable: two-pass)");
                try (Dev g = new Dev(gpu, DType.F32); Dev c = new Dev(cpu, DType.F64)) {
                    gpu.useCrossEntropy(variant);
                    SplittableRandom rng = new SplittableRandom(seed);
                    double[] logits = ceLogits(rng, rows, vocab);
                    if (mode == CeMode.BF16_LOGITS) {
                        for (int i = 0; i < logits.length; i++) {
                            logits[i] = dev.gosling.trainer.model.Bf16.round((float) logits[i]);
                        }
                    }
                    int[] targets = rng.ints(rows, 0, vocab).toArray();
                    double scale = 1.0 / rows;
                    Tensor[] ref = cpuCrossEntropy(c, c.tensor(logits), c.ids(targets), rows, vocab, scale);
                    double[] refLoss = c.read(ref[0]);
                    double[] refD = c.read(ref[1]);
                    Tensor x;
                    if (mode == CeMode.BF16_LOGITS) {
                        x = g.keep(gpu.allocate(DType.BF16, rows, vocab));
                        float[] f = new float[logits.length];
                        for (int i = 0; i < f.length; i++) {
                            f[i] = (float) logits[i];
                        }
                        gpu.uploadBf16(f, x);
                    } else {
                        x = g.tensor(logits);
                    }
                    Tensor t = g.ids(targets);
                    Tensor loss = g.poisoned(rows);
                    List<Row> out = new ArrayList<>();
                    long launches = gpu.crossEntropyRowsLaunches();
                    if (mode == CeMode.BF16 || mode == CeMode.BF16_LOGITS) {
                        Tensor d = mode == CeMode.BF16_LOGITS ? x : g.keep(gpu.allocate(DType.BF16, rows, vocab));
                        if (mode == CeMode.BF16) {
                            gpu.poisonBytes(d);
                        }
                        gpu.crossEntropyForwardBackward(x, t, loss, d, rows, vocab, scale);
                        float[] got = new float[rows * vocab];
                        gpu.downloadBf16(d, got);
                        double[] gd = new double[got.length];
                        double[] refRounded = new double[got.length];
                        for (int i = 0; i < got.length; i++) {
                            gd[i] = got[i];
                            refRounded[i] = dev.gosling.trainer.model.Bf16.round((float) refD[i]);
                        }
                        out.add(compare("crossEntropy", label, "losses", g.read(loss), refLoss, FP32_TOLERANCE));
                        out.add(compare("crossEntropy", label, "dLogits", gd, refD, BF16_TOLERANCE));
                        // the same gradient rounded: a misplaced L2Wrap term (~1e-3 of the norm) shows here
                        out.add(compare("crossEntropy", label, "dLogits vs bf16(cpu)", gd, refRounded, 1e-4));
                    } else {
                        Tensor d = mode == CeMode.ALIASED ? x : g.poisoned((long) rows * vocab);
                        if (mode == CeMode.BACKWARD) {
                            gpu.crossEntropyBackward(x, t, d, rows, vocab, scale);
                        } else {
                            gpu.crossEntropyForwardBackward(x, t, loss, d, rows, vocab, scale);
                            out.add(compare("crossEntropy", label, "losses", g.read(loss), refLoss, FP32_TOLERANCE));
                        }
                        out.add(compare("crossEntropy", label, "dLogits", g.read(d), refD, FP32_TOLERANCE));
                    }
                    boolean expected = gpu.crossEntropyAvailable(variant) && vocab % 4 == 0 && vocab <= variant.capacity();
                    boolean used = gpu.crossEntropyRowsLaunches() > launches;
                    out.add(new Row("crossEntropy", label, "kernel " + (expected ? "one-read" : "two-pass"),
                            used == expected ? 0 : 1, 0, true, used == expected ? null
                            : "ran the " + (used ? "one-read" : "two-pass") + " kernel"));
                    // deterministic: a second run gives the same bits
                    if (mode == CeMode.F32) {
                        Tensor d2 = g.poisoned((long) rows * vocab);
                        Tensor loss2 = g.poisoned(rows);
                        Tensor d1 = g.poisoned((long) rows * vocab);
                        gpu.crossEntropyForwardBackward(x, t, loss, d1, rows, vocab, scale);
                        gpu.crossEntropyForwardBackward(x, t, loss2, d2, rows, vocab, scale);
                        boolean same = Arrays.equals(g.read(d1), g.read(d2)) && Arrays.equals(g.read(loss), g.read(loss2));
                        out.add(new Row("crossEntropy", label, "repeat bit-identical", same ? 0 : 1, 0, true, null));
                    }
                    return out;
                } catch (RuntimeException e) {
                    return List.of(new Row("crossEntropy", label, "-", Double.NaN, FP32_TOLERANCE, false, oneLine(e)));
                } finally {
                    gpu.useCrossEntropy(before);
                }
            }
        };
    }

    /**
     * A target outside [0, V) in one row (past the first wave of blocks): the error names it, its loss and gradient
     * row are NaN, every other row is as the CPU's. bf16: bf16 dLogits; bf16Logits: bf16 logits too (the CPU gets
     * the same rounded values), dLogits over them.
     */
    static Check crossEntropyBadTarget(CudaBackend.CeRows variant, int rows, int vocab, boolean bf16,
                                       boolean bf16Logits, long seed) {
        String size = "rows=" + rows + " V=" + vocab + (bf16Logits ? " bf16 logits" : bf16 ? " bf16" : " f32") + " "
                + variant.label();
        return new Check() {
            public String name() {
                return "crossEntropy bad target " + size;
            }

            public List<Row> run(CudaBackend gpu, Backend cpu) {
                CudaBackend.CeChoice before = gpu.crossEntropyChoice();
                // past the first wave of blocks (132 SMs; 264 blocks of a packed kernel) where there are rows enough
                int bad = Math.min(bf16Logits ? 281 : 157, rows - 1);
                try (Dev g = new Dev(gpu, DType.F32); Dev c = new Dev(cpu, DType.F64)) {
                    gpu.useCrossEntropy(variant);
                    SplittableRandom rng = new SplittableRandom(seed);
                    double[] logits = ceLogits(rng, rows, vocab);
                    if (bf16Logits) {
                        for (int i = 0; i < logits.length; i++) {
                            logits[i] = dev.gosling.trainer.model.Bf16.round((float) logits[i]);
                        }
                    }
                    int[] targets = rng.ints(rows, 0, vocab).toArray();
                    double scale = 1.0 / rows;
                    Tensor[] ref = cpuCrossEntropy(c, c.tensor(logits), c.ids(targets), rows, vocab, scale);
                    double[] refLoss = c.read(ref[0]);
                    double[] refD = c.read(ref[1]);
                    targets[bad] = vocab;
                    Tensor x;
                    if (bf16Logits) {
                        x = g.keep(gpu.allocate(DType.BF16, rows, vocab));
                        float[] f = new float[logits.length];
                        for (int i = 0; i < f.length; i++) {
                            f[i] = (float) logits[i];
                        }
                        gpu.uploadBf16(f, x);
                    } else {
                        x = g.tensor(logits);
                    }
                    Tensor t = g.ids(targets);
                    Tensor loss = g.poisoned(rows);
                    Tensor d = bf16Logits ? x
                            : bf16 ? g.keep(gpu.allocate(DType.BF16, rows, vocab)) : g.poisoned((long) rows * vocab);
                    if (bf16 && !bf16Logits) {
                        gpu.poisonBytes(d);
                    }
                    gpu.crossEntropyForwardBackward(x, t, loss, d, rows, vocab, scale);
                    String what = "target token id " + vocab + " at position " + bad;
                    String message;
                    try {
                        g.read(loss);
                        message = null;
                    } catch (GoslingException e) {
                        message = e.getMessage();
                    }
                    double[] gotLoss = g.read(loss);
                    double[] gotD = new double[rows * vocab];
                    if (bf16) {
                        float[] f = new float[rows * vocab];
                        gpu.downloadBf16(d, f);
                        for (int i = 0; i < f.length; i++) {
                            gotD[i] = f[i];
                        }
                    } else {
                        gotD = g.read(d);
                    }
                    boolean nanRow = Double.isNaN(gotLoss[bad]);
                    for (int v = 0; v < vocab; v++) {
                        nanRow &= Double.isNaN(gotD[bad * vocab + v]);
                    }
                    // the other rows against the CPU's
                    double[] okLoss = new double[rows - 1];
                    double[] okRefLoss = new double[rows - 1];
                    double[] okD = new double[(rows - 1) * vocab];
                    double[] okRefD = new double[(rows - 1) * vocab];
                    for (int r = 0, o = 0; r < rows; r++) {
                        if (r == bad) {
                            continue;
                        }
                        okLoss[o] = gotLoss[r];
                        okRefLoss[o] = refLoss[r];
                        System.arraycopy(gotD, r * vocab, okD, o * vocab, vocab);
                        System.arraycopy(refD, r * vocab, okRefD, o * vocab, vocab);
                        o++;
                    }
                    boolean msgOk = message != null && message.startsWith(what) && !message.contains("\n");
                    List<Row> out = new ArrayList<>();
                    out.add(new Row("crossEntropy", size, "bad target error", msgOk ? 0 : 1, 0, true,
                            msgOk ? null : "expected \"" + what + "…\", got " + message));
                    out.add(new Row("crossEntropy", size, "bad row NaN", nanRow ? 0 : 1, 0, true,
                            nanRow ? null : "the bad target's loss or gradient row is not all NaN"));
                    out.add(compare("crossEntropy", size, "other losses", okLoss, okRefLoss, FP32_TOLERANCE));
                    out.add(compare("crossEntropy", size, "other dLogits", okD, okRefD,
                            bf16 ? BF16_TOLERANCE : FP32_TOLERANCE));
                    return out;
                } catch (RuntimeException e) {
                    return List.of(new Row("crossEntropy", size, "-", Double.NaN, 0, false, oneLine(e)));
                } finally {
                    gpu.useCrossEntropy(before);
                }
            }
        };
    }

    /**
     * The optimizer ops: sumOfSquares against the CPU's exact double sum, and three AdamW steps (two segments, one
     * with weight decay, the second and third with clipping) that must match the CPU backend bit for bit: the kernel
     * in use (params, m, v), then each tiled kernel and the per-element search kernel (their differing bits summed).
     */
    static Check optimizer(int n, long seed) {
        return optimizer(n, null, false, seed);
    }

    static Check optimizer(int n, long[] lengths, boolean misaligned, long seed) {
        return optimizer(n, lengths, misaligned, -1, false, seed);
    }

    /**
     * {@code lengths}: segments of these lengths in turn (lr and decay alternating), the last one to n; null: two
     * segments, n/3 and the rest. {@code misaligned}: params and grads are views one float into larger tensors.
     * {@code copyFrom} ≥ 0: the GPU's steps also write the bf16 copy of params [copyFrom, n) (NaN-poisoned first; a view
     * one bf16 into a larger tensor when {@code copyMisaligned}), which must hold, bit for bit, the CPU's params rounded
     * to bf16 (Bf16.fromFloat) and what cast_f32_bf16 makes of the GPU's params.
     */
    static Check optimizer(int n, long[] lengths, boolean misaligned, long copyFrom, boolean copyMisaligned, long seed) {
        long[] ends;
        if (lengths == null) {
            ends = new long[] {n / 3, n};
        } else {
            List<Long> e = new ArrayList<>();
            long at = 0;
            for (int i = 0; at < n; i++) {
                at = Math.min(n, at + lengths[i % lengths.length]);
                e.add(at);
            }
            ends = e.stream().mapToLong(Long::longValue).toArray();
        }
        float[] lr = new float[ends.length];
        float[] decay = new float[ends.length];
        for (int i = 0; i < ends.length; i++) {
            lr[i] = i % 2 == 0 ? 2e-3f : 1e-3f;
            decay[i] = i % 3 == 1 ? 0.1f : 0f;
        }
        String size = "n=" + n + (lengths == null ? "" : " " + ends.length + " segments") + (misaligned ? " misaligned" : "")
                + (copyFrom < 0 ? "" : " bf16 copy from " + copyFrom + (copyMisaligned ? " misaligned" : ""));
        return new Check() {
            public String name() {
                return "adamw " + size;
            }

            public List<Row> run(CudaBackend gpu, Backend cpu) {
                List<Row> rows = new ArrayList<>();
                try {
                    SplittableRandom rng = new SplittableRandom(seed);
                    float[] params = floats(gaussian(rng, n, 0.1));
                    float[][] grads = {floats(gaussian(rng, n, 1e-3)), floats(gaussian(rng, n, 1e-2)),
                            floats(gaussian(rng, n, 1.0))};
                    float[][] ref = steps(cpu, params, grads, ends, lr, decay);
                    // the kernel in use, then every tiled kernel and the per-element search kernel (bits differing
                    // summed over params, m and v)
                    int inUse = gpu.adamwChoice();
                    String[] names = {"params", "m", "v"};
                    for (int kernel : new int[] {inUse, 1, 2, 4, 0}) {
                        gpu.useAdamW(kernel);
                        float[][] got;
                        try {
                            got = steps(gpu, params, grads, ends, lr, decay);
                        } finally {
                            gpu.useAdamW(inUse);
                        }
                        int total = 0;
                        for (int k = 0; k < 3; k++) {
                            int differ = 0;
                            for (int i = 0; i < n; i++) {
                                if (Float.floatToIntBits(ref[k][i]) != Float.floatToIntBits(got[k][i])) {
                                    differ++;
                                }
                            }
                            total += differ;
                            if (kernel == inUse) {
                                rows.add(new Row("adamw", size, names[k] + " (bits differing)", differ, 0, true, null));
                            }
                        }
                        String label = kernel == inUse ? "" : (kernel == 0 ? "old kernel, " : "tiles " + 1024 * kernel + ", ");
                        if (kernel != inUse) {
                            rows.add(new Row("adamw", size, label + "params, m, v (bits differing)", total, 0, true, null));
                        }
                        if (copyFrom >= 0) {
                            // got[3]: the copy; got[4]: cast_f32_bf16 of the GPU's params from copyFrom on
                            int fromCpu = 0;
                            int fromCast = 0;
                            for (int j = 0; j < n - copyFrom; j++) {
                                int bits = Float.floatToRawIntBits(got[3][j]);
                                if (bits != Float.floatToRawIntBits(dev.gosling.trainer.model.Bf16.round(ref[0][(int) copyFrom + j]))) {
                                    fromCpu++;
                                }
                                if (bits != Float.floatToRawIntBits(got[4][j])) {
                                    fromCast++;
                                }
                            }
                            rows.add(new Row("adamw", size, label + "copy (bits differing from the CPU's params in bf16)", fromCpu, 0,
                                    true, null));
                            rows.add(new Row("adamw", size, label + "copy (bits differing from cast_f32_bf16)", fromCast, 0, true,
                                    null));
                        }
                    }
                    double want;
                    double have;
                    try (Dev c = new Dev(cpu, DType.F32); Dev g = new Dev(gpu, DType.F32)) {
                        double[] x = toFloat(gaussian(rng, n, 1.0));
                        want = cpu.sumOfSquares(c.tensor(x));
                        have = gpu.sumOfSquares(g.tensor(x));
                    }
                    rows.add(new Row("sumOfSquares", size, "sum", Math.abs(have - want) / want, 1e-12,
                            Double.isFinite(have), null));
                } catch (RuntimeException e) {
                    rows.add(new Row("adamw", size, "-", Double.NaN, 0, false, oneLine(e)));
                }
                return rows;
            }

            private float[][] steps(Backend b, float[] params, float[][] grads, long[] ends, float[] lr,
                                    float[] decay) {
                try (Dev d = new Dev(b, DType.F32)) {
                    Tensor p = place(d, toDouble(params));
                    Tensor m = d.tensor(new double[n]);
                    Tensor v = d.tensor(new double[n]);
                    // the GPU's steps write the copy (poisoned first) when the check has one
                    int copied = (int) (n - copyFrom);
                    Tensor copy = null;
                    if (copyFrom >= 0 && b instanceof CudaBackend) {
                        copy = copyMisaligned ? d.keep(b.view(d.poisonedBf16OnGpu(copied + 1), 1, copied))
                                : d.poisonedBf16OnGpu(copied);
                    }
                    for (int step = 1; step <= grads.length; step++) {
                        Tensor g = place(d, toDouble(grads[step - 1]));
                        float clip = step == 1 ? 1f : 0.37f;
                        float bc1 = (float) (1 - Math.pow(0.9, step));
                        float bc2 = (float) (1 - Math.pow(0.99, step));
                        if (copy == null) {
                            b.adamwStep(p, g, m, v, ends, lr, decay, 0.9f, 0.99f, 1e-18f, clip, bc1, bc2);
                        } else {
                            b.adamwStep(p, g, m, v, ends, lr, decay, 0.9f, 0.99f, 1e-18f, clip, bc1, bc2, copy, copyFrom);
                        }
                    }
                    float[][] out = new float[copy == null ? 3 : 5][];
                    out[0] = new float[n];
                    out[1] = new float[n];
                    out[2] = new float[n];
                    b.download(p, out[0]);
                    b.download(m, out[1]);
                    b.download(v, out[2]);
                    if (copy != null) {
                        out[3] = new float[copied];
                        out[4] = new float[copied];
                        b.download(copy, out[3]);
                        Tensor cast = d.poisonedBf16OnGpu(copied);
                        ((CudaBackend) b).roundToBf16(d.keep(b.view(p, copyFrom, copied)), cast);
                        b.download(cast, out[4]);
                    }
                    return out;
                }
            }

            /** The values as a tensor, or as a view one float into a larger one. */
            private Tensor place(Dev d, double[] values) {
                if (!misaligned) {
                    return d.tensor(values);
                }
                double[] big = new double[values.length + 1];
                System.arraycopy(values, 0, big, 1, values.length);
                return d.keep(d.backend.view(d.tensor(big), 1, values.length));
            }
        };
    }

    /** An out-of-vocabulary token or target becomes the same one-line error as on the CPU, at the next download. */
    /**
     * zeroRanges on a NaN-free random tensor: ranges short and long (several pieces of {@link CudaBackend#ZERO_PIECE},
     * not a multiple of it), touching and empty, against the CPU backend; then the same ranges again (the device table
     * made on the first call is reused) on fresh values, and a second list.
     */
    static Check zeroRanges(long seed) {
        return new Check() {
            public String name() {
                return "zeroRanges";
            }

            public List<Row> run(CudaBackend gpu, Backend cpu) {
                int n = 3 * CudaBackend.ZERO_PIECE + 1000;
                long[][] lists = {
                    {0, 5, 5, 7, 100, 100, 128, 3 * CudaBackend.ZERO_PIECE + 17, n - 3, n},
                    {1, 2, 40_000, 40_001},
                };
                List<Row> rows = new ArrayList<>();
                SplittableRandom rng = new SplittableRandom(seed);
                try (Dev g = new Dev(gpu, DType.F32); Dev c = new Dev(cpu, DType.F64)) {
                    for (long[] ranges : new long[][] {lists[0], lists[1], lists[0]}) {
                        double[] values = toFloat(uniform(rng, n, 1, 2));
                        Tensor tg = g.tensor(values);
                        Tensor tc = c.tensor(values);
                        gpu.zeroRanges(tg, ranges);
                        cpu.zeroRanges(tc, ranges);
                        rows.add(compare("zeroRanges", ranges.length / 2 + " ranges of n=" + n, "t", g.read(tg), c.read(tc),
                                0));
                    }
                } catch (RuntimeException e) {
                    rows.add(new Row("zeroRanges", "-", "-", Double.NaN, 0, false, oneLine(e)));
                }
                return rows;
            }
        };
    }

    static Check badIds() {
        return new Check() {
            public String name() {
                return "bad ids";
            }

            public List<Row> run(CudaBackend gpu, Backend cpu) {
                List<Row> rows = new ArrayList<>();
                rows.add(expectError(gpu, true));
                rows.add(expectError(gpu, false));
                return rows;
            }

            private Row expectError(CudaBackend gpu, boolean token) {
                String what = token ? "token id 9 at position 2" : "target token id 9 at position 2";
                try (Dev d = new Dev(gpu, DType.F32)) {
                    int[] ids = {1, 0, 9, 3};
                    Tensor t = d.ids(ids);
                    Tensor w = d.tensor(new double[8 * 4]);
                    Tensor out = d.poisoned(4 * 4);
                    if (token) {
                        gpu.embeddingForward(t, w, out, 4, 8, 4);
                    } else {
                        gpu.crossEntropyForward(d.tensor(new double[4 * 8]), t, d.poisoned(4), 4, 8);
                    }
                    try {
                        d.read(out);
                        return new Row("badIds", token ? "embedding" : "crossEntropy", "error", 1, 0, true,
                                "no error for an id outside the vocabulary");
                    } catch (GoslingException e) {
                        boolean ok = e.getMessage().startsWith(what) && !e.getMessage().contains("\n");
                        // the error word is cleared: the backend works on afterwards
                        d.read(out);
                        return new Row("badIds", token ? "embedding" : "crossEntropy", "error", ok ? 0 : 1, 0, true,
                                ok ? null : "unexpected message: " + e.getMessage());
                    }
                } catch (RuntimeException e) {
                    return new Row("badIds", token ? "embedding" : "crossEntropy", "-", Double.NaN, 0, false,
                            oneLine(e));
                }
            }
        };
    }

    static float[] floats(double[] a) {
        float[] f = new float[a.length];
        for (int i = 0; i < a.length; i++) {
            f[i] = (float) a[i];
        }
        return f;
    }

    static double[] toDouble(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            d[i] = a[i];
        }
        return d;
    }
}
