package dev.gosling.jobs;

import dev.gosling.pipeline.MakeDataConfig;
import dev.gosling.pipeline.export.BinidxExport;
import dev.gosling.pipeline.export.DataReport;
import dev.gosling.pipeline.export.QuarantineWriter;
import dev.gosling.pipeline.export.ShuffledCopies;
import dev.gosling.pipeline.ingest.InputFiles;
import dev.gosling.pipeline.ingest.JsonlIngest;
import dev.gosling.pipeline.ingest.LineOutcome;
import dev.gosling.pipeline.ingest.RejectReason;
import dev.gosling.pipeline.tokenize.TokenizeStage;
import dev.gosling.pipeline.tokenize.TokenizedDoc;
import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.data.BinIdxReader;
import dev.gosling.trainer.data.MagicPrime;
import dev.gosling.trainer.data.WorldTokenizer;
import org.apache.spark.SparkException;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.storage.StorageLevel;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * make-data: what RWKV's make_data.py does (jsonl → N shuffled copies → world tokens + EOD → binidx, magic_prime),
 * as Spark stages: ingest → tokenize → shuffle/replicate → binidx, with bad lines quarantined instead of crashing.
 * Prints make_data's lines, then RWKV-PEFT-Simple's statistics, ending with make_data's `--my_exit_tokens` line.
 */
public final class MakeDataJob {
    private MakeDataJob() {
    }

    /** What a run produced; the numbers the summary prints. */
    public record Result(Path bin, Path idx, long tokens, long items, long nonEmptyLines, long longestItem,
                         Map<RejectReason, Long> rejects, Path quarantine, Long magicPrime) {
    }

    public static Result run(SparkSession spark, MakeDataConfig cfg, PrintStream out) {
        try {
            return runStages(spark, cfg, out);
        } catch (SparkException e) {
            GoslingException userError = GoslingException.findIn(e);
            throw userError != null ? userError : new GoslingException("make-data: a Spark job failed: " + e.getMessage(), e);
        }
    }

