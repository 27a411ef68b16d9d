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

    /**
     * Writes dLogits (may alias logits). Per row: the max and argmax first; then exp(x − max) goes into dLogits while
     * it is summed (one exp per logit; with aliasing each logit is read before its slot is reused); then the scaling.
     */
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
                double sum = 0;
                for (int v = 0; v < vocab; v++) {
                    double e = Math.exp(logits.get(base + v) - max);
                    sum += e;
                    dLogits.set(base + v, e);
                }
                double inverseSum = 1.0 / sum;
                for (int v = 0; v < vocab; v++) {
                    dLogits.set(base + v, dLogits.get(base + v) * inverseSum * gradScale);
                }
                int target = targets.get(row);
                dLogits.add(base + target, -gradScale);
                dLogits.add(base + argmax, Backend.L2WRAP_FACTOR * max * gradScale);
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
