package dev.gosling.trainer.model;

import dev.gosling.trainer.backend.Backend;
import dev.gosling.trainer.backend.Tensor;

/**
 * A model whose weights, gradients and training step stay on its backend's device: the loop runs the optimizer
 * there ({@link dev.gosling.trainer.optim.DeviceAdamW}) and reduces gradients over ranks there, and copies weights to
 * the host only to write a checkpoint.
 */
public interface DeviceTrainable {

    Backend backend();

    /** The fp32 master weights in {@link ParameterLayout} order; the optimizer updates them in place. */
    Tensor masterParameters();

    /**
     * The fp32 gradients in layout order, overwritten by {@link #forwardBackward}; a model built to keep only gradient
     * buckets (ZeRO-2) has no whole buffer and throws IllegalStateException.
     */
    Tensor gradients();

    /** One micro-batch as {@link TrainableModel#forwardBackward}, leaving the gradients in {@link #gradients()}. */
    double forwardBackward(int[] inputs, int[] targets, int batchSize);

    /**
     * One micro-batch, handing each gradient bucket to {@code sink} as soon as the backward pass has finished it (every
     * bucket of {@link ParameterLayout#buckets()} once, in an order of the model's choosing) and telling it before
     * storage of a bucket handed over is reused ({@link GradientSink#beforeReuse}). Works whether or not the model keeps
     * a whole gradient buffer.
     */
    double forwardBackward(int[] inputs, int[] targets, int batchSize, GradientSink sink);

    /** Elements of gradient storage the model holds (the layout's length with a whole buffer). */
    long gradientElements();

    /**
     * Tells the model its master weights changed (a model computing from a lower-precision copy refreshes it): after
     * anything that writes {@link #masterParameters()} (an upload, a restore, an all-gather, an optimizer step not
     * given the {@link #weightCopy()}) and before the next pass.
     */
    void parametersUpdated();

    /**
     * The model's converted copy of its GEMM weights, which an optimizer updating every master writes in the same step
     * (then no {@link #parametersUpdated} is needed for that step); null (the default) when the model keeps none.
     */
    default WeightCopy weightCopy() {
        return null;
    }
}
