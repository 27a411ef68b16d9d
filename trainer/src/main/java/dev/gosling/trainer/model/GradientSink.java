package dev.gosling.trainer.model;

import dev.gosling.trainer.backend.Tensor;

/**
 * Receives gradient buckets ({@link ParameterLayout#buckets()}) during a backward pass, each as soon as its gradients
 * are complete: the training step starts a bucket's reduction over the ranks here, and it runs while the model goes on
 * with the next block. The model only calls it; what happens to the gradients (collectives, sharding) is the sink's
 * business.
 */
@FunctionalInterface
public interface GradientSink {

    /**
     * Bucket {@code bucket}'s gradients for this micro-batch are complete in {@code grads} (a tensor of the bucket's
     * length, in layout order). The sink may overwrite it, and may go on reading or writing it after this call returns
     * (an asynchronous reduction): the model does not touch it again in this pass, except to reuse the storage of a
     * block slot for a later block, which it announces first through {@link #beforeReuse}.
     */
    void bucketReady(ParameterLayout.Bucket bucket, Tensor grads);

    /**
     * The model is about to write bucket {@code bucket}'s gradients into {@code grads}, storage that held an earlier
     * bucket of this pass, handed to {@link #bucketReady} (ZeRO-2's block slots: block l reuses block l + 2's). The
     * sink must finish with that earlier bucket first, or order the backend's later work after what it still does with
     * it (a device-side wait). The default does nothing, for a sink that finishes inside {@link #bucketReady}.
     */
    default void beforeReuse(ParameterLayout.Bucket bucket, Tensor grads) {
    }
}
