package dev.gosling.trainer.backend;

/**
 * An opaque handle to a dense, row-major block of elements owned by one {@link Backend} (host memory for the CPU
 * backend, device memory for a GPU backend). Only the backend that made a tensor can read or write it; host code moves
 * data with {@link Backend#upload} and {@link Backend#download}.
 *
 * <p>A tensor is either an allocation ({@link Backend#allocate}) or a view into one ({@link Backend#view}); views are
 * how the model lays out all parameters, gradients and activations in a few contiguous buffers. Closing an allocation
 * frees its memory and invalidates its views; closing a view does nothing.
 */
public interface Tensor extends AutoCloseable {
    DType dtype();

    /** The shape (a copy). Ops check element counts against their dimension arguments, not the shape itself. */
    int[] shape();

    /** Number of elements (the product of the shape). */
    long numel();

    /** True for an allocation, false for a view. */
    boolean ownsMemory();

    @Override
    void close();
}
