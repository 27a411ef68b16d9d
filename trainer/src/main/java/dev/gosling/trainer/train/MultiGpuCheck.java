package dev.gosling.trainer.train;

import dev.gosling.trainer.backend.DType;
import dev.gosling.trainer.backend.Tensor;
import dev.gosling.trainer.backend.cuda.CudaBackend;
import dev.gosling.trainer.backend.cuda.CudaProbe;
import dev.gosling.trainer.data.BinIdxWriter;
import dev.gosling.trainer.data.MagicPrime;
import dev.gosling.trainer.dist.NcclCollective;
import dev.gosling.trainer.dist.Shard;
import dev.gosling.trainer.model.DeviceTrainable;
import dev.gosling.trainer.model.ModelConfig;
import dev.gosling.trainer.model.ParameterLayout;
import dev.gosling.trainer.model.TrainableModel;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The multi-GPU part of the GPU check ({@code .bundle/gpu-check --remote-part --multi-gpu --out DIR}), for a machine
 * with two or more GPUs and libnccl.so.2: each part runs on its own and prints PASS/FAIL (or its table) whatever
 * the others did.
 * <ol>
 *   <li>NCCL: all-reduce, reduce-scatter and all-gather (uneven shards) on every visible GPU against host sums, the
 *       started (asynchronous) reductions with a device-side wait before their memory is overwritten, and the all-reduce
 *       bus bandwidth on 256 MiB.</li>
 *   <li>Data parallel: {@code --devices 2 --micro_bsz 4} under ddp, zero1 and zero2 against {@code --devices 1
 *       --micro_bsz 8} (L6-D512, ctx 512, 10 steps on synthetic data): the same samples, so the losses and weights must
 *       agree to float tolerance. The gradient reductions overlap the backward pass (zero2 also reuses its block
 *       gradient slots behind device-side waits), so a missing wait shows here as a difference.</li>
 *   <li>Scaling: tokens/s on 1 and 2 GPUs for L12-D768 and L24-D2048 at ctx 4096 (median step after 2 warm-up steps,
 *       the largest micro-batch of 8, 4, 2, 1 that fits on 1 GPU), the scaling efficiency, and the peak device memory
 *       per GPU under ddp, zero1 and zero2, each reducing its gradient buckets while the backward pass goes on.</li>
 * </ol>
 * Exit status 0 when every check passed, 1 when one failed, 2 when fewer than 2 GPUs are visible.
 * <p>
 * {@code --cpu-dry-run} runs parts 2 and 3 on the CPU backend with tiny models (L2-D64), to try the orchestration on a
 * machine without GPUs; its numbers mean nothing.
 */
public final class MultiGpuCheck {
    private static final long TIMEOUT_SECONDS = 600;

    private final PrintStream o = System.out;
    private final Path work;
    private final List<String> table = new ArrayList<>();
    private boolean allPassed = true;
    private final String accelerator;
    /** The equality run's model {layers, n_embd, ctx}, the benchmark's models {layers, n_embd} and context. */
    private final int[] equalityModel;
    private final int[][] benchModels;
    private final int benchCtx;

    private MultiGpuCheck(Path work, boolean cpuDryRun) {
        this.work = work;
        this.accelerator = cpuDryRun ? "cpu" : "gpu";
        this.equalityModel = cpuDryRun ? new int[] {2, 64, 64} : new int[] {6, 512, 512};
        this.benchModels = cpuDryRun ? new int[][] {{2, 64}} : new int[][] {{12, 768}, {24, 2048}};
        this.benchCtx = cpuDryRun ? 64 : 4096;
    }

