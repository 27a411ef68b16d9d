package dev.gosling.trainer.optim;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.backend.Backend;
import dev.gosling.trainer.backend.DType;
import dev.gosling.trainer.backend.Tensor;
import dev.gosling.trainer.dist.Shard;
import dev.gosling.trainer.model.ParameterLayout;

import java.util.Arrays;

/**
 * {@link AdamW} with its moments on a backend's device, so a GPU step never copies weights or gradients to the host:
 * the same update, element by element in float32 ({@link Backend#adamwStep}), the same global-norm clipping (the
 * norm from {@link Backend#sumOfSquares}), the same bias corrections. The host sees the moments only when a
 * checkpoint is written ({@link #downloadMoments}) or restored ({@link #restore}).
 * <p>
 * Under a sharded strategy (ZeRO-1/2) an instance owns one contiguous {@link Shard} of the flat buffer: its moments
 * cover only that shard and {@link #step(Tensor, Tensor, double, int, double)} updates only that part of the weights,
 * with the norm of the whole gradient given by the caller (the sum of every rank's shard sum of squares).
 */
public final class DeviceAdamW implements AutoCloseable {
    private final Backend backend;
    private final float beta1;
    private final float beta2;
    private final float eps;
    private final double gradClip;
    private final long length;
    private final Shard shard;
    private final AdamW.Segments segments;
    private final Tensor m;
    private final Tensor v;
    private long step;

    /** Moments for every parameter of {@code layout}, zero, on {@code backend}; gradClip ≤ 0 turns clipping off. */
    public DeviceAdamW(Backend backend, ParameterLayout layout, double beta1, double beta2, double eps, double weightDecay,
                       double gradClip) {
        this(backend, layout, beta1, beta2, eps, weightDecay, gradClip, null);
    }

    /** Moments for the parameters in {@code shard} of the layout's flat buffer only (null: all of them). */
    public DeviceAdamW(Backend backend, ParameterLayout layout, double beta1, double beta2, double eps, double weightDecay,
                       double gradClip, Shard shard) {
        AdamW.validate(beta1, beta2, eps, weightDecay);
        this.backend = backend;
        this.beta1 = (float) beta1;
        this.beta2 = (float) beta2;
        this.eps = (float) eps;
        this.gradClip = gradClip;
        this.length = ParameterLayout.checkedLength(layout.totalElements(), "the optimizer's moments");
        this.shard = shard == null ? new Shard(0, length) : shard;
        if (this.shard.start() < 0 || this.shard.end() > length || this.shard.length() < 0) {
            throw new IllegalArgumentException("shard " + this.shard + " of a buffer of " + length);
        }
        this.segments = AdamW.segments(layout, weightDecay).slice(this.shard.start(), this.shard.end());
        Tensor first = backend.allocate(DType.F32, (int) this.shard.length());
        try {
            this.v = backend.allocate(DType.F32, (int) this.shard.length());
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
        checkLengths(params, grads);
        return step(params, grads, lr, ranks, backend.sumOfSquares(grads));
    }

    /**
     * The step with the norm taken from {@code sumOfSquares}, Σ g² of the whole summed gradient over every rank's
     * shard: only this instance's shard of {@code params} changes. Returns the norm of the mean gradient.
     */
    public double step(Tensor params, Tensor grads, double lr, int ranks, double sumOfSquares) {
        checkLengths(params, grads);
        double norm = Math.sqrt(sumOfSquares) / ranks;
        float gradScale = AdamW.clipScale(norm, gradClip) * (float) (1.0 / ranks);
        step++;
        float bc1 = (float) (1.0 - Math.pow(beta1, step));
        float bc2 = (float) (1.0 - Math.pow(beta2, step));
        if (isWhole()) {
            backend.adamwStep(params, grads, m, v, segments.ends(), segments.learningRates(lr), segments.decays(), beta1, beta2,
                    eps, gradScale, bc1, bc2);
        } else if (shard.length() > 0) {
            try (Tensor p = shardOf(params); Tensor g = shardOf(grads)) {
                backend.adamwStep(p, g, m, v, segments.ends(), segments.learningRates(lr), segments.decays(), beta1, beta2, eps,
                        gradScale, bc1, bc2);
            }
        }
        return norm;
    }

    /** The part of a layout-length tensor this instance updates (a view; close it, which frees nothing). */
    public Tensor shardOf(Tensor full) {
        return backend.view(full, shard.start(), (int) shard.length());
    }

    public Shard shard() {
        return shard;
    }

    /** Whether the moments cover the whole buffer (no sharding). */
    public boolean isWhole() {
        return shard.start() == 0 && shard.end() == length;
    }

    /** Bytes of optimizer state on the device (the two moments of the shard, fp32). */
    public long stateBytes() {
        return 2L * Float.BYTES * shard.length();
    }

    /** The first and second moments of the shard, on the device (for gathering them into a checkpoint). */
    public Tensor firstMoment() {
        return m;
    }

    public Tensor secondMoment() {
        return v;
    }

    private void checkLengths(Tensor params, Tensor grads) {
        if (params.numel() != length || grads.numel() != length) {
            throw new IllegalArgumentException("params " + params.numel() + " / grads " + grads.numel() + " elements, the layout has " + length);
        }
    }

    public long stepCount() {
        return step;
    }

    /** Copies the moments to the host (for a checkpoint's state); unsharded instances only. */
    public void downloadMoments(float[] firstMoment, float[] secondMoment) {
        if (!isWhole()) {
            throw new IllegalStateException("a sharded optimizer's moments are gathered over the ranks, not downloaded");
        }
        backend.download(m, firstMoment);
        backend.download(v, secondMoment);
    }

    /**
     * Restores saved moments (the whole buffer's, as a checkpoint holds them; a sharded instance takes its shard) and
     * step count, so a resumed run continues bit for bit.
     */
    public void restore(float[] firstMoment, float[] secondMoment, long stepCount) {
        if (firstMoment.length != length || secondMoment.length != length) {
            throw new GoslingException("optimizer state has " + firstMoment.length + "/" + secondMoment.length + " moments but the model has "
                    + length + " parameters; resume with the checkpoint's own model config");
        }
        if (stepCount < 0) {
            throw new GoslingException("optimizer state has a negative step count " + stepCount + "; the state file is damaged");
        }
        if (isWhole()) {
            backend.upload(firstMoment, m);
            backend.upload(secondMoment, v);
        } else {
            backend.upload(Arrays.copyOfRange(firstMoment, (int) shard.start(), (int) shard.end()), m);
            backend.upload(Arrays.copyOfRange(secondMoment, (int) shard.start(), (int) shard.end()), v);
        }
        step = stepCount;
    }

    @Override
    public void close() {
        m.close();
        v.close();
    }
}
