package dev.gosling.trainer.backend;

/** The dimension and argument checks every backend makes before an op (programming errors, not user errors). */
public final class BackendChecks {
    private BackendChecks() {
    }

    public static void dims(String op, int... dims) {
        for (int d : dims) {
            if (d < 0) {
                throw new IllegalArgumentException(op + ": negative dimension " + d);
            }
        }
    }

    public static void heads(String op, int C) {
        if (C % Backend.HEAD_SIZE != 0) {
            throw new IllegalArgumentException(op + ": C = " + C + " is not a multiple of the head size " + Backend.HEAD_SIZE);
        }
    }

    public static void vocab(String op, int vocab) {
        if (vocab < 1) {
            throw new IllegalArgumentException(op + ": vocab must be >= 1, got " + vocab);
        }
    }

    public static void activations(String op, Activation hiddenAct, Activation outAct) {
        if (hiddenAct == null || outAct == null) {
            throw new IllegalArgumentException(op + ": activation is null");
        }
    }

    public static long elementwise(String op, int rows, int C) {
        dims(op, rows, C);
        return (long) rows * C;
    }

    public static long sequenceDims(String op, int B, int T, int C) {
        dims(op, B, T, C);
        return (long) B * T * C;
    }
}
