package dev.gosling.pipeline.prepare;

import dev.gosling.pipeline.StageMeter;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkJobInfo;
import org.apache.spark.SparkStageInfo;
import org.apache.spark.scheduler.AccumulableInfo;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerExecutorMetricsUpdate;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import scala.Tuple4;
import scala.jdk.javaapi.CollectionConverters;

import java.io.PrintStream;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;

/**
 * A driver thread that prints one line per running stage every {@code progress_seconds}: documents (of how many,
 * when the stage before said), bytes, drops by reason and an ETA. Numbers are the stage's accumulators: values of
 * finished tasks plus what running tasks last reported in their executor heartbeats (Spark sends user accumulators
 * with them, every spark.executor.heartbeatInterval). When the total is unknown (ingest), the ETA comes from the
 * finished share of the stage's Spark tasks.
 */
public final class ProgressReporter extends SparkListener implements AutoCloseable {
    private final SparkContext sc;
    private final PrintStream out;
    private final long periodNanos;
    private final LongSupplier clock;
    private final Map<Long, Map<Long, Object>> running = new ConcurrentHashMap<>();
    private volatile Running current;
    private final Thread thread;
    private volatile boolean closed;

    private record Running(String stage, String group, StageMeter meter, long expectedDocs, long startNanos) {
    }

    public ProgressReporter(SparkContext sc, PrintStream out, double periodSeconds) {
        this(sc, out, periodSeconds, System::nanoTime);
    }

    ProgressReporter(SparkContext sc, PrintStream out, double periodSeconds, LongSupplier clock) {
        this.sc = sc;
        this.out = out;
        this.periodNanos = (long) (periodSeconds * 1e9);
        this.clock = clock;
        sc.addSparkListener(this);
        thread = new Thread(this::loop, "gosling-prepare-progress");
        thread.setDaemon(true);
        thread.start();
    }

    /** A stage starts: its Spark job group, its meter, and how many documents it will see (-1 = unknown). */
    public void start(String stage, String jobGroup, StageMeter meter, long expectedDocs) {
        running.clear();
        current = new Running(stage, jobGroup, meter, expectedDocs, clock.getAsLong());
    }

    public void stop() {
        current = null;
    }

    private void loop() {
        long next = clock.getAsLong() + periodNanos;
        while (!closed) {
            long wait = next - clock.getAsLong();
            if (wait > 0) {
                try {
                    Thread.sleep(Math.max(1, wait / 1_000_000), (int) (wait % 1_000_000 / 1000));
                } catch (InterruptedException e) {
                    return;
                }
                continue;
            }
            next += periodNanos;
            Running r = current;
            if (r != null) {
                out.println(line(r));
                out.flush();
            }
        }
    }

    /** The progress line of the running stage, or null when none runs. */
    public String line() {
        Running r = current;
        return r == null ? null : line(r);
    }

    private String line(Running r) {
        long docs = r.meter.docs();
        long bytes = r.meter.bytes();
        Map<String, Long> drops = new TreeMap<>(r.meter.drops());
        for (Map<Long, Object> task : running.values()) {
            docs += asLong(task.get(r.meter.docsAccumulatorId()));
            bytes += asLong(task.get(r.meter.bytesAccumulatorId()));
            Object d = task.get(r.meter.dropsAccumulatorId());
            if (d instanceof Map<?, ?> m) {
                m.forEach((k, v) -> drops.merge(String.valueOf(k), asLong(v), Long::sum));
            }
        }
        double elapsed = (clock.getAsLong() - r.startNanos) / 1e9;
        StringBuilder sb = new StringBuilder("prepare [").append(r.stage).append("] ");
        double fraction;
        if (r.expectedDocs > 0) {
            docs = Math.min(docs, r.expectedDocs);
            fraction = (double) docs / r.expectedDocs;
            sb.append(String.format(Locale.ROOT, "%,d of %,d docs (%.1f%%)", docs, r.expectedDocs, 100 * fraction));
        } else {
            fraction = taskFraction(r.group);
            sb.append(String.format(Locale.ROOT, "%,d docs (%.1f%% of tasks)", docs, 100 * fraction));
        }
        sb.append(String.format(Locale.ROOT, ", %s, %s/s", mb(bytes), mb((long) (bytes / Math.max(elapsed, 1e-3)))));
        long dropped = drops.values().stream().mapToLong(Long::longValue).sum();
        sb.append(String.format(Locale.ROOT, ", dropped %,d", dropped));
        if (dropped > 0) {
            sb.append(" (");
            int shown = 0;
            for (Map.Entry<String, Long> e : drops.entrySet()) {
                sb.append(shown++ == 0 ? "" : ", ").append(e.getKey()).append(' ').append(String.format(Locale.ROOT, "%,d", e.getValue()));
            }
            sb.append(')');
        }
        sb.append(", elapsed ").append(duration(elapsed)).append(", ETA ");
        sb.append(fraction > 0.001 ? duration(elapsed * (1 - fraction) / fraction) : "unknown");
        return sb.toString();
    }

    private double taskFraction(String group) {
        long done = 0;
        long total = 0;
        for (int job : sc.statusTracker().getJobIdsForGroup(group)) {
            scala.Option<SparkJobInfo> info = sc.statusTracker().getJobInfo(job);
            if (info.isEmpty()) {
                continue;
            }
            for (int stageId : info.get().stageIds()) {
                scala.Option<SparkStageInfo> st = sc.statusTracker().getStageInfo(stageId);
                if (st.isDefined()) {
                    done += st.get().numCompletedTasks();
                    total += st.get().numTasks();
                }
            }
        }
        return total == 0 ? 0 : (double) done / total;
    }

    @Override
    public void onExecutorMetricsUpdate(SparkListenerExecutorMetricsUpdate update) {
        Running r = current;
        if (r == null) {
            return;
        }
        for (Tuple4<Object, Object, Object, scala.collection.immutable.Seq<AccumulableInfo>> t
                : CollectionConverters.asJava(update.accumUpdates())) {
            long task = (Long) t._1();
            Map<Long, Object> values = null;
            for (AccumulableInfo info : CollectionConverters.asJava(t._4())) {
                long id = info.id();
                if ((id == r.meter.docsAccumulatorId() || id == r.meter.bytesAccumulatorId() || id == r.meter.dropsAccumulatorId())
                        && info.update().isDefined()) {
                    if (values == null) {
                        values = new HashMap<>();
                    }
                    values.put(id, info.update().get());
                }
            }
            if (values != null) {
                running.put(task, values);
            }
        }
    }

    @Override
    public void onTaskEnd(SparkListenerTaskEnd end) {
        running.remove(end.taskInfo().taskId());
    }

    private static long asLong(Object o) {
        return o instanceof Number n ? n.longValue() : 0;
    }

    static String mb(long bytes) {
        if (bytes >= 1_000_000_000L) {
            return String.format(Locale.ROOT, "%.2f GB", bytes / 1e9);
        }
        return String.format(Locale.ROOT, "%.1f MB", bytes / 1e6);
    }

    static String duration(double seconds) {
        long s = Math.round(seconds);
        if (s >= 3600) {
            return String.format(Locale.ROOT, "%dh%02dm%02ds", s / 3600, s / 60 % 60, s % 60);
        }
        return s >= 60 ? String.format(Locale.ROOT, "%dm%02ds", s / 60, s % 60) : s + "s";
    }

    @Override
    public void close() {
        closed = true;
        thread.interrupt();
        sc.removeSparkListener(this);
    }
}
