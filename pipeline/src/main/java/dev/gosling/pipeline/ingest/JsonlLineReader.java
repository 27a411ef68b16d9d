package dev.gosling.pipeline.ingest;

import dev.gosling.trainer.GoslingException;

import java.io.BufferedInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.zip.GZIPInputStream;
import java.util.zip.ZipException;

/**
 * Streams the lines of a jsonl or jsonl.gz file as make_data.py sees them: universal newlines (LF, CRLF, lone CR),
 * Python str.strip() at both ends, empty lines skipped, 1-based line numbers counted over all lines.
 * Memory is bounded by maxLineBytes: a longer line is skipped over (its head kept for the quarantine) instead of held.
 */
public final class JsonlLineReader implements Iterator<RawLine>, AutoCloseable {
    private static final int CHUNK = 1 << 20;

    private final Path file;
    private final int fileOrdinal;
    private final int maxLineBytes;
    private final InputStream in;
    private final long firstLine; // lines before the range read (0 for a whole file)
    private final long lineCount; // lines to read, counting empty ones; -1: to the end of the file
    private final byte[] chunk = new byte[CHUNK];
    private int chunkPos;
    private int chunkLen;
    private boolean eof;
    private boolean pendingCr; // the last byte read was CR: a following LF belongs to the same line end
    private long lineNumber;
    private byte[] line = new byte[256];
    private int lineLen;      // bytes held in `line` (never more than maxLineBytes)
    private long lineTotal;   // bytes the line really has
    private RawLine next;
    private boolean done;

    public JsonlLineReader(Path file, int fileOrdinal, int maxLineBytes) {
        this(file, fileOrdinal, maxLineBytes, 0, 0, -1);
    }

    /**
     * Reads the lineCount lines (empty ones included) that start at or after byte {@code start} of a plain file,
     * numbering them from firstLine + 1; see {@link FileRange}. The last one is read to its end, past the range.
     */
    public JsonlLineReader(Path file, int fileOrdinal, int maxLineBytes, long start, long firstLine, long lineCount) {
        this.file = file;
        this.fileOrdinal = fileOrdinal;
        this.maxLineBytes = maxLineBytes;
        this.firstLine = firstLine;
        this.lineCount = lineCount;
        this.lineNumber = firstLine;
        boolean gz = isGzip(file);
        if (start > 0 && gz) {
            throw new IllegalArgumentException(file + ": a gzip file cannot be read from an offset");
        }
        try {
            InputStream raw;
            if (start > 0) {
                // From the byte before the range: skipPartialLine() then finds the first line that starts in it.
                FileChannel ch = FileChannel.open(file, StandardOpenOption.READ);
                ch.position(start - 1);
                raw = new BufferedInputStream(Channels.newInputStream(ch), CHUNK);
            } else {
                raw = new BufferedInputStream(Files.newInputStream(file), CHUNK);
            }
            this.in = gz ? new GZIPInputStream(raw, CHUNK) : raw;
        } catch (ZipException e) {
            throw new GoslingException(file + ": not a gzip file (" + e.getMessage() + ")", e);
        } catch (EOFException e) {
            throw new GoslingException(file + ": truncated gzip file (ends inside the gzip header)", e);
        } catch (IOException e) {
            throw new GoslingException(file + ": cannot open: " + e.getMessage(), e);
        }
        if (start > 0) {
            skipPartialLine();
        }
    }

    /**
     * Skips to just after the first line end at or after the current position (start - 1): the byte there is either
     * a line end itself, so the range begins with a line, or inside a line that belongs to an earlier range. A CR
     * sets pendingCr like in readRawLine, so a LF right after it (at the range's start) is not taken for a line.
     */
    private void skipPartialLine() {
        while (chunkPos < chunkLen || fill()) {
            for (int i = chunkPos; i < chunkLen; i++) {
                if (chunk[i] == '\n' || chunk[i] == '\r') {
                    pendingCr = chunk[i] == '\r';
                    chunkPos = i + 1;
                    return;
                }
            }
            chunkPos = chunkLen;
        }
    }

