package dev.gosling.kernels;

import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;

/**
 * The argument block of a kernel launch, reused for every launch so that launching allocates nothing: one native array
 * of 8-byte slots holding the values and one array of pointers to those slots ({@code void** kernelParams}). Each
 * argument takes one slot whatever its size (ints and floats sit in the low 4 bytes, as the little-endian x86-64 and
 * Arm ABIs read them); a struct passed by value takes as many consecutive slots as it has 8-byte words. The pointer array is a {@link PointerPointer} (written through a {@link LongPointer} view of
 * the same memory): the presets' {@code cuLaunchKernel} overload that takes a plain {@code Pointer} for
 * {@code void**} does not pass it through (measured on an H100: CUDA_ERROR_INVALID_VALUE), the PointerPointer one does.
 * Not thread-safe: one per stream owner.
 */
public final class LaunchArgs implements AutoCloseable {
    private final int capacity;
    private final LongPointer slots;
    private final PointerPointer<Pointer> pointers;
    private final LongPointer pointerView;
    /** Arguments so far, and the slots they take. */
    private int count;
    private int used;

    public LaunchArgs(int capacity) {
        this.capacity = capacity;
        this.slots = new LongPointer(capacity);
        this.pointers = new PointerPointer<>(capacity);
        this.pointerView = new LongPointer(pointers);
    }

    /** Starts a new argument list. */
    public LaunchArgs reset() {
        count = 0;
        used = 0;
        return this;
    }

    /** The slot of the next argument, of {@code words} slots, pointed at by that argument's entry of the pointer array. */
    private int next(int words) {
        if (used + words > capacity) {
            throw new IllegalStateException("kernel arguments over " + capacity + " 8-byte slots");
        }
        int slot = used;
        pointerView.put(count++, slots.address() + 8L * slot);
        used += words;
        return slot;
    }

    private int next() {
        return next(1);
    }

    /**
     * A struct passed by value whose fields are the 8-byte {@code words} (pointers, {@code long long}s, or two ints
     * packed low word first, as little-endian x86-64 and Arm lay out such a pair), in declaration order.
     */
    public LaunchArgs struct(long[] words) {
        int slot = next(words.length);
        for (int i = 0; i < words.length; i++) {
            slots.put(slot + i, words[i]);
        }
        return this;
    }

    /** A device pointer (0 for a null pointer argument). */
    public LaunchArgs ptr(long deviceAddress) {
        slots.put(next(), deviceAddress);
        return this;
    }

    /** A 32-bit int. */
    public LaunchArgs i32(int value) {
        slots.put(next(), value & 0xffffffffL);
        return this;
    }

    /** A 64-bit int ({@code long long}). */
    public LaunchArgs i64(long value) {
        slots.put(next(), value);
        return this;
    }

    /** A 32-bit float. */
    public LaunchArgs f32(float value) {
        slots.put(next(), Float.floatToRawIntBits(value) & 0xffffffffL);
        return this;
    }

    public int count() {
        return count;
    }

    /** The {@code void**} to pass as kernelParams. */
    PointerPointer<Pointer> pointers() {
        return pointers;
    }

    /** The address held in pointer slot {@code i} (for diagnostics). */
    long pointerAt(int i) {
        return pointerView.get(i);
    }

    /** Word {@code word} of argument {@code arg}'s value (for tests). */
    long wordAt(int arg, int word) {
        return slots.get((pointerAt(arg) - slots.address()) / 8 + word);
    }

    @Override
    public void close() {
        slots.close();
        pointers.close();
    }
}
