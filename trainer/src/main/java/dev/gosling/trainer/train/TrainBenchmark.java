package dev.gosling.trainer.train;

import dev.gosling.kernels.LaunchProfiler;
import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.backend.Backend;
import dev.gosling.trainer.backend.cuda.CudaBackend;
import dev.gosling.trainer.model.DeviceTrainable;
import dev.gosling.trainer.model.Initializer;
import dev.gosling.trainer.model.ModelConfig;
import dev.gosling.trainer.model.ParameterLayout;
import dev.gosling.trainer.model.TrainableModel;
import dev.gosling.trainer.optim.DeviceAdamW;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Training throughput of whole optimizer steps, as the loop runs them on the model's device: forward, loss, backward
 * and AdamW ({@link DeviceAdamW}), on random tokens, for each case. One fresh model (and backend) per case, two
 * warm-up steps, then the median of the timed steps; each step ends with the host reading the gradient norm, so the
 * device has finished it. MFU = 6·params·tokens/s over the GPU's dense bf16 peak (the issue's definition, which counts
 * neither the WKV recurrence nor the recomputation of --grad_cp). Peak memory is what the caching allocator held at
 * most (tensors and scratch; cuBLAS's workspace and the CUDA context come on top).
 */
public final class TrainBenchmark {

    /** One benchmark case; {@code official} is the reference trainer's tokens/s on one H100 (0: none known). */
    public record Case(ModelConfig config, int microBsz, double official, double officialPeakGiB) {
        String label() {
            return "L" + config.nLayer() + "-D" + config.nEmbd() + " ctx " + config.ctxLen() + " bsz " + microBsz;
        }
    }

    /** The result of one case: tokens/s (NaN when it failed) and what went wrong. */
    public record Row(Case c, long params, double stepMs, double tokensPerSecond, double peakGiB, double mfu, String failure) {
    }

    /** The four cases of issue 4 with the official trainer's figures (peer-benchmarks.md). */
    public static List<Case> issueCases() {
        return List.of(
                new Case(ModelConfig.of(12, 768, 65536, 512), 16, 119.0e3, 8.7),
                new Case(ModelConfig.of(12, 768, 65536, 4096), 8, 181.9e3, 31.4),
                new Case(ModelConfig.of(24, 1024, 65536, 4096), 8, 66.0e3, 69.8),
                new Case(ModelConfig.of(24, 2048, 65536, 4096), 4, 35.5e3, 71.8));
    }

    /** Parses "L12-D768:4096:8" (layers-width:ctx:micro_bsz) into a case without reference figures. */
    public static Case parse(String spec) {
        String[] parts = spec.split(":");
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("L(\\d+)-D(\\d+)").matcher(parts[0]);
        if (parts.length != 3 || !m.matches()) {
            throw new GoslingException("benchmark case '" + spec + "' is not L<layers>-D<width>:<ctx_len>:<micro_bsz>, e.g. L12-D768:4096:8");
        }
        ModelConfig config = ModelConfig.of(Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)), 65536, Integer.parseInt(parts[1]));
        int bsz = Integer.parseInt(parts[2]);
        for (Case c : issueCases()) {
            if (c.config().equals(config) && c.microBsz() == bsz) {
                return c;
            }
        }
        return new Case(config, bsz, 0, 0);
    }

    private TrainBenchmark() {
    }

    /**
     * Runs every case and prints the table. A case that fails (out of memory, say) prints its one-line reason in its
     * row and the next case runs.
     */
    public static List<Row> run(PrintStream out, List<Case> cases, String accelerator, String precision, boolean gradCheckpoint,
                                int steps) {
        return run(out, cases, accelerator, precision, gradCheckpoint, steps, false);
    }

    /**
     * As {@link #run(PrintStream, List, String, String, boolean, int)}; with {@code profile}, each case then runs one
     * more step under the {@link LaunchProfiler} and prints the GPU time of every kernel and GEMM shape in it.
     */
    public static List<Row> run(PrintStream out, List<Case> cases, String accelerator, String precision, boolean gradCheckpoint,
                                int steps, boolean profile) {
        return run(out, cases, accelerator, precision, gradCheckpoint, 0, steps, profile);
    }

    /**
     * As {@link #run(PrintStream, List, String, String, boolean, int, boolean)}, the models keeping activations per
     * layer as {@code --keep keep} says (refused with {@code gradCheckpoint}, as by the trainer).
     */
    public static List<Row> run(PrintStream out, List<Case> cases, String accelerator, String precision, boolean gradCheckpoint,
                                int keep, int steps, boolean profile) {
        if (keep < 0 || keep > dev.gosling.trainer.model.Rwkv7Model.MAX_KEEP) {
            throw new GoslingException("--keep " + keep + " must be 0 to " + dev.gosling.trainer.model.Rwkv7Model.MAX_KEEP);
        }
        if (gradCheckpoint && keep != 0) {
            throw new GoslingException("--keep " + keep + " with --grad_cp 1: grad_cp keeps no layer's tensors; use --keep 0"
                    + " with --grad_cp 1, or --grad_cp 0");
        }
        List<Row> rows = new ArrayList<>();
        out.printf("training throughput: --accelerator %s --precision %s --grad_cp %d --keep %d, random tokens, median of %d steps"
                        + " after 2 warm-up%n", accelerator, precision, gradCheckpoint ? 1 : 0, keep, steps);
        out.println("| model | params | ms/step | tokens/s | peak GiB | MFU | official tokens/s | × official | official peak GiB |");
        out.println("|---|---|---|---|---|---|---|---|---|");
        for (Case c : cases) {
            Row r = runCase(c, accelerator, precision, gradCheckpoint, keep, steps, profile ? out : null);
            rows.add(r);
            if (r.failure() != null) {
                out.printf(Locale.ROOT, "| %s | %,d | – | – | – | – | %s | – | %s | %n", c.label(), r.params(),
                        c.official() > 0 ? String.format(Locale.ROOT, "%.1fk", c.official() / 1e3) : "–",
                        c.officialPeakGiB() > 0 ? c.officialPeakGiB() : "–");
                out.println("    " + c.label() + ": " + r.failure());
            } else {
                out.printf(Locale.ROOT, "| %s | %,d | %.1f | %.1fk | %s | %s | %s | %s | %s |%n", c.label(), r.params(), r.stepMs(),
                        r.tokensPerSecond() / 1e3, r.peakGiB() >= 0 ? String.format(Locale.ROOT, "%.1f", r.peakGiB()) : "–",
                        r.mfu() >= 0 ? String.format(Locale.ROOT, "%.1f%%", 100 * r.mfu()) : "–",
                        c.official() > 0 ? String.format(Locale.ROOT, "%.1fk", c.official() / 1e3) : "–",
                        c.official() > 0 ? String.format(Locale.ROOT, "%.2f", r.tokensPerSecond() / c.official()) : "–",
                        c.officialPeakGiB() > 0 ? c.officialPeakGiB() : "–");
            }
            out.flush();
        }
        return rows;
    }

    private static Row runCase(Case c, String accelerator, String precision, boolean gradCheckpoint, int keep, int steps,
                               PrintStream profileOut) {
        ParameterLayout layout = new ParameterLayout(c.config());
        long params = layout.totalElements();
        long kept = 0;
        try (TrainableModel model = new Rwkv7Factory().create(c.config(), accelerator, precision, c.microBsz(), gradCheckpoint, keep,
                0, Runtime.getRuntime().availableProcessors(), false)) {
            DeviceTrainable device = model.onDevice();
            kept = device instanceof dev.gosling.trainer.model.Rwkv7Model r ? r.keptBytes() : 0;
            Backend backend = device.backend();
            if (backend instanceof CudaBackend gpu) {
                // Random weights made on the device: the step's speed does not depend on the values, and the host's
                // initializer (orthogonal matrices) takes minutes for billion-parameter cases.
                gpu.fillUniform(device.masterParameters(), 1, -0.02f, 0.02f);
                device.parametersUpdated();
            } else {
                float[] master = layout.newBuffer();
                new Initializer(layout, 1).initialize(master);
                backend.upload(master, device.masterParameters());
                device.parametersUpdated();
            }
            int n = c.microBsz() * c.config().ctxLen();
            SplittableRandom random = new SplittableRandom(7);
            int[] inputs = random.ints(n, 0, c.config().vocabSize()).toArray();
            int[] targets = random.ints(n, 0, c.config().vocabSize()).toArray();
            double[] ms = new double[steps];
            try (DeviceAdamW adam = new DeviceAdamW(backend, layout, 0.9, 0.99, 1e-18, 0.001, 1.0)) {
                for (int s = -2; s < steps; s++) {
                    long t0 = System.nanoTime();
                    double loss = device.forwardBackward(inputs, targets, c.microBsz());
                    step(adam, device);
                    if (!Double.isFinite(loss)) {
                        throw new GoslingException("the loss is " + loss + " at benchmark step " + (s + 3));
                    }
                    if (s >= 0) {
                        ms[s] = (System.nanoTime() - t0) / 1e6;
                    }
                }
                if (profileOut != null && backend instanceof CudaBackend) {
                    LaunchProfiler.start();
                    device.forwardBackward(inputs, targets, c.microBsz());
                    step(adam, device);
                    printProfile(profileOut, c, LaunchProfiler.stop());
                }
            }
            Arrays.sort(ms);
            double stepMs = steps % 2 == 1 ? ms[steps / 2] : (ms[steps / 2 - 1] + ms[steps / 2]) / 2;
            double tps = n / (stepMs / 1e3);
            double peakGiB = -1;
            double mfu = -1;
            if (backend instanceof CudaBackend gpu) {
                peakGiB = gpu.peakReservedBytes() / 1073741824.0;
                double peak = bf16PeakFlops(gpu.deviceName());
                mfu = peak > 0 ? 6.0 * params * tps / peak : -1;
            }
            return new Row(c, params, stepMs, tps, peakGiB, mfu, null);
        } catch (GoslingException e) {
            return new Row(c, params, Double.NaN, Double.NaN, -1, -1, Trainer.keepAdvice(e, keep, kept).getMessage());
        }
    }

    /**
     * The optimizer step as the trainer takes it on one GPU: writing the model's weight copy when it keeps one, else
     * telling it of the new weights.
     */
    private static void step(DeviceAdamW adam, DeviceTrainable device) {
        adam.step(device.masterParameters(), device.gradients(), 1e-5, 1, device.weightCopy());
        if (device.weightCopy() == null) {
            device.parametersUpdated();
        }
    }

    /** The profiled step's GPU time by kernel (and GEMM shape), largest first, and the sum of each family. */
    private static void printProfile(PrintStream out, Case c, List<LaunchProfiler.Entry> entries) {
        double total = entries.stream().mapToDouble(LaunchProfiler.Entry::ms).sum();
        int launches = entries.stream().mapToInt(LaunchProfiler.Entry::calls).sum();
        out.printf(Locale.ROOT, "GPU time of one profiled step, %s: %.1f ms in %,d launches%n", c.label(), total, launches);
        out.println("| kernel or GEMM (row-major m×n×k) | calls | ms | % of step |");
        out.println("|---|---|---|---|");
        java.util.Map<String, Double> families = new java.util.TreeMap<>();
        for (LaunchProfiler.Entry e : entries) {
            if (e.ms() >= 0.002 * total) {
                out.printf(Locale.ROOT, "| %s | %d | %.2f | %.1f |%n", e.name(), e.calls(), e.ms(), 100 * e.ms() / total);
            }
            families.merge(e.name().startsWith("gemm") ? "gemm (all shapes)" : e.name().replaceAll("_(forward|backward).*", ""),
                    e.ms(), Double::sum);
        }
        out.println("families: " + families.entrySet().stream().sorted((a, b) -> Double.compare(b.getValue(), a.getValue()))
                .map(f -> String.format(Locale.ROOT, "%s %.1f", f.getKey(), f.getValue()))
                .collect(java.util.stream.Collectors.joining(", ")) + " (ms)");
        out.flush();
    }

    /** Dense bf16 tensor-core peak of known GPUs (FLOP/s), 0 when unknown. */
    static double bf16PeakFlops(String deviceName) {
        String name = deviceName.toUpperCase(Locale.ROOT);
        if (name.contains("H100") && name.contains("PCIE")) {
            return 756e12;
        }
        if (name.contains("H100") || name.contains("H200") || name.contains("H800")) {
            return 989.4e12;
        }
        if (name.contains("A100") || name.contains("A800")) {
            return 312e12;
        }
        return 0;
    }

    /**
     * {@code java … TrainBenchmark [--accelerator gpu] [--precision bf16] [--grad_cp 0] [--keep 0] [--steps 5] [--profile] [CASE…]}: the
     * issue's four cases when no CASE (L12-D768:4096:8) is given.
     */
    public static void main(String[] argv) {
        String accelerator = "gpu";
        String precision = "bf16";
        boolean gradCp = false;
        int keep = 0;
        int steps = 5;
        boolean profile = false;
        List<Case> cases = new ArrayList<>();
        for (int i = 0; i < argv.length; i++) {
            switch (argv[i]) {
                case "--accelerator" -> accelerator = argv[++i];
                case "--precision" -> precision = argv[++i];
                case "--grad_cp" -> gradCp = !argv[++i].equals("0");
                case "--keep" -> keep = Integer.parseInt(argv[++i]);
                case "--steps" -> steps = Integer.parseInt(argv[++i]);
                case "--profile" -> profile = true;
                default -> cases.add(parse(argv[i]));
            }
        }
        run(System.out, cases.isEmpty() ? issueCases() : cases, accelerator, precision, gradCp, keep, steps, profile);
    }
}
