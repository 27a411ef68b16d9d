package dev.gosling.pipeline.tokenize;

import dev.gosling.pipeline.ingest.LineOutcome;
import dev.gosling.trainer.data.WorldTokenizer;
import dev.gosling.pipeline.StageMeter;
import dev.gosling.pipeline.StageOutput;
import dev.gosling.pipeline.export.ShuffledCopies;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.function.MapFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/** Tokenizes each document with the world tokenizer (the same class the trainer uses) and appends EOD 0. */
public final class TokenizeStage {
    private TokenizeStage() {
    }

    public static final String TOKENS = "tokens";

    /** Columns of the tokenize stage's rows: copy, rank, id, the tokens as the .bin stores them, their count. */
    public static final StructType ROWS = new StructType(new StructField[] {
            DataTypes.createStructField(ShuffledCopies.COPY, DataTypes.IntegerType, false),
            DataTypes.createStructField(ShuffledCopies.RANK, DataTypes.LongType, false),
            DataTypes.createStructField(StageOutput.ID, DataTypes.LongType, false),
            DataTypes.createStructField(TOKENS, DataTypes.BinaryType, false),
            DataTypes.createStructField(StageOutput.COUNTER_PREFIX + TOKENS, DataTypes.LongType, false)});

    /**
     * Stage "tokenize" of prepare: world tokens (+ EOD unless disabled) of every row, uint16 little-endian. Rows from
     * the shuffle stage keep their (copy, rank); documents that were not shuffled get copy 0 and rank = id, so the
     * binidx keeps the input order. Counter: tokens.
     */
    public static StageOutput run(Dataset<Row> in, boolean appendEod, StageMeter meter) {
        boolean shuffled = java.util.List.of(in.columns()).contains(ShuffledCopies.COPY);
        Dataset<Row> src = shuffled ? in.select(ShuffledCopies.COPY, ShuffledCopies.RANK, StageOutput.ID, StageOutput.TEXT)
                : in.select(StageOutput.ID, StageOutput.TEXT);
        Dataset<Row> rows = src.map((MapFunction<Row, Row>) r -> {
            int copy = shuffled ? r.getInt(0) : 0;
            long id = shuffled ? r.getLong(2) : r.getLong(0);
            long rank = shuffled ? r.getLong(1) : id;
            byte[] utf8 = WorldTokenizer.utf8(r.getString(shuffled ? 3 : 1));
            if (meter != null) {
                meter.doc(utf8.length);
            }
            TokenizedDoc t = tokenize(LineOutcome.document(id, utf8), appendEod);
            return RowFactory.create(copy, rank, id, t.tokensLE(), (long) t.tokenCount());
        }, Encoders.row(ROWS));
        return new StageOutput(rows, java.util.List.of(ShuffledCopies.COPY, ShuffledCopies.RANK, StageOutput.ID, TOKENS,
                StageOutput.COUNTER_PREFIX + TOKENS), java.util.List.of(ShuffledCopies.COPY, ShuffledCopies.RANK, StageOutput.ID));
    }

    public static JavaRDD<TokenizedDoc> run(JavaRDD<LineOutcome> documents, boolean appendEod) {
        return documents.map(doc -> tokenize(doc, appendEod));
    }

    public static TokenizedDoc tokenize(LineOutcome doc, boolean appendEod) {
        int[] ids = WorldTokenizer.world().encodeUtf8(doc.text(), 0, doc.text().length);
        int n = ids.length + (appendEod ? 1 : 0);
        byte[] le = new byte[2 * n]; // a trailing EOD is already 0 0
        for (int i = 0; i < ids.length; i++) {
            le[2 * i] = (byte) ids[i];
            le[2 * i + 1] = (byte) (ids[i] >>> 8);
        }
        return new TokenizedDoc(doc.docId(), le);
    }
}
