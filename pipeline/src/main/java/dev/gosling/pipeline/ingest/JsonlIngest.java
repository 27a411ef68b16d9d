package dev.gosling.pipeline.ingest;

import dev.gosling.trainer.GoslingException;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.network.util.JavaUtils;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;

import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Iterator;
import java.util.List;

/**
 * Stage "ingest": the sorted input files become one LineOutcome per non-empty line, each with its stable id
 * (file ordinal, line number). One task reads one {@link FileRange}: a whole .gz or small file, or a split-size
 * slice of a large plain file, so that a single 50 GB file is read by many cores. The outcomes come out in
 * (file, line) order whatever the split size; --strict stops at the first bad line its task meets.
 */
public final class JsonlIngest {
    private JsonlIngest() {
    }

    /**
     * Spark setting for the size of the byte ranges a plain input file is cut into (default 128 MiB). It changes
     * how many tasks read a file, never the output; tests set it tiny to exercise range boundaries.
     */
    public static final String SPLIT_BYTES_CONF = "spark.gosling.ingest.splitBytes";

    /** The split size from the Spark conf: bytes, or Spark's size strings (64m, 1g). */
    public static long splitBytes(SparkSession spark) {
        String value = spark.conf().get(SPLIT_BYTES_CONF, Long.toString(FileRange.DEFAULT_SPLIT_BYTES));
        long bytes;
        try {
            bytes = JavaUtils.byteStringAsBytes(value);
        } catch (RuntimeException e) {
            throw new GoslingException(SPLIT_BYTES_CONF + "=" + value + " is not a size (bytes, or e.g. 64m, 1g)");
        }
        if (bytes < 1) {
            throw new GoslingException(SPLIT_BYTES_CONF + "=" + value + " must be at least 1 byte");
        }
        return bytes;
    }

    public static JavaRDD<LineOutcome> run(JavaSparkContext sc, List<Path> files, int maxLineBytes, boolean strict, long splitBytes) {
        if (files.size() > DocIds.MAX_FILES) {
            throw new GoslingException("too many input files (" + files.size() + "); at most " + DocIds.MAX_FILES);
        }
        List<FileRange> ranges = FileRange.plan(sc, files, splitBytes);
        // One partition per range, in (file, offset) order.
        return sc.parallelize(ranges, Math.max(1, ranges.size())).flatMap(r -> outcomes(r, maxLineBytes, strict));
    }

    /** Lazily reads the lines of one range; the reader is closed when the last line has been handed out. */
    public static Iterator<LineOutcome> outcomes(FileRange range, int maxLineBytes, boolean strict) {
        Path file = Paths.get(range.path());
        JsonlLineReader reader = new JsonlLineReader(file, range.fileOrdinal(), maxLineBytes, range.start(), range.firstLine(), range.lineCount());
        return new Iterator<>() {
            @Override
            public boolean hasNext() {
                if (reader.hasNext()) {
                    return true;
                }
                reader.close();
                return false;
            }

            @Override
            public LineOutcome next() {
                RawLine line = reader.next();
                LineOutcome outcome = TextExtractor.extract(line);
                if (strict && !outcome.isDocument()) {
                    reader.close();
                    throw new GoslingException(file + ":" + line.lineNumber() + ": " + outcome.reason().label() + ": " + outcome.detail()
                            + " (--strict stops at the first bad line; without it bad lines are quarantined)");
                }
                return outcome;
            }
        };
    }
}
