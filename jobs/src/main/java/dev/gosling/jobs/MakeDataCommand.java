package dev.gosling.jobs;

import dev.gosling.pipeline.MakeDataConfig;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.concurrent.Callable;

/** {@code gosling make-data FILE.jsonl N CTX_LEN}: make_data.py on Spark. */
@Command(name = "make-data", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"jsonl -> N shuffled copies -> RWKV world tokens + EOD 0 -> binidx (uint16) + magic_prime, as RWKV's make_data.py.",
                "Runs on embedded Spark (local[*]) unless spark-submit or --master says otherwise."})
public final class MakeDataCommand implements Callable<Integer> {

    @Parameters(index = "0", paramLabel = "INPUT", description = "A .jsonl or .jsonl.gz file, a directory of them, or a glob (quote it).")
    String input;

    @Parameters(index = "1", paramLabel = "N", description = "Number of shuffled copies (make_data's N_EPOCH).")
    int copies;

    @Parameters(index = "2", paramLabel = "CTX_LEN", description = "Context length for the magic_prime search.")
    int ctxLen;

    @Option(names = "--out", paramLabel = "PREFIX", description = "Output prefix (writes PREFIX.bin and PREFIX.idx). Default: the input name in the working directory.")
    String out;

    @Option(names = "--seed", description = "Shuffle seed (default: ${DEFAULT-VALUE}). The output depends only on the input and the seed.")
    long seed = MakeDataConfig.DEFAULT_SEED;

    @Option(names = "--max-tokens", paramLabel = "M", description = "Drop (and count) documents with more than M tokens, EOD included. 0 = no limit.")
    int maxTokens;

    @Option(names = "--no-eod", description = "Do not append the end-of-document token 0.")
    boolean noEod;

    @Option(names = "--strict", description = "Stop at the first bad line with FILE:LINE: reason, instead of quarantining it.")
    boolean strict;

    @Option(names = "--quarantine", paramLabel = "FILE", description = "Where rejected lines go (default: PREFIX.quarantine.jsonl).")
    String quarantine;

    @Option(names = "--partitions", description = "Spark partitions for tokenizing and sorting (default: 0 = Spark's default parallelism).")
    int partitions;

    @Option(names = "--max-line-bytes", description = "Longer lines are quarantined as line_too_long without being held in memory (default: ${DEFAULT-VALUE}).")
    int maxLineBytes = MakeDataConfig.DEFAULT_MAX_LINE_BYTES;

    @Option(names = "--master", description = "Spark master URL (default: spark-submit's, else local[*]).")
    String master;

    @Override
    public Integer call() {
        MakeDataConfig cfg = new MakeDataConfig(input, copies, ctxLen, out, seed, partitions, maxTokens, !noEod, strict,
                maxLineBytes, quarantine);
        SparkSession spark = SparkSessions.getOrCreate("gosling make-data", master);
        MakeDataJob.run(spark, cfg, System.out);
        return 0;
    }
}
