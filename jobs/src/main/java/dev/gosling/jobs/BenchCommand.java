package dev.gosling.jobs;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code gosling bench <what>}: benchmarks that print a table (medians over repeated runs), never timed tests. */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Benchmarks that print a table.",
        subcommands = {BenchCommand.Tokenizer.class, BenchCommand.MakeData.class, BenchCommand.Filters.class, BenchCommand.Prepare.class, BenchCommand.Fuzzy.class,
                BenchCommand.Train.class})
public final class BenchCommand {

    @Command(name = "tokenizer", mixinStandardHelpOptions = true,
            description = "World-tokenizer throughput (MB/s of UTF-8 per core, tokens/s) on English and Chinese text.")
    static final class Tokenizer implements Callable<Integer> {
        @Option(names = "--input", description = "A jsonl (\"text\" fields) or text file; repeatable. Default: built-in English and Chinese corpora.")
        List<Path> inputs = List.of();

        @Option(names = "--seconds", description = "Timed seconds per corpus (default: ${DEFAULT-VALUE}).")
        int seconds = 5;

        @Override
        public Integer call() {
            dev.gosling.trainer.data.TokenizerBenchmark.run(System.out, inputs, seconds);
            return 0;
        }
    }

    @Command(name = "make-data", mixinStandardHelpOptions = true,
            description = "End-to-end make-data throughput on embedded Spark (MB/s per core, tokens/s).")
    static final class MakeData implements Callable<Integer> {
        @Option(names = "--input", description = "Sample jsonl repeated up to --mb (default: ${DEFAULT-VALUE}).")
        Path input = Paths.get("data/sample/demo.jsonl");

        @Option(names = "--mb", description = "Corpus size in MB (default: ${DEFAULT-VALUE}).")
        int mb = 200;

        @Option(names = "--copies", description = "N shuffled copies (default: ${DEFAULT-VALUE}).")
        int copies = 1;

        @Option(names = "--runs", description = "Timed runs after one warm-up (default: ${DEFAULT-VALUE}).")
        int runs = 3;

        @Option(names = "--master", description = "Spark master (default: local[*]).")
        String master;

        @Override
        public Integer call() {
            MakeDataBenchmark.run(SparkSessions.getOrCreate("gosling bench make-data", master), input, mb * 1_000_000L, copies, runs, System.out);
            return 0;
        }
    }

    @Command(name = "filters", mixinStandardHelpOptions = true,
            description = "Quality-filter throughput in GB per core-hour: each rule group on one thread, all groups, and the Spark filter stage.")
    static final class Filters implements Callable<Integer> {
        @Option(names = "--input", description = "A jsonl file (\"text\" fields) or a directory of text files, repeated up to --mb (default: ${DEFAULT-VALUE}).")
        Path input = Paths.get("data/sample/demo.jsonl");

        @Option(names = "--mb", description = "Corpus size in MB (default: ${DEFAULT-VALUE}).")
        int mb = 100;

        @Option(names = "--runs", description = "Timed runs after one warm-up (default: ${DEFAULT-VALUE}).")
        int runs = 3;

        @Option(names = "--master", description = "Spark master (default: local[*]).")
        String master;

        @Override
        public Integer call() {
            FilterBenchmark.run(SparkSessions.getOrCreate("gosling bench filters", master), input, mb * 1_000_000L, runs, System.out);
            return 0;
        }
    }

    @Command(name = "prepare", mixinStandardHelpOptions = true,
            description = "End-to-end prepare throughput (a recipe over a corpus of the given size): seconds and GB per core-hour per stage.")
    static final class Prepare implements Callable<Integer> {
        @Option(names = "--input", description = "Sample jsonl repeated up to --mb (default: ${DEFAULT-VALUE}).")
        Path input = Paths.get("data/sample/demo.jsonl");

        @Option(names = "--config", description = "Recipe (default: ${DEFAULT-VALUE}).")
        Path config = Paths.get("conf/prepare/web-corpus.yaml");

        @Option(names = "--mb", description = "Corpus size in MB (default: ${DEFAULT-VALUE}).")
        int mb = 100;