    public static void main(String[] argv) throws IOException {
        Path out = null;
        boolean bench = true;
        boolean cpuDryRun = false;
        for (int i = 0; i < argv.length; i++) {
            switch (argv[i]) {
                case "--out" -> out = Paths.get(argv[++i]);
                case "--no-bench" -> bench = false;
                case "--cpu-dry-run" -> cpuDryRun = true;
                case "--multi-gpu" -> { }
                default -> {
                    System.err.println("MultiGpuCheck: unknown argument " + argv[i] + "; usage: MultiGpuCheck [--out DIR] [--no-bench] [--cpu-dry-run]");
                    System.exit(2);
                }
            }
        }
        CudaProbe.Result probe = CudaProbe.probe();
        if (!cpuDryRun && (!probe.available() || probe.devices() < 2)) {
            System.out.println("multi-GPU check: needs 2 or more GPUs, " + (probe.available() ? probe.devices() + " visible" : probe.reason()));
            System.exit(2);
        }
        MultiGpuCheck check = new MultiGpuCheck(Files.createTempDirectory("gosling-multi-gpu"), cpuDryRun);
        if (!cpuDryRun) {
            check.part("NCCL collectives", () -> check.nccl(probe.devices()));
        }
        Path data = check.syntheticData();
        check.part("2-GPU data parallel = 1 GPU with twice the micro-batch", () -> check.dataParallel(data));
        if (bench) {
            check.part("scaling benchmark", () -> check.scaling(data));
        }
        if (out != null) {
            Files.createDirectories(out);
            Files.write(out.resolve("multi-gpu.tsv"), check.table, StandardCharsets.UTF_8);
        }
        System.out.println(check.allPassed ? "MULTI-GPU CHECK PASSED" : "MULTI-GPU CHECK FAILED");
        System.exit(check.allPassed ? 0 : 1);
    }

    private interface Part {
        boolean run() throws Exception;
    }

    /** Runs one part; a failure or exception is printed and counted, and the next part runs anyway. */
    private void part(String name, Part body) {
        o.println();
        o.println("== " + name);
        long t0 = System.nanoTime();
        boolean ok;
        try {
            ok = body.run();
        } catch (Throwable e) {
            ok = false;
            o.println("FAIL: " + e);
            e.printStackTrace(o);
        }
        o.printf(Locale.ROOT, "%s: %s (%.1f s)%n", name, ok ? "PASS" : "FAIL", (System.nanoTime() - t0) / 1e9);
        table.add("part\t" + name + "\t" + (ok ? "PASS" : "FAIL"));
        allPassed &= ok;
    }

    // ------------------------------------------------------------------------------------------------ 1. NCCL

