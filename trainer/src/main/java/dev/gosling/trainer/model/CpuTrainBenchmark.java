package dev.gosling.trainer.model;

import dev.gosling.trainer.backend.DType;
import dev.gosling.trainer.backend.cpu.CpuBackend;
import dev.gosling.trainer.optim.AdamW;

import java.io.PrintStream;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * CPU training throughput of a whole RWKV-7 step in fp32: upload the master weights, {@link Rwkv7Model#forwardBackward}
 * (forward, loss, backward, gradients downloaded) and one {@link AdamW} step, for each micro-batch size. Each row is
 * the median of the timed steps after one warm-up step; tokens/s = micro_bsz·ctx_len / median step time.
 *
 * <pre>
 *   java -Xmx8g -cp … dev.gosling.trainer.model.CpuTrainBenchmark [n_layer n_embd ctx_len vocab max_bsz steps [threads]]
 * </pre>
 * Defaults: L6-D512, ctx 512, vocab 65536, micro_bsz 1..4, 3 timed steps, every core.
 */
public final class CpuTrainBenchmark {

    private CpuTrainBenchmark() {
    }

    public static void main(String[] args) {
        int nLayer = args.length > 0 ? Integer.parseInt(args[0]) : 6;
        int nEmbd = args.length > 1 ? Integer.parseInt(args[1]) : 512;
        int ctxLen = args.length > 2 ? Integer.parseInt(args[2]) : 512;
        int vocab = args.length > 3 ? Integer.parseInt(args[3]) : 65536;
        int maxBsz = args.length > 4 ? Integer.parseInt(args[4]) : 4;
        int steps = args.length > 5 ? Integer.parseInt(args[5]) : 3;
        int threads = args.length > 6 ? Integer.parseInt(args[6]) : Runtime.getRuntime().availableProcessors();
        run(System.out, ModelConfig.of(nLayer, nEmbd, vocab, ctxLen), maxBsz, steps, threads, false);
    }

    /**
     * Prints one table row per micro-batch size 1..maxBsz and returns the tokens/s of each (index bsz − 1).
     *
     * @param gradCheckpoint run the model with per-block recomputation (--grad_cp 1)
     */
    public static double[] run(PrintStream out, ModelConfig config, int maxBsz, int steps, int threads,
                               boolean gradCheckpoint) {
        if (maxBsz < 1 || steps < 1 || threads < 1) {
            throw new IllegalArgumentException("max_bsz, steps and threads must be >= 1");
        }
        ParameterLayout layout = new ParameterLayout(config);
        float[] params = layout.newBuffer();
        new Initializer(layout, 1).initialize(params);
        float[] grads = layout.newBuffer();
        AdamW adam = new AdamW(layout, 0.9, 0.99, 1e-18, 0.001, 1.0);
        int T = config.ctxLen();
        double[] tokensPerSecond = new double[maxBsz];
        try (CpuBackend cpu = new CpuBackend(threads);
             Rwkv7Model model = new Rwkv7Model(config, cpu, DType.F32, maxBsz, gradCheckpoint)) {
            out.printf("RWKV-7 L%d-D%d ctx %d vocab %d, %,d params, fp32, %s, grad_cp %d, activations %.0f MiB, Java %s%n",
                    config.nLayer(), config.nEmbd(), T, config.vocabSize(), layout.totalElements(), cpu.name(),
                    gradCheckpoint ? 1 : 0, model.activationElements() * 4.0 / (1 << 20), System.getProperty("java.version"));
            out.println("| micro_bsz | tokens/step | fwd+bwd ms | adamw ms | step ms | tokens/s |");
            out.println("|-----------|-------------|------------|----------|---------|----------|");
            SplittableRandom random = new SplittableRandom(7);
            for (int bsz = 1; bsz <= maxBsz; bsz++) {
                int n = bsz * T;
                int[] inputs = new int[n];
                int[] targets = new int[n];
                for (int i = 0; i < n; i++) {
                    inputs[i] = random.nextInt(config.vocabSize());
                    targets[i] = random.nextInt(config.vocabSize());
                }
                double[] fb = new double[steps];
                double[] opt = new double[steps];
                double[] total = new double[steps];
                for (int s = -1; s < steps; s++) {
                    long t0 = System.nanoTime();
                    model.setParameters(params);
                    model.forwardBackward(inputs, targets, bsz, grads);
                    long t1 = System.nanoTime();
                    adam.step(params, grads, 1e-5);
                    long t2 = System.nanoTime();
                    if (s >= 0) {
                        fb[s] = (t1 - t0) / 1e6;
                        opt[s] = (t2 - t1) / 1e6;
                        total[s] = (t2 - t0) / 1e6;
                    }
                }
                double stepMs = median(total);
                tokensPerSecond[bsz - 1] = n / (stepMs / 1e3);
                out.printf("| %9d | %11d | %10.0f | %8.0f | %7.0f | %8.0f |%n", bsz, n, median(fb), median(opt), stepMs,
                        tokensPerSecond[bsz - 1]);
                out.flush();
            }
        }
        return tokensPerSecond;
    }

    private static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }
}
