package dev.gosling.trainer.checkpoint;

import java.util.Arrays;
import java.util.Objects;

/** A tensor's name, dtype and shape, without its data: what a checkpoint's header or pickle says. */
public final class TensorSpec {
    private final String name;
    private final DType dtype;
    private final long[] shape;
    private final long numel;

    public TensorSpec(String name, DType dtype, long[] shape) {
        this.name = Objects.requireNonNull(name, "name");
        this.dtype = Objects.requireNonNull(dtype, "dtype");
        this.shape = shape.clone();
        this.numel = elementCount(this.shape);
    }

    /** Product of the dimensions (1 for a scalar); refuses negative dimensions and overflow. */
    public static long elementCount(long[] shape) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
            }
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    public String name() {
        return name;
    }

    public DType dtype() {
        return dtype;
    }

    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    /** Size of dimension {@code i}. */
    public long dim(int i) {
        return shape[i];
    }

    public long numel() {
        return numel;
    }

    public long byteSize() {
        return Math.multiplyExact(numel, (long) dtype.elementSize());
    }

    /** The shape as torch prints it: [2, 3]. */
    public String shapeString() {
        return Arrays.toString(shape);
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof TensorSpec)) {
            return false;
        }
        TensorSpec other = (TensorSpec) o;
        return name.equals(other.name) && dtype == other.dtype && Arrays.equals(shape, other.shape);
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, dtype, Arrays.hashCode(shape));
    }

    @Override
    public String toString() {
        return name + " " + dtype + " " + shapeString();
    }
}
