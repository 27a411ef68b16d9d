package dev.gosling.pipeline.dedup;

import dev.gosling.trainer.GoslingException;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.count;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.sum;

/**
 * Fuzzy dedup throughput in GB of UTF-8 text per core-hour (GB = 10^9 bytes; cores = the session's default
 * parallelism), on a generated corpus of English-like text ({@link PlantedCorpus}: Zipf vocabulary, sentences,
 * paragraphs; 15 % of the documents in near-duplicate families at Jaccard 0.5–0.99), written once as Parquet. Timed,
 * each as the median of {@code runs} runs after one warm-up run:
 * <ul>
 *   <li><b>kernel</b>: shingling + MinHash signatures + band keys in one thread, no Spark, on a sample held in memory;</li>
 *   <li><b>signatures</b>: Spark reads the Parquet corpus, shingles, signs and writes the band rows as Parquet
 *       (what datatrove's MinHash stage 1 does);</li>
 *   <li><b>end-to-end</b>: Spark reads the corpus, runs {@link FuzzyDedup} (buckets, verification, connected
 *       components) and writes {@code kept} and {@code rejects} as Parquet; with verification on and off.</li>
 * </ul>
 * Not a test: it prints a table. Anchors: datatrove stage 1 ≈ 3 GB per task-hour, BigCode's Spark run ≈ 3 GB per
 * vCPU-hour end to end.
 */
public final class FuzzyDedupBenchmark {
    /** Keeps the kernel's result alive, so that the JIT cannot drop the work being timed. */
    static volatile long blackhole;

    private FuzzyDedupBenchmark() {
    }

    /** Benchmark options. */
    public record Options(long targetBytes, int runs, int partitions, long seed, double cjkFraction, Path workDir,
                          long kernelSampleBytes) {
        public Options {
            if (targetBytes < 1_000_000 || runs < 1 || partitions < 1 || kernelSampleBytes < 100_000) {
                throw new GoslingException("fuzzy dedup benchmark: need at least 1 MB, 1 run, 1 partition, a 0.1 MB kernel sample");
            }
            if (!(cjkFraction >= 0 && cjkFraction <= 1)) {
                throw new GoslingException("fuzzy dedup benchmark: --cjk must be in [0, 1]");
            }
        }

        public static Options defaults() {
            return new Options(300_000_000L, 3, 16, 20260501L, 0.0, null, 40_000_000L);
        }
    }

    /** Wall-clock and process CPU seconds of each timed run of a phase. */
    private record Timing(String phase, long bytes, long docs, List<Double> seconds, List<Double> cpuSeconds, String target) {
        static double median(List<Double> values) {
            List<Double> s = new ArrayList<>(values);
            Collections.sort(s);
            int n = s.size();
            return n % 2 == 1 ? s.get(n / 2) : (s.get(n / 2 - 1) + s.get(n / 2)) / 2;
        }

        double median() {
            return median(seconds);
        }

        double min() {
            return Collections.min(seconds);
        }
    }

    /** The corpus spec of about {@code bytes} bytes: documents of 120–3000 tokens, 15 % of them in families of 3. */
    static PlantedCorpus.Spec spec(long bytes, long seed, double cjkFraction) {
        // measure the generator's mean document size on a sample, then size the corpus
        PlantedCorpus probe = new PlantedCorpus(new PlantedCorpus.Spec(seed, 0, 3, LEVELS, 400, 120, 3000, cjkFraction, 5, 5));
        long sample = 0;
        for (long i = 0; i < probe.size(); i++) {
            sample += probe.doc(i).text().getBytes(StandardCharsets.UTF_8).length;
        }
        long docs = Math.max(10, Math.round(bytes / (sample / (double) probe.size())));
        int families = (int) Math.round(docs * 0.15 / 3);
        int unrelated = (int) Math.max(0, docs - 3L * families);
        return new PlantedCorpus.Spec(seed, families, 3, LEVELS, unrelated, 120, 3000, cjkFraction, 5, 5);
    }

    private static final double[] LEVELS = {0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99};

