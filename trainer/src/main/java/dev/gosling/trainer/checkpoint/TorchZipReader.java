package dev.gosling.trainer.checkpoint;

import dev.gosling.trainer.GoslingException;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.zip.CRC32;

/**
 * Reads the directory of a torch zip checkpoint (ZIP64 included) and gives access to its records without extracting
 * anything: record bytes are read or memory-mapped in place. Only STORED records are accepted, and names that are
 * absolute or contain a ".." segment are refused.
 */
final class TorchZipReader implements Closeable {
    private static final int EOCD_SIZE = 22;
    private static final long MAX_SMALL_RECORD = 1L << 30;

    static final class Entry {
        final String name;
        final long headerOffset;
        final long size;
        final int crc;
        final long dataOffset;

        Entry(String name, long headerOffset, long size, int crc, long dataOffset) {
            this.name = name;
            this.headerOffset = headerOffset;
            this.size = size;
            this.crc = crc;
            this.dataOffset = dataOffset;
        }
    }

    private final Path file;
    private final FileChannel channel;
    private final long fileSize;
    private final Map<String, Entry> entries = new LinkedHashMap<>();
    private String archiveName;

    private TorchZipReader(Path file, FileChannel channel, long fileSize) {
        this.file = file;
        this.channel = channel;
        this.fileSize = fileSize;
    }

