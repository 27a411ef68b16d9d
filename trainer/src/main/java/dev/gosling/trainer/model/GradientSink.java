package dev.gosling.trainer.model;

import dev.gosling.trainer.backend.Tensor;

/**
 * Receives gradient buckets ({@link ParameterLayout#buckets()}) during a backward pass, each as soon as its gradients
 * are complete: the training step under ZeRO-2 reduces a bucket here, while the model goes on with the next block.
 * The model only calls it; what happens to the gradients (collectives, sharding) is the sink's business.
 */
@FunctionalInterface
public interface GradientSink {

    /**
     * Bucket {@code bucket}'s gradients for this micro-batch are complete in {@code grads} (a tensor of the bucket's
     * length, in layout order). The sink may overwrite it: the model does not read it again, and may reuse its storage
     * for another block once this call has returned.
     */
    void bucketReady(ParameterLayout.Bucket bucket, Tensor grads);
}