    public static void run(SparkSession spark, PrintStream out, Options o) {
        Path dir = null;
        try {
            dir = o.workDir() != null ? Files.createDirectories(o.workDir()) : Files.createTempDirectory("gosling-bench-fuzzy");
            String corpusPath = dir.resolve("corpus.parquet").toString();
            PlantedCorpus corpus = new PlantedCorpus(spec(o.targetBytes(), o.seed(), o.cjkFraction()));
            // a corpus already generated in --work with the same spec and partitions is reused
            Path marker = dir.resolve("corpus.spec");
            String specLine = corpus.spec().toString().replaceAll("\\[D@[0-9a-f]+", java.util.Arrays.toString(LEVELS))
                    + " partitions=" + o.partitions();
            if (!Files.exists(marker) || !Files.readString(marker).equals(specLine)) {
                spark.sparkContext().setJobDescription("fuzzy dedup benchmark: generating the corpus");
                Files.deleteIfExists(marker);
                corpus.dataset(spark, o.partitions()).write().mode(SaveMode.Overwrite).parquet(corpusPath);
                Files.writeString(marker, specLine);
            }
            Row size = spark.read().parquet(corpusPath).agg(count(lit(1)), sum(org.apache.spark.sql.functions.octet_length(col("text")))).first();
            long docs = size.getLong(0);
            long bytes = size.getLong(1);
            int cores = spark.sparkContext().defaultParallelism();
            FuzzyDedupConfig cfg = FuzzyDedupConfig.defaults();
            out.printf(Locale.ROOT, "fuzzy dedup benchmark: %,d documents, %.1f MB of text (%s), %d Parquet files; %d core(s); "
                            + "%d bands x %d rows, shingles of %d words / %d CJK characters; median of %d runs after a warm-up%n",
                    docs, bytes / 1e6, o.cjkFraction() > 0 ? String.format(Locale.ROOT, "%.0f %% Chinese", 100 * o.cjkFraction()) : "English-like",
                    o.partitions(), cores, cfg.bands(), cfg.rows(), cfg.shingleWords(), cfg.cjkShingleChars(), o.runs());
            out.printf(Locale.ROOT, "machine: %s, %d hardware threads, load average %s at start%n", cpuModel(),
                    Runtime.getRuntime().availableProcessors(), loadAverage());

            List<Timing> rows = new ArrayList<>();
            rows.add(kernel(corpus, o, cfg));

            String bandsPath = dir.resolve("band-rows.parquet").toString();
            List<Double> sig = new ArrayList<>();
            List<Double> sigCpu = new ArrayList<>();
            for (int r = 0; r <= o.runs(); r++) {
                spark.sparkContext().setJobDescription("fuzzy dedup benchmark: signatures, run " + r);
                long t0 = System.nanoTime();
                long c0 = cpuNanos();
                LshBuckets.bandRows(spark.read().parquet(corpusPath), cfg, null).write().mode(SaveMode.Overwrite).parquet(bandsPath);
                if (r > 0) {
                    sig.add((System.nanoTime() - t0) / 1e9);
                    sigCpu.add((cpuNanos() - c0) / 1e9);
                }
            }
            rows.add(new Timing("signatures (Spark: read Parquet, shingle, MinHash, write band rows)", bytes, docs, sig, sigCpu, "≥ 15"));

            Map<String, Long> counters = null;
            JobTimes jobTimes = new JobTimes();
            spark.sparkContext().addSparkListener(jobTimes);
            Map<String, Double> breakdown = null;
            for (boolean verify : new boolean[]{true, false}) {
                List<Double> e2e = new ArrayList<>();
                List<Double> e2eCpu = new ArrayList<>();
                for (int r = 0; r <= o.runs(); r++) {
                    spark.sparkContext().setJobDescription("fuzzy dedup benchmark: end to end, run " + r);
                    jobTimes.clear();
                    long t0 = System.nanoTime();
                    long c0 = cpuNanos();
                    FuzzyDedup.Result res = FuzzyDedup.run(spark, spark.read().parquet(corpusPath), cfg.withVerify(verify, cfg.threshold()));
                    res.kept().write().mode(SaveMode.Overwrite).parquet(dir.resolve("kept.parquet").toString());
                    res.rejects().write().mode(SaveMode.Overwrite).parquet(dir.resolve("rejects.parquet").toString());
                    if (r > 0) {
                        e2e.add((System.nanoTime() - t0) / 1e9);
                        e2eCpu.add((cpuNanos() - c0) / 1e9);
                    }
                    if (verify) {
                        counters = res.counters();
                        breakdown = jobTimes.snapshot();
                    }
                }
                rows.add(new Timing("end-to-end fuzzy dedup, verification " + (verify ? "on" : "off")
                        + " (read, dedup, write kept + rejects)", bytes, docs, e2e, e2eCpu, "≥ 8"));
            }
            spark.sparkContext().setJobDescription(null);
            spark.sparkContext().removeSparkListener(jobTimes);

            out.printf(Locale.ROOT, "%-78s %8s %9s %8s %8s %11s %9s %10s %7s%n", "phase", "MB", "median s", "min s",
                    "MB/s", "GB/core-h", "CPU s", "GB/CPU-h", "target");
            for (Timing t : rows) {
                int c = t.phase().startsWith("kernel") ? 1 : cores;
                double med = t.median();
                double cpu = Timing.median(t.cpuSeconds());
                out.printf(Locale.ROOT, "%-78s %8.1f %9.2f %8.2f %8.2f %11.1f %9.2f %10.1f %7s%n", t.phase(), t.bytes() / 1e6,
                        med, t.min(), t.bytes() / 1e6 / med, t.bytes() / 1e9 / (med * c / 3600.0), cpu,
                        t.bytes() / 1e9 / (cpu / 3600.0), t.target());
            }
            out.println("GB/core-h = GB / (median wall-clock hours x cores); GB/CPU-h = GB / median CPU hours of this JVM "
                    + "(all Spark threads, JIT and GC included), which other processes on a shared machine do not inflate");
            out.println("end-to-end counters (verification on): " + counters);
            out.print("where the last end-to-end run (verification on) spent its wall-clock time, by Spark job description:");
            breakdown.forEach((k, v) -> out.printf(Locale.ROOT, "%n  %7.2f s  %s", v, k));
            out.println();
            out.println("anchors: datatrove MinHash stage 1 ≈ 2.8–3.3 GB per task-hour; BigCode Spark end to end ≈ 3.0 GB per vCPU-hour");
        } catch (IOException e) {
            throw new GoslingException("fuzzy dedup benchmark: " + e.getMessage(), e);
        } finally {
            if (dir != null && o.workDir() == null) {
                deleteTree(dir);
            }
        }
    }

