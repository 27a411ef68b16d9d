package dev.gosling.trainer.model;

import java.util.Arrays;

/**
 * One parameter tensor: its state-dict name and shape, where it lives in the contiguous fp32 buffer, and what the
 * optimizer does with it. Row-major (the last dimension is contiguous), as torch stores it.
 *
 * @param index  position in state-dict order
 * @param name   exact state-dict key, e.g. {@code blocks.3.att.w0}
 * @param shape  torch shape, e.g. [1, 1, C] for the per-channel vectors, [H, 64] for r_k
 * @param offset first element in the contiguous buffer
 * @param numel  number of elements
 * @param layer  block index, or -1 for emb / ln_out / head
 */
public record ParamSpec(int index, String name, long[] shape, long offset, long numel, int layer) {

    public ParamSpec {
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** The size of dimension {@code i}. */
    public long dim(int i) {
        return shape[i];
    }

    public int rank() {
        return shape.length;
    }

    /** One past the last element in the contiguous buffer. */
    public long end() {
        return offset + numel;
    }

    /**
     * The group of §5.4, in train_temp's order of tests: {@code att.w0} first, then (weight_decay &gt; 0, a
     * {@code .weight} name, at least 2 dims after squeeze) decay, else 1x.
     */
    public OptimizerGroup group(double weightDecay) {
        if (name.contains("att.w0")) {
            return OptimizerGroup.LR_2X;
        }
        if (weightDecay > 0 && name.contains(".weight") && squeezedRank() >= 2) {
            return OptimizerGroup.LR_DECAY;
        }
        return OptimizerGroup.LR_1X;
    }

    private int squeezedRank() {
        int rank = 0;
        for (long d : shape) {
            if (d != 1) {
                rank++;
            }
        }
        return rank;
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof ParamSpec p && p.index == index && p.name.equals(name) && Arrays.equals(p.shape, shape)
                && p.offset == offset && p.numel == numel && p.layer == layer;
    }

    @Override
    public int hashCode() {
        return name.hashCode() * 31 + Long.hashCode(offset);
    }

    @Override
    public String toString() {
        return name + Arrays.toString(shape) + "@" + offset;
    }
}
