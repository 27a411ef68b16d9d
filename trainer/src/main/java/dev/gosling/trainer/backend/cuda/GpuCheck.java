package dev.gosling.trainer.backend.cuda;

import dev.gosling.kernels.KernelLoader;
import dev.gosling.trainer.backend.cpu.CpuBackend;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The GPU check that runs without Maven (scripts/gpu-check puts it in the bundle): every CUDA op against the CPU
 * backend ({@link GpuOpChecks}), the same checks quickly again with every kernel compiled by NVRTC (the fallback of a
 * jar built without nvcc), then the per-op timings ({@link GpuBench}). Prints tables; writes them as TSV too.
 * Exit status: 0 when every check passed, 1 when one failed, 2 when no GPU could be used.
 *
 * <pre>
 *   java -cp 'lib/*' dev.gosling.trainer.backend.cuda.GpuCheck [--out DIR] [--no-ops] [--no-bench] [--no-nvrtc]
 *        [--no-train-check] [--no-train-bench] [--train-case L12-D768:4096:8 …] [--train-steps N] [--keep 0,1]
 *        [--wkv7] [--ce]
 * </pre>
 * {@code --keep 0,1}: the training benchmark once per --keep level listed (each a table of its own; default 0).
 * {@code --ce}: likewise only the cross-entropy checks (every one-read kernel variant) and timings.
 * {@code --ln-adamw}: likewise only the LayerNorm/GroupNorm and AdamW checks (and bf16Inputs), and the timings of the
 * LayerNorm backward and AdamW kernels, old and new ({@link GpuBench#runLnAdamW}).
 * {@code --wkv7}: of the op checks (and their NVRTC pass) and the per-op timings only WKV7's, every kernel variant;
 * the training check and benchmark still run unless turned off. {@code --wkv7-profile}: every WKV7 kernel once, for
 * a profiler, and nothing else. The system property {@code gosling.wkv7=v4} (JAVA_TOOL_OPTIONS) makes the old WKV7
 * kernels the default, for a whole-step comparison.
 * After the op checks: the op checks of the GEMM ops again with bf16 GEMMs, a whole training step (L2-D128 ctx 64) and a 200-step
 * loss curve against the CPU backend ({@link dev.gosling.trainer.train.TrainStepCheck}) with fp32 and with bf16
 * GEMMs, and the training benchmark ({@link dev.gosling.trainer.train.TrainBenchmark}, the issue's four cases unless
 * {@code --train-case} names others).
 */
public final class GpuCheck {
    private GpuCheck() {
    }

    public static void main(String[] argv) throws IOException {
        Path out = null;
        boolean bench = true;
        boolean nvrtcPass = true;
        boolean ops = true;
        boolean trainCheck = true;
        boolean trainBench = true;
        boolean wkv7Only = false;
        boolean ceOnly = false;
        boolean lnAdamwOnly = false;
        boolean gemmOnly = false;
        int trainSteps = 5;
        int[] keepLevels = {0};
        List<String> only = List.of();
        List<dev.gosling.trainer.train.TrainBenchmark.Case> trainCases = new ArrayList<>();
        for (int i = 0; i < argv.length; i++) {
            switch (argv[i]) {
                case "--out" -> out = Paths.get(argv[++i]);
                case "--no-ops" -> ops = false;
                case "--no-bench" -> bench = false;
                case "--no-nvrtc" -> nvrtcPass = false;
                case "--no-train-check" -> trainCheck = false;
                case "--no-train-bench" -> trainBench = false;
                case "--train-case" -> trainCases.add(dev.gosling.trainer.train.TrainBenchmark.parse(argv[++i]));
                case "--train-steps" -> trainSteps = Integer.parseInt(argv[++i]);
                case "--keep" -> keepLevels = java.util.Arrays.stream(argv[++i].split(",")).mapToInt(Integer::parseInt).toArray();
                case "--wkv7" -> wkv7Only = true;
                case "--ce" -> ceOnly = true;
                case "--ln-adamw" -> lnAdamwOnly = true;
                case "--gemm" -> gemmOnly = true;
                // only the op checks whose name starts with one of these (e.g. "keyPrepare,lora,bf16 GEMM inputs")
                case "--only" -> only = List.of(argv[++i].split(","));
                case "--wkv7-profile" -> {
                    // every WKV7 kernel once, for a profiler (ncu); nothing else
                    try (CudaBackend gpu = new CudaBackend(0, false)) {
                        new GpuBench(gpu).profileWkv7();
                    }
                    System.exit(0);
                }
                default -> {
                    System.err.println("GpuCheck: unknown argument " + argv[i]
                            + "; usage: GpuCheck [--out DIR] [--no-ops] [--no-bench] [--no-nvrtc] [--no-train-check]"
                            + " [--no-train-bench] [--train-case L12-D768:4096:8 ...] [--train-steps N] [--keep 0,1] [--wkv7] [--ce]"
                            + " [--ln-adamw] [--gemm] [--only NAME-PREFIX,...]");
                    System.exit(2);
                }
            }
        }
        PrintStream o = System.out;
        CudaProbe.Result probe = CudaProbe.probe();
        if (!probe.available()) {
            o.println("GPU check: no usable GPU: " + probe.reason());
            System.exit(2);
        }
        List<String> tsv = new ArrayList<>();
        tsv.add("pass\top\tsize\tquantity\trel_error\ttolerance\tresult");
        boolean allPassed = true;
        int threads = Runtime.getRuntime().availableProcessors();
        try (CudaBackend gpu = new CudaBackend(0, false); CpuBackend cpu = new CpuBackend(threads)) {
            o.printf("device: %s, %d SMs, %.1f GiB; %s; kernels %s; CPU reference %s%n", gpu.deviceName(),
                    gpu.multiprocessors(), gpu.totalMemoryBytes() / 1073741824.0, gpu.versions(),
                    KernelLoader.hasFatbins() ? "from the jar's fatbins" : "from NVRTC (jar built without nvcc)",
                    cpu.name());
            long t0 = System.nanoTime();
            if (ops) {
                allPassed = checks("fp32", gpu, cpu, only(only, wkv7Only ? GpuOpChecks.wkv7Checks(false, 1)
                        : ceOnly ? GpuOpChecks.crossEntropyChecks()
                        : lnAdamwOnly ? GpuOpChecks.lnAdamwChecks() : gemmOnly ? List.of() : GpuOpChecks.all(false)),
                        o, tsv);
                o.printf("kernel modules: %s; checks took %.1f s%n", gpu.kernelOrigins(), (System.nanoTime() - t0) / 1e9);
                // without them (shared memory per block under 172 KB, WKV7_TC_SHARED) the "tc" rows ran the serial kernels
                o.printf("WKV7 tensor-core kernels: %s%n", gpu.wkv7TcAvailable() ? "in use for bf16 inputs at T % 16 = 0"
                        : "not available on this GPU (the serial kernels run everywhere)");
            }
            if (!wkv7Only) {
                gpu.setGemmPrecision(CudaBackend.GemmPrecision.BF16);
                allPassed &= checks("bf16-gemm", gpu, cpu, only(only, ceOnly
                        ? List.of(GpuOpChecks.crossEntropyBf16(37, 1000, 1))
                        : lnAdamwOnly ? GpuOpChecks.lnAdamwBf16Checks() : GpuOpChecks.gemms()), o, tsv);
                gpu.setGemmPrecision(CudaBackend.GemmPrecision.FP32);
            }
            if (trainCheck) {
                boolean passed = dev.gosling.trainer.train.TrainStepCheck.run(o, gpu, cpu, CudaBackend.GemmPrecision.FP32,
                        CudaBackend.GemmPrecision.BF16);
                tsv.add("train-step\tFP32,BF16\t-\t-\t-\t-\t" + (passed ? "ok" : "FAIL"));
                allPassed &= passed;
            }
            if (nvrtcPass && ops && !gemmOnly) {
                try (CudaBackend viaNvrtc = new CudaBackend(0, true)) {
                    long t1 = System.nanoTime();
                    allPassed &= checks("nvrtc", viaNvrtc, cpu, only(only, wkv7Only ? GpuOpChecks.wkv7Checks(true, 1)
                            : ceOnly ? GpuOpChecks.crossEntropyRowsChecks(false) : GpuOpChecks.all(true)), o, tsv);
                    o.printf("NVRTC modules: %s; %.1f s%n", viaNvrtc.kernelOrigins(), (System.nanoTime() - t1) / 1e9);
                } catch (RuntimeException e) {
                    o.println("NVRTC pass FAILED: " + GpuOpChecks.oneLine(e));
                    tsv.add("nvrtc\t-\t-\t-\t-\t-\tFAIL " + GpuOpChecks.oneLine(e));
                    allPassed = false;
                }
            }
            if (out != null) {
                Files.createDirectories(out);
                Files.write(out.resolve("gpu-check.tsv"), tsv, StandardCharsets.UTF_8);
            }
            if (bench && ops) {
                List<String> btsv = new ArrayList<>();
                btsv.add("op\tsize\tms\trate");
                o.println();
                o.println("per-op timings (fp32, CUDA events, median of 7 batches):");
                o.printf("%-26s %-28s %10s  %s%n", "op", "size", "ms", "rate");
                GpuBench timings = new GpuBench(gpu);
                for (GpuBench.Row r : wkv7Only ? timings.runWkv7() : ceOnly ? timings.runCrossEntropy()
                        : lnAdamwOnly ? timings.runLnAdamW() : gemmOnly ? timings.runGemms() : timings.run()) {
                    o.printf(Locale.ROOT, "%-26s %-28s %10.3f  %s%n", r.op(), r.size(), r.ms(), r.rate());
                    btsv.add(r.op() + "\t" + r.size() + "\t" + r.ms() + "\t" + r.rate());
                }
                o.printf("peak device memory held by the allocator: %.2f GiB; cudaMalloc calls: %d%n",
                        gpu.peakReservedBytes() / 1073741824.0, gpu.mallocCalls());
                if (out != null) {
                    Files.write(out.resolve("gpu-bench.tsv"), btsv, StandardCharsets.UTF_8);
                }
            }
        }
        if (trainBench) {
            for (int keep : keepLevels) {
                o.println();
                dev.gosling.trainer.train.TrainBenchmark.run(o, trainCases.isEmpty() ? dev.gosling.trainer.train.TrainBenchmark.issueCases()
                        : trainCases, "gpu", "bf16", false, keep, trainSteps, false);
            }
        }
        o.println(allPassed ? "GPU CHECK PASSED" : "GPU CHECK FAILED");
        System.exit(allPassed ? 0 : 1);
    }

    /** The checks whose name starts with one of the prefixes (all of them when there are none). */
    private static List<GpuOpChecks.Check> only(List<String> prefixes, List<GpuOpChecks.Check> checks) {
        if (prefixes.isEmpty()) {
            return checks;
        }
        return checks.stream().filter(c -> prefixes.stream().anyMatch(p -> c.name().startsWith(p))).toList();
    }

    private static boolean checks(String pass, CudaBackend gpu, CpuBackend cpu, List<GpuOpChecks.Check> checks,
                                  PrintStream o, List<String> tsv) {
        o.println();
        o.println("correctness (" + pass + "): GPU fp32 vs CPU fp64, outputs poisoned with NaN, gradients accumulate"
                + " onto random values; error = |gpu - cpu| / |cpu|");
        o.printf("%-14s %-42s %-22s %10s %8s  %s%n", "op", "size", "quantity", "error", "tol", "result");
        boolean ok = true;
        int passed = 0;
        int total = 0;
        for (GpuOpChecks.Check c : checks) {
            for (GpuOpChecks.Row r : c.run(gpu, cpu)) {
                String result = r.passed() ? "ok" : "FAIL" + (r.failure() != null ? " " + r.failure()
                        : r.finite() ? "" : " (NaN/Inf)");
                o.printf(Locale.ROOT, "%-14s %-42s %-22s %10.2e %8.0e  %s%n", r.op(), r.size(), r.quantity(),
                        r.error(), r.tolerance(), result);
                tsv.add(pass + "\t" + r.op() + "\t" + r.size() + "\t" + r.quantity() + "\t" + r.error() + "\t"
                        + r.tolerance() + "\t" + result);
                ok &= r.passed();
                passed += r.passed() ? 1 : 0;
                total++;
            }
        }
        o.printf("%s: %d of %d quantities within tolerance%n", pass, passed, total);
        return ok;
    }
}
