package dev.gosling.pipeline.ingest;

import dev.gosling.pipeline.StageMeter;
import dev.gosling.pipeline.StageOutput;
import dev.gosling.trainer.GoslingException;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.StructType;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * Stage "ingest" of prepare: {@link JsonlIngest} (one task per file or split-size range of a large plain file, stable ids from (file ordinal, line number), bad
 * lines as counted rejects with make-data's reasons) plus the document size bound of {@link IngestConfig}. Rejected
 * lines keep the first KiB of the raw line as their text. Counter: documents truncated.
 */
public final class IngestStage {
    private static final StructType ROWS = StageOutput.docRows("truncated");

    private IngestStage() {
    }

    public static StageOutput run(SparkSession spark, List<Path> files, IngestConfig cfg, StageMeter meter) {
        JavaSparkContext sc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        List<String> names = files.stream().map(Path::toString).toList();
        JavaRDD<Row> rows = JsonlIngest.run(sc, files, cfg.maxLineBytes(), cfg.strict(), JsonlIngest.splitBytes(spark)).map(o -> row(o, cfg, names, meter));
        Dataset<Row> ds = spark.createDataFrame(rows, ROWS);
        return StageOutput.documents(ds);
    }

    static Row row(LineOutcome o, IngestConfig cfg, List<String> files, StageMeter meter) {
        long id = o.docId();
        if (!o.isDocument()) {
            if (meter != null) {
                meter.doc(o.rawHead().length);
                meter.drop(o.reason().label());
            }
            return RowFactory.create(id, new String(o.rawHead(), StandardCharsets.UTF_8), o.reason().label(), o.detail(), null, 0L);
        }
        byte[] text = o.text();
        if (meter != null) {
            meter.doc(text.length);
        }
        if (cfg.maxDocBytes() > 0 && text.length > cfg.maxDocBytes()) {
            String detail = "text has " + text.length + " bytes > ingest.max_doc_bytes " + cfg.maxDocBytes();
            if (cfg.oversize() == IngestConfig.Oversize.QUARANTINE) {
                if (cfg.strict()) {
                    throw new GoslingException(files.get(DocIds.fileOrdinal(id)) + ":" + DocIds.lineNumber(id) + ": "
                            + RejectReason.DOC_TOO_LONG.label() + ": " + detail + " (--strict stops at the first bad line)");
                }
                if (meter != null) {
                    meter.drop(RejectReason.DOC_TOO_LONG.label());
                }
                byte[] head = Arrays.copyOf(text, utf8Boundary(text, LineOutcome.RAW_HEAD_BYTES));
                return RowFactory.create(id, new String(head, StandardCharsets.UTF_8), RejectReason.DOC_TOO_LONG.label(), detail, null, 0L);
            }
            int cut = utf8Boundary(text, (int) cfg.maxDocBytes());
            return RowFactory.create(id, new String(text, 0, cut, StandardCharsets.UTF_8), null, null, null, 1L);
        }
        return RowFactory.create(id, new String(text, StandardCharsets.UTF_8), null, null, null, 0L);
    }

    /** The largest n ≤ limit such that utf8[0, n) ends on a character boundary (utf8 is valid UTF-8). */
    public static int utf8Boundary(byte[] utf8, int limit) {
        if (limit >= utf8.length) {
            return utf8.length;
        }
        int n = limit;
        while (n > 0 && (utf8[n] & 0xC0) == 0x80) {
            n--;
        }
        return n;
    }
}
