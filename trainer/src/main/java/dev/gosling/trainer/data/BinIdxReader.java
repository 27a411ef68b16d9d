package dev.gosling.trainer.data;

import dev.gosling.trainer.GoslingException;
import java.io.Closeable;
import java.io.IOException;
import java.nio.MappedByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Objects;

/**
 * Reads a binidx pair (rwkv7-reference.md §2), validated completely on {@link #open}: a pair that opens is
 * consistent byte for byte, and every problem is reported as one line naming the file.
 *
 * <p>The .bin is memory-mapped in slices, so files over 2 GiB work. Pretraining reads it as one flat token
 * stream by absolute token offset ({@link #readTokens}, reference §2.3); items and doc_idx are there for
 * inspection and SFT data. Reads are absolute, so one reader can be shared by threads.
 *
 * <p>Tokens of every integer dtype can be read (uint16 is what RWKV uses and the fast path; json2binidx writes
 * int32 for the world vocab); the float dtypes open but cannot be read as tokens.
 */
public final class BinIdxReader implements Closeable {
    private final Path binPath;
    private final Path idxPath;
    private final int dtypeCode;
    private final int itemSize;
    private final int itemCount;
    private final int docIdxLength;
    private final long tokenCount;
    private final long pointersAt;
    private final long docIdxAt;
    private final MappedFile idx;
    private final MappedFile bin;
    private boolean closed;

    private BinIdxReader(Path binPath, Path idxPath, int dtypeCode, int itemCount, int docIdxLength,
                         long tokenCount, MappedFile idx, MappedFile bin) {
        this.binPath = binPath;
        this.idxPath = idxPath;
        this.dtypeCode = dtypeCode;
        this.itemSize = BinIdxFormat.itemSize(dtypeCode);
        this.itemCount = itemCount;
        this.docIdxLength = docIdxLength;
        this.tokenCount = tokenCount;
        this.pointersAt = BinIdxFormat.HEADER_BYTES + 4L * itemCount;
        this.docIdxAt = pointersAt + 8L * itemCount;
        this.idx = idx;
        this.bin = bin;
    }

    /** Opens and validates {@code data/x.bin} + {@code data/x.idx}, given {@code data/x} or either file. */
    public static BinIdxReader open(Path prefixOrFile) {
        return open(prefixOrFile, MappedFile.DEFAULT_SLICE_BYTES);
    }

    /**
     * As {@link #open(Path)}, mapping the files in slices of {@code mappingSliceBytes} (a positive multiple of 8
     * below 2 GiB; the default is 1 GiB). Small slices exist so tests can cross slice boundaries with small files.
     */
    public static BinIdxReader open(Path prefixOrFile, long mappingSliceBytes) {
        MappedFile.checkSliceBytes(mappingSliceBytes);
        Path binPath = BinIdxFormat.binPath(prefixOrFile);
        Path idxPath = BinIdxFormat.idxPath(prefixOrFile);
        if (!Files.isRegularFile(idxPath)) {
            throw new GoslingException(idxPath + ": not found; a binidx dataset is the pair " + binPath.getFileName()
                + " + " + idxPath.getFileName() + ": give its prefix or either file");
        }
        if (!Files.isRegularFile(binPath)) {
            throw new GoslingException(binPath + ": not found, but its index " + idxPath.getFileName()
                + " is there; copy the .bin beside it or write the pair again");
        }
        MappedFile idx = map(idxPath, mappingSliceBytes);
        Header header = readHeader(idxPath, idx);
        long binBytes = checkSizesAndPointers(idxPath, idx, header);
        checkDocIdx(idxPath, idx, header);
        long binLength;
        try {
            binLength = Files.size(binPath);
        } catch (IOException e) {
            throw ioFailure(binPath, e);
        }
        if (binLength != binBytes) {
            throw new GoslingException(binPath + ": " + (binLength < binBytes ? "truncated" : "too long") + ": "
                + binLength + " bytes, but " + idxPath.getFileName() + " says " + binBytes / header.itemSize
                + " tokens × " + header.itemSize + " bytes = " + binBytes
                + " bytes; the pair is incomplete or mismatched, write it again");
        }
        MappedFile bin = map(binPath, mappingSliceBytes);
        return new BinIdxReader(binPath, idxPath, header.dtypeCode, (int) header.items, (int) header.docCount,
            binBytes / header.itemSize, idx, bin);
    }

