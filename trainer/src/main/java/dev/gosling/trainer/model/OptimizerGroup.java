package dev.gosling.trainer.model;

/**
 * The three parameter groups of train_temp's {@code configure_optimizers} (rwkv7-reference.md §5.4).
 */
public enum OptimizerGroup {
    /** Everything else: LayerNorm/GroupNorm, x_*, the LoRA matrices, k_k, k_a, r_k, a0, v0. No weight decay. */
    LR_1X(1.0, false),
    /** Names containing {@code att.w0}: twice the learning rate, no weight decay. */
    LR_2X(2.0, false),
    /** Only when weight_decay > 0: names containing {@code .weight} whose squeezed shape has at least 2 dims. */
    LR_DECAY(1.0, true);

    private final double lrScale;
    private final boolean decays;

    OptimizerGroup(double lrScale, boolean decays) {
        this.lrScale = lrScale;
        this.decays = decays;
    }

    /** my_lr_scale: the group's lr is the schedule's lr times this. */
    public double lrScale() {
        return lrScale;
    }

    /** Whether the group gets the configured weight decay (all others get 0). */
    public boolean decays() {
        return decays;
    }
}
