package dev.gosling.trainer.backend.cpu;

import dev.gosling.trainer.backend.Activation;
import dev.gosling.trainer.backend.Backend;
import dev.gosling.trainer.backend.DType;
import dev.gosling.trainer.backend.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Milliseconds per call of the heavy CPU ops in fp32 at L6-D512-ctx512-like sizes (default B=1, T=512, C=512,
 * V=65536). Each row: warm-up calls (≥ 0.4 s), then the median of timed calls. "head + cross-entropy" runs as the
 * model does: logits, loss; then the logit gradient written over the logits and the head's two backward GEMMs.
 * On a shared machine pass a smaller thread count: oversubscribed OpenBLAS threads make GEMM timings erratic.
 *
 * <pre>
 *   java -cp … dev.gosling.trainer.backend.cpu.CpuOpsBenchmark [B T C V [threads]]
 * </pre>
 */
public final class CpuOpsBenchmark {

    /** Warm-up: at least this many calls and this long, so the timed calls run C2-compiled code. */
    private static final int WARMUP = 3;
    private static final long WARMUP_NANOS = 400_000_000L;

    private final Backend cpu;
    private final SplittableRandom random = new SplittableRandom(7);
    private final List<Tensor> tensors = new ArrayList<>();

    private CpuOpsBenchmark(Backend cpu) {
        this.cpu = cpu;
    }

    public static void main(String[] args) {
        int B = args.length > 0 ? Integer.parseInt(args[0]) : 1;
        int T = args.length > 1 ? Integer.parseInt(args[1]) : 512;
        int C = args.length > 2 ? Integer.parseInt(args[2]) : 512;
        int V = args.length > 3 ? Integer.parseInt(args[3]) : 65536;
        int threads = args.length > 4 ? Integer.parseInt(args[4]) : Runtime.getRuntime().availableProcessors();
        try (CpuBackend cpu = new CpuBackend(threads)) {
            new CpuOpsBenchmark(cpu).run(B, T, C, V);
        }
    }

    private Tensor random(double scale, int... shape) {
        Tensor t = cpu.allocate(DType.F32, shape);
        float[] host = new float[(int) t.numel()];
        for (int i = 0; i < host.length; i++) {
            host[i] = (float) ((random.nextDouble() * 2 - 1) * scale);
        }
        cpu.upload(host, t);
        tensors.add(t);
        return t;
    }

    private Tensor zeros(int... shape) {
        Tensor t = cpu.allocate(DType.F32, shape);
        tensors.add(t);
        return t;
    }

    /** Median milliseconds of {@code reps} timed calls of {@code body} after warm-up. */
    private static double time(int reps, Runnable body) {
        long start0 = System.nanoTime();
        for (int i = 0; i < WARMUP || System.nanoTime() - start0 < WARMUP_NANOS; i++) {
            body.run();
        }
        double[] ms = new double[reps];
        for (int i = 0; i < reps; i++) {
            long start = System.nanoTime();
            body.run();
            ms[i] = (System.nanoTime() - start) / 1e6;
        }
        Arrays.sort(ms);
        return ms[reps / 2];
    }

    private static void row(String op, String shape, double forwardMs, double backwardMs) {
        System.out.printf("| %-22s | %-28s | %9.2f | %9.2f |%n", op, shape, forwardMs, backwardMs);
    }

