package dev.gosling.pipeline.dedup;

import dev.gosling.pipeline.StageMeter;
import dev.gosling.trainer.GoslingException;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoder;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

import java.util.Iterator;

import static org.apache.spark.sql.functions.col;

/**
 * MinHash signatures to LSH buckets to candidate edges.
 *
 * <p><b>Band rows.</b> One pass over the documents: each document is shingled ({@link Shingler}), its signature
 * computed ({@link MinHasher}) and one row {@code (band, bucket = band hash, id)} emitted per band. Signatures are
 * never stored. Each task also emits its counters as rows with {@code band = -1}.
 *
 * <p><b>Buckets.</b> A shuffle by {@code (band, bucket)}, rows sorted by {@code (band, bucket, id)} inside each
 * partition (external sort, spills), then one streaming pass: the first id of a bucket's run is its smallest; every
 * other member gets the star edge {@code member → smallest} (as BigCode: O(k) edges per bucket, not O(k²)). No bucket
 * is held in memory, whatever its size. A bucket with more than {@code max_bucket_size} members links only its
 * {@code max_bucket_size} smallest ids (the choice is by id, hence deterministic); the members left out are counted,
 * and still match through their other bands. Output rows are {@code (kind, a, b)}: kind 0 an edge {@code a → b},
 * kind 1 a counter {@code (code, value)}.
 */
final class LshBuckets {
    static final StructType BAND = new StructType()
            .add("band", DataTypes.IntegerType, false)
            .add("bucket", DataTypes.LongType, false)
            .add("id", DataTypes.LongType, false);
    static final StructType OUT = new StructType()
            .add("kind", DataTypes.IntegerType, false)
            .add("a", DataTypes.LongType, false)
            .add("b", DataTypes.LongType, false);
    static final Encoder<Row> BAND_ENCODER = Encoders.row(BAND);
    static final Encoder<Row> OUT_ENCODER = Encoders.row(OUT);
    static final int EDGE = 0;
    static final int COUNTER = 1;

    private LshBuckets() {
    }

    static Row counter(FuzzyCounter c, long value) {
        return RowFactory.create(COUNTER, (long) c.ordinal(), value);
    }

    /** Band rows of the documents (columns {@code id: long, text: string}); {@code meter} (may be null) counts them. */
    static Dataset<Row> bandRows(Dataset<Row> docs, FuzzyDedupConfig cfg, StageMeter meter) {
        return docs.select(col("id"), col("text")).mapPartitions(new Signatures(cfg, meter), BAND_ENCODER);
    }

    /** Star edges and counters (kind, a, b) of the band rows. */
    static Dataset<Row> starEdges(Dataset<Row> bandRows, FuzzyDedupConfig cfg) {
        return bandRows.repartition(col("band"), col("bucket"))
                .sortWithinPartitions("band", "bucket", "id")
                .mapPartitions(new Buckets(cfg.maxBucketSize()), OUT_ENCODER);
    }

    static final class Signatures implements MapPartitionsFunction<Row, Row> {
        private final FuzzyDedupConfig cfg;
        private final StageMeter meter;

        Signatures(FuzzyDedupConfig cfg, StageMeter meter) {
            this.cfg = cfg;
            this.meter = meter;
        }

        @Override
        public Iterator<Row> call(Iterator<Row> input) {
            final Shingler shingler = new Shingler(cfg.shingleWords(), cfg.cjkShingleChars());
            final MinHasher hasher = new MinHasher(cfg.bands(), cfg.rows(), cfg.seed());
            final long[] sig = new long[hasher.permutations()];
            final int bands = hasher.bands();
            return new FuzzyStream(input) {
                private long docs;
                private long empty;
                private long charDocs;
                private long shingles;

                @Override
                void accept(Row r) {
                    docs++;
                    String text = r.isNullAt(1) ? null : r.getString(1);
                    if (meter != null) {
                        meter.doc(text == null ? 0 : text.length());
                    }
                    Shingler.Mode mode = shingler.shingle(text);
                    if (mode == Shingler.Mode.NONE) {
                        empty++;
                        return;
                    }
                    if (mode == Shingler.Mode.CHARS) {
                        charDocs++;
                    }
                    shingles += shingler.size();
                    hasher.signature(shingler.hashes(), shingler.size(), sig);
                    Long id = r.getLong(0);
                    for (int band = 0; band < bands; band++) {
                        emit(RowFactory.create(band, hasher.bandHash(sig, band), id));
                    }
                }

                @Override
                void finish() {
                    emit(RowFactory.create(-1, (long) FuzzyCounter.INPUT_DOCS.ordinal(), docs));
                    emit(RowFactory.create(-1, (long) FuzzyCounter.DOCS_WITHOUT_SHINGLES.ordinal(), empty));
                    emit(RowFactory.create(-1, (long) FuzzyCounter.DOCS_CHAR_SHINGLED.ordinal(), charDocs));
                    emit(RowFactory.create(-1, (long) FuzzyCounter.SHINGLES.ordinal(), shingles));
                }
            };
        }
    }

    static final class Buckets implements MapPartitionsFunction<Row, Row> {
        private final int cap;

        Buckets(int cap) {
            this.cap = cap;
        }

        @Override
        public Iterator<Row> call(Iterator<Row> input) {
            return new FuzzyStream(input) {
                private boolean open;
                private int band;
                private long bucket;
                private long min;
                private long prevId;
                private long size;
                private long shared;
                private long largest;
                private long capped;
                private long cappedMembers;

                private void close() {
                    if (!open) {
                        return;
                    }
                    if (size >= 2) {
                        shared++;
                    }
                    if (size > cap) {
                        capped++;
                        cappedMembers += size - cap;
                    }
                    largest = Math.max(largest, size);
                    open = false;
                }

                @Override
                void accept(Row r) {
                    int nb = r.getInt(0);
                    long bk = r.getLong(1);
                    long id = r.getLong(2);
                    if (nb < 0) { // a counter row of the signature pass
                        emit(RowFactory.create(COUNTER, bk, id));
                        return;
                    }
                    if (!open || nb != band || bk != bucket) {
                        close();
                        open = true;
                        band = nb;
                        bucket = bk;
                        min = id;
                        prevId = id;
                        size = 1;
                        return;
                    }
                    if (id == prevId) {
                        throw new GoslingException("fuzzy dedup: document id " + id
                                + " occurs more than once in the input; ids must be unique");
                    }
                    prevId = id;
                    size++;
                    if (size <= cap) {
                        emit(RowFactory.create(EDGE, id, min));
                    }
                }

                @Override
                void finish() {
                    close();
                    emit(counter(FuzzyCounter.SHARED_BUCKETS, shared));
                    emit(counter(FuzzyCounter.LARGEST_BUCKET, largest));
                    emit(counter(FuzzyCounter.BUCKETS_CAPPED, capped));
                    emit(counter(FuzzyCounter.BUCKET_MEMBERS_CAPPED, cappedMembers));
                }
            };
        }
    }
}
