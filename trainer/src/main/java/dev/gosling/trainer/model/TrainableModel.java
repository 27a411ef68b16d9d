package dev.gosling.trainer.model;

/**
 * What the training loop needs from a model: fp32 master weights in {@link ParameterLayout} order go in, a loss and the
 * fp32 gradient of every parameter come out. The loop (sampler, AdamW, schedule, checkpoints) never sees the backend.
 */
public interface TrainableModel extends AutoCloseable {

    ModelConfig config();

    ParameterLayout layout();

    /** Loads the master weights (length {@code layout().totalElements()}) into the model's working copy. */
    void setParameters(float[] master);

    /**
     * One micro-batch of {@code batchSize} samples of {@code config().ctxLen()} tokens each, row-major
     * ({@code inputs[b·T + t]}, {@code targets} the next tokens). Returns the mean cross-entropy loss and
     * <em>overwrites</em> {@code grads} (layout order) with its gradient, the L2Wrap term included.
     */
    double forwardBackward(int[] inputs, int[] targets, int batchSize, float[] grads);

    /** The mean cross-entropy loss only (evaluation; no gradients). */
    double loss(int[] inputs, int[] targets, int batchSize);

    /** The same model seen as one that trains on its device, or null when the loop must run AdamW on the host. */
    default DeviceTrainable onDevice() {
        return null;
    }

    @Override
    void close();
}