    private void run(int B, int T, int C, int V) {
        int rows = B * T;
        int H = C / Backend.HEAD_SIZE;
        int ffn = 4 * C;
        int rank = 64;
        System.out.printf("%s, fp32, B=%d T=%d C=%d H=%d V=%d, Java %s%n", cpu.name(), B, T, C, H, V,
                System.getProperty("java.version"));
        System.out.printf("| %-22s | %-28s | %9s | %9s |%n", "op", "shape", "fwd ms", "bwd ms");
        System.out.println("|------------------------|------------------------------|-----------|-----------|");
        try {
            Tensor x = random(1, rows, C);
            Tensor dx = zeros(rows, C);

            Tensor w = random(0.05, C, C);
            Tensor dw = zeros(C, C);
            Tensor y = zeros(rows, C);
            Tensor dy = random(1, rows, C);
            row("linear C→C", rows + "×" + C + " · " + C + "×" + C,
                    time(10, () -> cpu.linearForward(x, w, y, rows, C, C)),
                    time(10, () -> cpu.linearBackward(dy, x, w, dx, dw, rows, C, C)));

            Tensor wk = random(0.05, ffn, C);
            Tensor dwk = zeros(ffn, C);
            Tensor hidden = zeros(rows, ffn);
            Tensor dHidden = random(1, rows, ffn);
            row("linear C→4C (ffn key)", rows + "×" + C + " · " + C + "×" + ffn,
                    time(5, () -> cpu.linearForward(x, wk, hidden, rows, C, ffn)),
                    time(5, () -> cpu.linearBackward(dHidden, x, wk, dx, dwk, rows, C, ffn)));

            Tensor down = random(0.05, C, rank);
            Tensor up = random(0.05, rank, C);
            Tensor bias = random(1, C);
            Tensor lh = zeros(rows, rank);
            Tensor dDown = zeros(C, rank);
            Tensor dUp = zeros(rank, C);
            Tensor dBias = zeros(C);
            Tensor dlh = zeros(rows, rank);
            row("lora (w: tanh, +w0)", rows + "×" + C + "→" + rank + "→" + C,
                    time(10, () -> cpu.loraForward(x, down, up, bias, Activation.TANH, Activation.NONE, lh, y,
                            rows, C, rank, C)),
                    time(10, () -> cpu.loraBackward(dy, x, down, up, bias, Activation.TANH, Activation.NONE, lh, y,
                            null, dlh, dx, dDown, dUp, dBias, rows, C, rank, C)));

            Tensor lnW = random(1, C);
            Tensor lnB = random(1, C);
            Tensor mean = zeros(rows);
            Tensor rstd = zeros(rows);
            Tensor dLnW = zeros(C);
            Tensor dLnB = zeros(C);
            row("layerNorm", rows + "×" + C,
                    time(10, () -> cpu.layerNormForward(x, lnW, lnB, y, mean, rstd, rows, C)),
                    time(10, () -> cpu.layerNormBackward(dy, x, lnW, mean, rstd, dx, dLnW, dLnB, rows, C)));

            Tensor[] mix = {random(1, C)};
            Tensor[] dMix = {zeros(C)};
            Tensor[] ys = {y};
            Tensor[] dys = {dy};
            row("tokenShiftMixes (k=1)", B + "×" + T + "×" + C,
                    time(10, () -> cpu.tokenShiftMixesForward(x, mix, ys, B, T, C)),
                    time(10, () -> cpu.tokenShiftMixesBackward(dys, x, mix, dx, dMix, B, T, C)));

            Tensor r = random(0.5, rows, C);
            Tensor wRaw = random(2, rows, C);
            Tensor k = random(0.5, rows, C);
            Tensor v = random(0.5, rows, C);
            Tensor alphaPre = zeros(rows, C); // α = σ(0) = 0.5
            Tensor kk = random(1, C);
            Tensor ka = random(1, C);
            Tensor kTilde = zeros(rows, C);
            Tensor a = zeros(rows, C);
            Tensor b = zeros(rows, C);
            cpu.keyPrepareForward(k, alphaPre, kk, ka, kTilde, a, b, rows, C);
            Tensor out = zeros(rows, C);
            Tensor saved = zeros((int) cpu.wkv7SavedElements(B, T, H));
            Tensor[] grads = new Tensor[6];
            for (int i = 0; i < grads.length; i++) {
                grads[i] = zeros(rows, C);
            }
            row("wkv7", B + "×" + T + "×" + H + "×64",
                    time(5, () -> cpu.wkv7Forward(r, wRaw, kTilde, v, a, b, out, saved, B, T, H)),
                    time(5, () -> cpu.wkv7Backward(dy, r, wRaw, kTilde, v, a, b, saved,
                            grads[0], grads[1], grads[2], grads[3], grads[4], grads[5], B, T, H)));

            Tensor head = random(0.02, V, C);
            Tensor dHead = zeros(V, C);
            Tensor logits = zeros(rows, V);
            Tensor targets = cpu.allocate(DType.I32, rows);
            tensors.add(targets);
            int[] ids = new int[rows];
            for (int i = 0; i < rows; i++) {
                ids[i] = random.nextInt(V);
            }
            cpu.upload(ids, targets);
            Tensor losses = zeros(rows);
            cpu.linearForward(x, head, logits, rows, C, V);
            Tensor dLogits = zeros(rows, V);
            row("cross-entropy alone", rows + "×" + V,
                    time(3, () -> cpu.crossEntropyForward(logits, targets, losses, rows, V)),
                    time(3, () -> cpu.crossEntropyBackward(logits, targets, dLogits, rows, V, 1.0 / rows)));
            // as the model runs it: logits, loss, then the gradient written over the logits and the head's backward
            int warmup = 1;
            double[] forward = new double[3];
            double[] backward = new double[3];
            for (int i = 0; i < warmup + forward.length; i++) {
                long t0 = System.nanoTime();
                cpu.linearForward(x, head, logits, rows, C, V);
                cpu.crossEntropyForward(logits, targets, losses, rows, V);
                long t1 = System.nanoTime();
                cpu.crossEntropyBackward(logits, targets, logits, rows, V, 1.0 / rows);
                cpu.linearBackward(logits, x, head, dx, dHead, rows, C, V);
                long t2 = System.nanoTime();
                if (i >= warmup) {
                    forward[i - warmup] = (t1 - t0) / 1e6;
                    backward[i - warmup] = (t2 - t1) / 1e6;
                }
            }
            Arrays.sort(forward);
            Arrays.sort(backward);
            row("head + cross-entropy", rows + "×" + C + " · " + C + "×" + V,
                    forward[forward.length / 2], backward[backward.length / 2]);
        } finally {
            tensors.forEach(Tensor::close);
        }
    }
}
