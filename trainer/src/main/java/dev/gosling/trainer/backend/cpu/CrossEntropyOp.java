package dev.gosling.trainer.backend.cpu;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.backend.Backend;
import java.nio.IntBuffer;

/**
 * Cross-entropy per row and its gradient with L2Wrap (§5.5): the loss is logsumexp − logit[target]; the gradient is
 * gradScale·(softmax − onehot(target)) plus L2WRAP_FACTOR·max·gradScale on the row's argmax (lowest index on ties),
 * which is the gradient of an extra 1e-4/(2·B·T)·Σ max² that the reported loss leaves out.
 */
final class CrossEntropyOp {
    private CrossEntropyOp() {
    }

    static void forward(CpuThreads threads, CpuStore logits, IntBuffer targets, CpuStore losses, int rows, int vocab) {
        checkTargets(targets, rows, vocab);
        threads.forRange(rows, 1, (slot, lo, hi) -> {
            for (int row = lo; row < hi; row++) {
                int base = row * vocab;
                double max = logits.get(base);
                for (int v = 1; v < vocab; v++) {
                    max = Math.max(max, logits.get(base + v));
                }
                double lse = max + Math.log(sumExp(logits, base, vocab, max));
                losses.set(row, lse - logits.get(base + targets.get(row)));
            }
        });
    }

    /** Writes dLogits (may alias logits: each row's statistics are taken before the row is overwritten). */
    static void backward(CpuThreads threads, CpuStore logits, IntBuffer targets, CpuStore dLogits, int rows, int vocab,
                         double gradScale) {
        checkTargets(targets, rows, vocab);
        threads.forRange(rows, 1, (slot, lo, hi) -> {
            for (int row = lo; row < hi; row++) {
                int base = row * vocab;
                double max = logits.get(base);
                int argmax = 0;
                for (int v = 1; v < vocab; v++) {
                    double x = logits.get(base + v);
                    if (x > max) {
                        max = x;
                        argmax = v;
                    }
                }
                double inverseSum = 1.0 / sumExp(logits, base, vocab, max);
                int target = targets.get(row);
                for (int v = 0; v < vocab; v++) {
                    double g = Math.exp(logits.get(base + v) - max) * inverseSum;
                    if (v == target) {
                        g -= 1.0;
                    }
                    g *= gradScale;
                    if (v == argmax) {
                        g += Backend.L2WRAP_FACTOR * max * gradScale;
                    }
                    dLogits.set(base + v, g);
                }
            }
        });
    }

    private static double sumExp(CpuStore logits, int base, int vocab, double max) {
        double sum = 0;
        for (int v = 0; v < vocab; v++) {
            sum += Math.exp(logits.get(base + v) - max);
        }
        return sum;
    }

    private static void checkTargets(IntBuffer targets, int rows, int vocab) {
        for (int row = 0; row < rows; row++) {
            int t = targets.get(row);
            if (t < 0 || t >= vocab) {
                throw new GoslingException("target token id " + t + " at position " + row + " is outside the vocabulary [0, "
                        + vocab + "): the data was tokenized for a different vocab_size than the model's");
            }
        }
    }
}