    /** One thread, no Spark: shingles + signature + band keys over documents held in memory. */
    private static Timing kernel(PlantedCorpus corpus, Options o, FuzzyDedupConfig cfg) {
        List<String> texts = new ArrayList<>();
        long bytes = 0;
        for (long i = 0; i < corpus.size() && bytes < o.kernelSampleBytes(); i++) {
            String t = corpus.doc(i).text();
            texts.add(t);
            bytes += t.getBytes(StandardCharsets.UTF_8).length;
        }
        Shingler shingler = new Shingler(cfg.shingleWords(), cfg.cjkShingleChars());
        MinHasher hasher = new MinHasher(cfg.bands(), cfg.rows(), cfg.seed());
        long[] sig = new long[hasher.permutations()];
        List<Double> seconds = new ArrayList<>();
        List<Double> cpu = new ArrayList<>();
        java.lang.management.ThreadMXBean threads = java.lang.management.ManagementFactory.getThreadMXBean();
        long sink = 0;
        for (int r = 0; r <= o.runs(); r++) {
            long t0 = System.nanoTime();
            long c0 = threads.getCurrentThreadCpuTime();
            for (String t : texts) {
                shingler.shingle(t);
                hasher.signature(shingler.hashes(), shingler.size(), sig);
                for (int b = 0; b < hasher.bands(); b++) {
                    sink += hasher.bandHash(sig, b);
                }
            }
            if (r > 0) {
                seconds.add((System.nanoTime() - t0) / 1e9);
                cpu.add((threads.getCurrentThreadCpuTime() - c0) / 1e9);
            }
        }
        blackhole = sink;
        return new Timing("kernel (1 thread, no Spark: shingle + MinHash + band keys)", bytes, texts.size(), seconds, cpu, "");
    }

