package dev.gosling.trainer.dist;

import dev.gosling.trainer.GoslingException;

import java.util.Locale;

/**
 * {@code --strategy}: how data-parallel ranks share the optimizer's work. Every strategy computes the same step (the
 * mean gradient over ranks, clipped by its global norm, one AdamW update); they differ in what each rank keeps and
 * what crosses the wire. With one rank there is nothing to share and every strategy runs as {@link #DDP}.
 * <ul>
 *   <li>{@link #DDP}: all-reduce the gradients, every rank runs AdamW on the whole buffer with full moments.</li>
 *   <li>{@link #ZERO1} (DeepSpeed stage 1): all-reduce the gradients; each rank keeps AdamW moments only for its
 *       contiguous {@link Shard} of the flat buffer, updates that shard, and the ranks all-gather the weights.</li>
 *   <li>{@link #ZERO2} (DeepSpeed stage 2): as ZERO1, but the gradients are partitioned too. The gradient buckets
 *       (each block's parameters, and the non-block ones) are reduce-scattered during the backward pass as each is
 *       finished, and each rank keeps only its piece of every bucket (and the AdamW moments of those pieces); the model
 *       holds gradients for the non-block parameters and two block-sized slots instead of a whole buffer.</li>
 * </ul>
 */
public enum Strategy {
    DDP, ZERO1, ZERO2;

    /** train_temp's (Lightning's) strategy strings and Gosling's short names; other values are one-line errors. */
    public static Strategy parse(String value) {
        String v = value == null ? "" : value.strip().toLowerCase(Locale.ROOT);
        return switch (v) {
            case "ddp", "auto", "single_device", "ddp_find_unused_parameters_false", "ddp_find_unused_parameters_true" -> DDP;
            case "zero1", "deepspeed_stage_1" -> ZERO1;
            case "zero2", "deepspeed_stage_2" -> ZERO2;
            case "deepspeed_stage_2_offload", "deepspeed_stage_3", "deepspeed_stage_3_offload", "zero3" ->
                    throw new GoslingException("--strategy " + value + ": CPU offload and ZeRO-3 are not implemented; use "
                            + "deepspeed_stage_2 (zero2), deepspeed_stage_1 (zero1) or ddp");
            default -> throw new GoslingException("--strategy " + value + " is not supported; use ddp, deepspeed_stage_1 (zero1) "
                    + "or deepspeed_stage_2 (zero2)");
        };
    }

    /** Whether each rank keeps optimizer state for its shard only. */
    public boolean shardsOptimizer() {
        return this != DDP;
    }
}
