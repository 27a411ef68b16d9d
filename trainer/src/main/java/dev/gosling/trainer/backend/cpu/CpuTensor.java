package dev.gosling.trainer.backend.cpu;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.backend.DType;
import dev.gosling.trainer.backend.Tensor;
import java.nio.IntBuffer;
import java.util.Arrays;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.Pointer;

/**
 * A CPU tensor: an off-heap JavaCPP allocation, or a view into one. The typed pointer, the direct buffer and the
 * {@link CpuStore} are made once here, so ops allocate nothing.
 */
final class CpuTensor implements Tensor {

    /** Largest operand an op can touch: a direct buffer's capacity in bytes. */
    static final long MAX_OPERAND_BYTES = Integer.MAX_VALUE;

    final CpuBackend owner;
    final DType dtype;
    private final int[] shape;
    final long numel;
    /** The allocation this tensor lives in (itself for an allocation). */
    private final CpuTensor root;
    /** Typed pointer at this tensor's first element, limit at its end. */
    private final Pointer at;
    /** Floating dtypes: element access for ops; null for I32 or for tensors over 2 GiB. */
    final CpuStore store;
    /** I32: element access; null otherwise or over 2 GiB. */
    final IntBuffer ints;
    private boolean closed;

    /** A new zero-filled allocation. */
    CpuTensor(CpuBackend owner, DType dtype, int[] shape) {
        this.owner = owner;
        this.dtype = dtype;
        this.shape = shape.clone();
        this.numel = numel(shape);
        this.root = this;
        // JavaCPP rejects 0-element allocations; keep one spare element so empty tensors are legal.
        long capacity = Math.max(1, numel);
        Pointer p;
        try {
            p = switch (dtype) {
                case F32 -> new FloatPointer(capacity);
                case F64 -> new DoublePointer(capacity);
                case I32 -> new IntPointer(capacity);
                case BF16 -> throw new IllegalArgumentException("the CPU backend has no BF16 tensors");
            };
        } catch (OutOfMemoryError e) {
            // JavaCPP caps off-heap memory at -Xmx by default and signals the cap with this error
            throw new GoslingException("cannot allocate a CPU tensor of " + numel * dtype.bytes + " bytes off-heap ("
                    + Pointer.totalBytes() + " in use, cap " + Pointer.maxBytes()
                    + "): raise -Xmx or -Dorg.bytedeco.javacpp.maxBytes, or use a smaller model/batch", e);
        }
        p.zero();
        this.at = p.limit(numel);
        this.store = makeStore();
        this.ints = makeInts();
    }

    /** A view of {@code numel(shape)} elements of {@code base}, {@code offset} elements in. */
    CpuTensor(CpuTensor base, long offset, int[] shape) {
        this.owner = base.owner;
        this.dtype = base.dtype;
        this.shape = shape.clone();
        this.numel = numel(shape);
        if (offset < 0 || offset + numel > base.numel) {
            throw new IllegalArgumentException("view [" + offset + ", " + (offset + numel) + ") is outside a tensor of "
                    + base.numel + " elements");
        }
        this.root = base.root;
        long start = base.at.position() + offset;
        Pointer p = switch (dtype) {
            case F32 -> new FloatPointer(base.at);
            case F64 -> new DoublePointer(base.at);
            case I32 -> new IntPointer(base.at);
            case BF16 -> throw new IllegalArgumentException("the CPU backend has no BF16 tensors");
        };
        this.at = p.position(start).limit(start + numel);
        this.store = makeStore();
        this.ints = makeInts();
    }

    private boolean fitsOneBuffer() {
        return numel * dtype.bytes <= MAX_OPERAND_BYTES;
    }

    private CpuStore makeStore() {
        if (!fitsOneBuffer()) {
            return null;
        }
        return switch (dtype) {
            case F32 -> new CpuStore.F32(((FloatPointer) at).asBuffer());
            case F64 -> new CpuStore.F64(((DoublePointer) at).asBuffer());
            case I32, BF16 -> null;
        };
    }

    private IntBuffer makeInts() {
        return dtype == DType.I32 && fitsOneBuffer() ? ((IntPointer) at).asBuffer() : null;
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

    boolean isClosed() {
        return root.closed;
    }

    /** Zeroes the elements (memset, any size). */
    void zero() {
        if (numel > 0) {
            at.zero();
        }
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

    @Override
    public void close() {
        if (root == this && !closed) {
            closed = true;
            at.close();
        }
    }

    @Override
    public String toString() {
        return "CpuTensor" + Arrays.toString(shape) + ":" + dtype + (root == this ? "" : " (view)");
    }
}