    private static Result runStages(SparkSession spark, MakeDataConfig cfg, PrintStream out) throws SparkException {
        JavaSparkContext sc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        List<Path> files = InputFiles.resolve(cfg.input());
        String outName = cfg.outPrefix() != null ? cfg.outPrefix() : InputFiles.defaultOutputName(cfg.input());
        Path prefix = Paths.get(outName).toAbsolutePath().normalize();
        String shownName = Paths.get(outName).getFileName().toString();
        int partitions = cfg.partitions() > 0 ? cfg.partitions() : Math.max(2, sc.defaultParallelism());
        try {
            Files.createDirectories(prefix.getParent());
        } catch (java.io.IOException e) {
            throw new GoslingException(prefix.getParent() + ": cannot create the output directory: " + e.getMessage(), e);
        }

        out.println("### Convert " + cfg.input() + " to " + shownName + ".bin/idx...");
        sc.setJobDescription("make-data: read, parse and tokenize " + files.size() + " file(s)");
        JavaRDD<LineOutcome> outcomes = JsonlIngest.run(sc, files, cfg.maxLineBytes(), cfg.strict(), JsonlIngest.splitBytes(spark))
                .repartition(partitions)
                .persist(StorageLevel.MEMORY_AND_DISK_SER());
        JavaRDD<TokenizedDoc> tokenized = TokenizeStage.run(outcomes.filter(LineOutcome::isDocument), cfg.appendEod())
                .persist(StorageLevel.MEMORY_AND_DISK_SER());
        int maxTokens = cfg.maxTokens();
        JavaRDD<LineOutcome> tooLong = maxTokens == 0 ? sc.emptyRDD() : tokenized.filter(d -> d.tokenCount() > maxTokens)
                .map(d -> LineOutcome.reject(d.docId(), RejectReason.TOO_MANY_TOKENS,
                        d.tokenCount() + " tokens > --max-tokens " + maxTokens, headText(d)));
        JavaRDD<TokenizedDoc> kept = maxTokens == 0 ? tokenized : tokenized.filter(d -> d.tokenCount() <= maxTokens);

        long nonEmpty = outcomes.count();
        out.println("### Found " + nonEmpty + " non-empty lines in " + cfg.input() + (files.size() > 1 ? " (" + files.size() + " files)" : ""));

        sc.setJobDescription("make-data: count and quarantine rejected lines");
        JavaRDD<LineOutcome> rejects = outcomes.filter(o -> !o.isDocument()).union(tooLong);
        Map<RejectReason, Long> rejectCounts = new EnumMap<>(RejectReason.class);
        rejects.map(LineOutcome::reason).countByValue().forEach(rejectCounts::put);
        long rejected = rejectCounts.values().stream().mapToLong(Long::longValue).sum();
        Path quarantine = null;
        if (rejected > 0) {
            quarantine = Paths.get(cfg.quarantinePath() != null ? cfg.quarantinePath() : prefix + ".quarantine.jsonl").toAbsolutePath();
            QuarantineWriter.write(rejects.sortBy(LineOutcome::docId, true, partitions).toLocalIterator(), files, quarantine);
            out.println("### Quarantined " + rejected + " line(s) (" + describe(rejectCounts) + ") -> " + quarantine);
        }
        if (nonEmpty == rejected) {
            throw new GoslingException(cfg.input() + ": no document left to write (" + nonEmpty + " non-empty lines, all rejected"
                    + (quarantine != null ? "; see " + quarantine : "") + ")");
        }

        for (int c = 1; c <= cfg.copies(); c++) {
            out.println("Shuffle: " + c + " out of " + cfg.copies());
        }
        out.println("### Shuffle seed " + cfg.seed() + " (each copy is a full permutation; the order depends only on the input and the seed)");
        out.println("### Building binidx...");
        sc.setJobDescription("make-data: shuffle " + cfg.copies() + " copies and write " + shownName + ".bin/idx");
        BinidxExport.Written w = BinidxExport.write(ShuffledCopies.run(kept, cfg.copies(), cfg.seed(), partitions), prefix);
        outcomes.unpersist(false);
        tokenized.unpersist(false);
        out.println("done");

        out.println("### Verifying result...");
        try (BinIdxReader reader = BinIdxReader.open(prefix)) {
            if (reader.tokenCount() != w.tokens() || reader.itemCount() != w.items()) {
                throw new GoslingException(prefix + ".idx: verification failed: wrote " + w.tokens() + " tokens / " + w.items()
                        + " items, read back " + reader.tokenCount() + " / " + reader.itemCount());
            }
            for (long idx : new long[] {0, reader.itemCount() - 1}) {
                int[] item = reader.item((int) idx);
                out.println("-".repeat(70) + "[" + shownName + " idx " + idx + " sz " + item.length + "]");
                out.println(preview(item, cfg.appendEod()));
            }
        }
        out.println("-".repeat(80));
        out.println("### Final " + shownName + ".bin/idx has " + w.tokens() + " tokens, " + w.items() + " items. Dtype <class 'numpy.uint16'>");
        out.println("### append_eod = " + (cfg.appendEod() ? "True" : "False"));
        out.println("### max_length = " + DataReport.alignUp16(w.longestItem()));
        out.println("### max_length_power_of_two = " + DataReport.nextPowerOfTwo(w.longestItem()));
        out.println("### data_line_count = " + w.items());
        DataReport.factorTable(w.items()).forEach(out::println);

        Long magicPrime = null;
        try {
            magicPrime = MagicPrime.magicPrime(w.tokens(), cfg.ctxLen());
            out.println();
            out.println("### magic_prime = " + magicPrime + " (for ctxlen " + cfg.ctxLen() + ")");
            out.println();
            out.println("--my_exit_tokens " + w.tokens() + " --magic_prime " + magicPrime + " --ctx_len " + cfg.ctxLen());
            out.println();
        } catch (GoslingException e) {
            out.println("### magic_prime: not computed: " + e.getMessage());
        }
        return new Result(Paths.get(prefix + ".bin"), Paths.get(prefix + ".idx"), w.tokens(), w.items(), nonEmpty,
                w.longestItem(), rejectCounts, quarantine, magicPrime);
    }

    private static String describe(Map<RejectReason, Long> counts) {
        StringBuilder sb = new StringBuilder();
        new TreeMap<>(counts).forEach((r, n) -> sb.append(sb.length() == 0 ? "" : ", ").append(r.label()).append(' ').append(n));
        return sb.toString();
    }

    /** The head of a dropped document's text, for the quarantine file. */
    private static byte[] headText(TokenizedDoc d) {
        int[] ids = d.tokens();
        int n = Math.min(ids.length, 512);
        while (n > 0 && ids[n - 1] == WorldTokenizer.EOD) {
            n--;
        }
        byte[] b = WorldTokenizer.world().decodeBytes(ids, 0, n);
        return b.length <= LineOutcome.RAW_HEAD_BYTES ? b : Arrays.copyOf(b, LineOutcome.RAW_HEAD_BYTES);
    }

    /** make_data's check print: the first and last 100 tokens (or the whole item), decoded. */
    private static String preview(int[] item, boolean eod) {
        int n = eod && item.length > 0 && item[item.length - 1] == WorldTokenizer.EOD ? item.length - 1 : item.length;
        WorldTokenizer tok = WorldTokenizer.world();
        if (n <= 200) {
            return tok.decode(Arrays.copyOf(item, n));
        }
        return tok.decode(Arrays.copyOfRange(item, 0, 100)) + "· ".repeat(30) + tok.decode(Arrays.copyOfRange(item, n - 100, n));
    }
}
