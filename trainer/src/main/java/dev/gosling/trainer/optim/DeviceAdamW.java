package dev.gosling.trainer.optim;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.backend.Backend;
import dev.gosling.trainer.backend.DType;
import dev.gosling.trainer.backend.Tensor;
import dev.gosling.trainer.model.ParameterLayout;

/**
 * {@link AdamW} with its moments on a backend's device, so a GPU step never copies weights or gradients to the host:
 * the same update, element by element in float32 ({@link Backend#adamwStep}), the same global-norm clipping (the
 * norm from {@link Backend#sumOfSquares}), the same bias corrections. The host sees the moments only when a
 * checkpoint is written ({@link #downloadMoments}) or restored ({@link #restore}).
 */
public final class DeviceAdamW implements AutoCloseable {
    private final Backend backend;
    private final float beta1;
    private final float beta2;
    private final float eps;
    private final double gradClip;
    private final long length;
    private final AdamW.Segments segments;
    private final Tensor m;
    private final Tensor v;
    private long step;

    /** Moments for every parameter of {@code layout}, zero, on {@code backend}; gradClip ≤ 0 turns clipping off. */
    public DeviceAdamW(Backend backend, ParameterLayout layout, double beta1, double beta2, double eps, double weightDecay,
                       double gradClip) {
        AdamW.validate(beta1, beta2, eps, weightDecay);
        this.backend = backend;
        this.beta1 = (float) beta1;
        this.beta2 = (float) beta2;
        this.eps = (float) eps;
        this.gradClip = gradClip;
        this.length = ParameterLayout.checkedLength(layout.totalElements(), "the optimizer's moments");
        this.segments = AdamW.segments(layout, weightDecay);
        Tensor first = backend.allocate(DType.F32, (int) length);
        try {
            this.v = backend.allocate(DType.F32, (int) length);
        } catch (RuntimeException | Error e) {
            first.close();
            throw e;
        }
        this.m = first;
    }

    /**
     * One step on fp32 {@code params} from fp32 {@code grads} (both the layout's length, on the same backend) with base
     * learning rate {@code lr}. {@code ranks} is the number of data-parallel ranks whose gradients were summed into
     * {@code grads}: the step uses their mean (a power of two divides exactly, so 1 rank and 2 ranks round alike).
     * Returns the norm of the mean gradient before clipping.
     */
    public double step(Tensor params, Tensor grads, double lr, int ranks) {
        if (params.numel() != length || grads.numel() != length) {
            throw new IllegalArgumentException("params " + params.numel() + " / grads " + grads.numel() + " elements, the layout has " + length);
        }
        double norm = Math.sqrt(backend.sumOfSquares(grads)) / ranks;
        float gradScale = AdamW.clipScale(norm, gradClip) * (float) (1.0 / ranks);
        step++;
        float bc1 = (float) (1.0 - Math.pow(beta1, step));
        float bc2 = (float) (1.0 - Math.pow(beta2, step));
        backend.adamwStep(params, grads, m, v, segments.ends(), segments.learningRates(lr), segments.decays(), beta1, beta2, eps,
                gradScale, bc1, bc2);
        return norm;
    }

    public long stepCount() {
        return step;
    }

    /** Copies the moments to the host (for a checkpoint's state). */
    public void downloadMoments(float[] firstMoment, float[] secondMoment) {
        backend.download(m, firstMoment);
        backend.download(v, secondMoment);
    }

    /** Restores saved moments and step count, so a resumed run continues bit for bit. */
    public void restore(float[] firstMoment, float[] secondMoment, long stepCount) {
        if (firstMoment.length != length || secondMoment.length != length) {
            throw new GoslingException("optimizer state has " + firstMoment.length + "/" + secondMoment.length + " moments but the model has "
                    + length + " parameters; resume with the checkpoint's own model config");
        }
        if (stepCount < 0) {
            throw new GoslingException("optimizer state has a negative step count " + stepCount + "; the state file is damaged");
        }
        backend.upload(firstMoment, m);
        backend.upload(secondMoment, v);
        step = stepCount;
    }

    @Override
    public void close() {
        m.close();
        v.close();
    }
}
