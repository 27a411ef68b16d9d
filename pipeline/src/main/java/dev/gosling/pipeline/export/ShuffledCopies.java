package dev.gosling.pipeline.export;

import dev.gosling.pipeline.tokenize.TokenizedDoc;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;

import dev.gosling.pipeline.StageMeter;
import dev.gosling.pipeline.StageOutput;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

import java.io.Serializable;

/**
 * Stage "shuffle/replicate": N copies of the corpus, each a full permutation, concatenated (make_data.py's layout).
 * Unlike make_data the permutation is seeded: copy c orders documents by a 64-bit hash of (seed, c, doc id), ties broken
 * by the id, so the global order is a function of the input and the seed only, whatever the partitioning.
 */
public final class ShuffledCopies {
    public static final String COPY = "copy";
    public static final String RANK = "rank";

    private ShuffledCopies() {
    }

    /** Sort key of one document in one copy. Comparable so that Spark's range-partitioned sort gives a total order. */
    public record CopyKey(int copy, long rank, long docId) implements Comparable<CopyKey>, Serializable {
        @Override
        public int compareTo(CopyKey o) {
            int c = Integer.compare(copy, o.copy);
            if (c == 0) {
                c = Long.compare(rank, o.rank);
            }
            return c != 0 ? c : Long.compare(docId, o.docId);
        }
    }

    /** Columns of the shuffle stage's rows: the copy, the document's rank in that copy's permutation, id, text. */
    public static final StructType ROWS = new StructType(new StructField[] {
            DataTypes.createStructField(COPY, DataTypes.IntegerType, false),
            DataTypes.createStructField(RANK, DataTypes.LongType, false),
            DataTypes.createStructField(StageOutput.ID, DataTypes.LongType, false),
            DataTypes.createStructField(StageOutput.TEXT, DataTypes.StringType, false)});

    /**
     * Stage "shuffle" of prepare: every document once per copy with its rank in that copy's seeded permutation (the
     * same ranks as make-data's, so the same seed gives the same order). The global order is (copy, rank, id).
     */
    public static StageOutput run(Dataset<Row> docs, int copies, long seed, StageMeter meter) {
        Dataset<Row> rows = docs.select(StageOutput.ID, StageOutput.TEXT).flatMap((FlatMapFunction<Row, Row>) r -> {
            long id = r.getLong(0);
            String text = r.getString(1);
            if (meter != null) {
                meter.doc(text.length());
            }
            java.util.List<Row> out = new java.util.ArrayList<>(copies);
            for (int c = 0; c < copies; c++) {
                out.add(RowFactory.create(c, rank(seed, c, id), id, text));
            }
            return out.iterator();
        }, Encoders.row(ROWS));
        return new StageOutput(rows, java.util.List.of(COPY, RANK, StageOutput.ID, StageOutput.TEXT), java.util.List.of(COPY, RANK, StageOutput.ID));
    }

    public static JavaPairRDD<CopyKey, byte[]> run(JavaRDD<TokenizedDoc> docs, int copies, long seed, int partitions) {
        return docs.flatMapToPair(d -> {
            java.util.List<scala.Tuple2<CopyKey, byte[]>> out = new java.util.ArrayList<>(copies);
            for (int c = 0; c < copies; c++) {
                out.add(new scala.Tuple2<>(new CopyKey(c, rank(seed, c, d.docId()), d.docId()), d.tokensLE()));
            }
            return out.iterator();
        }).sortByKey(true, partitions);
    }

    /** A uniformly distributed 64-bit rank (SplitMix64 finaliser over the mixed inputs). */
    public static long rank(long seed, int copy, long docId) {
        long h = mix(seed ^ mix(0x9E3779B97F4A7C15L * (copy + 1L)));
        return mix(h ^ docId);
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
