package dev.gosling.trainer.train;

import dev.gosling.trainer.backend.Backend;
import dev.gosling.trainer.backend.DType;
import dev.gosling.trainer.backend.cpu.CpuBackend;
import dev.gosling.trainer.backend.cuda.CudaBackend;
import dev.gosling.trainer.model.Initializer;
import dev.gosling.trainer.model.ModelConfig;
import dev.gosling.trainer.model.ParamSpec;
import dev.gosling.trainer.model.ParameterLayout;
import dev.gosling.trainer.model.Rwkv7Model;
import dev.gosling.trainer.optim.DeviceAdamW;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A whole training step of a small RWKV-7 model on the GPU against the CPU backend (fp32 both): the loss within
 * 1e-2 relative, every parameter tensor's gradient with cosine similarity &gt; 0.999, the same step with --grad_cp 1
 * and with --keep 1 … 4 equal to it on the device (their gradient buffers starting as NaN), then {@link #CURVE_STEPS} steps of AdamW on a learnable token stream whose loss curves must
 * stay together. Run by {@code GpuCheck} once with fp32 GEMMs and once with bf16 GEMMs (the training default).
 */
public final class TrainStepCheck {
    static final int CURVE_STEPS = 200;
    private static final double LOSS_TOLERANCE = 1e-2;
    private static final double MIN_COSINE = 0.999;
    /** --grad_cp 1 against --grad_cp 0 on the same device: the same kernels on the same inputs. */
    private static final double GRAD_CP_TOLERANCE = 1e-6;

    private TrainStepCheck() {
    }

    /**
     * Runs the check once per GEMM precision (the CPU reference is computed once); prints the tables and returns
     * whether every pass passed.
     */
    public static boolean run(PrintStream out, CudaBackend gpu, CpuBackend cpu, CudaBackend.GemmPrecision... precisions) {
        Reference ref = reference(cpu, ModelConfig.of(2, 128, 4096, 64), 2, CURVE_STEPS);
        CudaBackend.GemmPrecision before = gpu.gemmPrecision();
        boolean ok = true;
        try {
            for (CudaBackend.GemmPrecision p : precisions) {
                gpu.setGemmPrecision(p);
                ok &= compare(out, gpu, p + " GEMMs", ref);
            }
        } finally {
            gpu.setGemmPrecision(before);
        }
        return ok;
    }

    /** The check of {@code device} against {@code cpu} on any model size and number of curve steps. */
    public static boolean run(PrintStream out, Backend device, CpuBackend cpu, String label, ModelConfig config, int batch, int curveSteps) {
        return compare(out, device, label, reference(cpu, config, batch, curveSteps));
    }

    /** The CPU side: the weights, one batch, its loss and gradients, and the loss curve. */
    private record Reference(ModelConfig config, int batch, float[] master, int[] inputs, int[] targets, double loss, float[] grads,
                             double[] curve) {
    }

    private static Reference reference(CpuBackend cpu, ModelConfig config, int batch, int curveSteps) {
        ParameterLayout layout = new ParameterLayout(config);
        float[] master = layout.newBuffer();
        new Initializer(layout, 3).initialize(master);
        // Init zeroes att.output and ffn.value, which would leave most gradients zero: perturb every weight.
        SplittableRandom rng = new SplittableRandom(4);
        for (int i = 0; i < master.length; i++) {
            master[i] += (float) (0.02 * rng.nextGaussian());
        }
        int n = batch * config.ctxLen();
        int[] inputs = new int[n];
        int[] targets = new int[n];
        tokens(new SplittableRandom(5), inputs, targets, config.ctxLen(), config.vocabSize());
        try (Rwkv7Model c = new Rwkv7Model(config, cpu, DType.F32, batch)) {
            c.setParameters(master);
            float[] grads = layout.newBuffer();
            double loss = c.forwardBackward(inputs, targets, batch, grads);
            double[] curve = curve(c, cpu, layout, master, config, batch, curveSteps);
            return new Reference(config, batch, master, inputs, targets, loss, grads, curve);
        }
    }

    private static boolean compare(PrintStream out, Backend device, String label, Reference ref) {
        ModelConfig config = ref.config();
        int batch = ref.batch();
        ParameterLayout layout = new ParameterLayout(config);
        float[] master = ref.master();
        int curveSteps = ref.curve().length;
        boolean ok = true;
        out.printf("%ntraining step, L%d-D%d ctx %d vocab %d bsz %d, %s (%s) vs CPU fp32:%n", config.nLayer(), config.nEmbd(),
                config.ctxLen(), config.vocabSize(), batch, device.name(), label);
        try (Rwkv7Model g = new Rwkv7Model(config, device, DType.F32, batch)) {
            g.setParameters(master);
            float[] gg = layout.newBuffer();
            float[] cg = ref.grads();
            double gl = g.forwardBackward(ref.inputs(), ref.targets(), batch, gg);
            double cl = ref.loss();
            double lossError = Math.abs(gl - cl) / Math.abs(cl);
            boolean lossOk = lossError <= LOSS_TOLERANCE && Double.isFinite(gl);
            out.printf(Locale.ROOT, "  loss: device %.6f cpu %.6f, relative difference %.2e (tolerance %.0e) %s%n", gl, cl, lossError,
                    LOSS_TOLERANCE, lossOk ? "ok" : "FAIL");
            ok &= lossOk;
            double worst = 1;
            String worstName = "";
            int tensors = 0;
            List<Map.Entry<String, Double>> cosines = new ArrayList<>();
            for (ParamSpec spec : layout.params()) {
                double dot = 0;
                double ng = 0;
                double nc = 0;
                for (long i = spec.offset(); i < spec.end(); i++) {
                    dot += (double) gg[(int) i] * cg[(int) i];
                    ng += (double) gg[(int) i] * gg[(int) i];
                    nc += (double) cg[(int) i] * cg[(int) i];
                }
                if (nc == 0 && ng == 0) {
                    continue; // layer 0's v0/v1/v2 have no gradient on either backend
                }
                tensors++;
                double cos = dot / Math.sqrt(ng * nc);
                cosines.add(Map.entry(spec.name(), cos));
                if (!(cos >= worst)) {
                    worst = cos;
                    worstName = spec.name();
                }
            }
            boolean cosOk = worst > MIN_COSINE;
            out.printf(Locale.ROOT, "  gradients: lowest cosine similarity over %d tensors %.6f (%s), must be > %.3f %s%n", tensors, worst,
                    worstName, MIN_COSINE, cosOk ? "ok" : "FAIL");
            ok &= cosOk;
            cosines.sort(Map.Entry.comparingByValue());
            StringBuilder lowest = new StringBuilder("  the lowest five:");
            for (int i = 0; i < Math.min(5, cosines.size()); i++) {
                lowest.append(String.format(Locale.ROOT, " %s %.6f", cosines.get(i).getKey(), cosines.get(i).getValue()));
            }
            // the token-shift mixes (x_r … x_g, the ffn's x_k): their gradients sum dL/d(mix output) over the rows
            cosines.stream().filter(e -> e.getKey().matches(".*\\.x_[a-z]+")).findFirst().ifPresent(e -> lowest.append(
                    String.format(Locale.ROOT, "; lowest token-shift mix %s %.6f", e.getKey(), e.getValue())));
            out.println(lowest);

            // --grad_cp 1 on the same device: the same loss and gradients (each block recomputed from its input); this
            // model's and the keep levels' gradient buffers start as NaN: the step must write every gradient
            try (Rwkv7Model cp = new Rwkv7Model(config, device, DType.F32, batch, true)) {
                cp.setParameters(master);
                poisonGradients(device, cp);
                float[] cpg = layout.newBuffer();
                double cpl = cp.forwardBackward(ref.inputs(), ref.targets(), batch, cpg);
                double diff = 0;
                double norm = 0;
                for (int i = 0; i < cpg.length; i++) {
                    diff += ((double) cpg[i] - gg[i]) * ((double) cpg[i] - gg[i]);
                    norm += (double) gg[i] * gg[i];
                }
                double rel = Math.sqrt(diff / norm);
                boolean cpOk = rel <= GRAD_CP_TOLERANCE && Math.abs(cpl - gl) <= GRAD_CP_TOLERANCE * Math.abs(gl);
                out.printf(Locale.ROOT, "  grad_cp 1: loss %.6f, gradients ‖Δ‖/‖g‖ %.2e against grad_cp 0 (tolerance %.0e) %s%n",
                        cpl, rel, GRAD_CP_TOLERANCE, cpOk ? "ok" : "FAIL");
                ok &= cpOk;
            }

            // --keep 1 … 4 on the same device: the backward pass reads the kept activations instead of
            // recomputing them with the same kernels on the same inputs, so the gradients are the same to the bit
            for (int keep = 1; keep <= Rwkv7Model.MAX_KEEP; keep++) {
                try (Rwkv7Model kept = new Rwkv7Model(config, device, DType.F32, batch, false, false, keep)) {
                    kept.setParameters(master);
                    poisonGradients(device, kept);
                    float[] kg = layout.newBuffer();
                    double kl = kept.forwardBackward(ref.inputs(), ref.targets(), batch, kg);
                    int differ = 0;
                    double diff = 0;
                    double norm = 0;
                    for (int i = 0; i < kg.length; i++) {
                        if (Float.floatToRawIntBits(kg[i]) != Float.floatToRawIntBits(gg[i])) {
                            differ++;
                        }
                        diff += ((double) kg[i] - gg[i]) * ((double) kg[i] - gg[i]);
                        norm += (double) gg[i] * gg[i];
                    }
                    boolean keepOk = differ == 0 && kl == gl;
                    out.printf(Locale.ROOT, "  keep %d: loss %.6f, %d of %d gradients differ from keep 0's (‖Δ‖/‖g‖ %.2e; from"
                            + " a NaN gradient buffer), must be bit-identical %s%n", keep, kl, differ, kg.length, Math.sqrt(diff / norm), keepOk ? "ok" : "FAIL");
                    ok &= keepOk;
                }
            }

            // The loss curve: the same steps on both backends, AdamW on each device.
            double[] gpuCurve = curve(g, device, layout, master, config, batch, curveSteps);
            double[] cpuCurve = ref.curve();
            double maxDiff = 0;
            for (int s = 0; s < curveSteps; s++) {
                maxDiff = Math.max(maxDiff, Math.abs(gpuCurve[s] - cpuCurve[s]));
            }
            double allowed = 0.02 * cpuCurve[0];
            boolean curveOk = maxDiff <= allowed && Double.isFinite(gpuCurve[curveSteps - 1]);
            out.printf(Locale.ROOT, "  %d steps: loss %.4f -> %.4f (device) and %.4f -> %.4f (cpu); largest per-step difference %.4f (allowed %.4f) %s%n",
                    curveSteps, gpuCurve[0], gpuCurve[curveSteps - 1], cpuCurve[0], cpuCurve[curveSteps - 1], maxDiff, allowed,
                    curveOk ? "ok" : "FAIL");
            StringBuilder every20 = new StringBuilder("  along the curve (device/cpu):");
            for (int s = 0; s < curveSteps; s += Math.max(1, curveSteps / 10)) {
                every20.append(String.format(Locale.ROOT, " %.3f/%.3f", gpuCurve[s], cpuCurve[s]));
            }
            out.println(every20);
            ok &= curveOk;
            ok &= weightCopyChecks(out, device, g, ref);
        } catch (RuntimeException e) {
            out.println("  FAIL " + e);
            ok = false;
        }
        return ok;
    }

    /** Fills the model's gradient buffer with NaN: a gradient the step does not write stays NaN. */
    private static void poisonGradients(Backend device, Rwkv7Model model) {
        float[] nan = new float[Math.toIntExact(model.gradientElements())];
        java.util.Arrays.fill(nan, Float.NaN);
        device.upload(nan, model.gradients());
    }

    /**
     * The model's weight copy after the curve (its last AdamW step wrote the copy, under bf16 GEMMs): each pass below
     * must give the same loss and gradients, to the bit, as a fresh model given the same weights (which casts them),
     * unless it is meant to read a NaN copy. First the pass that reads the copy the curve's AdamW wrote; on a CUDA
     * backend with a copy, then: a NaN-poisoned copy that an AdamW step writes (every element the GEMMs read is
     * overwritten); a copy poisoned after the step that wrote it (the next pass reads it: the loss must be NaN); the
     * pass after that (no step between: it casts again); and a poisoned copy after a step and parametersUpdated (cast).
     */
    private static boolean weightCopyChecks(PrintStream out, Backend device, Rwkv7Model g, Reference ref) {
        boolean ok = sameAsFresh(out, device, g, ref, "after the curve's AdamW steps");
        if (g.weightCopy() == null || !(device instanceof CudaBackend gpu)) {
            out.println("  (no weight copy on this backend: the GEMMs read the weights)");
            return ok;
        }
        ParameterLayout layout = g.layout();
        try (DeviceAdamW adam = new DeviceAdamW(device, layout, 0.9, 0.99, 1e-18, 0.001, 1.0)) {
            gpu.poisonBytes(g.weightCopy().tensor());
            adam.step(g.masterParameters(), g.gradients(), 1e-3, 1, g.weightCopy());
            ok &= sameAsFresh(out, device, g, ref, "an AdamW step over a NaN-poisoned copy");

            adam.step(g.masterParameters(), g.gradients(), 1e-3, 1, g.weightCopy());
            gpu.poisonBytes(g.weightCopy().tensor());
            double poisoned = g.forwardBackward(ref.inputs(), ref.targets(), ref.batch());
            boolean readOk = Double.isNaN(poisoned);
            out.printf(Locale.ROOT, "  the copy poisoned after the AdamW step that wrote it: loss %.6f, must be NaN (the pass reads the"
                    + " copy, %.1f MiB) %s%n", poisoned, g.weightCopyBytes() / 1048576.0, readOk ? "ok" : "FAIL");
            ok &= readOk;
            ok &= sameAsFresh(out, device, g, ref, "the next pass, no AdamW step between (casts over the NaN copy)");

            adam.step(g.masterParameters(), g.gradients(), 1e-3, 1, g.weightCopy());
            gpu.poisonBytes(g.weightCopy().tensor());
            g.parametersUpdated();
            ok &= sameAsFresh(out, device, g, ref, "an AdamW step, a NaN copy and parametersUpdated (casts)");
        }
        return ok;
    }

    /** One pass of {@code g} against a fresh model given g's weights: the same loss and gradients to the bit. */
    private static boolean sameAsFresh(PrintStream out, Backend device, Rwkv7Model g, Reference ref, String what) {
        ParameterLayout layout = g.layout();
        float[] weights = layout.newBuffer();
        device.download(g.masterParameters(), weights);
        float[] gg = layout.newBuffer();
        double gl = g.forwardBackward(ref.inputs(), ref.targets(), ref.batch(), gg);
        try (Rwkv7Model fresh = new Rwkv7Model(ref.config(), device, DType.F32, ref.batch())) {
            fresh.setParameters(weights);
            float[] fg = layout.newBuffer();
            double fl = fresh.forwardBackward(ref.inputs(), ref.targets(), ref.batch(), fg);
            int differ = 0;
            for (int i = 0; i < fg.length; i++) {
                if (Float.floatToRawIntBits(fg[i]) != Float.floatToRawIntBits(gg[i])) {
                    differ++;
                }
            }
            boolean same = differ == 0 && gl == fl && Double.isFinite(gl);
            out.printf(Locale.ROOT, "  %s: loss %.6f, %d of %d gradients differ from a fresh model's on the same weights (%.6f),"
                    + " must be bit-identical %s%n", what, gl, differ, fg.length, fl, same ? "ok" : "FAIL");
            return same;
        }
    }

    /** Losses of CURVE_STEPS AdamW steps from {@code master} on a fixed stream of learnable batches. */
    private static double[] curve(Rwkv7Model model, Backend backend, ParameterLayout layout, float[] master, ModelConfig config, int batch,
                                  int steps) {
        model.setParameters(master);
        int n = batch * config.ctxLen();
        int[] inputs = new int[n];
        int[] targets = new int[n];
        SplittableRandom data = new SplittableRandom(6);
        double[] losses = new double[steps];
        try (DeviceAdamW adam = new DeviceAdamW(backend, layout, 0.9, 0.99, 1e-18, 0.001, 1.0)) {
            for (int s = 0; s < steps; s++) {
                tokens(data, inputs, targets, config.ctxLen(), config.vocabSize());
                losses[s] = model.forwardBackward(inputs, targets, batch);
                // as the trainer steps: writing the model's weight copy when it keeps one (the next pass reads it)
                adam.step(model.masterParameters(), model.gradients(), 1e-3, 1, model.weightCopy());
                if (model.weightCopy() == null) {
                    model.parametersUpdated();
                }
            }
        }
        return losses;
    }

    /** Samples of a learnable stream: each sample counts up from a random start by a stride of 1 or 7 (mod 1000). */
    private static void tokens(SplittableRandom rng, int[] inputs, int[] targets, int T, int vocab) {
        for (int b = 0; b < inputs.length / T; b++) {
            int start = rng.nextInt(1000);
            int stride = rng.nextBoolean() ? 1 : 7;
            for (int t = 0; t < T; t++) {
                inputs[b * T + t] = (start + stride * t) % 1000 % vocab;
                targets[b * T + t] = (start + stride * (t + 1)) % 1000 % vocab;
            }
        }
    }
}