    private boolean nccl(int gpus) throws Exception {
        o.println("NCCL version " + NcclCollective.version() + ", " + gpus + " GPUs");
        byte[] id = NcclCollective.newUniqueId();
        int n = 10_000_003; // not a multiple of the GPU count: the shards' remainder path runs too
        float[][] inputs = new float[gpus][];
        for (int r = 0; r < gpus; r++) {
            SplittableRandom random = new SplittableRandom(r);
            inputs[r] = new float[n];
            for (int i = 0; i < n; i++) {
                inputs[r][i] = (float) random.nextDouble(-1, 1);
            }
        }
        double[] expected = new double[n];
        for (float[] in : inputs) {
            for (int i = 0; i < n; i++) {
                expected[i] += in[i];
            }
        }
        Map<Integer, String> errors = new ConcurrentHashMap<>();
        Map<Integer, Double> busBandwidth = new ConcurrentHashMap<>();
        List<Thread> threads = new ArrayList<>();
        for (int r = 0; r < gpus; r++) {
            final int rank = r;
            Thread t = new Thread(() -> {
                try (CudaBackend gpu = new CudaBackend(rank, false);
                     NcclCollective c = NcclCollective.join(id, gpus, rank, rank, TIMEOUT_SECONDS);
                     Tensor x = gpu.allocate(DType.F32, n)) {
                    float[] got = new float[n];
                    gpu.upload(inputs[rank], x);
                    c.allReduceSum(gpu, x);
                    gpu.download(x, got);
                    double err = maxError(got, expected, 0, n);
                    gpu.upload(inputs[rank], x);
                    c.reduceScatterSum(gpu, x);
                    gpu.download(x, got);
                    Shard s = c.shard(n);
                    err = Math.max(err, maxError(got, expected, (int) s.start(), (int) s.end()));
                    float[] gathered = new float[n];
                    for (int k = 0; k < gpus; k++) {
                        Shard sk = Shard.of(n, gpus, k);
                        System.arraycopy(inputs[k], (int) sk.start(), gathered, (int) sk.start(), (int) sk.length());
                    }
                    gpu.upload(inputs[rank], x);
                    c.allGather(gpu, x);
                    gpu.download(x, got);
                    boolean gatherExact = Arrays.equals(got, gathered);
                    double asyncErr = startedReductions(gpu, c, x, inputs[rank], expected);
                    double[] values = c.allGather(new double[] {rank, rank * 0.5});
                    boolean valuesOk = values.length == 2 * gpus;
                    for (int k = 0; k < gpus && valuesOk; k++) {
                        valuesOk = values[2 * k] == k && values[2 * k + 1] == k * 0.5;
                    }
                    if (err > 1e-5 || !gatherExact || !valuesOk || !(asyncErr <= 1e-5)) {
                        errors.put(rank, String.format(Locale.ROOT, "sum error %.2e, all-gather %s, value gather %s, started reductions' "
                                + "error %.2e", err, gatherExact ? "exact" : "WRONG", valuesOk ? "ok" : "WRONG", asyncErr));
                    }
                    try (Tensor big = gpu.allocate(DType.F32, 64 << 20)) { // 256 MiB
                        c.allReduceSum(gpu, big);
                        long t0 = System.nanoTime();
                        int reps = 10;
                        for (int i = 0; i < reps; i++) {
                            c.allReduceSum(gpu, big);
                        }
                        double seconds = (System.nanoTime() - t0) / 1e9 / reps;
                        busBandwidth.put(rank, (256.0 * 1048576 / seconds) * 2 * (gpus - 1) / gpus / 1e9);
                    }
                } catch (Throwable e) {
                    errors.put(rank, String.valueOf(e));
                }
            }, "nccl-check-" + rank);
            threads.add(t);
            t.start();
        }
        for (Thread t : threads) {
            t.join();
        }
        errors.forEach((r, e) -> o.println("rank " + r + ": " + e));
        if (!busBandwidth.isEmpty()) {
            double bw = busBandwidth.values().stream().mapToDouble(Double::doubleValue).min().orElse(0);
            o.printf(Locale.ROOT, "all-reduce of 256 MiB over %d GPUs: bus bandwidth %.1f GB/s (nccl-tests' busbw)%n", gpus, bw);
            table.add("nccl_busbw_GBps\t" + gpus + "\t" + bw);
        }
        o.println("all-reduce, reduce-scatter (shard sums), all-gather, value gather and started reductions "
                + (errors.isEmpty() ? "match the host" : "FAILED"));
        return errors.isEmpty();
    }

