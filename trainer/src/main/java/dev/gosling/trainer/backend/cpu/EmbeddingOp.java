package dev.gosling.trainer.backend.cpu;

import dev.gosling.trainer.GoslingException;
import java.nio.IntBuffer;

/** Token embedding lookup and its scatter-add backward. */
final class EmbeddingOp {
    private EmbeddingOp() {
    }

    static void forward(CpuThreads threads, IntBuffer tokens, CpuStore weight, CpuStore out, int rows, int vocab, int C) {
        checkTokens(tokens, rows, vocab);
        threads.forRange(rows, 16, (slot, lo, hi) -> {
            for (int row = lo; row < hi; row++) {
                int src = tokens.get(row) * C;
                int dst = row * C;
                for (int c = 0; c < C; c++) {
                    out.set(dst + c, weight.get(src + c));
                }
            }
        });
    }

    /** dWeight[tokens[row]] += dOut[row]. Split over channels, so rows that share a token never race. */
    static void backward(CpuThreads threads, IntBuffer tokens, CpuStore dOut, CpuStore dWeight, int rows, int vocab, int C) {
        checkTokens(tokens, rows, vocab);
        threads.forRange(C, 16, (slot, lo, hi) -> {
            for (int row = 0; row < rows; row++) {
                int dst = tokens.get(row) * C;
                int src = row * C;
                for (int c = lo; c < hi; c++) {
                    dWeight.add(dst + c, dOut.get(src + c));
                }
            }
        });
    }

    private static void checkTokens(IntBuffer tokens, int rows, int vocab) {
        for (int row = 0; row < rows; row++) {
            int token = tokens.get(row);
            if (token < 0 || token >= vocab) {
                throw new GoslingException("token id " + token + " at position " + row + " is outside the vocabulary [0, "
                        + vocab + "): the data was tokenized for a different vocab_size than the model's");
            }
        }
    }
}
