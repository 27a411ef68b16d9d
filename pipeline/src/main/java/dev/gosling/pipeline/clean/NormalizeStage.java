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
 * Stage "normalize": {@link TextNormalizer} on every document. A document left empty (or only whitespace) is removed
 * as {@code normalize.empty}. Counters: documents changed, characters removed (UTF-16 units before minus after).
 */
public final class NormalizeStage {
    public static final String EMPTY = "normalize.empty";
    private static final StructType ROWS = StageOutput.docRows("changed", "chars_removed");

    private NormalizeStage() {
    }

    public static StageOutput run(Dataset<Row> docs, NormalizeConfig cfg, StageMeter meter) {
        Dataset<Row> rows = docs.select(StageOutput.ID, StageOutput.TEXT)
                .mapPartitions((MapPartitionsFunction<Row, Row>) it -> normalize(it, cfg, meter), Encoders.row(ROWS));
        return StageOutput.documents(rows);
    }

    static Iterator<Row> normalize(Iterator<Row> in, NormalizeConfig cfg, StageMeter meter) {
        TextNormalizer n = new TextNormalizer(cfg);
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
                String out = n.normalize(text);
                long changed = out.equals(text) ? 0 : 1;
                long removed = text.length() - out.length();
                if (meter != null) {
                    meter.doc(text.length());
                }
                if (Chars.skipSpaceForward(out, 0, out.length()) == out.length()) {
                    if (meter != null) {
                        meter.drop(EMPTY);
                    }
                    return RowFactory.create(id, text, EMPTY, "nothing but whitespace after normalization", null, changed, removed);
                }
                return RowFactory.create(id, out, null, null, null, changed, removed);
            }
        };
    }
}