    /**
     * The started reductions as the training step uses them: the two halves of x all-reduced and y reduce-scattered into
     * a piece of its own, all in flight together; y is then overwritten with NaN on the backend's stream behind the
     * device-side wait (without it the reduce-scatter could read NaN), and only then the host waits. Returns the largest
     * relative error of x and the piece against the host sums (NaN when one is NaN).
     */
    private static double startedReductions(CudaBackend gpu, NcclCollective c, Tensor x, float[] input, double[] expected) {
        int n = input.length;
        Shard s = c.shard(n);
        gpu.upload(input, x);
        try (Tensor lo = gpu.view(x, 0, n / 2);
             Tensor hi = gpu.view(x, n / 2, n - n / 2);
             Tensor y = gpu.allocate(DType.F32, n);
             Tensor piece = gpu.allocate(DType.F32, (int) s.length())) {
            gpu.upload(input, y);
            c.allReduceSumAsync(gpu, lo);
            c.reduceScatterSumAsync(gpu, y, piece);
            c.allReduceSumAsync(gpu, hi);
            c.awaitOnDevice(gpu, y);
            gpu.fill(y, Float.NaN);
            c.awaitPending(gpu);
            float[] got = new float[n];
            gpu.download(x, got);
            double err = maxError(got, expected, 0, n);
            float[] mine = new float[(int) s.length()];
            gpu.download(piece, mine);
            for (int i = 0; i < mine.length; i++) {
                double e = Math.abs(mine[i] - expected[(int) s.start() + i]) / (Math.abs(expected[(int) s.start() + i]) + 1e-3);
                err = Double.isNaN(e) ? Double.NaN : Math.max(err, e);
            }
            return err;
        }
    }

    private static double maxError(float[] got, double[] expected, int from, int to) {
        double err = 0;
        for (int i = from; i < to; i++) {
            err = Math.max(err, Math.abs(got[i] - expected[i]) / (Math.abs(expected[i]) + 1e-3));
        }
        return err;
    }

    // ------------------------------------------------------------------------------------------------ data

    /** 32 Mi tokens of a random walk over the 65536-token vocabulary (some structure to learn), as a binidx. */
    private Path syntheticData() throws IOException {
        Path prefix = work.resolve("synthetic");
        SplittableRandom random = new SplittableRandom(42);
        try (BinIdxWriter w = new BinIdxWriter(prefix)) {
            int[] doc = new int[8192];
            int token = 1;
            for (int d = 0; d < 4096; d++) {
                for (int i = 0; i < doc.length; i++) {
                    token = Math.floorMod(token + random.nextInt(-64, 65), 65535) + 1;
                    doc[i] = token;
                }
                w.addDocument(doc);
            }
            w.commit();
        }
        return prefix;
    }

    private Map<String, String> flags(Path data, Path proj, int layers, int embd, int ctx, int devices, int micro, String strategy) {
        long tokens = 4096L * 8192;
        Map<String, String> m = new LinkedHashMap<>();
        m.put("data_file", data.toString());
        m.put("proj_dir", proj.toString());
        m.put("n_layer", Integer.toString(layers));
        m.put("n_embd", Integer.toString(embd));
        m.put("ctx_len", Integer.toString(ctx));
        m.put("micro_bsz", Integer.toString(micro));
        m.put("devices", Integer.toString(devices));
        m.put("strategy", strategy);
        m.put("accelerator", accelerator);
        m.put("magic_prime", Long.toString(MagicPrime.magicPrime(tokens, ctx)));
        m.put("my_exit_tokens", Long.toString(tokens));
        m.put("lr_init", "6e-4");
        m.put("lr_final", "1e-5");
        m.put("warmup_steps", "2");
        m.put("random_seed", "1");
        m.put("train_stage", "0");
        return m;
    }

    // ------------------------------------------------------------------------------------------------ 2. equality

