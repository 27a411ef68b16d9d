package dev.gosling.pipeline.dedup;

import dev.gosling.pipeline.StageMeter;
import dev.gosling.pipeline.StageOutput;
import dev.gosling.trainer.GoslingException;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

import static org.apache.spark.sql.functions.col;

/**
 * Stage "exact_dedup": one shuffle by the 128-bit text hash, each hash group sorted by id, then a streaming pass that
 * keeps the first (smallest-id) document of every distinct text and marks the others {@code exact_duplicate} with
 * {@code duplicate_of} = the survivor's id. Memory per task is one text per distinct text of the current hash group
 * (one, unless 128-bit SHA-256 prefixes collide), never a whole group. Counter: hash collisions (equal hashes, texts
 * that differ), which are kept apart.
 */
public final class ExactDedup {
    public static final String REASON = "exact_duplicate";
    private static final StructType HASHED = new StructType(new StructField[] {
            DataTypes.createStructField("h1", DataTypes.LongType, false),
            DataTypes.createStructField("h2", DataTypes.LongType, false),
            DataTypes.createStructField(StageOutput.ID, DataTypes.LongType, false),
            DataTypes.createStructField(StageOutput.TEXT, DataTypes.StringType, false)});
    private static final StructType ROWS = StageOutput.docRows("hash_collisions");

    private ExactDedup() {
    }

    public static StageOutput run(Dataset<Row> docs, ExactDedupConfig cfg, int partitions, StageMeter meter) {
        Dataset<Row> hashed = docs.select(StageOutput.ID, StageOutput.TEXT)
                .mapPartitions((MapPartitionsFunction<Row, Row>) it -> hash(it, meter), Encoders.row(HASHED));
        Dataset<Row> rows = hashed.repartition(partitions, col("h1"), col("h2"))
                .sortWithinPartitions("h1", "h2", StageOutput.ID)
                .mapPartitions((MapPartitionsFunction<Row, Row>) it -> resolve(it, meter), Encoders.row(ROWS));
        return StageOutput.documents(rows);
    }

    /** The first 128 bits of SHA-256 of the UTF-8 text, as two longs (big-endian). */
    public static long[] hash128(MessageDigest sha256, String text) {
        byte[] d = sha256.digest(text.getBytes(StandardCharsets.UTF_8));
        long h1 = 0;
        long h2 = 0;
        for (int i = 0; i < 8; i++) {
            h1 = (h1 << 8) | (d[i] & 0xFF);
            h2 = (h2 << 8) | (d[8 + i] & 0xFF);
        }
        return new long[] {h1, h2};
    }

    private static Iterator<Row> hash(Iterator<Row> in, StageMeter meter) {
        MessageDigest sha = sha256();
        return new Iterator<>() {
            @Override
            public boolean hasNext() {
                return in.hasNext();
            }

            @Override
            public Row next() {
                Row r = in.next();
                String text = r.getString(1);
                long[] h = hash128(sha, text);
                if (meter != null) {
                    meter.doc(text.length());
                }
                return RowFactory.create(h[0], h[1], r.getLong(0), text);
            }
        };
    }

    private static Iterator<Row> resolve(Iterator<Row> in, StageMeter meter) {
        Resolver res = new Resolver();
        return new Iterator<>() {
            @Override
            public boolean hasNext() {
                return in.hasNext();
            }

            @Override
            public Row next() {
                Row r = in.next();
                long id = r.getLong(2);
                String text = r.getString(3);
                long collisionsBefore = res.collisions();
                long dupOf = res.offer(r.getLong(0), r.getLong(1), id, text);
                long collision = res.collisions() - collisionsBefore;
                if (dupOf >= 0) {
                    if (meter != null) {
                        meter.drop(REASON);
                    }
                    return RowFactory.create(id, text, REASON, "same text as id " + dupOf, dupOf, collision);
                }
                return RowFactory.create(id, text, null, null, null, collision);
            }
        };
    }

    /**
     * The streaming decision over rows sorted by (h1, h2, id): {@link #offer} returns the id a document duplicates,
     * or -1 when it is the first of its text. Rows must arrive in that order (checked).
     */
    public static final class Resolver {
        private long h1;
        private long h2;
        private long lastId;
        private boolean any;
        private final List<String> texts = new ArrayList<>(1);
        private final List<Long> ids = new ArrayList<>(1);
        private long collisions;

        public long offer(long hash1, long hash2, long id, String text) {
            if (!any || hash1 != h1 || hash2 != h2) {
                texts.clear();
                ids.clear();
                h1 = hash1;
                h2 = hash2;
            } else if (id <= lastId) {
                throw new GoslingException("exact_dedup: rows out of order (id " + id + " after " + lastId + " in one hash group)");
            }
            any = true;
            lastId = id;
            for (int i = 0; i < texts.size(); i++) {
                if (texts.get(i).equals(text)) {
                    return ids.get(i);
                }
            }
            if (!texts.isEmpty()) {
                collisions++;
            }
            texts.add(text);
            ids.add(id);
            return -1;
        }

        /** Documents whose hash equalled an earlier document's while their text differed. */
        public long collisions() {
            return collisions;
        }
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this Java runtime", e);
        }
    }
}
