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

    /**
     * {@code ranges} as {@link Backend#zeroRanges} takes them: [start, end) pairs of element offsets into a tensor of
     * {@code numel} elements, ascending and disjoint.
     */
    public static void ranges(String op, long[] ranges, long numel) {
        if (ranges == null || ranges.length % 2 != 0) {
            throw new IllegalArgumentException(op + ": ranges must be [start, end) pairs, got "
                    + (ranges == null ? "null" : ranges.length + " values"));
        }
        long previousEnd = 0;
        for (int i = 0; i < ranges.length; i += 2) {
            if (ranges[i] < previousEnd || ranges[i + 1] < ranges[i] || ranges[i + 1] > numel) {
                throw new IllegalArgumentException(op + ": range " + i / 2 + " [" + ranges[i] + ", " + ranges[i + 1]
                        + ") is not ascending, disjoint and inside the tensor's " + numel + " elements");
            }
            previousEnd = ranges[i + 1];
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

    /**
     * The number of token-shift mixes k of a call (1 … {@link Backend#MAX_MIXES}): {@code mixes} and {@code others}
     * (the outputs or output gradients) non-null with k entries each; {@code dMixes} null or with k entries.
     */
    public static int mixCount(String op, Tensor[] mixes, Tensor[] others, String othersName, Tensor[] dMixes) {
        if (mixes == null || others == null) {
            throw new IllegalArgumentException(op + ": " + (mixes == null ? "mixes" : othersName) + " is null");
        }
        int k = mixes.length;
        if (k < 1 || k > Backend.MAX_MIXES) {
            throw new IllegalArgumentException(op + ": " + k + " mixes, expected 1.." + Backend.MAX_MIXES);
        }
        if (others.length != k || (dMixes != null && dMixes.length != k)) {
            throw new IllegalArgumentException(op + ": " + k + " mixes but " + (others.length != k
                    ? others.length + " " + othersName : dMixes.length + " dMixes"));
        }
        return k;
    }

    /** "name[j]" for j < {@link Backend#MAX_MIXES}, made once (argument names of the mix ops' checks). */
    public static String[] indexedNames(String name) {
        String[] out = new String[Backend.MAX_MIXES];
        for (int j = 0; j < out.length; j++) {
            out[j] = name + "[" + j + "]";
        }
        return out;
    }
}