    private boolean dataParallel(Path data) throws IOException {
        int steps = 10;
        int[] e = equalityModel;
        Path one = Files.createTempDirectory(work, "dp1-");
        Map<String, String> a = flags(data, one, e[0], e[1], e[2], 1, 8, "ddp");
        a.put("my_exit_tokens", Long.toString(steps * 8L * e[2]));
        train(a, RankContext.NO_LISTENER);
        List<MetricsLog.Row> r1 = MetricsLog.read(one);
        float[] w1 = TrainState.read(one.resolve("rwkv-final.state")).master();
        boolean ok = r1.size() == steps;
        for (String strategy : new String[] {"ddp", "zero1", "zero2"}) {
            Path two = Files.createTempDirectory(work, "dp2-" + strategy + "-");
            Map<String, String> b = flags(data, two, e[0], e[1], e[2], 2, 4, strategy);
            b.put("my_exit_tokens", Long.toString(steps * 8L * e[2]));
            train(b, RankContext.NO_LISTENER);
            List<MetricsLog.Row> r2 = MetricsLog.read(two);
            double lossDiff = 0;
            o.println(strategy + ("gpu".equals(accelerator) ? " (gradient buckets reduced on NCCL's stream while the backward pass goes on):" : ":"));
            o.printf("%-5s %-12s %-12s %s%n", "step", "1 GPU x 8", "2 GPUs x 4", "rel diff");
            for (int i = 0; i < Math.min(r1.size(), r2.size()); i++) {
                double d = Math.abs(r1.get(i).loss() - r2.get(i).loss()) / Math.abs(r1.get(i).loss());
                lossDiff = Math.max(lossDiff, d);
                o.printf(Locale.ROOT, "%-5d %-12.6f %-12.6f %.2e%n", i, r1.get(i).loss(), r2.get(i).loss(), d);
            }
            float[] w2 = TrainState.read(two.resolve("rwkv-final.state")).master();
            // ‖w1 − w2‖ / ‖w1‖ over all weights: per element, Adam turns rounding-level differences in a near-zero gradient
            // (summed in another order on 2 GPUs) into steps of ±lr, so an element-wise ratio measures noise, not error.
            double diff2 = 0;
            double norm2 = 0;
            for (int i = 0; i < w1.length; i++) {
                diff2 += (double) (w1[i] - w2[i]) * (w1[i] - w2[i]);
                norm2 += (double) w1[i] * w1[i];
            }
            double weightDiff = Math.sqrt(diff2 / norm2);
            boolean same = r2.size() == steps && lossDiff < 1e-3 && weightDiff < 1e-2;
            o.printf(Locale.ROOT, "%s: max loss rel diff %.2e (tolerance 1e-3), weights |w1 - w2| / |w1| %.2e (tolerance 1e-2)%s%n", strategy,
                    lossDiff, weightDiff, same ? "" : " FAIL");
            table.add("dp_equal\t" + strategy + "\tloss_rel_diff\t" + lossDiff + "\tweight_rel_diff\t" + weightDiff);
            ok &= same;
            deleteTree(two);
        }
        return ok;
    }

    // ------------------------------------------------------------------------------------------------ 3. scaling

    /** What one benchmark run measured. */
    private record Run(double tokensPerSecond, Map<Integer, long[]> memory) {
    }

    private boolean scaling(Path data) throws IOException {
        int[][] models = benchModels;
        int ctx = benchCtx;
        List<String> rows = new ArrayList<>();
        rows.add(String.format("%-10s %-6s %-9s %-6s %12s %11s %22s %22s", "model", "micro", "strategy", "GPUs", "tokens/s", "efficiency",
                "peak alloc GiB/GPU", "device used GiB/GPU"));
        boolean ok = true;
        for (int[] m : models) {
            String name = "L" + m[0] + "-D" + m[1];
            Path init = Files.createTempDirectory(work, name + "-");
            Path initFile = cheapInit(data, init, m[0], m[1], ctx);
            int micro = 0;
            Run single = null;
            for (int b : new int[] {8, 4, 2, 1}) {
                try {
                    single = bench(data, initFile, m[0], m[1], ctx, 1, b, "ddp");
                    micro = b;
                    break;
                } catch (RuntimeException e) {
                    if (!String.valueOf(e.getMessage()).toLowerCase(Locale.ROOT).contains("memory")) {
                        throw e;
                    }
                    o.println(name + " micro_bsz " + b + " does not fit on 1 GPU: " + e.getMessage());
                }
            }
            if (single == null) {
                o.println(name + ": no micro-batch fits on one GPU");
                ok = false;
                continue;
            }
            rows.add(row(name, micro, "-", 1, single, Double.NaN));
            for (String strategy : new String[] {"ddp", "zero1", "zero2"}) {
                try {
                    Run two = bench(data, initFile, m[0], m[1], ctx, 2, micro, strategy);
                    double efficiency = two.tokensPerSecond() / (2 * single.tokensPerSecond());
                    rows.add(row(name, micro, strategy, 2, two, efficiency));
                } catch (RuntimeException e) {
                    ok = false;
                    rows.add(String.format("%-10s %-6d %-9s %-6d FAILED: %s", name, micro, strategy, 2, e.getMessage()));
                }
            }
            deleteTree(init);
        }
        o.println();
        rows.forEach(o::println);
        o.println("efficiency = tokens/s on 2 GPUs / (2 x tokens/s on 1 GPU), same micro-batch per GPU (target >= 0.90);"
                + " peak alloc = the CUDA backend's caching allocator at its peak; device used = cudaMemGetInfo at the end (NCCL and context included)");
        if ("gpu".equals(accelerator)) {
            o.println("ddp, zero1 and zero2 reduce each gradient bucket (a block, emb, ln_out+head) on NCCL's own stream as the backward"
                    + " pass finishes it, overlapping the rest of the pass; the optimizer waits for all of them");
        }
        return ok;
    }

