package dev.gosling.pipeline.dedup;

import dev.gosling.trainer.GoslingException;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.network.util.JavaUtils;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;
import org.apache.spark.storage.StorageLevel;

import java.io.IOException;

/**
 * How fuzzy dedup materialises its intermediate datasets, so that no plan is computed twice and no lineage grows
 * without bound: a reliable checkpoint (Parquet under {@code checkpoint_dir}, read back) or a local checkpoint
 * (executor storage, memory and disk, lineage truncated).
 */
final class FuzzyCheckpoint {
    private FuzzyCheckpoint() {
    }

    /** Materialises {@code ds} now: Parquet at {@code dir/name} when {@code dir} is set, else a local checkpoint. */
    static Dataset<Row> materialize(SparkSession spark, Dataset<Row> ds, String dir, String name) {
        if (dir == null) {
            return ds.localCheckpoint(true, StorageLevel.MEMORY_AND_DISK());
        }
        String path = new Path(dir, name).toString();
        ds.write().mode(SaveMode.Overwrite).parquet(path);
        return spark.read().schema(ds.schema()).parquet(path);
    }

    /**
     * Marks {@code small} for a broadcast join when its estimated size ({@code rows × bytesPerRow}) is under Spark's
     * own {@code spark.sql.autoBroadcastJoinThreshold}, so that the large side of the join (the documents) is not
     * shuffled. A local checkpoint carries no size statistics, so Spark cannot make this choice by itself; a broadcast
     * passes through the driver, and the threshold bounds what it holds there.
     */
    static Dataset<Row> broadcastIfSmall(SparkSession spark, Dataset<Row> small, long rows, int bytesPerRow) {
        String conf = spark.conf().get("spark.sql.autoBroadcastJoinThreshold", "10MB");
        long threshold = conf.trim().startsWith("-") ? -1 : JavaUtils.byteStringAsBytes(conf.trim());
        return threshold >= 0 && rows <= threshold / bytesPerRow ? functions.broadcast(small) : small;
    }

    /** Persists {@code ds} (memory and disk) and computes it now; the caller unpersists it. */
    static Dataset<Row> persist(Dataset<Row> ds) {
        Dataset<Row> p = ds.persist(StorageLevel.MEMORY_AND_DISK());
        p.count();
        return p;
    }

    /** Deletes {@code dir/name} if it exists (a checkpoint no longer needed). */
    static void delete(SparkSession spark, String dir, String name) {
        Path p = new Path(dir, name);
        try {
            FileSystem fs = p.getFileSystem(spark.sparkContext().hadoopConfiguration());
            if (fs.exists(p)) {
                fs.delete(p, true);
            }
        } catch (IOException e) {
            throw new GoslingException(FuzzyDedupConfig.PREFIX + "checkpoint_dir: cannot delete " + p + ": " + e.getMessage(), e);
        }
    }
}