        @Option(names = "--master", description = "Spark master (default: local[*]).")
        String master;

        @Override
        public Integer call() {
            PrepareBenchmark.run(SparkSessions.getOrCreate("gosling bench prepare", master), config, input, mb * 1_000_000L, System.out);
            return 0;
        }
    }

    @Command(name = "fuzzy", mixinStandardHelpOptions = true,
            description = "MinHash/LSH fuzzy-dedup throughput on a generated corpus: signatures and end to end (GB per core-hour).")
    static final class Fuzzy implements Callable<Integer> {
        @Option(names = "--mb", description = "Corpus size in MB (default: ${DEFAULT-VALUE}).")
        long mb = 300;

        @Option(names = "--runs", description = "Timed runs (default: ${DEFAULT-VALUE}).")
        int runs = 3;

        @Option(names = "--partitions", description = "Spark partitions (default: ${DEFAULT-VALUE}).")
        int partitions = 16;

        @Option(names = "--cjk", description = "Fraction of Chinese documents, 0..1 (default: ${DEFAULT-VALUE}).")
        double cjk;

        @Option(names = "--work", description = "Work directory (default: a temporary one).")
        Path work;

        @Option(names = "--master", description = "Spark master (default: local[*]).")
        String master;

        @Override
        public Integer call() {
            dev.gosling.pipeline.dedup.FuzzyDedupBenchmark.Options d = dev.gosling.pipeline.dedup.FuzzyDedupBenchmark.Options.defaults();
            dev.gosling.pipeline.dedup.FuzzyDedupBenchmark.run(SparkSessions.getOrCreate("gosling bench fuzzy", master), System.out,
                    new dev.gosling.pipeline.dedup.FuzzyDedupBenchmark.Options(mb * 1_000_000L, runs, partitions, d.seed(), cjk, work,
                            d.kernelSampleBytes()));
            return 0;
        }
    }

    @Command(name = "train", mixinStandardHelpOptions = true,
            description = "Training throughput (tokens/s, ms/step, peak GPU memory, MFU) of whole optimizer steps on random tokens.")
    static final class Train implements Callable<Integer> {
        @Parameters(arity = "0..*", paramLabel = "CASE",
                description = "L<layers>-D<width>:<ctx_len>:<micro_bsz>, e.g. L12-D768:4096:8 (default: the four cases of the"
                        + " official trainer's H100 figures).")
        List<String> cases = List.of();

        @Option(names = "--accelerator", description = "gpu, cpu or auto (default: ${DEFAULT-VALUE}).")
        String accelerator = "gpu";

        @Option(names = "--precision", description = "bf16, tf32 or fp32 GEMM inputs (default: ${DEFAULT-VALUE}).")
        String precision = "bf16";

        @Option(names = "--grad_cp", description = "1: recompute each block in the backward pass (default: ${DEFAULT-VALUE}).")
        int gradCp = 0;

        @Option(names = "--keep", description = "With --grad_cp 0: 1.." + dev.gosling.trainer.model.Rwkv7Model.MAX_KEEP + " keep more of each layer's activations instead of recomputing them"
                + " (" + dev.gosling.trainer.model.Rwkv7Model.KEEP_LEVELS + "; default: ${DEFAULT-VALUE}).")
        int keep = 0;

        @Option(names = "--steps", description = "Timed steps per case after 2 warm-up steps (default: ${DEFAULT-VALUE}).")
        int steps = 5;

        @Option(names = "--profile", description = "Then time one more step kernel by kernel (GPU time per kernel and GEMM shape).")
        boolean profile;

        @Override
        public Integer call() {
            List<dev.gosling.trainer.train.TrainBenchmark.Case> parsed = cases.isEmpty()
                    ? dev.gosling.trainer.train.TrainBenchmark.issueCases()
                    : cases.stream().map(dev.gosling.trainer.train.TrainBenchmark::parse).toList();
            dev.gosling.trainer.train.TrainBenchmark.run(System.out, parsed, accelerator, precision, gradCp != 0, keep, steps, profile);
            return 0;
        }
    }
}