    private String row(String name, int micro, String strategy, int gpus, Run run, double efficiency) {
        StringBuilder alloc = new StringBuilder();
        StringBuilder used = new StringBuilder();
        run.memory().forEach((device, m) -> {
            alloc.append(alloc.length() == 0 ? "" : "/").append(String.format(Locale.ROOT, "%.1f", m[0] / 1073741824.0));
            used.append(used.length() == 0 ? "" : "/").append(String.format(Locale.ROOT, "%.1f", m[1] / 1073741824.0));
        });
        table.add("scaling\t" + name + "\t" + micro + "\t" + strategy + "\t" + gpus + "\t" + run.tokensPerSecond() + "\t" + efficiency + "\t" + alloc + "\t" + used);
        return String.format(Locale.ROOT, "%-10s %-6d %-9s %-6d %12.0f %11s %22s %22s", name, micro, strategy, gpus, run.tokensPerSecond(),
                Double.isNaN(efficiency) ? "-" : String.format(Locale.ROOT, "%.1f%%", 100 * efficiency), alloc, used);
    }

    /**
     * A checkpoint of small deterministic weights for the benchmark (throughput does not depend on the values, and the
     * real init of a 1.5B model takes minutes on the host).
     */
    private Path cheapInit(Path data, Path dir, int layers, int embd, int ctx) {
        ModelConfig model = TrainConfig.fromMap(flags(data, dir, layers, embd, ctx, 1, 1, "ddp")).modelConfig();
        ParameterLayout layout = new ParameterLayout(model);
        float[] master = layout.newBuffer();
        SplittableRandom random = new SplittableRandom(7);
        for (int i = 0; i < master.length; i++) {
            master[i] = (float) random.nextDouble(-0.02, 0.02);
        }
        Path file = dir.resolve("bench-init.pth");
        Checkpoints.save(file, layout, master);
        return file;
    }

    /** Thrown on every rank after the timed steps, so the run ends without writing a checkpoint. */
    private static final class BenchmarkDone extends RuntimeException {
        BenchmarkDone() {
            super("benchmark steps done", null, false, false);
        }
    }

