package dev.gosling.pipeline.clean;

import dev.gosling.pipeline.StageMeter;
import dev.gosling.pipeline.StageOutput;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.StructType;

import java.util.Iterator;

/**
 * Stage "filter": {@link QualityFilters} on every document; a removed document keeps its input text in the rejects,
 * its reason is the violated threshold's key. Counter: lines C4 removed from the documents it kept.
 */
public final class FilterStage {
    private static final StructType ROWS = StageOutput.docRows("c4_lines_removed");

    private FilterStage() {
    }

    public static StageOutput run(Dataset<Row> docs, FilterConfig cfg, StageMeter meter) {
        Dataset<Row> rows = docs.select(StageOutput.ID, StageOutput.TEXT)
                .mapPartitions((MapPartitionsFunction<Row, Row>) it -> filter(it, cfg, meter), Encoders.row(ROWS));
        return StageOutput.documents(rows);
    }

    static Iterator<Row> filter(Iterator<Row> in, FilterConfig cfg, StageMeter meter) {
        QualityFilters f = new QualityFilters(cfg);
        return new Iterator<>() {
            @Override
            public boolean hasNext() {
                return in.hasNext();
            }

            @Override
            public Row next() {
                Row r = in.next();
                long id = r.getLong(0);
                String text = r.getString(1);
                f.apply(text);
                if (meter != null) {
                    meter.doc(text.length());
                }
                if (f.reason() != null) {
                    if (meter != null) {
                        meter.drop(f.reason());
                    }
                    return RowFactory.create(id, text, f.reason(), f.detail(), null, 0L);
                }
                return RowFactory.create(id, f.text(), null, null, null, (long) f.c4LinesRemoved());
            }
        };
    }
}
