package dev.gosling.trainer.checkpoint;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32;

/**
 * The zip container of torch.save, laid out byte for byte as PyTorch's PyTorchStreamWriter (miniz) writes it, so
 * that torch's loaders, including {@code mmap=True} and the offset calculation of format version 1, work on it:
 * <ul>
 * <li>every record STORED, its local header followed by an extra field "FB" + padding that puts the data on a
 * 64-byte boundary (after a ZIP64 extra when the header offset or size passes 4 GiB);</li>
 * <li>general-purpose flag bit 3: the CRC and sizes follow the data in a data descriptor (16 bytes, or 24 with
 * ZIP64), so one pass writes everything and a tensor is streamed, never copied; empty records have no
 * descriptor;</li>
 * <li>a ZIP64 end-of-central-directory record and locator always, so files over 4 GiB need nothing special.</li>
 * </ul>
 */
final class TorchZipWriter {
    static final int ALIGNMENT = 64;
    static final long ZIP32_LIMIT = 0xFFFFFFFFL;
    private static final int LOCAL_HEADER_SIZE = 30;
    private static final int CHUNK = 8 << 20;

    private final WritableByteChannel out;
    private final String prefix;
    private final List<Written> written = new ArrayList<>();
    private long position;
    private long combinedCrc;
    private long combinedNameHash;

    private static final class Written {
        final byte[] name;
        final long headerOffset;
        final long size;
        final int crc;
        final int flags;

        Written(byte[] name, long headerOffset, long size, int crc, int flags) {
            this.name = name;
            this.headerOffset = headerOffset;
            this.size = size;
            this.crc = crc;
            this.flags = flags;
        }

        boolean zip64() {
            return size >= ZIP32_LIMIT || headerOffset >= ZIP32_LIMIT;
        }
    }

    TorchZipWriter(WritableByteChannel out, String archiveName) {
        this.out = out;
        this.prefix = archiveName + "/";
    }

    /** Bytes of the "FB" extra field (4-byte header + filler) that put a record's data on a 64-byte boundary. */
    static int paddingFieldSize(long headerOffset, int fullNameLength, long size) {
        long dataStart = headerOffset + LOCAL_HEADER_SIZE + fullNameLength + 4 + zip64ExtraSize(headerOffset, size);
        int filler = (int) ((ALIGNMENT - dataStart % ALIGNMENT) % ALIGNMENT);
        return 4 + filler;
    }

    private static int zip64ExtraSize(long headerOffset, long size) {
        if (size < ZIP32_LIMIT && headerOffset < ZIP32_LIMIT) {
            return 0;
        }
        return 4 + (size >= ZIP32_LIMIT ? 16 : 0) + (headerOffset >= ZIP32_LIMIT ? 8 : 0);
    }

    void writeRecord(String name, byte[] data) throws IOException {
        writeRecord(name, ByteBuffer.wrap(data));
    }

    /** Streams {@code data}'s remaining bytes as record {@code <archive>/name}. */
    void writeRecord(String name, ByteBuffer data) throws IOException {
        byte[] fullName = (prefix + name).getBytes(StandardCharsets.UTF_8);
        long headerOffset = position;
        long size = data.remaining();
        int flags = size > 0 ? 0x0808 : 0x0800; // bit 11: UTF-8 names; bit 3: data descriptor
        int zip64Size = zip64ExtraSize(headerOffset, size);
        int paddingSize = paddingFieldSize(headerOffset, fullName.length, size);

        ByteBuffer header = le(LOCAL_HEADER_SIZE + fullName.length + zip64Size + paddingSize);
        header.putInt(0x04034b50).putShort((short) 0).putShort((short) flags).putShort((short) 0)
                .putShort((short) 0).putShort((short) 0) // time, date: miniz writes zero
                .putInt(0).putInt(0).putInt(0) // crc, sizes: in the data descriptor
                .putShort((short) fullName.length).putShort((short) (zip64Size + paddingSize)).put(fullName);
        if (zip64Size > 0) {
            header.putShort((short) 1).putShort((short) (zip64Size - 4));
            if (size >= ZIP32_LIMIT) {
                header.putLong(size).putLong(size);
            }
            if (headerOffset >= ZIP32_LIMIT) {
                header.putLong(headerOffset);
            }
        }
        header.put((byte) 'F').put((byte) 'B').putShort((short) (paddingSize - 4));
        for (int i = 4; i < paddingSize; i++) {
            header.put((byte) 'Z');
        }
        putFilled(header);

        CRC32 crc = new CRC32();
        ByteBuffer remaining = data.duplicate();
        while (remaining.hasRemaining()) {
            ByteBuffer chunk = remaining.slice();
            chunk.limit(Math.min(chunk.remaining(), CHUNK));
            remaining.position(remaining.position() + chunk.remaining());
            crc.update(chunk.duplicate());
            put(chunk);
        }
        int crcValue = (int) crc.getValue();

        Written record = new Written(fullName, headerOffset, size, crcValue, flags);
        if (size > 0) {
            ByteBuffer descriptor = le(record.zip64() ? 24 : 16);
            descriptor.putInt(0x08074b50).putInt(crcValue);
            if (record.zip64()) {
                descriptor.putLong(size).putLong(size);
            } else {
                descriptor.putInt((int) size).putInt((int) size);
            }
            putFilled(descriptor);
        }
        written.add(record);
        combinedCrc = hashCombine(combinedCrc, crc.getValue());
        combinedNameHash = hashCombine(combinedNameHash, fnv1a(fullName));
    }

