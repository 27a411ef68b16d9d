package dev.gosling.jobs;

import dev.gosling.pipeline.StageOutput;
import dev.gosling.pipeline.clean.C4Rules;
import dev.gosling.pipeline.clean.FilterConfig;
import dev.gosling.pipeline.clean.FilterStage;
import dev.gosling.pipeline.clean.FineWebRules;
import dev.gosling.pipeline.clean.GopherQualityRules;
import dev.gosling.pipeline.clean.GopherRepetitionRules;
import dev.gosling.pipeline.clean.LengthRules;
import dev.gosling.pipeline.clean.QualityFilters;
import dev.gosling.pipeline.ingest.JsonlLineReader;
import dev.gosling.pipeline.ingest.LineOutcome;
import dev.gosling.pipeline.ingest.RawLine;
import dev.gosling.pipeline.ingest.TextExtractor;
import dev.gosling.trainer.GoslingException;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Supplier;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.count;

/**
 * Quality-filter throughput in GB of UTF-8 text per core-hour: each rule group alone and all of them (the web-corpus
 * recipe's filter) on one thread over documents in memory, then the filter stage on Spark (all cores, from cached rows,
 * so only the filtering is timed). The corpus is the input's documents repeated up to the requested size.
 */
public final class FilterBenchmark {
    private FilterBenchmark() {
    }

