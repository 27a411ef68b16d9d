package dev.gosling.trainer.backend.cpu;

/**
 * The optimizer's two ops on F32 stores: the sum of squares (one thread, element order, in double: exactly
 * {@code AdamW.globalNorm}²) and the AdamW step, in float32 with the same operation order as
 * {@code dev.gosling.trainer.optim.AdamW.step}, split over the pool (elements are independent, so the bits do not
 * depend on the split).
 */
final class OptimizerOps {
    private OptimizerOps() {
    }

    static double sumOfSquares(CpuStore.F32 x) {
        double sum = 0;
        for (int i = 0; i < x.length; i++) {
            double g = x.buf.get(i);
            sum += g * g;
        }
        return sum;
    }

    static void adamwStep(CpuThreads threads, CpuStore.F32 params, CpuStore.F32 grads, CpuStore.F32 m, CpuStore.F32 v,
                          long[] segmentEnds, float[] segmentLr, float[] segmentDecay, float beta1, float beta2,
                          float eps, float gradScale, float bc1, float bc2) {
        float oneMinusBeta1 = 1f - beta1;
        float oneMinusBeta2 = 1f - beta2;
        int start = 0;
        for (int s = 0; s < segmentEnds.length; s++) {
            int lo = start;
            int end = (int) segmentEnds[s];
            float lr = segmentLr[s];
            float decay = segmentDecay[s];
            threads.forRange(end - lo, 1 << 14, (slot, a, b) -> {
                for (int i = lo + a; i < lo + b; i++) {
                    float g = grads.buf.get(i) * gradScale;
                    float mi = beta1 * m.buf.get(i) + oneMinusBeta1 * g;
                    float vi = beta2 * v.buf.get(i) + oneMinusBeta2 * g * g;
                    m.buf.put(i, mi);
                    v.buf.put(i, vi);
                    float denom = (float) Math.sqrt(vi / bc2) + eps;
                    float p = params.buf.get(i);
                    float update = (mi / bc1) / denom + decay * p;
                    params.buf.put(i, p - lr * update);
                }
            });
            start = end;
        }
    }
}
