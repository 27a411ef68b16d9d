package dev.gosling.pipeline.dedup;

import dev.gosling.pipeline.StageMeter;
import dev.gosling.trainer.GoslingException;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;

import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.count;
import static org.apache.spark.sql.functions.countDistinct;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.max;
import static org.apache.spark.sql.functions.sum;

/**
 * The fuzzy deduplication stage: MinHash over shingles, LSH buckets linked to their smallest id, optional exact-Jaccard
 * verification, distributed connected components; the smallest id of each component survives.
 *
 * <pre>
 *  docs(id, text) ─► shingles ─► MinHash signature ─► (band, band hash, id) ─► shuffle + sort by bucket
 *       ─► star edges member → bucket min (capped) ─► distinct ─► [verify: exact Jaccard ≥ threshold]
 *       ─► connected components (large-star / small-star) ─► rejects (id, "fuzzy_duplicate", duplicate_of = component min)
 *       ─► kept = docs without the rejects
 * </pre>
 *
 * <p>Everything runs in Spark tasks with bounded memory: grouping is done by sorting (spillable), never by collecting a
 * bucket, a neighbourhood or an edge list; only the counters (a dozen numbers) reach the driver. See {@link Shingler},
 * {@link MinHasher}, {@link LshBuckets}, {@link FuzzyVerifier} and {@link ConnectedComponents} for each step and
 * {@link FuzzyDedupConfig} for the parameters and the choice of bands and rows.
 *
 * <p><b>Determinism.</b> Every step is a function of its input as a set (signatures of a document, buckets sorted by
 * id, distinct edges, components of the edge set), so {@code kept} and {@code rejects} hold the same rows for any
 * partitioning, executor count and rerun, and the counters are identical too. Row order inside the returned datasets is
 * not defined: sort by id before writing files that must be byte-identical.
 *
 * <p>The documents are read three times (signatures, verification, the final filter): pass a Dataset that is cheap to
 * re-read, such as the previous stage's Parquet output.
 */
public final class FuzzyDedup {
    public static final String REASON = "fuzzy_duplicate";

    private FuzzyDedup() {
    }

    /**
     * @param kept     the input rows that are not fuzzy duplicates, with the input's schema
     * @param rejects  {@code id: long, reason: string = "fuzzy_duplicate", duplicate_of: long} (the smallest id of the
     *                 document's component, which is kept)
     * @param counters the {@code fuzzy_*} counters, in a fixed order (see {@link #COUNTER_KEYS})
     */
    public record Result(Dataset<Row> kept, Dataset<Row> rejects, Map<String, Long> counters) {
    }

    /** The counter keys, in the order of {@link Result#counters()}. */
    public static final java.util.List<String> COUNTER_KEYS =
            Arrays.stream(FuzzyCounter.values()).map(c -> c.key).toList();

    /**
     * Runs the stage. {@code docs} needs {@code id: bigint} (unique) and {@code text: string} columns (a null text is
     * an empty document); other columns are carried through to {@code kept}. Computes everything up to the components
     * now; {@code kept} and {@code rejects} are then cheap plans over the materialised components.
     */
    public static Result run(SparkSession spark, Dataset<Row> docs, FuzzyDedupConfig cfg) {
        return run(spark, docs, cfg, null);
    }

    /**
     * As {@link #run(SparkSession, Dataset, FuzzyDedupConfig)}, reporting progress to {@code meter} (may be null): each
     * document once, in the signature pass, so that a progress line's document count is not inflated by later re-reads.
     */
    public static Result run(SparkSession spark, Dataset<Row> docs, FuzzyDedupConfig cfg, StageMeter meter) {
        requireColumn(docs, "id", DataTypes.LongType);
        requireColumn(docs, "text", DataTypes.StringType);
        String previousDescription = spark.sparkContext().getLocalProperty("spark.job.description");
        try {
            return stages(spark, docs, cfg, meter);
        } catch (Exception e) { // SparkException is a checked exception that Scala code throws undeclared
            // a user error raised inside a task arrives wrapped by Spark: surface its one line
            GoslingException user = GoslingException.findIn(e);
            if (user != null && user != e) {
                throw new GoslingException(user.getMessage(), e);
            }
            throw FuzzyDedup.<RuntimeException>rethrow(e);
        } finally {
            spark.sparkContext().setJobDescription(previousDescription);
        }
    }

