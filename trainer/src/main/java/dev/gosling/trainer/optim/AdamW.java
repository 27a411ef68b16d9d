package dev.gosling.trainer.optim;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.model.OptimizerGroup;
import dev.gosling.trainer.model.ParamSpec;
import dev.gosling.trainer.model.ParameterLayout;

import java.util.List;

/**
 * DeepSpeed's FusedAdam as train_temp configures it (rwkv7-reference.md §5.4), with ZeRO's global-norm gradient
 * clipping in front. fp32 master weights and fp32 moments in contiguous buffers aligned with {@link ParameterLayout};
 * a step allocates nothing. Per element, in float32, with t the step counter starting at 1:
 * <pre>
 *   g ← g·(1/clip) when clip = (‖g‖₂ + 1e-6)/grad_clip &gt; 1
 *   m ← β1·m + (1−β1)·g ;  v ← β2·v + (1−β2)·g·g
 *   u = (m/bc1) / (sqrt(v/bc2) + eps),  bc = 1 − β^t (double on the host, passed as float)
 *   p ← p − lr_group·(u + wd_group·p)      lr_group = lr·my_lr_scale (2 for att.w0), wd only in the decay group
 * </pre>
 * With weight_decay 0 train_temp runs FusedAdam in plain Adam mode, which is the same update with wd = 0.
 */
public final class AdamW {
    /** ZeRO adds this to the norm before dividing by grad_clip. */
    private static final double CLIP_EPSILON = 1e-6;

    private final ParameterLayout layout;
    private final float beta1;
    private final float beta2;
    private final float eps;
    private final double gradClip;
    private final int length;
    /** Per parameter tensor, in layout order: start, end, lr scale, weight decay. */
    private final int[] starts;
    private final int[] ends;
    private final double[] lrScales;
    private final float[] decays;
    private final float[] m;
    private final float[] v;
    private long step;

    /**
     * @param gradClip the global-norm limit; ≤ 0 turns clipping off (DeepSpeed clips only when gradient_clipping &gt; 0)
     */
    public AdamW(ParameterLayout layout, double beta1, double beta2, double eps, double weightDecay, double gradClip) {
        validate(beta1, beta2, eps, weightDecay);
        this.layout = layout;
        this.beta1 = (float) beta1;
        this.beta2 = (float) beta2;
        this.eps = (float) eps;
        this.gradClip = gradClip;
        this.length = ParameterLayout.checkedLength(layout.totalElements(), "the optimizer's moments");
        List<ParamSpec> specs = layout.params();
        int n = specs.size();
        starts = new int[n];
        ends = new int[n];
        lrScales = new double[n];
        decays = new float[n];
        for (int i = 0; i < n; i++) {
            ParamSpec spec = specs.get(i);
            OptimizerGroup group = spec.group(weightDecay);
            starts[i] = (int) spec.offset();
            ends[i] = (int) spec.end();
            lrScales[i] = group.lrScale();
            decays[i] = group.decays() ? (float) weightDecay : 0f;
        }
        m = new float[length];
        v = new float[length];
    }

    public ParameterLayout layout() {
        return layout;
    }

