package dev.gosling.trainer.backend;

/** Argument checks shared by every backend's {@link Backend#adamwStep}. */
public final class AdamWSegments {
    private AdamWSegments() {
    }

    /** Throws unless the segments are non-empty, strictly increasing, end at {@code numel} and match the arrays. */
    public static void check(long numel, long[] segmentEnds, float[] segmentLr, float[] segmentDecay) {
        if (segmentEnds == null || segmentLr == null || segmentDecay == null) {
            throw new IllegalArgumentException("adamwStep: segment arrays must not be null");
        }
        if (segmentEnds.length == 0 || segmentEnds.length != segmentLr.length
                || segmentEnds.length != segmentDecay.length) {
            throw new IllegalArgumentException("adamwStep: " + segmentEnds.length + " segment ends, "
                    + segmentLr.length + " learning rates, " + segmentDecay.length + " decays (need as many, ≥ 1)");
        }
        long previous = 0;
        for (int s = 0; s < segmentEnds.length; s++) {
            if (segmentEnds[s] <= previous) {
                throw new IllegalArgumentException("adamwStep: segment " + s + " ends at " + segmentEnds[s]
                        + ", not after " + previous);
            }
            previous = segmentEnds[s];
        }
        if (previous != numel) {
            throw new IllegalArgumentException("adamwStep: segments end at " + previous + " but the buffers hold "
                    + numel + " elements");
        }
    }
}