    /** Wall-clock seconds of finished Spark jobs, summed by job description (the stage's step). */
    private static final class JobTimes extends org.apache.spark.scheduler.SparkListener {
        private final Map<Integer, Long> started = new java.util.concurrent.ConcurrentHashMap<>();
        private final Map<Integer, String> names = new java.util.concurrent.ConcurrentHashMap<>();
        private final Map<String, Double> seconds = Collections.synchronizedMap(new java.util.LinkedHashMap<>());

        @Override
        public void onJobStart(org.apache.spark.scheduler.SparkListenerJobStart e) {
            String d = e.properties() == null ? null : e.properties().getProperty("spark.job.description");
            names.put(e.jobId(), d == null ? "(no description)" : d.replaceAll("round \\d+", "round N"));
            started.put(e.jobId(), e.time());
        }

        @Override
        public void onJobEnd(org.apache.spark.scheduler.SparkListenerJobEnd e) {
            Long t0 = started.remove(e.jobId());
            String name = names.remove(e.jobId());
            if (t0 != null) {
                seconds.merge(name, (e.time() - t0) / 1e3, Double::sum);
            }
        }

        void clear() {
            seconds.clear();
        }

        Map<String, Double> snapshot() {
            synchronized (seconds) {
                return new java.util.LinkedHashMap<>(seconds);
            }
        }
    }

    /** CPU time of this JVM, all threads. */
    private static long cpuNanos() {
        java.lang.management.OperatingSystemMXBean os = java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        return os instanceof com.sun.management.OperatingSystemMXBean sun ? sun.getProcessCpuTime() : 0L;
    }

    private static String cpuModel() {
        try (Stream<String> lines = Files.lines(Paths.get("/proc/cpuinfo"))) {
            return lines.filter(l -> l.startsWith("model name")).findFirst().map(l -> l.substring(l.indexOf(':') + 1).trim())
                    .orElse(System.getProperty("os.arch"));
        } catch (IOException | RuntimeException e) {
            return System.getProperty("os.arch");
        }
    }

    private static String loadAverage() {
        try {
            return Files.readString(Paths.get("/proc/loadavg")).trim().split(" ")[0];
        } catch (IOException | RuntimeException e) {
            return "?";
        }
    }

    private static void deleteTree(Path dir) {
        try (Stream<Path> walk = Files.walk(dir)) {
            walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            // a temporary directory left behind is harmless
        }
    }

    /**
     * Usage: {@code FuzzyDedupBenchmark [--mb N] [--runs N] [--partitions N] [--cjk F] [--work DIR] [--master M]}.
     * Runs on an embedded Spark session ({@code local[*]} unless {@code --master}).
     */
    public static void main(String[] args) {
        Options d = Options.defaults();
        long mb = d.targetBytes() / 1_000_000;
        int runs = d.runs();
        int partitions = d.partitions();
        double cjk = d.cjkFraction();
        Path work = null;
        String master = "local[*]";
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (i + 1 >= args.length) {
                throw new GoslingException("fuzzy dedup benchmark: " + a + " needs a value");
            }
            String v = args[++i];
            try {
                switch (a) {
                    case "--mb" -> mb = Long.parseLong(v);
                    case "--runs" -> runs = Integer.parseInt(v);
                    case "--partitions" -> partitions = Integer.parseInt(v);
                    case "--cjk" -> cjk = Double.parseDouble(v);
                    case "--work" -> work = Paths.get(v);
                    case "--master" -> master = v;
                    default -> throw new GoslingException("fuzzy dedup benchmark: unknown option " + a
                            + " (known: --mb, --runs, --partitions, --cjk, --work, --master)");
                }
            } catch (NumberFormatException e) {
                throw new GoslingException("fuzzy dedup benchmark: " + a + " " + v + ": not a number");
            }
        }
        SparkSession spark = SparkSession.builder().master(master).appName("gosling fuzzy dedup benchmark")
                .config("spark.ui.enabled", "false")
                .getOrCreate();
        try {
            run(spark, System.out, new Options(mb * 1_000_000L, runs, partitions, d.seed(), cjk, work, d.kernelSampleBytes()));
        } finally {
            spark.stop();
        }
    }
}