    private Run bench(Path data, Path init, int layers, int embd, int ctx, int gpus, int micro, String strategy) throws IOException {
        int steps = 7;
        Path proj = Files.createTempDirectory(work, "bench-");
        Map<String, String> f = flags(data, proj, layers, embd, ctx, gpus, micro, strategy);
        f.put("load_model", init.toString());
        Map<Integer, long[]> memory = new ConcurrentHashMap<>();
        RankContext.Listener stopAfter = new RankContext.Listener() {
            @Override
            public void stepDone(long nextRealStep) {
                if (nextRealStep >= steps) {
                    throw new BenchmarkDone();
                }
            }
        };
        try {
            DataParallel.run(TrainConfig.fromMap(f), new LoopOptions(0, "", false), new Measuring(memory), new PrintWriter(new StringWriter()),
                    new PrintStream(new ByteArrayOutputStream()), new StopFlag(), TIMEOUT_SECONDS, stopAfter);
        } catch (BenchmarkDone expected) {
            // every rank stopped after the timed steps
        }
        List<MetricsLog.Row> rows = MetricsLog.read(proj);
        double[] rates = rows.stream().skip(2).mapToDouble(MetricsLog.Row::tokensPerSecond).sorted().toArray();
        deleteTree(proj);
        if (rates.length == 0) {
            throw new IllegalStateException("no timed steps");
        }
        return new Run(rates[rates.length / 2], new java.util.TreeMap<>(memory));
    }

    /** The RWKV-7 model, recording each rank's device memory when it closes. */
    private static final class Measuring implements ModelFactory {
        private final Rwkv7Factory inner = new Rwkv7Factory();
        private final Map<Integer, long[]> memory;

        Measuring(Map<Integer, long[]> memory) {
            this.memory = memory;
        }

        @Override
        public String name() {
            return inner.name();
        }

        @Override
        public boolean isDefaultFor(String accelerator) {
            return false;
        }

        @Override
        public TrainableModel create(ModelConfig config, String accelerator, int maxBatchSize, boolean gradCheckpoint) {
            return create(config, accelerator, "bf16", maxBatchSize, gradCheckpoint, 0, 1, false);
        }

        @Override
        public TrainableModel create(ModelConfig config, String accelerator, String precision, int maxBatchSize, boolean gradCheckpoint,
                                     int device, int cpuThreads, boolean partitionGradients) {
            return create(config, accelerator, precision, maxBatchSize, gradCheckpoint, 0, device, cpuThreads, partitionGradients);
        }

        @Override
        public TrainableModel create(ModelConfig config, String accelerator, String precision, int maxBatchSize, boolean gradCheckpoint,
                                     int keep, int device, int cpuThreads, boolean partitionGradients) {
            TrainableModel model = inner.create(config, accelerator, precision, maxBatchSize, gradCheckpoint, keep, device, cpuThreads,
                    partitionGradients);
            return new TrainableModel() {
                @Override
                public ModelConfig config() {
                    return model.config();
                }

                @Override
                public ParameterLayout layout() {
                    return model.layout();
                }

                @Override
                public void setParameters(float[] master) {
                    model.setParameters(master);
                }

                @Override
                public double forwardBackward(int[] inputs, int[] targets, int batchSize, float[] grads) {
                    return model.forwardBackward(inputs, targets, batchSize, grads);
                }

                @Override
                public double loss(int[] inputs, int[] targets, int batchSize) {
                    return model.loss(inputs, targets, batchSize);
                }

                @Override
                public DeviceTrainable onDevice() {
                    return model.onDevice();
                }

                @Override
                public void close() {
                    DeviceTrainable d = model.onDevice();
                    if (d != null && d.backend() instanceof CudaBackend gpu) {
                        long[] info = gpu.memoryInfo();
                        memory.put(device, new long[] {gpu.peakReservedBytes(), info[1] - info[0]});
                    }
                    model.close();
                }
            };
        }
    }

    private void train(Map<String, String> flags, RankContext.Listener listener) {
        DataParallel.run(TrainConfig.fromMap(flags), new LoopOptions(0, "", false), new Rwkv7Factory(), new PrintWriter(new StringWriter()),
                new PrintStream(new ByteArrayOutputStream()), new StopFlag(), TIMEOUT_SECONDS, listener);
    }

    private static void deleteTree(Path dir) {
        try (var walk = Files.walk(dir)) {
            walk.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            // temporary files; the check goes on
        }
    }
}
