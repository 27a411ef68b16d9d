package dev.gosling.jobs;

import dev.gosling.pipeline.MakeDataConfig;
import dev.gosling.trainer.GoslingException;
import org.apache.spark.sql.SparkSession;

import java.io.BufferedWriter;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * End-to-end make-data throughput: a corpus of the requested size is made by repeating the input's lines, then the
 * whole job (read, parse, tokenize, shuffle N copies, write binidx) is timed; the table gives medians over the runs.
 */
public final class MakeDataBenchmark {
    private MakeDataBenchmark() {
    }

    public static void run(SparkSession spark, Path sample, long targetBytes, int copies, int runs, PrintStream out) {
        try {
            Path dir = Files.createTempDirectory("gosling-bench-makedata");
            Path corpus = dir.resolve("corpus.jsonl");
            List<String> lines = new ArrayList<>();
            for (String l : Files.readAllLines(sample, StandardCharsets.UTF_8)) {
                if (!l.isBlank()) {
                    lines.add(l.strip());
                }
            }
            if (lines.isEmpty()) {
                throw new GoslingException(sample + ": no non-empty line to build the benchmark corpus from");
            }
            long written = 0;
            try (BufferedWriter w = Files.newBufferedWriter(corpus, StandardCharsets.UTF_8)) {
                for (int i = 0; written < targetBytes; i++) {
                    String l = lines.get(i % lines.size());
                    w.write(l);
                    w.write('\n');
                    written += l.getBytes(StandardCharsets.UTF_8).length + 1;
                }
            }
            int cores = spark.sparkContext().defaultParallelism();
            List<Double> seconds = new ArrayList<>();
            MakeDataJob.Result last = null;
            for (int r = 0; r < runs + 1; r++) { // the first run warms the JIT and is not counted
                MakeDataConfig cfg = new MakeDataConfig(corpus.toString(), copies, 512, dir.resolve("out").toString(),
                        MakeDataConfig.DEFAULT_SEED, 0, 0, true, false, MakeDataConfig.DEFAULT_MAX_LINE_BYTES, null);
                long t0 = System.nanoTime();
                last = MakeDataJob.run(spark, cfg, new PrintStream(new ByteArrayOutputStream(), false, StandardCharsets.UTF_8));
                double s = (System.nanoTime() - t0) / 1e9;
                if (r > 0) {
                    seconds.add(s);
                }
            }
            Collections.sort(seconds);
            double median = seconds.get(seconds.size() / 2);
            double mb = written / 1e6;
            out.printf("make-data benchmark: %s repeated to %.1f MB, N=%d copies, %d core(s), median of %d runs%n", sample, mb, copies, cores, runs);
            out.printf("%-12s %-10s %-12s %-10s %-12s %-16s %-12s%n", "input MB", "docs", "tokens", "seconds", "MB/s", "MB/s per core", "tokens/s");
            out.printf("%-12.1f %-10d %-12d %-10.2f %-12.1f %-16.1f %-12.0f%n", mb, last.nonEmptyLines(), last.tokens(), median,
                    mb / median, mb / median / cores, last.tokens() / median);
            for (Path p : List.of(corpus, dir.resolve("out.bin"), dir.resolve("out.idx"))) {
                Files.deleteIfExists(p);
            }
            Files.deleteIfExists(dir);
        } catch (IOException e) {
            throw new GoslingException("make-data benchmark: " + e.getMessage(), e);
        }
    }
}
