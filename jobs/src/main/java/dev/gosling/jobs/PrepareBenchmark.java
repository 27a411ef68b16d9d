package dev.gosling.jobs;

import dev.gosling.pipeline.prepare.AtomicFiles;
import dev.gosling.pipeline.prepare.PrepareConfig;
import dev.gosling.pipeline.prepare.PrepareConfigLoader;
import dev.gosling.pipeline.prepare.PreparePlan;
import dev.gosling.pipeline.prepare.StageName;
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
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * End-to-end `prepare` throughput: the input's documents repeated up to the requested size (each repeat made distinct
 * by one added sentence), the recipe run once to warm up on a small slice and once timed on the whole corpus. Per
 * stage: seconds, rows in and out, and GB of the stage's input per core-hour (wall clock x cores).
 */
public final class PrepareBenchmark {
    private PrepareBenchmark() {
    }

    public static void run(SparkSession spark, Path recipe, Path sample, long targetBytes, PrintStream out) {
        try {
            Path dir = Files.createTempDirectory("gosling-bench-prepare");
            List<String> lines = new ArrayList<>();
            for (String l : Files.readAllLines(sample, StandardCharsets.UTF_8)) {
                if (!l.isBlank()) {
                    lines.add(l.strip());
                }
            }
            if (lines.isEmpty()) {
                throw new GoslingException(sample + ": no non-empty line to build the benchmark corpus from");
            }
            Path corpus = dir.resolve("corpus.jsonl");
            Path warm = dir.resolve("warm.jsonl");
            long written = write(corpus, lines, targetBytes);
            write(warm, lines, Math.min(targetBytes, 2_000_000));
            int cores = spark.sparkContext().defaultParallelism();
            PrintStream quiet = new PrintStream(new ByteArrayOutputStream(), false, StandardCharsets.UTF_8);
            PreparePlan.run(spark, load(recipe, warm, dir.resolve("warm-work")), null, quiet);
            long t0 = System.nanoTime();
            PreparePlan.Result r = PreparePlan.run(spark, load(recipe, corpus, dir.resolve("work")), null, quiet);
            double total = (System.nanoTime() - t0) / 1e9;
            out.printf(Locale.ROOT, "prepare benchmark: %s over %s repeated to %.1f MB, %d core(s); CPU: %s%n", recipe, sample,
                    written / 1e6, cores, FilterBenchmark.cpuModel());
            out.printf(Locale.ROOT, "%-12s %10s %12s %12s %14s%n", "stage", "seconds", "rows in", "rows out", "GB/core-hour");
            for (Map.Entry<StageName, Double> e : r.seconds().entrySet()) {
                var st = r.stats().get(e.getKey());
                long in = st.path("input_rows").asLong();
                long inBytes = e.getKey() == StageName.INGEST ? written : previousBytes(r, e.getKey());
                out.printf(Locale.ROOT, "%-12s %10.1f %12d %12d %14.1f%n", e.getKey().key(), e.getValue(), in,
                        st.path("output").path("rows").asLong(), inBytes / 1e9 / (e.getValue() * cores / 3600));
            }
            out.printf(Locale.ROOT, "%-12s %10.1f %12s %12s %14.1f%n", "all", total, "", "", written / 1e9 / (total * cores / 3600));
            AtomicFiles.deleteTree(dir);
        } catch (IOException e) {
            throw new GoslingException("prepare benchmark: " + e.getMessage(), e);
        }
    }

    private static long previousBytes(PreparePlan.Result r, StageName s) {
        StageName prev = null;
        for (StageName x : r.stats().keySet()) {
            if (x == s) {
                break;
            }
            prev = x;
        }
        return prev == null ? 0 : r.stats().get(prev).path("output").path("bytes").asLong();
    }

    private static PrepareConfig load(Path recipe, Path input, Path work) {
        return PrepareConfigLoader.load(recipe, List.of(PrepareConfigLoader.Override.of("--input", "input", input.toString()),
                PrepareConfigLoader.Override.of("--work-dir", "work_dir", work.toString())));
    }

    /**
     * The sample's documents repeated up to target bytes; every repeat gets one more sentence ("Copy k of this
     * document.") so that exact dedup keeps it and the later stages see the whole volume.
     */
    private static long write(Path file, List<String> lines, long target) throws IOException {
        com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
        long written = 0;
        try (BufferedWriter w = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
            for (int i = 0; written < target; i++) {
                String l = lines.get(i % lines.size());
                int copy = i / lines.size();
                if (copy > 0) {
                    var node = json.readTree(l);
                    if (node.isObject() && node.path("text").isTextual()) {
                        ((com.fasterxml.jackson.databind.node.ObjectNode) node).put("text", node.path("text").asText()
                                + "\nCopy " + copy + " of this document.");
                        l = json.writeValueAsString(node);
                    }
                }
                w.write(l);
                w.write('\n');
                written += l.getBytes(StandardCharsets.UTF_8).length + 1;
            }
        }
        return written;
    }
}