    public Path binPath() {
        return binPath;
    }

    public Path idxPath() {
        return idxPath;
    }

    /** dtype code of the .idx (8 = uint16 for RWKV data). */
    public int dtypeCode() {
        return dtypeCode;
    }

    /** Bytes per token in the .bin. */
    public int itemSizeBytes() {
        return itemSize;
    }

    /** Tokens in the .bin (= its length / item size): the trainer's data_size. */
    public long tokenCount() {
        return tokenCount;
    }

    /** Items ({@code len} in the .idx). */
    public int itemCount() {
        return itemCount;
    }

    /** Documents (doc_idx has one entry more). */
    public int documentCount() {
        return docIdxLength - 1;
    }

    /** Tokens in item {@code item}. */
    public int size(int item) {
        checkOpen();
        Objects.checkIndex(item, itemCount);
        return idx.getInt(BinIdxFormat.HEADER_BYTES + 4L * item);
    }

    /** Byte offset of item {@code item} in the .bin. */
    public long pointer(int item) {
        checkOpen();
        Objects.checkIndex(item, itemCount);
        return idx.getLong(pointersAt + 8L * item);
    }

    /** Entries in doc_idx ({@code doc_count} in the header). */
    public int docIdxLength() {
        return docIdxLength;
    }

    /** doc_idx[i]: the first item of document i (the last entry is the item count). */
    public long docIdx(int i) {
        checkOpen();
        Objects.checkIndex(i, docIdxLength);
        return idx.getLong(docIdxAt + 8L * i);
    }

    /** A copy of the whole doc_idx. */
    public long[] docIdx() {
        long[] out = new long[docIdxLength];
        for (int i = 0; i < docIdxLength; i++) {
            out[i] = docIdx(i);
        }
        return out;
    }

    /** The tokens of item {@code i}. */
    public int[] item(int i) {
        int[] out = new int[size(i)];
        readTokens(pointer(i) / itemSize, out, 0, out.length);
        return out;
    }

    /**
     * Copies tokens [tokenOffset, tokenOffset+len) of the flat stream to {@code dst[dstOff…]}, across item and
     * mapping boundaries: the sampler's hot path.
     */
    public void readTokens(long tokenOffset, int[] dst, int dstOff, int len) {
        checkOpen();
        Objects.checkFromIndexSize(dstOff, len, dst.length);
        if (tokenOffset < 0 || tokenOffset > tokenCount - len) {
            throw new GoslingException(binPath + ": cannot read " + len + " tokens at token offset " + tokenOffset
                + ": the data has " + tokenCount + " tokens; magic_prime and ctx_len must be those computed for this data");
        }
        if (!BinIdxFormat.isIntegerDtype(dtypeCode)) {
            throw new GoslingException(idxPath + ": dtype code " + dtypeCode + " (" + BinIdxFormat.dtypeName(dtypeCode)
                + ") holds no token ids; token data must use an integer dtype (RWKV: 8 = uint16), write it again");
        }
        long position = tokenOffset * itemSize;
        int at = dstOff;
        int end = dstOff + len;
        while (at < end) {
            // Slices are multiples of 8 bytes, so no token straddles two of them.
            int inSlice = bin.offsetInSlice(position);
            int count = (int) Math.min(end - at, (bin.sliceBytes() - inSlice) / itemSize);
            decode(bin.sliceAt(position), inSlice, dst, at, count, position);
            at += count;
            position += (long) count * itemSize;
        }
    }