    @Override
    public boolean hasNext() {
        if (next == null && !done) {
            next = readNonEmptyLine();
            done = next == null;
        }
        return next != null;
    }

    @Override
    public RawLine next() {
        if (!hasNext()) {
            throw new NoSuchElementException();
        }
        RawLine r = next;
        next = null;
        return r;
    }

    private RawLine readNonEmptyLine() {
        while (readRawLine()) {
            RawLine r = stripped();
            if (r != null) {
                return r;
            }
        }
        return null;
    }

    /** Reads the next line, without its terminator, into {@code line}; false at the end of the file. */
    private boolean readRawLine() {
        if (lineCount >= 0 && lineNumber - firstLine >= lineCount) {
            return false; // the next line starts in the next range
        }
        lineLen = 0;
        lineTotal = 0;
        boolean sawAny = false;
        while (true) {
            if (chunkPos >= chunkLen && !fill()) {
                if (!sawAny) {
                    return false;
                }
                lineNumber++;
                return true;
            }
            if (pendingCr) {
                pendingCr = false;
                if (chunk[chunkPos] == '\n') {
                    chunkPos++;
                    continue;
                }
            }
            int start = chunkPos;
            int end = start;
            while (end < chunkLen && chunk[end] != '\n' && chunk[end] != '\r') {
                end++;
            }
            append(start, end - start);
            sawAny = true;
            if (end < chunkLen) {
                pendingCr = chunk[end] == '\r';
                chunkPos = end + 1;
                lineNumber++;
                return true;
            }
            chunkPos = end;
        }
    }

    /** The line after Python's strip(), or null when nothing is left. */
    private RawLine stripped() {
        boolean tooLong = lineTotal > maxLineBytes;
        int from = 0;
        int to = lineLen;
        if (lineNumber == 1 && lineLen >= 3 && (line[0] & 0xFF) == 0xEF && (line[1] & 0xFF) == 0xBB && (line[2] & 0xFF) == 0xBF) {
            from = 3; // a UTF-8 byte-order mark at the start of the file is not part of the first document
        }
        from = PyStrip.leading(line, from, to);
        if (!tooLong) {
            to = PyStrip.trailing(line, from, to);
        }
        long total = tooLong ? lineTotal - from : to - from;
        return total == 0 ? null : new RawLine(fileOrdinal, lineNumber, Arrays.copyOfRange(line, from, to), total, tooLong);
    }

    private void append(int start, int len) {
        lineTotal += len;
        int keep = Math.min(len, maxLineBytes - lineLen);
        if (keep > 0) {
            if (lineLen + keep > line.length) {
                line = Arrays.copyOf(line, (int) Math.min((long) maxLineBytes, Math.max(2L * line.length, lineLen + keep)));
            }
            System.arraycopy(chunk, start, line, lineLen, keep);
            lineLen += keep;
        }
    }

    private boolean fill() {
        if (eof) {
            return false;
        }
        try {
            int n = in.read(chunk, 0, CHUNK);
            if (n < 0) {
                eof = true;
                chunkPos = chunkLen = 0;
                return false;
            }
            chunkPos = 0;
            chunkLen = n;
            return true;
        } catch (EOFException e) {
            throw new GoslingException(file + ": truncated gzip file (the stream ends after line " + lineNumber + ")", e);
        } catch (ZipException e) {
            throw new GoslingException(file + ": corrupt gzip data after line " + lineNumber + " (" + e.getMessage() + ")", e);
        } catch (IOException e) {
            throw new GoslingException(file + ": read error after line " + lineNumber + ": " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        try {
            in.close();
        } catch (IOException e) {
            throw new GoslingException(file + ": close failed: " + e.getMessage(), e);
        }
    }

    /** Whether {@code file} is read through gunzip (by its name, as {@link InputFiles} selects inputs). */
    static boolean isGzip(Path file) {
        return file.getFileName().toString().endsWith(".gz");
    }
}
