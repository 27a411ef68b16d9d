package dev.gosling.pipeline.dedup;

import dev.gosling.trainer.GoslingException;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoder;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.util.LongAccumulator;

import java.util.Iterator;

import static org.apache.spark.sql.functions.col;

/**
 * Connected components of an undirected graph given as an edge Dataset, computed distributed: the alternating
 * large-star / small-star algorithm of Kiveris et al., "Connected Components in MapReduce and Beyond" (SoCC 2014),
 * the algorithm behind GraphFrames' default and BigCode's 2023 Spark dedup.
 *
 * <p><b>One round.</b> Large-star: every node {@code u} links each <em>larger</em> neighbour to the smallest node of
 * its closed neighbourhood {@code m(u)}. Small-star: every node {@code u} links itself and each <em>smaller</em>
 * neighbour to the smallest of them. Both preserve connectivity and never raise a node's smallest neighbour.
 *
 * <p><b>Bounded memory.</b> Each step is a shuffle by {@code u} with the rows sorted by {@code (u, v)} inside each
 * partition (Spark's external sort spills to disk), then one streaming pass: the smallest neighbour is the first row
 * of {@code u}'s run, and every input row gives at most two output rows. No neighbourhood is held in memory, however
 * large the degree; nothing is collected to the driver.
 *
 * <p><b>Convergence.</b> The changes of each step are counted: large-star re-points an edge when {@code u} has both a
 * smaller and a larger neighbour; small-star when {@code u} has more than one smaller neighbour. A round with no change
 * in either step leaves a graph in which no node has both smaller and larger neighbours and no node has two smaller
 * ones: a forest of stars, each centred on its component's smallest id. Kiveris et al. prove O(log² n) rounds; long
 * paths are the slow case: measured (ConnectedComponentsSuite), a 4096-vertex path takes 11–13 rounds, random graphs
 * of 3000 vertices 5–7, chained LSH-like stars 8, a star 2. The counters are accumulators: a retried
 * task may count a change twice, which cannot turn zero into non-zero or back, so the stopping round is exact.
 *
 * <p><b>Checkpoints.</b> Each round's output is materialised: a local checkpoint (lineage truncated) when no
 * {@code checkpoint_dir} is configured; otherwise it is persisted (memory and disk) and written as Parquet to
 * {@code checkpoint_dir/cc-round-N} every {@code checkpoint_interval} rounds, so the lineage to recompute after losing
 * an executor is at most that many rounds. The previous reliable checkpoint is deleted once the next one is written.
 *
 * <p>The result is a function of the edge set alone (as a set), so it does not depend on partitioning, executor
 * count or input order.
 */
public final class ConnectedComponents {
    static final StructType EDGE = new StructType()
            .add("u", DataTypes.LongType, false)
            .add("v", DataTypes.LongType, false);
    static final Encoder<Row> EDGE_ENCODER = Encoders.row(EDGE);

    private ConnectedComponents() {
    }

    /**
     * @param components one row {@code (id: long, root: long)} for every vertex that is not the smallest id of its
     *                   component, {@code root} being that smallest id; the roots themselves have no row, and vertices
     *                   without edges do not appear
     * @param rounds     large-star/small-star rounds run, the last one (without change) included
     */
    public record Result(Dataset<Row> components, int rounds) {
    }

    /**
     * Components of the graph of {@code edges} (columns {@code src: long, dst: long}; any orientation, repeated edges
     * and self-loops allowed). Fails with a one-line error naming {@code fuzzy_dedup.max_iterations} when not converged
     * within {@code cfg.maxIterations()} rounds.
     */
    public static Result run(SparkSession spark, Dataset<Row> edges, FuzzyDedupConfig cfg) {
        String previousDescription = spark.sparkContext().getLocalProperty("spark.job.description");
        try {
            return rounds(spark, edges, cfg);
        } finally {
            spark.sparkContext().setJobDescription(previousDescription);
        }
    }