    private static Result stages(SparkSession spark, Dataset<Row> docs, FuzzyDedupConfig cfg, StageMeter meter) {
        long[] counters = new long[FuzzyCounter.values().length];
        String dir = cfg.checkpointDir();
        Dataset<Row> input = docs.select(col("id"), col("text"));

        spark.sparkContext().setJobDescription(String.format(
                "fuzzy dedup: shingles, MinHash (%d bands x %d rows), LSH buckets", cfg.bands(), cfg.rows()));
        Dataset<Row> buckets = FuzzyCheckpoint.materialize(spark,
                LshBuckets.starEdges(LshBuckets.bandRows(input, cfg, meter), cfg), dir, "lsh-buckets");
        addCounters(buckets, counters);
        spark.sparkContext().setJobDescription("fuzzy dedup: distinct candidate pairs");
        Dataset<Row> edges = FuzzyCheckpoint.materialize(spark, buckets.where(col("kind").equalTo(LshBuckets.EDGE))
                .select(col("a").as("src"), col("b").as("dst")).distinct(), dir, "candidate-pairs");
        long candidates = edges.count();
        counters[FuzzyCounter.CANDIDATE_PAIRS.ordinal()] = candidates;

        if (cfg.verify()) {
            spark.sparkContext().setJobDescription(String.format(
                    "fuzzy dedup: exact Jaccard of %d candidate pairs (threshold %s)", candidates, cfg.threshold()));
            Dataset<Row> verified = FuzzyCheckpoint.materialize(spark, FuzzyVerifier.verify(spark, edges, candidates, input, cfg),
                    dir, "verified-pairs");
            addCounters(verified, counters);
            edges = verified.where(col("kind").equalTo(LshBuckets.EDGE)).select(col("a").as("src"), col("b").as("dst"));
        }

        ConnectedComponents.Result cc = ConnectedComponents.run(spark, edges, cfg);
        counters[FuzzyCounter.CC_ROUNDS.ordinal()] = cc.rounds();
        Dataset<Row> components = cc.components();
        spark.sparkContext().setJobDescription("fuzzy dedup: counting duplicates and clusters");
        Row agg = components.agg(count(lit(1)), countDistinct(col("root"))).first();
        long duplicates = agg.getLong(0);
        counters[FuzzyCounter.DUPLICATES.ordinal()] = duplicates;
        counters[FuzzyCounter.CLUSTERS.ordinal()] = agg.getLong(1);
        counters[FuzzyCounter.KEPT.ordinal()] = counters[FuzzyCounter.INPUT_DOCS.ordinal()] - duplicates;

        Dataset<Row> rejects = components.select(col("id"), lit(REASON).as("reason"), col("root").as("duplicate_of"));
        Dataset<Row> removed = FuzzyCheckpoint.broadcastIfSmall(spark,
                components.select(col("id").as("_fuzzy_duplicate_id")), duplicates, 32);
        Dataset<Row> kept = docs.join(removed, docs.col("id").equalTo(removed.col("_fuzzy_duplicate_id")), "left_anti");

        Map<String, Long> out = new LinkedHashMap<>();
        for (FuzzyCounter c : FuzzyCounter.values()) {
            out.put(c.key, counters[c.ordinal()]);
        }
        return new Result(kept, rejects, Collections.unmodifiableMap(out));
    }

    /** Rethrows any exception unchanged (checked ones included) without declaring it. */
    @SuppressWarnings("unchecked")
    private static <T extends Exception> T rethrow(Exception e) throws T {
        throw (T) e;
    }

    /** Adds the counter rows (kind 1) of a materialised (kind, a, b) dataset into {@code counters}. */
    private static void addCounters(Dataset<Row> rows, long[] counters) {
        for (Row r : rows.where(col("kind").equalTo(LshBuckets.COUNTER)).groupBy(col("a"))
                .agg(sum(col("b")), max(col("b"))).collectAsList()) {
            FuzzyCounter c = FuzzyCounter.values()[(int) r.getLong(0)];
            counters[c.ordinal()] += c.max ? r.getLong(2) : r.getLong(1);
        }
    }

    private static void requireColumn(Dataset<Row> docs, String name, DataType type) {
        for (StructField f : docs.schema().fields()) {
            if (f.name().equals(name)) {
                if (!f.dataType().equals(type)) {
                    throw new GoslingException("fuzzy dedup: input column `" + name + "` is " + f.dataType().simpleString()
                            + ", expected " + type.simpleString());
                }
                return;
            }
        }
        throw new GoslingException("fuzzy dedup: the input has no column `" + name + "` (" + type.simpleString()
                + "); its columns: " + String.join(", ", docs.columns()));
    }
}
