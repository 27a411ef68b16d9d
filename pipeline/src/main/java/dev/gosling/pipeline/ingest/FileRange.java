package dev.gosling.pipeline.ingest;

import dev.gosling.trainer.GoslingException;
import org.apache.spark.api.java.JavaSparkContext;

import java.io.IOException;
import java.io.Serializable;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * The unit of work of the ingest stage: the lines of one input file that START in the byte range [start, end).
 * A plain file larger than the split size is cut into several ranges so that several tasks read it; a .gz file (not
 * seekable) or a small file is one range covering the whole file ({@code lineCount} = -1: read to the end).
 * <p>
 * Line numbers must not depend on the split, so a split file is read twice: pass 1 counts the line starts of each
 * range (a plain byte scan, one task per range), the driver adds the counts up, and pass 2 parses each range knowing
 * the number of lines before it ({@code firstLine}) and how many lines start in it ({@code lineCount}).
 * <p>
 * "Line start" follows {@link JsonlLineReader}'s universal newlines exactly: position p &lt; file length starts a
 * line when p = 0, or the byte before it is LF, or the byte before it is CR and the byte at p is not LF (CRLF is one
 * line end). Empty lines are lines too: the reader skips them but counts them.
 */
public record FileRange(int fileOrdinal, String path, long start, long end, long firstLine, long lineCount) implements Serializable {

    public static final long DEFAULT_SPLIT_BYTES = 128L << 20;

    private static final int SCAN_CHUNK = 1 << 20;

    /** Whether a file can be cut into byte ranges: a gzip stream can only be read from its beginning. */
    public static boolean splittable(Path file) {
        return !JsonlLineReader.isGzip(file);
    }

    /**
     * The ranges of all files, in (file, offset) order, with their line numbering; runs pass 1 on the cluster for the
     * files that are split. Ranges in which no line starts (inside a line longer than the split size) are left out.
     */
    public static List<FileRange> plan(JavaSparkContext sc, List<Path> files, long splitBytes) {
        return plan(files, splitBytes, toCount -> sc.parallelize(toCount, toCount.size())
                .map(r -> countLineStarts(Paths.get(r.path()), r.start(), r.end())).collect());
    }

    /** The same, with pass 1 done by {@code counter}: the number of line starts of each range given, in order. */
    public static List<FileRange> plan(List<Path> files, long splitBytes, Function<List<FileRange>, List<Long>> counter) {
        if (splitBytes < 1) {
            throw new IllegalArgumentException("split size must be positive: " + splitBytes);
        }
        List<FileRange> ranges = new ArrayList<>();
        List<FileRange> toCount = new ArrayList<>();
        for (int i = 0; i < files.size(); i++) {
            Path f = files.get(i);
            long size = size(f);
            if (!splittable(f) || size <= splitBytes) {
                ranges.add(new FileRange(i, f.toString(), 0, size, 0, -1));
                continue;
            }
            for (long s = 0; s < size; s += splitBytes) {
                FileRange r = new FileRange(i, f.toString(), s, Math.min(size, s + splitBytes), -1, -1);
                ranges.add(r);
                toCount.add(r);
            }
        }
        if (toCount.isEmpty()) {
            return ranges;
        }
        List<Long> counts = counter.apply(toCount);
        List<FileRange> numbered = new ArrayList<>();
        int c = 0;
        long linesBefore = 0;
        for (FileRange r : ranges) {
            if (r.firstLine() >= 0) {
                numbered.add(r); // a whole file: nothing to count
                continue;
            }
            if (r.start() == 0) {
                linesBefore = 0; // the first range of the next split file
            }
            long n = counts.get(c++);
            if (n > 0) {
                numbered.add(new FileRange(r.fileOrdinal(), r.path(), r.start(), r.end(), linesBefore, n));
            }
            linesBefore += n;
        }
        return numbered;
    }

    /** Pass 1: how many lines start in [start, end) of the file (end ≤ the file's size). Reads [start - 1, end). */
    public static long countLineStarts(Path file, long start, long end) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer buf = ByteBuffer.allocate(SCAN_CHUNK);
            long pos = Math.max(0, start - 1);
            // The byte before `start` decides whether `start` itself begins a line; the file's start behaves like
            // the position after a LF.
            int prev = '\n';
            boolean havePrev = start == 0;
            long count = 0;
            while (pos < end) {
                buf.clear();
                buf.limit((int) Math.min(SCAN_CHUNK, end - pos));
                int n = ch.read(buf, pos);
                if (n < 0) {
                    throw new GoslingException(file + ": the file got shorter while it was read (ends at byte " + pos + ")");
                }
                byte[] a = buf.array();
                int i = 0;
                if (!havePrev) {
                    prev = a[0];
                    havePrev = true;
                    i = 1;
                }
                for (; i < n; i++) {
                    int b = a[i];
                    if (prev == '\n' || (prev == '\r' && b != '\n')) {
                        count++;
                    }
                    prev = b;
                }
                pos += n;
            }
            return count;
        } catch (IOException e) {
            throw new GoslingException(file + ": read error: " + e.getMessage(), e);
        }
    }

    private static long size(Path f) {
        try {
            return Files.size(f);
        } catch (IOException e) {
            throw new GoslingException(f + ": cannot read its size: " + e.getMessage(), e);
        }
    }
}