    /** Appends the records torch writes at the end (version, serialization id), then the central directory. */
    void finish() throws IOException {
        writeRecord("version", "3\n".getBytes(StandardCharsets.US_ASCII));
        // torch: 20 digits of a hash of the record names, then 20 digits of c10::hash_combine over the CRCs.
        String serializationId = String.format("%20s%20s", Long.toUnsignedString(combinedNameHash),
                Long.toUnsignedString(combinedCrc)).replace(' ', '0');
        writeRecord(".data/serialization_id", serializationId.getBytes(StandardCharsets.US_ASCII));

        long centralStart = position;
        for (Written r : written) {
            int zip64Size = r.zip64() ? 4 + (r.size >= ZIP32_LIMIT ? 16 : 0) + (r.headerOffset >= ZIP32_LIMIT ? 8 : 0) : 0;
            ByteBuffer entry = le(46 + r.name.length + zip64Size);
            entry.putInt(0x02014b50).putShort((short) 0).putShort((short) 0).putShort((short) r.flags)
                    .putShort((short) 0).putShort((short) 0).putShort((short) 0).putInt(r.crc)
                    .putInt((int) Math.min(r.size, ZIP32_LIMIT)).putInt((int) Math.min(r.size, ZIP32_LIMIT))
                    .putShort((short) r.name.length).putShort((short) zip64Size).putShort((short) 0)
                    .putShort((short) 0).putShort((short) 0).putInt(0)
                    .putInt((int) Math.min(r.headerOffset, ZIP32_LIMIT)).put(r.name);
            if (zip64Size > 0) {
                entry.putShort((short) 1).putShort((short) (zip64Size - 4));
                if (r.size >= ZIP32_LIMIT) {
                    entry.putLong(r.size).putLong(r.size);
                }
                if (r.headerOffset >= ZIP32_LIMIT) {
                    entry.putLong(r.headerOffset);
                }
            }
            putFilled(entry);
        }
        long centralSize = position - centralStart;
        long zip64EndOffset = position;
        ByteBuffer end = le(56 + 20 + 22);
        end.putInt(0x06064b50).putLong(44).putShort((short) 0x031E).putShort((short) 0x002D).putInt(0).putInt(0)
                .putLong(written.size()).putLong(written.size()).putLong(centralSize).putLong(centralStart);
        end.putInt(0x07064b50).putInt(0).putLong(zip64EndOffset).putInt(1);
        int count16 = Math.min(written.size(), 0xFFFF);
        end.putInt(0x06054b50).putShort((short) 0).putShort((short) 0).putShort((short) count16)
                .putShort((short) count16).putInt((int) Math.min(centralSize, ZIP32_LIMIT))
                .putInt((int) Math.min(centralStart, ZIP32_LIMIT)).putShort((short) 0);
        putFilled(end);
    }

    long position() {
        return position;
    }

    /** Writes a header buffer that must have been filled exactly to its computed size. */
    private void putFilled(ByteBuffer buffer) throws IOException {
        if (buffer.hasRemaining()) {
            throw new IllegalStateException("zip structure size miscomputed: " + buffer.remaining() + " bytes unfilled");
        }
        buffer.flip();
        put(buffer);
    }

    private void put(ByteBuffer buffer) throws IOException {
        long n = buffer.remaining();
        while (buffer.hasRemaining()) {
            out.write(buffer);
        }
        position += n;
    }

    private static ByteBuffer le(int size) {
        return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** c10::hash_combine on 64-bit size_t. */
    static long hashCombine(long seed, long value) {
        return seed ^ (value + 0x9e3779b9L + (seed << 6) + (seed >>> 2));
    }

    private static long fnv1a(byte[] bytes) {
        long h = 0xcbf29ce484222325L;
        for (byte b : bytes) {
            h ^= b & 0xFF;
            h *= 0x100000001b3L;
        }
        return h;
    }
}
