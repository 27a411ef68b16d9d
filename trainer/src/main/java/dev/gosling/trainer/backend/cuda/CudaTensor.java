package dev.gosling.trainer.backend.cuda;

import dev.gosling.trainer.backend.DType;
import dev.gosling.trainer.backend.Tensor;
import java.util.Arrays;

/** Device memory from the {@link CudaBackend}'s caching allocator, or a view into it. */
final class CudaTensor implements Tensor {
    final CudaBackend owner;
    final DType dtype;
    private final int[] shape;
    final long numel;
    /** Device address of element 0. */
    final long address;
    private final CudaTensor root;
    private boolean closed;

    /** An allocation of {@code numel(shape)} elements at {@code address} (from the allocator). */
    CudaTensor(CudaBackend owner, DType dtype, int[] shape, long numel, long address) {
        this.owner = owner;
        this.dtype = dtype;
        this.shape = shape.clone();
        this.numel = numel;
        this.address = address;
        this.root = this;
    }

    /** A view of {@code numel(shape)} elements of {@code base}, {@code offset} elements in. */
    CudaTensor(CudaTensor base, long offset, int[] shape) {
        this.owner = base.owner;
        this.dtype = base.dtype;
        this.shape = shape.clone();
        this.numel = numel(shape);
        if (offset < 0 || offset + numel > base.numel) {
            throw new IllegalArgumentException("view [" + offset + ", " + (offset + numel) + ") is outside a tensor of "
                    + base.numel + " elements");
        }
        this.address = base.address + offset * dtype.bytes;
        this.root = base.root;
    }

    static long numel(int[] shape) {
        long n = 1;
        for (int d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
            }
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    long bytes() {
        return numel * dtype.bytes;
    }

    boolean isClosed() {
        return root.closed;
    }

    @Override
    public DType dtype() {
        return dtype;
    }

    @Override
    public int[] shape() {
        return shape.clone();
    }

    @Override
    public long numel() {
        return numel;
    }

    @Override
    public boolean ownsMemory() {
        return root == this;
    }

    /** Returns an allocation's memory to the backend's cache; a view does nothing. */
    @Override
    public void close() {
        if (root == this && !closed) {
            closed = true;
            owner.release(this);
        }
    }

    @Override
    public String toString() {
        return "CudaTensor" + Arrays.toString(shape) + ":" + dtype + (root == this ? "" : " (view)");
    }
}
