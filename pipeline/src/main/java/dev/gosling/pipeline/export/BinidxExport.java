package dev.gosling.pipeline.export;

import dev.gosling.trainer.data.BinIdxWriter;
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
