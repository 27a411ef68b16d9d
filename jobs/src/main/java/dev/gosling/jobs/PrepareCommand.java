package dev.gosling.jobs;

import dev.gosling.pipeline.prepare.PrepareConfig;
import dev.gosling.pipeline.prepare.PrepareConfigLoader;
import dev.gosling.pipeline.prepare.PreparePlan;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code gosling prepare --config conf/prepare/RECIPE.yaml}: the corpus preparation pipeline, stage by stage. */
@Command(name = "prepare", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"jsonl -> ingest -> normalize -> filter -> exact dedup -> fuzzy dedup -> shuffle/replicate -> tokenize -> binidx, as configured by a recipe.",
                "Each stage writes Parquet, stats.json and a completion marker under the work dir; a rerun skips stages that are up to date.",
                "Runs on embedded Spark (local[*]) unless spark-submit or --master says otherwise."})
public final class PrepareCommand implements Callable<Integer> {

    @Option(names = "--config", required = true, paramLabel = "RECIPE.yaml", description = "The recipe (see conf/prepare/).")
    Path config;

    @Option(names = "--from-stage", paramLabel = "NAME", description = "Recompute this stage and every later one, even if up to date.")
    String fromStage;

    @Option(names = "--input", paramLabel = "FILE|DIR|GLOB", description = "Overrides input.")
    String input;

    @Option(names = "--work-dir", paramLabel = "DIR", description = "Overrides work_dir (default out/prepare/RECIPE).")
    String workDir;

    @Option(names = "--out", paramLabel = "PREFIX", description = "Overrides binidx.out (writes PREFIX.bin and PREFIX.idx).")
    String out;

    @Option(names = "--seed", description = "Overrides seed (the shuffle seed).")
    Long seed;

    @Option(names = "--copies", paramLabel = "N", description = "Overrides shuffle.copies (make_data's N_EPOCH).")
    Integer copies;

    @Option(names = "--ctx-len", paramLabel = "CTX_LEN", description = "Overrides binidx.ctx_len (for magic_prime).")
    Integer ctxLen;

    @Option(names = "--partitions", description = "Overrides partitions (Spark partitions of the shuffles; no effect on the output bytes).")
    Integer partitions;

    @Option(names = "--shards", description = "Overrides shards (Parquet files per stage; auto = one per 128 MiB of input).")
    String shards;

    @Option(names = "--strict", description = "Overrides ingest.strict: stop at the first bad line with FILE:LINE: reason.")
    boolean strict;

    @Option(names = "--progress-seconds", paramLabel = "S", description = "Overrides progress_seconds (default 30).")
    Double progressSeconds;

    @Option(names = "--set", paramLabel = "KEY=VALUE", description = "Overrides any recipe key, e.g. --set filter.c4.min_num_sentences=5 (repeatable).")
    List<String> sets = new ArrayList<>();

    @Option(names = "--master", description = "Spark master URL (default: spark-submit's, else local[*]).")
    String master;

    @Override
    public Integer call() {
        PrepareConfig cfg = PrepareConfigLoader.load(config, overrides());
        SparkSession spark = SparkSessions.getOrCreate("gosling prepare", master);
        PreparePlan.run(spark, cfg, fromStage, System.out);
        return 0;
    }

    List<PrepareConfigLoader.Override> overrides() {
        List<PrepareConfigLoader.Override> o = new ArrayList<>();
        if (input != null) {
            o.add(PrepareConfigLoader.Override.of("--input", "input", input));
        }
        if (workDir != null) {
            o.add(PrepareConfigLoader.Override.of("--work-dir", "work_dir", workDir));
        }
        if (out != null) {
            o.add(PrepareConfigLoader.Override.of("--out", "binidx.out", out));
        }
        if (seed != null) {
            o.add(PrepareConfigLoader.Override.of("--seed", "seed", seed));
        }
        if (copies != null) {
            o.add(PrepareConfigLoader.Override.of("--copies", "shuffle.copies", copies));
        }
        if (ctxLen != null) {
            o.add(PrepareConfigLoader.Override.of("--ctx-len", "binidx.ctx_len", ctxLen));
        }
        if (partitions != null) {
            o.add(PrepareConfigLoader.Override.of("--partitions", "partitions", partitions));
        }
        if (shards != null) {
            o.add(shards.equals("auto") ? PrepareConfigLoader.Override.of("--shards", "shards", "auto")
                    : PrepareConfigLoader.Override.parse("shards=" + shards).withOrigin("--shards " + shards));
        }
        if (strict) {
            o.add(PrepareConfigLoader.Override.of("--strict", "ingest.strict", true));
        }
        if (progressSeconds != null) {
            o.add(PrepareConfigLoader.Override.of("--progress-seconds", "progress_seconds", progressSeconds));
        }
        for (String s : sets) {
            o.add(PrepareConfigLoader.Override.parse(s));
        }
        return o;
    }
}
