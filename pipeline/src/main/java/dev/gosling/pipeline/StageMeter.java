package dev.gosling.pipeline;

import org.apache.spark.SparkContext;
import org.apache.spark.util.AccumulatorV2;
import org.apache.spark.util.LongAccumulator;

import java.io.Serializable;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * Live progress of one running stage, for the progress lines only: documents and bytes seen and drops by reason,
 * as Spark accumulators that tasks add to. A retried task may count twice here; the counts a stage reports in its
 * stats come from its written output instead, and are exact.
 */
public final class StageMeter implements Serializable {
    private static final long serialVersionUID = 1L;

    private final LongAccumulator docs;
    private final LongAccumulator bytes;
    private final ReasonCounts drops;

    public StageMeter(SparkContext sc, String stage) {
        docs = sc.longAccumulator("prepare." + stage + ".docs");
        bytes = sc.longAccumulator("prepare." + stage + ".bytes");
        drops = new ReasonCounts();
        sc.register(drops, "prepare." + stage + ".drops");
    }

    /** One document seen, with its size in bytes (UTF-8) or chars, as the stage measures it. */
    public void doc(long size) {
        docs.add(1);
        bytes.add(size);
    }

    public void drop(String reason) {
        drops.add(reason);
    }

    public long docs() {
        return docs.value();
    }

    public long bytes() {
        return bytes.value();
    }

    public Map<String, Long> drops() {
        return new TreeMap<>(drops.value());
    }

    public long docsAccumulatorId() {
        return docs.id();
    }

    public long bytesAccumulatorId() {
        return bytes.id();
    }

    public long dropsAccumulatorId() {
        return drops.id();
    }

    /** A count per reason. */
    public static final class ReasonCounts extends AccumulatorV2<String, Map<String, Long>> {
        private static final long serialVersionUID = 1L;
        private final HashMap<String, Long> counts = new HashMap<>();

        @Override
        public boolean isZero() {
            return counts.isEmpty();
        }

        @Override
        public AccumulatorV2<String, Map<String, Long>> copy() {
            ReasonCounts c = new ReasonCounts();
            synchronized (this) {
                c.counts.putAll(counts);
            }
            return c;
        }

        @Override
        public synchronized void reset() {
            counts.clear();
        }

        @Override
        public synchronized void add(String reason) {
            counts.merge(reason, 1L, Long::sum);
        }

        @Override
        public void merge(AccumulatorV2<String, Map<String, Long>> other) {
            Map<String, Long> o = other.value();
            synchronized (this) {
                o.forEach((k, v) -> counts.merge(k, v, Long::sum));
            }
        }

        @Override
        public synchronized Map<String, Long> value() {
            return new HashMap<>(counts);
        }
    }
}