    /** One-line errors for hyperparameters FusedAdam would reject or that cannot train. */
    public static void validate(double beta1, double beta2, double eps, double weightDecay) {
        if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) {
            throw new GoslingException("--beta1 " + beta1 + " / --beta2 " + beta2 + ": both must be in [0, 1); train_temp uses 0.9 and 0.99");
        }
        if (!(eps > 0)) {
            throw new GoslingException("--adam_eps " + eps + " must be > 0; train_temp uses 1e-18");
        }
        if (!(weightDecay >= 0)) {
            throw new GoslingException("--weight_decay " + weightDecay + " must be >= 0");
        }
    }

    /**
     * The flat parameter buffer cut into runs of adjacent tensors that share a learning-rate scale and a weight decay
     * (the segments of {@link dev.gosling.trainer.backend.Backend#adamwStep}). Segment s ends at {@code ends[s]}.
     */
    public record Segments(long[] ends, double[] lrScales, float[] decays) {
        /**
         * The segments of the part [start, end) of the buffer, with ends relative to start (a ZeRO shard's optimizer
         * runs on a view of that part).
         */
        public Segments slice(long start, long end) {
            List<Long> e = new java.util.ArrayList<>();
            List<Integer> from = new java.util.ArrayList<>();
            long segmentStart = 0;
            for (int s = 0; s < ends.length; s++) {
                long lo = Math.max(segmentStart, start);
                long hi = Math.min(ends[s], end);
                if (lo < hi) {
                    e.add(hi - start);
                    from.add(s);
                }
                segmentStart = ends[s];
            }
            long[] outEnds = new long[e.size()];
            double[] outScales = new double[e.size()];
            float[] outDecays = new float[e.size()];
            for (int i = 0; i < outEnds.length; i++) {
                outEnds[i] = e.get(i);
                outScales[i] = lrScales[from.get(i)];
                outDecays[i] = decays[from.get(i)];
            }
            return new Segments(outEnds, outScales, outDecays);
        }

        /** Each segment's learning rate at base rate lr, rounded to float as {@link #step} rounds it. */
        public float[] learningRates(double lr) {
            float[] out = new float[lrScales.length];
            for (int s = 0; s < out.length; s++) {
                out[s] = (float) (lr * lrScales[s]);
            }
            return out;
        }
    }

    /** The segments of {@code layout} under weight decay {@code weightDecay}. */
    public static Segments segments(ParameterLayout layout, double weightDecay) {
        List<Long> ends = new java.util.ArrayList<>();
        List<Double> scales = new java.util.ArrayList<>();
        List<Float> decays = new java.util.ArrayList<>();
        for (ParamSpec spec : layout.params()) {
            OptimizerGroup group = spec.group(weightDecay);
            float decay = group.decays() ? (float) weightDecay : 0f;
            int last = ends.size() - 1;
            if (last >= 0 && scales.get(last) == group.lrScale() && decays.get(last) == decay) {
                ends.set(last, spec.end());
            } else {
                ends.add(spec.end());
                scales.add(group.lrScale());
                decays.add(decay);
            }
        }
        long[] e = new long[ends.size()];
        double[] sc = new double[e.length];
        float[] d = new float[e.length];
        for (int i = 0; i < e.length; i++) {
            e[i] = ends.get(i);
            sc[i] = scales.get(i);
            d[i] = decays.get(i);
        }
        return new Segments(e, sc, d);
    }

    /**
     * One optimizer step: clips {@code grads} by their global norm (without modifying them), updates the moments and
     * {@code params} in place with base learning rate {@code lr}. Returns the gradient norm before clipping.
     */
    public double step(float[] params, float[] grads, double lr) {
        if (params.length != length || grads.length != length) {
            throw new IllegalArgumentException("params " + params.length + " / grads " + grads.length + " floats, layout has " + length);
        }
        double norm = globalNorm(grads);
        float gradScale = clipScale(norm, gradClip);
        step++;
        float bc1 = (float) (1.0 - Math.pow(beta1, step));
        float bc2 = (float) (1.0 - Math.pow(beta2, step));
        float oneMinusBeta1 = 1f - beta1;
        float oneMinusBeta2 = 1f - beta2;
        for (int t = 0; t < starts.length; t++) {
            float groupLr = (float) (lr * lrScales[t]);
            float decay = decays[t];
            for (int i = starts[t]; i < ends[t]; i++) {
                float g = grads[i] * gradScale;
                float mi = beta1 * m[i] + oneMinusBeta1 * g;
                float vi = beta2 * v[i] + oneMinusBeta2 * g * g;
                m[i] = mi;
                v[i] = vi;
                float denom = (float) Math.sqrt(vi / bc2) + eps;
                float update = (mi / bc1) / denom + decay * params[i];
                params[i] = params[i] - groupLr * update;
            }
        }
        return norm;
    }

    /** The L2 norm of all gradients, accumulated in double (DeepSpeed sums per-tensor norms in double). */
    public static double globalNorm(float[] grads) {
        double sum = 0;
        for (float g : grads) {
            sum += (double) g * g;
        }
        return Math.sqrt(sum);
    }

    /**
     * ZeRO's unscale_and_clip_grads with loss scale 1: clip = (norm + 1e-6)/grad_clip; if clip &gt; 1 the gradients are
     * multiplied by float32(1/clip), otherwise by 1.
     */
    public static float clipScale(double norm, double gradClip) {
        if (gradClip > 0) {
            double clip = (norm + CLIP_EPSILON) / gradClip;
            if (clip > 1) {
                return (float) (1.0 / clip);
            }
        }
        return 1f;
    }

    /** Optimizer steps taken so far (t of the bias correction). */
    public long stepCount() {
        return step;
    }

    /** The first moments (live; copy before saving while training continues). */
    public float[] firstMoment() {
        return m;
    }

    /** The second moments (live; copy before saving while training continues). */
    public float[] secondMoment() {
        return v;
    }

    /** Restores saved moments and step count, so a resumed run continues bit for bit. */
    public void restore(float[] firstMoment, float[] secondMoment, long stepCount) {
        checkRestorable(firstMoment, secondMoment, stepCount, length);
        System.arraycopy(firstMoment, 0, m, 0, length);
        System.arraycopy(secondMoment, 0, v, 0, length);
        step = stepCount;
    }

    /** One-line errors for saved moments that do not fit a model of {@code length} parameters, or a damaged step count. */
    static void checkRestorable(float[] firstMoment, float[] secondMoment, long stepCount, long length) {
        if (firstMoment.length != length || secondMoment.length != length) {
            throw new GoslingException("optimizer state has " + firstMoment.length + "/" + secondMoment.length + " moments but the model has "
                    + length + " parameters; resume with the checkpoint's own model config");
        }
        if (stepCount < 0) {
            throw new GoslingException("optimizer state has a negative step count " + stepCount + "; the state file is damaged");
        }
    }
}
