package dev.gosling.trainer.data;

import dev.gosling.trainer.GoslingException;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Writes a uint16 binidx pair {@code prefix.bin} + {@code prefix.idx} (rwkv7-reference.md §2), as make_data does.
 *
 * <p>Tokens go through one large direct buffer into a temporary file beside the target; {@link #commit()} writes
 * the .idx, fsyncs both and renames them into place (.bin first, then .idx), so an interrupted job never leaves
 * a pair that looks finished. {@link #close()} without a commit deletes the temporaries. Not thread-safe.
 *
 * <pre>{@code
 * try (BinIdxWriter out = new BinIdxWriter(Path.of("out/demo"))) {
 *     out.addDocument(tokensWithEod, 0, tokensWithEod.length);   // one item, one document
 *     out.commit();
 * }
 * }</pre>
 */
public final class BinIdxWriter implements Closeable {
    private static final int BUFFER_BYTES = 4 << 20;
    // Java arrays hold at most about Integer.MAX_VALUE - 8 elements.
    private static final int MAX_ITEMS = Integer.MAX_VALUE - 8;
    private static final AtomicLong TEMP_COUNTER = new AtomicLong();

    private final Path binPath;
    private final Path idxPath;
    private final Path binTemp;
    private final Path idxTemp;
    private final FileChannel binChannel;
    private final ByteBuffer buffer = ByteBuffer.allocateDirect(BUFFER_BYTES).order(ByteOrder.LITTLE_ENDIAN);

    private int[] sizes = new int[1024];
    private int itemCount;
    private int[] docIdx = new int[1024];
    private int docIdxLength = 1; // doc_idx starts with 0
    private long tokenCount;
    private long currentDocumentTokens;
    private boolean commitStarted; // a failed commit cannot be retried: the .bin channel is gone
    private boolean committed;
    private boolean closed;

    /** Starts a pair at {@code prefix} ({@code data/x}, or {@code data/x.bin}/{@code .idx}); creates missing parent folders. */
    public BinIdxWriter(Path prefix) {
        Path normalized = BinIdxFormat.prefixOf(prefix);
        this.binPath = BinIdxFormat.binPath(normalized);
        this.idxPath = BinIdxFormat.idxPath(normalized);
        Path parent = binPath.toAbsolutePath().getParent();
        try {
            Files.createDirectories(parent);
        } catch (IOException e) {
            throw ioFailure(parent, "cannot create the output folder", e);
        }
        // Unique per process and writer, so writers of different prefixes (or a stale temp) never collide.
        String tag = ".tmp-" + ProcessHandle.current().pid() + "-" + TEMP_COUNTER.incrementAndGet();
        this.binTemp = BinIdxFormat.withSuffix(binPath, tag);
        this.idxTemp = BinIdxFormat.withSuffix(idxPath, tag);
        try {
            this.binChannel = FileChannel.open(binTemp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        } catch (FileAlreadyExistsException e) {
            throw new GoslingException(binTemp + ": temporary file already exists; delete it and run again", e);
        } catch (IOException e) {
            throw ioFailure(binTemp, "cannot create", e);
        }
    }

    /** Adds one document as one item: {@code tokens[off, off+len)}, which the caller ends with the EOD token 0. */
    public void addDocument(int[] tokens, int off, int len) {
        addItem(tokens, off, len);
        endDocument();
    }

    /** Adds {@code tokens} as one document, one item. */
    public void addDocument(int[] tokens) {
        addDocument(tokens, 0, tokens.length);
    }

    /**
     * Adds one item to the current document without ending it (for data whose documents span several items,
     * e.g. SFT turns); {@link #endDocument()} ends the document.
     */
    public void addItem(int[] tokens, int off, int len) {
        checkOpen();
        Objects.checkFromIndexSize(off, len, tokens.length);
        int end = off + len;
        // Validate first so that a bad id leaves the writer as it was.
        for (int i = off; i < end; i++) {
            if ((tokens[i] & ~BinIdxFormat.MAX_UINT16_TOKEN) != 0) {
                throw new GoslingException(binPath + ": token id " + tokens[i] + " at position "
                    + (currentDocumentTokens + i - off) + " of document " + (docIdxLength - 1)
                    + " (counting from 0) is outside uint16 0..65535; check the tokenizer and its vocabulary");
            }
        }
        if (itemCount == MAX_ITEMS) {
            throw new GoslingException(binPath + ": more than " + MAX_ITEMS
                + " items do not fit one binidx pair; split the data into several outputs");
        }
        int i = off;
        while (i < end) {
            if (buffer.remaining() < Short.BYTES) {
                flushBuffer();
            }
            int stop = i + Math.min(end - i, buffer.remaining() / Short.BYTES);
            for (; i < stop; i++) {
                buffer.putShort((short) tokens[i]);
            }
        }
        if (itemCount == sizes.length) {
            sizes = Arrays.copyOf(sizes, grow(sizes.length));
        }
        sizes[itemCount++] = len; // an int length always fits the format's int32 size
        tokenCount += len;
        currentDocumentTokens += len;
    }

    /** Ends the current document: appends the item count to doc_idx. */
    public void endDocument() {
        checkOpen();
        if (docIdxLength == docIdx.length) {
            docIdx = Arrays.copyOf(docIdx, grow(docIdx.length));
        }
        docIdx[docIdxLength++] = itemCount;
        currentDocumentTokens = 0;
    }

    /** Where the .bin will be once committed. */
    public Path binPath() {
        return binPath;
    }

    /** Where the .idx will be once committed. */
    public Path idxPath() {
        return idxPath;
    }

    /** Tokens added so far (EOD tokens included): the trainer's data_size and my_exit_tokens. */
    public long tokenCount() {
        return tokenCount;
    }

    /** Items added so far ({@code len} in the .idx). */
    public long itemCount() {
        return itemCount;
    }

    /** Documents ended so far. */
    public long documentCount() {
        return docIdxLength - 1;
    }

    /**
     * Writes the .idx, fsyncs both files and renames them into place: first deletes an existing prefix.idx, then
     * renames the .bin, then the .idx, so a reader never sees a new .bin with an old .idx. Items added since the
     * last {@link #endDocument()} are ended as one document.
     */
    public void commit() {
        checkOpen();
        if (docIdx[docIdxLength - 1] != itemCount) {
            endDocument();
        }
        commitStarted = true;
        try {
            flushBuffer();
            binChannel.force(true);
            binChannel.close();
        } catch (IOException e) {
            throw ioFailure(binTemp, "cannot write", e);
        }
        writeIdx();
        try {
            Files.deleteIfExists(idxPath);
            Files.move(binTemp, binPath, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            Files.move(idxTemp, idxPath, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw ioFailure(binPath, "cannot move the finished files into place", e);
        }
        committed = true;
        syncDirectory(binPath.toAbsolutePath().getParent());
    }

    /** Releases the files; without a successful {@link #commit()} the temporaries are deleted and nothing is left. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            binChannel.close();
        } catch (IOException e) {
            // Nothing more to save: the files are about to be deleted or are already committed.
        }
        if (!committed) {
            try {
                Files.deleteIfExists(binTemp);
                Files.deleteIfExists(idxTemp);
            } catch (IOException e) {
                throw ioFailure(binTemp, "cannot delete the unfinished temporary file", e);
            }
        }
    }

    private void writeIdx() {
        try (FileChannel idx = FileChannel.open(idxTemp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            buffer.clear();
            buffer.put(BinIdxFormat.magic());
            buffer.putLong(BinIdxFormat.VERSION);
            buffer.put((byte) BinIdxFormat.DTYPE_UINT16);
            buffer.putLong(itemCount);
            buffer.putLong(docIdxLength);
            for (int i = 0; i < itemCount; i++) {
                if (buffer.remaining() < Integer.BYTES) {
                    flushTo(idx);
                }
                buffer.putInt(sizes[i]);
            }
            long pointer = 0;
            for (int i = 0; i < itemCount; i++) {
                if (buffer.remaining() < Long.BYTES) {
                    flushTo(idx);
                }
                buffer.putLong(pointer);
                pointer += (long) sizes[i] * Short.BYTES;
            }
            for (int i = 0; i < docIdxLength; i++) {
                if (buffer.remaining() < Long.BYTES) {
                    flushTo(idx);
                }
                buffer.putLong(docIdx[i]);
            }
            flushTo(idx);
            idx.force(true);
        } catch (IOException e) {
            throw ioFailure(idxTemp, "cannot write", e);
        }
    }

    private void flushBuffer() {
        try {
            flushTo(binChannel);
        } catch (IOException e) {
            throw ioFailure(binTemp, "cannot write", e);
        }
    }

    private void flushTo(FileChannel channel) throws IOException {
        buffer.flip();
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
        buffer.clear();
    }

    private void checkOpen() {
        if (closed || commitStarted) {
            throw new IllegalStateException(binPath + ": writer is already " + (closed ? "closed" : "committed"));
        }
    }

    private static int grow(int length) {
        return (int) Math.min((long) length * 2, MAX_ITEMS + 1L);
    }

    /** Makes the renames durable; some file systems refuse to fsync a folder, and the renames have happened anyway. */
    private static void syncDirectory(Path dir) {
        try (FileChannel channel = FileChannel.open(dir, StandardOpenOption.READ)) {
            channel.force(true);
        } catch (IOException e) {
            // Best effort (see above).
        }
    }

    private static GoslingException ioFailure(Path path, String what, IOException e) {
        String reason = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        return new GoslingException(path + ": " + what + ": " + reason.replace('\n', ' ')
            + "; check free disk space and permissions", e);
    }
}