    /** Drops the mappings (the GC unmaps them); further reads throw IllegalStateException. */
    @Override
    public void close() {
        closed = true;
    }

    private void decode(MappedByteBuffer slice, int from, int[] dst, int dstOff, int count, long position) {
        switch (dtypeCode) {
            case BinIdxFormat.DTYPE_UINT16:
                for (int k = 0; k < count; k++) {
                    dst[dstOff + k] = slice.getShort(from + 2 * k) & 0xFFFF;
                }
                return;
            case 1:
                for (int k = 0; k < count; k++) {
                    dst[dstOff + k] = slice.get(from + k) & 0xFF;
                }
                return;
            case 2:
                for (int k = 0; k < count; k++) {
                    dst[dstOff + k] = checkedToken(slice.get(from + k), position, k);
                }
                return;
            case 3:
                for (int k = 0; k < count; k++) {
                    dst[dstOff + k] = checkedToken(slice.getShort(from + 2 * k), position, k);
                }
                return;
            case 4:
                for (int k = 0; k < count; k++) {
                    dst[dstOff + k] = checkedToken(slice.getInt(from + 4 * k), position, k);
                }
                return;
            case 5:
                for (int k = 0; k < count; k++) {
                    dst[dstOff + k] = checkedToken(slice.getLong(from + 8 * k), position, k);
                }
                return;
            default:
                throw new IllegalStateException("dtype " + dtypeCode + " passed the integer check");
        }
    }

