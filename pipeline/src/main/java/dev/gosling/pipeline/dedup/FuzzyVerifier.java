package dev.gosling.pipeline.dedup;

import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;

import java.util.Iterator;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.lit;

/**
 * Exact-Jaccard verification of candidate edges {@code src → dst} (dst being a bucket's smallest id, the "anchor").
 *
 * <p>Each edge asks for the text of its {@code src}, each anchor for its own text, in one join with the documents;
 * the rows are shuffled by anchor and sorted by {@code (anchor, role, id)}, so that inside each partition an anchor's
 * own text comes first, followed by the texts of the documents linked to it. One streaming pass then shingles the
 * anchor once, shingles each linked document and keeps the edge when their exact Jaccard similarity (on the shingle
 * sets of {@link Shingler}) is at least {@code threshold}. Memory: one anchor's and one document's shingle sets.
 * Every document travels once per edge it is the source of, plus once per anchor it is.
 */
final class FuzzyVerifier {
    private FuzzyVerifier() {
    }

    /**
     * Verified edges and counters (kind, a, b), see {@link LshBuckets#OUT}. {@code edges} (distinct, {@code edgeCount}
     * rows) is materialised; when the text requests are small enough they are broadcast, so that only the documents
     * they name leave their partition.
     */
    static Dataset<Row> verify(SparkSession spark, Dataset<Row> edges, long edgeCount, Dataset<Row> docs, FuzzyDedupConfig cfg) {
        Dataset<Row> linked = edges.select(col("src").as("rid"), col("dst").as("anchor"), lit(1).as("role"));
        Dataset<Row> anchors = edges.select(col("dst").as("rid"), col("dst").as("anchor"), lit(0).as("role")).distinct();
        Dataset<Row> requests = FuzzyCheckpoint.broadcastIfSmall(spark, linked.union(anchors), 2 * edgeCount, 64);
        Dataset<Row> texts = docs.select(col("id").as("doc_id"), col("text"));
        return requests.join(texts, col("rid").equalTo(col("doc_id")))
                .select(col("anchor"), col("role"), col("rid"), col("text"))
                .repartition(col("anchor"))
                .sortWithinPartitions("anchor", "role", "rid")
                .mapPartitions(new Verify(cfg), LshBuckets.OUT_ENCODER);
    }

    static final class Verify implements MapPartitionsFunction<Row, Row> {
        private final FuzzyDedupConfig cfg;

        Verify(FuzzyDedupConfig cfg) {
            this.cfg = cfg;
        }

        @Override
        public Iterator<Row> call(Iterator<Row> input) {
            final Shingler shingler = new Shingler(cfg.shingleWords(), cfg.cjkShingleChars());
            final double threshold = cfg.threshold();
            return new FuzzyStream(input) {
                private long anchor;
                private long[] anchorSet;
                private long below;

                @Override
                void accept(Row r) {
                    long a = r.getLong(0);
                    int role = r.getInt(1);
                    long id = r.getLong(2);
                    String text = r.isNullAt(3) ? null : r.getString(3);
                    if (role == 0) {
                        anchor = a;
                        anchorSet = shingler.shingleSet(text);
                        return;
                    }
                    if (anchorSet == null || anchor != a) {
                        throw new IllegalStateException("fuzzy dedup verification: no text for anchor " + a);
                    }
                    double j = Shingler.jaccard(anchorSet, shingler.shingleSet(text));
                    if (j >= threshold) {
                        emit(RowFactory.create(LshBuckets.EDGE, id, a));
                    } else {
                        below++;
                    }
                }

                @Override
                void finish() {
                    emit(LshBuckets.counter(FuzzyCounter.PAIRS_BELOW_THRESHOLD, below));
                }
            };
        }
    }
}