    static TorchZipReader open(Path file) {
        FileChannel channel;
        try {
            channel = FileChannel.open(file, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new GoslingException(file + ": no such file (check the path)");
        } catch (IOException e) {
            throw new GoslingException(file + ": cannot open: " + AtomicFiles.describe(e) + " (check permissions)");
        }
        try {
            TorchZipReader reader = new TorchZipReader(file, channel, channel.size());
            reader.readDirectory();
            return reader;
        } catch (IOException | RuntimeException e) {
            try {
                channel.close();
            } catch (IOException ignored) {
                // Reporting the original failure.
            }
            if (e instanceof GoslingException) {
                throw (GoslingException) e;
            }
            throw new GoslingException(file + ": cannot read: " + AtomicFiles.describe(e), e);
        }
    }

    /** The folder all records live under (the first record's, as torch decides it). */
    String archiveName() {
        return archiveName;
    }

    List<Entry> entries() {
        return Collections.unmodifiableList(new ArrayList<>(entries.values()));
    }

    /** A record by its name inside the archive folder, e.g. "data.pkl" or "data/0". */
    Optional<Entry> find(String recordName) {
        return Optional.ofNullable(entries.get(archiveName + "/" + recordName));
    }

    /** Reads a small record (data.pkl, version, ...) and checks its CRC. */
    byte[] readSmall(Entry entry) throws IOException {
        if (entry.size > MAX_SMALL_RECORD) {
            throw corrupt("record " + entry.name + " is implausibly large (" + entry.size + " bytes)");
        }
        ByteBuffer buffer = read(entry.dataOffset, (int) entry.size);
        checkCrc(entry, buffer.duplicate());
        byte[] bytes = new byte[buffer.remaining()];
        buffer.get(bytes);
        return bytes;
    }

    /** Maps a record read-only (no copy) and, when asked, checks its CRC (which reads it once). */
    ByteBuffer map(Entry entry, boolean verifyCrc) throws IOException {
        if (entry.size > Integer.MAX_VALUE) {
            throw new GoslingException(file + ": record " + entry.name + " holds " + entry.size
                    + " bytes; Gosling reads tensors of up to 2 GiB (split the tensor or use safetensors shards)");
        }
        ByteBuffer buffer = entry.size == 0 ? ByteBuffer.allocate(0)
                : channel.map(FileChannel.MapMode.READ_ONLY, entry.dataOffset, entry.size);
        buffer.order(ByteOrder.LITTLE_ENDIAN);
        if (verifyCrc) {
            checkCrc(entry, buffer.duplicate());
        }
        return buffer;
    }

    GoslingException corrupt(String what) {
        return new GoslingException(file + ": not a valid torch checkpoint: " + what
                + " (the file is truncated or damaged; re-save or re-download it)");
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }

    private void checkCrc(Entry entry, ByteBuffer data) {
        CRC32 crc = new CRC32();
        crc.update(data);
        if ((int) crc.getValue() != entry.crc) {
            throw corrupt(String.format("record %s fails its CRC check (stored %08x, computed %08x)", entry.name,
                    entry.crc, (int) crc.getValue()));
        }
    }

    private void readDirectory() throws IOException {
        if (fileSize < 4 || read(0, 4).getInt() != 0x04034b50) {
            throw new GoslingException(file + ": not a torch zip checkpoint (expected a zip archive as written by "
                    + "torch.save in PyTorch 1.6 or later; re-save it with a current torch)");
        }
        if (fileSize < EOCD_SIZE) {
            throw corrupt("shorter than a zip end record");
        }
        int tailLength = (int) Math.min(fileSize, EOCD_SIZE + 0xFFFF);
        long tailStart = fileSize - tailLength;
        ByteBuffer tail = read(tailStart, tailLength);
        int eocd = -1;
        for (int i = tailLength - EOCD_SIZE; i >= 0; i--) {
            if (tail.getInt(i) == 0x06054b50 && i + EOCD_SIZE + (tail.getShort(i + 20) & 0xFFFF) <= tailLength) {
                eocd = i;
                break;
            }
        }
        if (eocd < 0) {
            throw corrupt("no zip end-of-central-directory record");
        }
        long eocdOffset = tailStart + eocd;
        long count = tail.getShort(eocd + 10) & 0xFFFF;
        long centralSize = tail.getInt(eocd + 12) & 0xFFFFFFFFL;
        long centralStart = tail.getInt(eocd + 16) & 0xFFFFFFFFL;
        long centralLimit = eocdOffset;
        if (eocdOffset >= 20 && read(eocdOffset - 20, 4).getInt() == 0x07064b50) {
            long zip64End = read(eocdOffset - 20 + 8, 8).getLong();
            if (zip64End < 0 || zip64End + 56 > eocdOffset - 20) {
                throw corrupt("ZIP64 locator points outside the file");
            }
            ByteBuffer z = read(zip64End, 56);
            if (z.getInt(0) != 0x06064b50) {
                throw corrupt("ZIP64 end record missing where its locator points");
            }
            count = z.getLong(32);
            centralSize = z.getLong(40);
            centralStart = z.getLong(48);
            centralLimit = zip64End;
        }
        if (centralStart < 0 || centralSize < 0 || centralStart + centralSize > centralLimit
                || centralSize > Integer.MAX_VALUE || count < 0 || count > centralSize / 46) {
            throw corrupt("central directory out of bounds");
        }
        ByteBuffer central = read(centralStart, (int) centralSize);
        int p = 0;
        for (long i = 0; i < count; i++) {
            if (p + 46 > central.limit() || central.getInt(p) != 0x02014b50) {
                throw corrupt("central directory entry " + i + " is malformed");
            }
            int flags = central.getShort(p + 8) & 0xFFFF;
            int method = central.getShort(p + 10) & 0xFFFF;
            int crc = central.getInt(p + 16);
            long compressedSize = central.getInt(p + 20) & 0xFFFFFFFFL;
            long size = central.getInt(p + 24) & 0xFFFFFFFFL;
            int nameLength = central.getShort(p + 28) & 0xFFFF;
            int extraLength = central.getShort(p + 30) & 0xFFFF;
            int commentLength = central.getShort(p + 32) & 0xFFFF;
            long headerOffset = central.getInt(p + 42) & 0xFFFFFFFFL;
            int next = p + 46 + nameLength + extraLength + commentLength;
            if (next > central.limit()) {
                throw corrupt("central directory entry " + i + " runs past the directory");
            }
            byte[] nameBytes = new byte[nameLength];
            central.get(p + 46, nameBytes);
            String name = new String(nameBytes, StandardCharsets.UTF_8);
            checkName(name);
            // ZIP64 extra: the fields present are those whose 32-bit value is saturated, in this order.
            int e = p + 46 + nameLength;
            int extraEnd = e + extraLength;
            while (e + 4 <= extraEnd) {
                int id = central.getShort(e) & 0xFFFF;
                int length = central.getShort(e + 2) & 0xFFFF;
                if (e + 4 + length > extraEnd) {
                    throw corrupt("extra field of " + name + " runs past its entry");
                }
                if (id == 1) {
                    int f = e + 4;
                    if (size == 0xFFFFFFFFL && f + 8 <= e + 4 + length) {
                        size = central.getLong(f);
                        f += 8;
                    }
                    if (compressedSize == 0xFFFFFFFFL && f + 8 <= e + 4 + length) {
                        compressedSize = central.getLong(f);
                        f += 8;
                    }
                    if (headerOffset == 0xFFFFFFFFL && f + 8 <= e + 4 + length) {
                        headerOffset = central.getLong(f);
                    }
                }
                e += 4 + length;
            }
            if ((flags & 1) != 0) {
                throw new GoslingException(file + ": record " + name + " is encrypted; torch checkpoints never are "
                        + "(re-save it with torch.save)");
            }
            if (method != 0) {
                throw new GoslingException(file + ": record " + name + " is compressed (zip method " + method
                        + "); torch.save stores records uncompressed (re-save it with torch.save, do not re-zip it)");
            }
            if (compressedSize != size) {
                throw corrupt("stored record " + name + " has different stored and original sizes");
            }
            long dataOffset = localDataOffset(name, nameBytes, headerOffset);
            if (size < 0 || dataOffset + size > centralStart) {
                throw corrupt("record " + name + " runs past the end of the data");
            }
            if (entries.put(name, new Entry(name, headerOffset, size, crc, dataOffset)) != null) {
                throw corrupt("record " + name + " appears twice");
            }
            if (archiveName == null) {
                int slash = name.indexOf('/');
                if (slash <= 0) {
                    throw corrupt("first record " + name + " is not inside an archive folder");
                }
                archiveName = name.substring(0, slash);
            }
            p = next;
        }
        if (archiveName == null) {
            throw corrupt("the archive holds no records");
        }
    }

    private long localDataOffset(String name, byte[] nameBytes, long headerOffset) throws IOException {
        if (headerOffset < 0 || headerOffset + 30 > fileSize) {
            throw corrupt("local header of " + name + " lies outside the file");
        }
        ByteBuffer header = read(headerOffset, 30);
        if (header.getInt(0) != 0x04034b50) {
            throw corrupt("local header of " + name + " is missing");
        }
        int nameLength = header.getShort(26) & 0xFFFF;
        int extraLength = header.getShort(28) & 0xFFFF;
        if (nameLength != nameBytes.length || headerOffset + 30 + nameLength > fileSize
                || !read(headerOffset + 30, nameLength).equals(ByteBuffer.wrap(nameBytes))) {
            throw corrupt("local header of " + name + " names another record");
        }
        return headerOffset + 30 + nameLength + extraLength;
    }

    /** Refuses absolute names and ".." segments: a record name must stay inside the archive folder. */
    private void checkName(String name) {
        boolean absolute = name.startsWith("/") || name.startsWith("\\");
        boolean climbs = false;
        for (String segment : name.split("[/\\\\]", -1)) {
            if (segment.equals("..")) {
                climbs = true;
            }
        }
        if (absolute || climbs) {
            throw new GoslingException(file + ": refuses to load: zip record name '" + name
                    + "' leaves the archive folder (absolute or '..'); the file was not written by torch.save");
        }
    }

    private ByteBuffer read(long offset, int length) throws IOException {
        if (offset < 0 || offset + length > fileSize) {
            throw corrupt("a structure at offset " + offset + " runs past the end of the file");
        }
        ByteBuffer buffer = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
        long position = offset;
        while (buffer.hasRemaining()) {
            int n = channel.read(buffer, position);
            if (n < 0) {
                throw corrupt("unexpected end of file at offset " + position);
            }
            position += n;
        }
        buffer.flip();
        return buffer;
    }
}
