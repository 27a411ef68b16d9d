package dev.gosling.pipeline.dedup;

import dev.gosling.pipeline.StageMeter;
import dev.gosling.pipeline.StageOutput;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.StructType;

import java.util.Iterator;
import java.util.Map;

import static org.apache.spark.sql.functions.col;

/**
 * Stage "fuzzy_dedup" of prepare: {@link FuzzyDedup} over the previous stage's documents, its decisions put back on
 * the documents so the stage emits the same rows as {@link ExactDedup} (see {@link StageOutput#docRows}): a removed
 * document carries reason {@value FuzzyDedup#REASON} and {@code duplicate_of} = the smallest id of its cluster (which is
 * kept), and the plan writes it to the stage's rejects with its text, as it does for every stage.
 *
 * <p>FuzzyDedup's rejects hold ids only (its components); one left join of the documents with them (broadcast when
 * small, as FuzzyDedup does for its own {@code kept}) gives every document its verdict in one more read of the input.
 */
public final class FuzzyDedupStage {
    private static final StructType ROWS = StageOutput.docRows();

    /** The stage's rows, and FuzzyDedup's counters ({@code fuzzy_*}, exact, partitioning-independent). */
    public record Output(StageOutput output, Map<String, Long> counters) {
    }

    private FuzzyDedupStage() {
    }

    public static Output run(SparkSession spark, Dataset<Row> docs, FuzzyDedupConfig cfg, StageMeter meter) {
        FuzzyDedup.Result r = FuzzyDedup.run(spark, docs, cfg, meter);
        long removed = r.counters().get(FuzzyCounter.DUPLICATES.key);
        Dataset<Row> dups = FuzzyCheckpoint.broadcastIfSmall(spark,
                r.rejects().select(col("id").as("_dup_id"), col("duplicate_of").as("_dup_of")), removed, 32);
        Dataset<Row> rows = docs.select(col(StageOutput.ID), col(StageOutput.TEXT))
                .join(dups, col(StageOutput.ID).equalTo(col("_dup_id")), "left_outer")
                .select(col(StageOutput.ID), col(StageOutput.TEXT), col("_dup_of"))
                .mapPartitions((MapPartitionsFunction<Row, Row>) it -> mark(it, meter), Encoders.row(ROWS));
        return new Output(StageOutput.documents(rows), r.counters());
    }

    private static Iterator<Row> mark(Iterator<Row> in, StageMeter meter) {
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
                if (r.isNullAt(2)) {
                    return RowFactory.create(id, text, null, null, null);
                }
                long dupOf = r.getLong(2);
                if (meter != null) {
                    meter.drop(FuzzyDedup.REASON);
                }
                return RowFactory.create(id, text, FuzzyDedup.REASON, "near-duplicate cluster of id " + dupOf, dupOf);
            }
        };
    }
}
