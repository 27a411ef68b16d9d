package dev.gosling.pipeline.ingest;

import dev.gosling.trainer.GoslingException;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import scala.Tuple2;

import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * Stage "ingest": the sorted input files become one LineOutcome per non-empty line, each with its stable id
 * (file ordinal, line number). One task reads one file in order, so --strict stops at that file's first bad line.
 */
public final class JsonlIngest {
    private JsonlIngest() {
    }

    public static JavaRDD<LineOutcome> run(JavaSparkContext sc, List<Path> files, int maxLineBytes, boolean strict) {
        if (files.size() > DocIds.MAX_FILES) {
            throw new GoslingException("too many input files (" + files.size() + "); at most " + DocIds.MAX_FILES);
        }
        List<Tuple2<Integer, String>> ordinals = new ArrayList<>();
        for (int i = 0; i < files.size(); i++) {
            ordinals.add(new Tuple2<>(i, files.get(i).toString()));
        }
        return sc.parallelize(ordinals, Math.max(1, ordinals.size()))
                .flatMap(f -> outcomes(Paths.get(f._2()), f._1(), maxLineBytes, strict));
    }

    /** Lazily reads one file; the reader is closed when the last line has been handed out. */
    public static Iterator<LineOutcome> outcomes(Path file, int ordinal, int maxLineBytes, boolean strict) {
        JsonlLineReader reader = new JsonlLineReader(file, ordinal, maxLineBytes);
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
