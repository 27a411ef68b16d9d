package dev.gosling.pipeline.export;

import dev.gosling.pipeline.StageOutput;
import dev.gosling.pipeline.tokenize.TokenizeStage;
import dev.gosling.trainer.data.BinIdxWriter;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import scala.Tuple2;
import org.apache.spark.api.java.JavaPairRDD;

import java.nio.file.Path;
import java.util.Iterator;

/**
 * Stage "binidx": streams the globally sorted documents to the driver, one partition at a time, into one
 * .bin/.idx pair (one item per document). The writer commits atomically, so a failed job leaves no finished-looking pair.
 */
public final class BinidxExport {
    private BinidxExport() {
    }

    public record Written(long tokens, long items, long longestItem) {
    }

    /**
     * Stage "binidx" of prepare: the tokenize stage's rows in (copy, rank, id) order, one item per row. The order is
     * total (ids are unique), so the files do not depend on how Spark splits the sort.
     */
    public static Written write(Dataset<Row> tokenized, int partitions, Path prefix) {
        JavaPairRDD<ShuffledCopies.CopyKey, byte[]> pairs = tokenized
                .select(ShuffledCopies.COPY, ShuffledCopies.RANK, StageOutput.ID, TokenizeStage.TOKENS).javaRDD()
                .mapToPair(r -> new Tuple2<>(new ShuffledCopies.CopyKey(r.getInt(0), r.getLong(1), r.getLong(2)), (byte[]) r.get(3)));
        return write(pairs.sortByKey(true, partitions), prefix);
    }

    public static Written write(JavaPairRDD<ShuffledCopies.CopyKey, byte[]> sorted, Path prefix) {
        long longest = 0;
        try (BinIdxWriter writer = new BinIdxWriter(prefix)) {
            int[] ids = new int[1024];
            Iterator<byte[]> it = sorted.values().toLocalIterator();
            while (it.hasNext()) {
                byte[] le = it.next();
                int n = le.length / 2;
                if (ids.length < n) {
                    ids = new int[Math.max(n, 2 * ids.length)];
                }
                for (int i = 0; i < n; i++) {
                    ids[i] = (le[2 * i] & 0xFF) | (le[2 * i + 1] & 0xFF) << 8;
                }
                writer.addDocument(ids, 0, n);
                longest = Math.max(longest, n);
            }
            writer.commit();
            return new Written(writer.tokenCount(), writer.itemCount(), longest);
        }
    }
}