    private static Result rounds(SparkSession spark, Dataset<Row> edges, FuzzyDedupConfig cfg) {
        Dataset<Row> e = edges.select(col("src").cast(DataTypes.LongType).as("u"), col("dst").cast(DataTypes.LongType).as("v"))
                .where(col("u").notEqual(col("v")));
        String dir = cfg.checkpointDir();
        Dataset<Row> persisted = null;
        int lastReliable = 0;
        for (int round = 1; round <= cfg.maxIterations(); round++) {
            LongAccumulator largeChanges = spark.sparkContext().longAccumulator("cc large-star changes, round " + round);
            LongAccumulator smallChanges = spark.sparkContext().longAccumulator("cc small-star changes, round " + round);
            Dataset<Row> both = e.select(col("u"), col("v")).union(e.select(col("v").as("u"), col("u").as("v")));
            Dataset<Row> large = both.repartition(col("u")).sortWithinPartitions("u", "v")
                    .mapPartitions(new LargeStar(largeChanges), EDGE_ENCODER);
            Dataset<Row> small = large.repartition(col("u")).sortWithinPartitions("u", "v")
                    .mapPartitions(new SmallStar(smallChanges), EDGE_ENCODER);
            spark.sparkContext().setJobDescription("fuzzy dedup: connected components, round " + round);
            Dataset<Row> next;
            Dataset<Row> nextPersisted = null;
            if (dir == null) {
                next = FuzzyCheckpoint.materialize(spark, small, null, null);
            } else {
                nextPersisted = FuzzyCheckpoint.persist(small);
                next = nextPersisted;
            }
            boolean converged = largeChanges.value() == 0 && smallChanges.value() == 0;
            if (dir != null && (converged || round % cfg.checkpointInterval() == 0)) {
                next = FuzzyCheckpoint.materialize(spark, next, dir, roundName(round));
                nextPersisted.unpersist(false);
                nextPersisted = null;
                if (lastReliable > 0) {
                    FuzzyCheckpoint.delete(spark, dir, roundName(lastReliable));
                }
                lastReliable = round;
            }
            if (persisted != null) {
                persisted.unpersist(false);
            }
            persisted = nextPersisted;
            e = next;
            if (converged) {
                return new Result(e.select(col("u").as("id"), col("v").as("root")), round);
            }
        }
        throw new GoslingException(FuzzyDedupConfig.PREFIX + "max_iterations = " + cfg.maxIterations()
                + ": connected components did not converge in that many large-star/small-star rounds; raise it");
    }

    static String roundName(int round) {
        return String.format("cc-round-%05d", round);
    }

    /** Large-star: rows {@code (u, v)} in both directions; emits {@code (v, m(u))} for every neighbour {@code v > u}. */
    static final class LargeStar implements MapPartitionsFunction<Row, Row> {
        private final LongAccumulator changes;

        LargeStar(LongAccumulator changes) {
            this.changes = changes;
        }

        @Override
        public Iterator<Row> call(Iterator<Row> input) {
            return new FuzzyStream(input) {
                private boolean started;
                private long u;
                private long prevV;
                private long m;
                private long localChanges;

                @Override
                void accept(Row r) {
                    long nu = r.getLong(0);
                    long v = r.getLong(1);
                    if (!started || nu != u) {
                        started = true;
                        u = nu;
                        m = Math.min(nu, v); // the first row of the run holds u's smallest neighbour
                    } else if (v == prevV) {
                        return; // a repeated edge
                    }
                    prevV = v;
                    if (v > u) {
                        emit(RowFactory.create(v, m));
                        if (m != u) {
                            localChanges++;
                        }
                    }
                }

                @Override
                void finish() {
                    changes.add(localChanges);
                }
            };
        }
    }

    /**
     * Small-star: rows {@code (u, v)} with {@code u > v}; with {@code m} the smallest of u's smaller neighbours, emits
     * {@code (u, m)} and {@code (v, m)} for every other smaller neighbour {@code v}.
     */
    static final class SmallStar implements MapPartitionsFunction<Row, Row> {
        private final LongAccumulator changes;

        SmallStar(LongAccumulator changes) {
            this.changes = changes;
        }

        @Override
        public Iterator<Row> call(Iterator<Row> input) {
            return new FuzzyStream(input) {
                private boolean started;
                private long u;
                private long prevV;
                private long m;
                private long localChanges;

                @Override
                void accept(Row r) {
                    long nu = r.getLong(0);
                    long v = r.getLong(1);
                    if (!started || nu != u) {
                        started = true;
                        u = nu;
                        m = v;
                        prevV = v;
                        emit(RowFactory.create(u, m));
                        return;
                    }
                    if (v == prevV) {
                        return;
                    }
                    prevV = v;
                    emit(RowFactory.create(v, m));
                    localChanges++;
                }

                @Override
                void finish() {
                    changes.add(localChanges);
                }
            };
        }
    }
}
