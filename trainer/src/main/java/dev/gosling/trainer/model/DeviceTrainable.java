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

    /** The fp32 gradients in layout order, overwritten by {@link #forwardBackward}. */
    Tensor gradients();

    /** One micro-batch as {@link TrainableModel#forwardBackward}, leaving the gradients in {@link #gradients()}. */
    double forwardBackward(int[] inputs, int[] targets, int batchSize);

    /** Tells the model its master weights changed (a model computing from a lower-precision copy refreshes it). */
    void parametersUpdated();
}