    private int checkedToken(long value, long position, int k) {
        if (value < 0 || value > Integer.MAX_VALUE) {
            throw new GoslingException(binPath + ": token " + (position / itemSize + k) + " is " + value
                + ", not a token id; the data is corrupt or is not token data");
        }
        return (int) value;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException(binPath + ": reader is closed");
        }
    }

    private static final class Header {
        final int dtypeCode;
        final int itemSize;
        final long items;
        final long docCount;

        Header(int dtypeCode, long items, long docCount) {
            this.dtypeCode = dtypeCode;
            this.itemSize = BinIdxFormat.itemSize(dtypeCode);
            this.items = items;
            this.docCount = docCount;
        }
    }

    private static Header readHeader(Path idxPath, MappedFile idx) {
        long length = idx.length();
        if (length < BinIdxFormat.HEADER_BYTES) {
            throw corrupt(idxPath, "truncated: " + length + " bytes, shorter than the "
                + BinIdxFormat.HEADER_BYTES + "-byte header");
        }
        byte[] magic = new byte[9];
        idx.getBytes(0, magic);
        if (!BinIdxFormat.isMagic(magic)) {
            throw new GoslingException(idxPath + ": not a binidx index: its first 9 bytes are " + hex(magic)
                + ", not the magic 4D 4D 49 44 49 44 58 00 00 (MMIDIDX); give the .idx written with its .bin");
        }
        long version = idx.getLong(9);
        if (version != BinIdxFormat.VERSION) {
            throw new GoslingException(idxPath + ": unsupported binidx version " + Long.toUnsignedString(version)
                + "; only version 1 exists, the file is corrupt or not MMIDIDX");
        }
        int dtypeCode = idx.getByte(17) & 0xFF;
        if (!BinIdxFormat.isKnownDtype(dtypeCode)) {
            throw corrupt(idxPath, "unknown dtype code " + dtypeCode + " (codes are 1..8; RWKV data uses 8 = uint16)");
        }
        long items = idx.getLong(18);
        long docCount = idx.getLong(26);
        // Bounded before multiplying, so a garbage header cannot overflow the expected size.
        long limit = 1L << 40;
        boolean plausible = items >= 0 && items <= limit && docCount >= 0 && docCount <= limit;
        long expected = plausible ? BinIdxFormat.idxFileBytes(items, docCount) : -1;
        if (expected != length) {
            String wanted = plausible ? "(" + expected + " bytes)" : "(more than any file holds)";
            throw corrupt(idxPath, (!plausible || expected > length ? "truncated" : "too long") + ": header says "
                + Long.toUnsignedString(items) + " items and " + Long.toUnsignedString(docCount) + " doc_idx entries "
                + wanted + " but the file has " + length + " bytes");
        }
        if (items > Integer.MAX_VALUE - 8 || docCount > Integer.MAX_VALUE - 8) {
            throw new GoslingException(idxPath + ": " + items + " items and " + docCount
                + " doc_idx entries; at most 2147483639 of each are supported, split the data into several pairs");
        }
        if (docCount == 0) {
            throw corrupt(idxPath, "doc_idx is empty; it must run from 0 to the item count " + items);
        }
        return new Header(dtypeCode, items, docCount);
    }

    /** Checks sizes ≥ 0 and pointer[i] = Σ sizes[j<i]·itemsize; returns the .bin length the sizes imply. */
    private static long checkSizesAndPointers(Path idxPath, MappedFile idx, Header header) {
        long sizesAt = BinIdxFormat.HEADER_BYTES;
        long pointersAt = sizesAt + 4 * header.items;
        long expectedPointer = 0;
        for (int i = 0; i < header.items; i++) {
            int size = idx.getInt(sizesAt + 4L * i);
            if (size < 0) {
                throw corrupt(idxPath, "sizes[" + i + "] is " + size + "; sizes cannot be negative");
            }
            long pointer = idx.getLong(pointersAt + 8L * i);
            if (pointer != expectedPointer) {
                throw corrupt(idxPath, "pointers[" + i + "] is " + pointer + " but the sizes before it put item " + i
                    + " at byte " + expectedPointer + " (" + header.itemSize + " bytes per token)");
            }
            try {
                expectedPointer = Math.addExact(expectedPointer, (long) size * header.itemSize);
            } catch (ArithmeticException e) {
                throw corrupt(idxPath, "sizes up to item " + i + " add up to more than 2^63 bytes");
            }
        }
        return expectedPointer;
    }

    /** Checks doc_idx: starts at 0, never decreases, ends at the item count. */
    private static void checkDocIdx(Path idxPath, MappedFile idx, Header header) {
        long docIdxAt = BinIdxFormat.HEADER_BYTES + 12 * header.items;
        long previous = 0;
        for (int i = 0; i < header.docCount; i++) {
            long value = idx.getLong(docIdxAt + 8L * i);
            if (i == 0 && value != 0) {
                throw corrupt(idxPath, "doc_idx[0] is " + value + "; doc_idx must start at 0");
            }
            if (value < previous) {
                throw corrupt(idxPath, "doc_idx[" + i + "] is " + value + ", less than doc_idx[" + (i - 1) + "] = "
                    + previous + "; doc_idx must not decrease");
            }
            previous = value;
        }
        if (previous != header.items) {
            throw corrupt(idxPath, "doc_idx ends at " + previous + " but there are " + header.items
                + " items; doc_idx must end at the item count");
        }
    }

    private static MappedFile map(Path path, long sliceBytes) {
        try {
            return MappedFile.map(path, sliceBytes);
        } catch (IOException e) {
            throw ioFailure(path, e);
        }
    }

    private static GoslingException corrupt(Path path, String what) {
        return new GoslingException(path + ": " + what + "; the index is corrupt or incomplete, write the pair again");
    }

    private static GoslingException ioFailure(Path path, IOException e) {
        String reason = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        return new GoslingException(path + ": cannot read: " + reason.replace('\n', ' '), e);
    }

    private static String hex(byte[] bytes) {
        StringBuilder out = new StringBuilder();
        for (byte b : bytes) {
            if (out.length() > 0) {
                out.append(' ');
            }
            out.append(String.format("%02X", b & 0xFF));
        }
        return out.toString();
    }
}
