package dev.gosling.trainer.checkpoint;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * One tensor of a checkpoint: name, dtype, shape and its elements as contiguous little-endian bytes (row-major).
 * The bytes are held as a read-only buffer, possibly a memory-mapped slice of the file it was read from, so
 * multi-gigabyte checkpoints are never copied onto the heap. A tensor holds at most 2 GiB of data.
 */
public final class NamedTensor {
    private final TensorSpec spec;
    private final ByteBuffer data;

    private NamedTensor(TensorSpec spec, ByteBuffer data) {
        this.spec = spec;
        this.data = data;
    }

    /** Wraps the remaining bytes of {@code data} (not copied: the caller must not change them afterwards). */
    public static NamedTensor of(String name, DType dtype, long[] shape, ByteBuffer data) {
        TensorSpec spec = new TensorSpec(name, dtype, shape);
        if (data.remaining() != spec.byteSize()) {
            throw new IllegalArgumentException("tensor " + name + " " + dtype + " " + spec.shapeString() + " needs "
                    + spec.byteSize() + " bytes, got " + data.remaining());
        }
        ByteBuffer view = data.slice().asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
        return new NamedTensor(spec, view);
    }

    /** Copies {@code bytes} (little-endian elements). */
    public static NamedTensor ofBytes(String name, DType dtype, long[] shape, byte[] bytes) {
        return of(name, dtype, shape, ByteBuffer.wrap(bytes.clone()));
    }

    /** Encodes float values into {@code dtype} (bf16 and fp16 round to nearest even, as torch's .to() does). */
    public static NamedTensor fromFloats(String name, DType dtype, long[] shape, float[] values) {
        long numel = TensorSpec.elementCount(shape);
        if (numel != values.length) {
            throw new IllegalArgumentException("tensor " + name + " of shape " + java.util.Arrays.toString(shape)
                    + " needs " + numel + " values, got " + values.length);
        }
        ByteBuffer out = ByteBuffer.allocate(Math.multiplyExact(values.length, dtype.elementSize()))
                .order(ByteOrder.LITTLE_ENDIAN);
        switch (dtype) {
            case BF16:
                for (float v : values) {
                    out.putShort(FloatCodec.toBf16Bits(v));
                }
                break;
            case F16:
                for (float v : values) {
                    out.putShort(FloatCodec.toF16Bits(v));
                }
                break;
            default:
                for (float v : values) {
                    out.putFloat(v);
                }
        }
        out.flip();
        return of(name, dtype, shape, out);
    }

    /** The elements as floats (exact for every dtype here). */
    public float[] toFloats() {
        long numel = spec.numel();
        if (numel > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException("tensor " + spec.name() + " has too many elements for a float[]");
        }
        float[] out = new float[(int) numel];
        ByteBuffer in = data();
        if (spec.dtype() == DType.F32) {
            in.asFloatBuffer().get(out);
        } else {
            DType dtype = spec.dtype();
            for (int i = 0; i < out.length; i++) {
                out[i] = dtype.decode(in.getShort(2 * i));
            }
        }
        return out;
    }

    /** The same data under another name (for key prefixes a loader strips). */
    public NamedTensor withName(String newName) {
        return new NamedTensor(new TensorSpec(newName, spec.dtype(), spec.shape()), data);
    }

    public TensorSpec spec() {
        return spec;
    }

    public String name() {
        return spec.name();
    }

    public DType dtype() {
        return spec.dtype();
    }

    public long[] shape() {
        return spec.shape();
    }

    public long numel() {
        return spec.numel();
    }

    public long byteSize() {
        return spec.byteSize();
    }

    /** A fresh read-only little-endian view of the bytes, position 0, limit = byteSize(). */
    public ByteBuffer data() {
        return data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Equal when name, dtype, shape and every byte are equal. */
    @Override
    public boolean equals(Object o) {
        if (!(o instanceof NamedTensor)) {
            return false;
        }
        NamedTensor other = (NamedTensor) o;
        return spec.equals(other.spec) && data().equals(other.data());
    }

    @Override
    public int hashCode() {
        return Objects.hash(spec, data());
    }

    @Override
    public String toString() {
        return spec.toString();
    }
}
