package dev.gosling.trainer.backend.cpu;

/**
 * Pointwise ops, each forward beside its backward: residual add, gradient accumulate, the output gate o⊙g, the value
 * residual and the channel mix's relu². All work on n = rows·C elements, split evenly over the pool.
 */
final class ElementwiseOps {
    private ElementwiseOps() {
    }

    /** Below this many elements per thread a hand-off costs more than it saves. */
    private static final int MIN_CHUNK = 1 << 14;

    // ------------------------------------------------------------------------------------------------ add

    /** out = a + b (out may alias a or b: each element is read before it is written). */
    static void add(CpuThreads threads, CpuStore a, CpuStore b, CpuStore out, int n) {
        threads.forRange(n, MIN_CHUNK, (slot, lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                out.set(i, a.get(i) + b.get(i));
            }
        });
    }

    /** dst += src: also the whole backward pass of {@link #add} (each addend gets dOut). */
    static void accumulate(CpuThreads threads, CpuStore src, CpuStore dst, int n) {
        threads.forRange(n, MIN_CHUNK, (slot, lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                dst.add(i, src.get(i));
            }
        });
    }

    // ------------------------------------------------------------------------------------------------ gate

    /** out = x⊙gate. */
    static void gateForward(CpuThreads threads, CpuStore x, CpuStore gate, CpuStore out, int n) {
        threads.forRange(n, MIN_CHUNK, (slot, lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                out.set(i, x.get(i) * gate.get(i));
            }
        });
    }

    /** dx += dOut⊙gate; dGate += dOut⊙x. */
    static void gateBackward(CpuThreads threads, CpuStore dOut, CpuStore x, CpuStore gate, CpuStore dx, CpuStore dGate,
                             int n) {
        threads.forRange(n, MIN_CHUNK, (slot, lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                double g = dOut.get(i);
                dx.add(i, g * gate.get(i));
                dGate.add(i, g * x.get(i));
            }
        });
    }

    // ------------------------------------------------------------------------------------------------ value residual

    /** out = v + (vFirst − v)⊙σ(gatePre) (§6.4, layers ≥ 1; the v gate's sigmoid taken here from its pre-activation). */
    static void valueResidualForward(CpuThreads threads, CpuStore v, CpuStore vFirst, CpuStore gatePre, CpuStore out,
                                     int n) {
        threads.forRange(n, MIN_CHUNK, (slot, lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                double vi = v.get(i);
                out.set(i, vi + (vFirst.get(i) - vi) * LinearOps.sigmoid(gatePre.get(i)));
            }
        });
    }

    /** With s = σ(gatePre): dv += dOut⊙(1 − s); dvFirst += dOut⊙s; dGatePre += dOut⊙(vFirst − v)⊙s(1 − s). */
    static void valueResidualBackward(CpuThreads threads, CpuStore dOut, CpuStore v, CpuStore vFirst, CpuStore gatePre,
                                      CpuStore dv, CpuStore dvFirst, CpuStore dGatePre, int n) {
        threads.forRange(n, MIN_CHUNK, (slot, lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                double g = dOut.get(i);
                double s = LinearOps.sigmoid(gatePre.get(i));
                dv.add(i, g * (1.0 - s));
                dvFirst.add(i, g * s);
                dGatePre.add(i, g * (vFirst.get(i) - v.get(i)) * (s * (1.0 - s)));
            }
        });
    }

    // ------------------------------------------------------------------------------------------------ relu²

    /** out = relu(x)² (the channel mix's k, §6.4). */
    static void reluSquaredForward(CpuThreads threads, CpuStore x, CpuStore out, int n) {
        threads.forRange(n, MIN_CHUNK, (slot, lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                double r = Math.max(x.get(i), 0.0);
                out.set(i, r * r);
            }
        });
    }

    /**
     * dPre = dAct·2·√act, written (dPre may be dAct or act): relu²'s backward from its output act = relu(pre)², as
     * √act = relu(pre) (exactly in float64, where √(fl(x²)) = |x|; from an fp32 act to about fp32 rounding).
     */
    static void reluSquaredBackward(CpuThreads threads, CpuStore dAct, CpuStore act, CpuStore dPre, int n) {
        threads.forRange(n, MIN_CHUNK, (slot, lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                dPre.set(i, dAct.get(i) * 2.0 * Math.sqrt(act.get(i)));
            }
        });
    }
}
