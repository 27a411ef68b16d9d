package dev.gosling.trainer.data;

import java.io.IOException;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A read-only, little-endian memory map of a whole file of any length, as consecutive slices
 * (one MappedByteBuffer is limited to 2 GiB).
 *
 * <p>Slice k maps bytes [k·sliceBytes, (k+1)·sliceBytes + 8): the 8 extra bytes let any value of up to
 * 8 bytes that starts in slice k be read from slice k alone, even where it crosses into the next slice
 * (the .idx arrays start at offset 34, so they are not aligned to slice boundaries).
 *
 * <p>Absolute reads only, so one instance can be shared by threads. Mappings are not unmapped explicitly:
 * unmapping while another thread still reads would crash the JVM; the GC releases them.
 */
final class MappedFile {
    /** Production slice size: 1 GiB. */
    static final long DEFAULT_SLICE_BYTES = 1L << 30;
    private static final int OVERLAP_BYTES = 8;

    private final MappedByteBuffer[] slices;
    private final long sliceBytes;
    private final long length;

    private MappedFile(MappedByteBuffer[] slices, long sliceBytes, long length) {
        this.slices = slices;
        this.sliceBytes = sliceBytes;
        this.length = length;
    }

    /** Maps all of {@code path}; {@code sliceBytes} must be a positive multiple of 8 below 2 GiB. */
    static MappedFile map(Path path, long sliceBytes) throws IOException {
        checkSliceBytes(sliceBytes);
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            long length = channel.size();
            int count = Math.toIntExact((length + sliceBytes - 1) / sliceBytes);
            MappedByteBuffer[] slices = new MappedByteBuffer[count];
            for (int k = 0; k < count; k++) {
                long start = k * sliceBytes;
                long size = Math.min(sliceBytes + OVERLAP_BYTES, length - start);
                slices[k] = channel.map(FileChannel.MapMode.READ_ONLY, start, size);
                slices[k].order(ByteOrder.LITTLE_ENDIAN);
            }
            return new MappedFile(slices, sliceBytes, length);
        }
    }

    static void checkSliceBytes(long sliceBytes) {
        if (sliceBytes <= 0 || sliceBytes % 8 != 0 || sliceBytes > Integer.MAX_VALUE - OVERLAP_BYTES) {
            throw new IllegalArgumentException(
                "mapping slice size must be a positive multiple of 8 below 2 GiB, got " + sliceBytes);
        }
    }

    long length() {
        return length;
    }

    long sliceBytes() {
        return sliceBytes;
    }

    /** The slice that holds byte {@code position}. */
    MappedByteBuffer sliceAt(long position) {
        return slices[(int) (position / sliceBytes)];
    }

    /** Offset of byte {@code position} inside {@link #sliceAt}. */
    int offsetInSlice(long position) {
        return (int) (position % sliceBytes);
    }

    byte getByte(long position) {
        return sliceAt(position).get(offsetInSlice(position));
    }

    int getInt(long position) {
        return sliceAt(position).getInt(offsetInSlice(position));
    }

    long getLong(long position) {
        return sliceAt(position).getLong(offsetInSlice(position));
    }

    void getBytes(long position, byte[] dst) {
        for (int i = 0; i < dst.length; i++) {
            dst[i] = getByte(position + i);
        }
    }
}
