package dev.gosling.trainer.data;

import java.util.Arrays;

/**
 * A growable list of primitive ints: the token sink of {@link WorldTokenizer}'s allocation-light encoders.
 * Reuse one per thread (call {@link #clear()} between documents) so that encoding millions of documents
 * allocates nothing once the array has grown to the largest document. Not thread-safe.
 */
public final class IntList {
    private int[] values;
    private int size;

    public IntList() {
        this(1024);
    }

    public IntList(int initialCapacity) {
        if (initialCapacity < 0) {
            throw new IllegalArgumentException("negative capacity " + initialCapacity);
        }
        values = new int[initialCapacity];
    }

    public int size() {
        return size;
    }

    public boolean isEmpty() {
        return size == 0;
    }

    public int get(int index) {
        if (index < 0 || index >= size) {
            throw new IndexOutOfBoundsException("index " + index + " of size " + size);
        }
        return values[index];
    }

    public void add(int value) {
        if (size == values.length) {
            grow(size + 1);
        }
        values[size++] = value;
    }

    public void addAll(int[] src, int off, int len) {
        ensureCapacity(size + len);
        System.arraycopy(src, off, values, size, len);
        size += len;
    }

    /** Forgets the contents and keeps the storage. */
    public void clear() {
        size = 0;
    }

    public void ensureCapacity(int capacity) {
        if (capacity > values.length) {
            grow(capacity);
        }
    }

    /** A copy of the contents. */
    public int[] toArray() {
        return Arrays.copyOf(values, size);
    }

    /** The backing array, valid up to {@link #size()}; it changes identity when the list grows. */
    public int[] array() {
        return values;
    }

    /** Sets the size after a caller wrote directly into {@link #array()} (after {@link #ensureCapacity}). */
    void setSize(int newSize) {
        if (newSize < 0 || newSize > values.length) {
            throw new IndexOutOfBoundsException("size " + newSize + " of capacity " + values.length);
        }
        size = newSize;
    }

    private void grow(int minCapacity) {
        if (minCapacity < 0) {
            throw new OutOfMemoryError("IntList larger than 2^31 entries");
        }
        // Doubling keeps appends amortised O(1); the cap stays below the JVM's array limit.
        long doubled = Math.max(16L, 2L * values.length);
        int capacity = (int) Math.min(Integer.MAX_VALUE - 8L, Math.max(doubled, minCapacity));
        values = Arrays.copyOf(values, capacity);
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < size; i++) {
            if (i > 0) {
                sb.append(", ");
            }
            sb.append(values[i]);
        }
        return sb.append(']').toString();
    }
}