    public static void run(SparkSession spark, Path input, long targetBytes, int runs, PrintStream out) {
        List<String> base = documents(input);
        List<String> docs = new ArrayList<>();
        long bytes = 0;
        for (int i = 0; bytes < targetBytes; i++) {
            String d = base.get(i % base.size());
            docs.add(d);
            bytes += d.getBytes(StandardCharsets.UTF_8).length;
        }
        FilterConfig all = new FilterConfig(new LengthRules(200, 1_000_000, null, null), GopherRepetitionRules.defaults(),
                GopherQualityRules.defaults(), C4Rules.defaults(), FineWebRules.defaults());
        List<Object[]> rows = new ArrayList<>();
        rows.add(single("length (chars)", docs, bytes, runs, () -> new FilterConfig(new LengthRules(200, 1_000_000, null, null), null, null, null, null)));
        rows.add(single("gopher_repetition", docs, bytes, runs, () -> new FilterConfig(null, GopherRepetitionRules.defaults(), null, null, null)));
        rows.add(single("gopher_quality", docs, bytes, runs, () -> new FilterConfig(null, null, GopherQualityRules.defaults(), null, null)));
        rows.add(single("c4", docs, bytes, runs, () -> new FilterConfig(null, null, null, C4Rules.defaults(), null)));
        rows.add(single("fineweb", docs, bytes, runs, () -> new FilterConfig(null, null, null, null, FineWebRules.defaults())));
        rows.add(single("all (web-corpus filter)", docs, bytes, runs, () -> all));
        rows.add(spark(spark, docs, bytes, runs, all));

        out.printf(Locale.ROOT, "filters benchmark: %s repeated to %.1f MB (%,d documents), median of %d runs after a warm-up; CPU: %s;"
                + " load average %.1f%n", input, bytes / 1e6, docs.size(), runs, cpuModel(),
                java.lang.management.ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
        out.printf(Locale.ROOT, "%-26s %5s %9s %9s %10s %13s %13s %7s%n", "rule groups", "cores", "wall s", "CPU s", "MB/s/core",
                "GB/core-hour", "GB/CPU-hour", "kept");
        for (Object[] r : rows) {
            out.printf(Locale.ROOT, "%-26s %5d %9.3f %9.3f %10.1f %13.1f %13.1f %6.1f%%%n", r);
        }
        out.println("GB/core-hour = bytes / (wall seconds x cores); GB/CPU-hour = bytes / CPU seconds the work used (the filtering"
                + " threads, or the Spark tasks' executor CPU time), which is what a core-hour buys on a machine not shared with others.");
        out.println("target (anchors §10.1): >= 20 GB/core-hour for Gopher quality + repetition + C4 + FineWeb on English;"
                + " NeMo CPU filtering ~4.9 GB/vCPU-hour");
    }

    private static Object[] single(String name, List<String> docs, long bytes, int runs, Supplier<FilterConfig> cfg) {
        java.lang.management.ThreadMXBean mx = java.lang.management.ManagementFactory.getThreadMXBean();
        List<double[]> times = new ArrayList<>();
        long kept = 0;
        for (int r = 0; r <= runs; r++) {
            QualityFilters f = new QualityFilters(cfg.get());
            long k = 0;
            long t0 = System.nanoTime();
            long c0 = mx.getCurrentThreadCpuTime();
            for (String d : docs) {
                if (f.apply(d).reason() == null) {
                    k++;
                }
            }
            double cpu = (mx.getCurrentThreadCpuTime() - c0) / 1e9;
            double s = (System.nanoTime() - t0) / 1e9;
            if (r > 0) {
                times.add(new double[] {s, cpu});
            }
            kept = k;
        }
        double[] m = median(times);
        return row(name, 1, m[0], m[1], bytes, 100.0 * kept / docs.size());
    }

    private static Object[] spark(SparkSession spark, List<String> docs, long bytes, int runs, FilterConfig cfg) {
        int cores = spark.sparkContext().defaultParallelism();
        List<Row> rows = new ArrayList<>(docs.size());
        for (int i = 0; i < docs.size(); i++) {
            rows.add(RowFactory.create((long) i, docs.get(i)));
        }
        Dataset<Row> in = spark.createDataFrame(rows, StageOutput.DOCS).repartition(4 * cores).cache();
        in.count();
        List<double[]> times = new ArrayList<>();
        long kept = 0;
        TaskCpu cpu = new TaskCpu();
        spark.sparkContext().addSparkListener(cpu);
        try {
            for (int r = 0; r <= runs; r++) {
                cpu.nanos.set(0);
                long t0 = System.nanoTime();
                Row c = FilterStage.run(in, cfg, null).rows().agg(count(col(StageOutput.ID)), count(col(StageOutput.REASON))).first();
                double s = (System.nanoTime() - t0) / 1e9;
                try {
                    spark.sparkContext().listenerBus().waitUntilEmpty(60_000); // task-end events carry the CPU times
                } catch (java.util.concurrent.TimeoutException e) {
                    throw new GoslingException("filters benchmark: Spark's listener bus did not drain in 60 s", e);
                }
                if (r > 0) {
                    times.add(new double[] {s, cpu.nanos.get() / 1e9});
                }
                kept = c.getLong(0) - c.getLong(1);
            }
        } finally {
            spark.sparkContext().removeSparkListener(cpu);
        }
        in.unpersist();
        double[] m = median(times);
        return row("all, Spark filter stage", cores, m[0], m[1], bytes, 100.0 * kept / docs.size());
    }

    private static Object[] row(String name, int cores, double seconds, double cpuSeconds, long bytes, double keptPct) {
        double mbPerCore = bytes / 1e6 / seconds / cores;
        return new Object[] {name, cores, seconds, cpuSeconds, mbPerCore, mbPerCore * 3600 / 1000, bytes / 1e9 / (cpuSeconds / 3600), keptPct};
    }

    /** The run with the median wall time (its wall and CPU seconds). */
    private static double[] median(List<double[]> xs) {
        List<double[]> s = new ArrayList<>(xs);
        s.sort(java.util.Comparator.comparingDouble(x -> x[0]));
        return s.get(s.size() / 2);
    }

    /** Executor CPU time of the tasks that end while it listens (Spark's own task metric). */
    private static final class TaskCpu extends org.apache.spark.scheduler.SparkListener {
        final java.util.concurrent.atomic.AtomicLong nanos = new java.util.concurrent.atomic.AtomicLong();

        @Override
        public void onTaskEnd(org.apache.spark.scheduler.SparkListenerTaskEnd end) {
            if (end.taskMetrics() != null) {
                nanos.addAndGet(end.taskMetrics().executorCpuTime() + end.taskMetrics().executorDeserializeCpuTime());
            }
        }
    }

    /** The "text" of each line of a jsonl file, or the whole of each plain-text file of a directory. */
    static List<String> documents(Path input) {
        List<String> docs = new ArrayList<>();
        try {
            if (Files.isDirectory(input)) {
                try (var walk = Files.walk(input)) {
                    for (Path p : (Iterable<Path>) walk.filter(Files::isRegularFile).sorted()::iterator) {
                        docs.add(new String(Files.readAllBytes(p), StandardCharsets.UTF_8));
                    }
                }
            } else {
                try (JsonlLineReader r = new JsonlLineReader(input, 0, 1 << 30)) {
                    while (r.hasNext()) {
                        RawLine l = r.next();
                        LineOutcome o = TextExtractor.extract(l);
                        if (o.isDocument()) {
                            docs.add(new String(o.text(), StandardCharsets.UTF_8));
                        }
                    }
                }
            }
        } catch (IOException e) {
            throw new GoslingException(input + ": " + e.getMessage(), e);
        }
        if (docs.isEmpty()) {
            throw new GoslingException(input + ": no document to benchmark with");
        }
        return docs;
    }

    static String cpuModel() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (l.startsWith("model name")) {
                    return l.substring(l.indexOf(':') + 1).trim() + ", " + Runtime.getRuntime().availableProcessors() + " cores";
                }
            }
        } catch (IOException e) {
            // not Linux
        }
        return System.getProperty("os.arch") + ", " + Runtime.getRuntime().availableProcessors() + " cores";
    }
}
