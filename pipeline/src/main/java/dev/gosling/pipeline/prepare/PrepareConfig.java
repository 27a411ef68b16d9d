package dev.gosling.pipeline.prepare;

import dev.gosling.pipeline.clean.FilterConfig;
import dev.gosling.pipeline.clean.NormalizeConfig;
import dev.gosling.pipeline.dedup.ExactDedupConfig;
import dev.gosling.pipeline.dedup.FuzzyDedupConfig;
import dev.gosling.pipeline.ingest.IngestConfig;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;

/**
 * Everything `gosling prepare` does, from a YAML recipe (conf/prepare/*.yaml) plus command-line overrides, validated
 * once by {@link PrepareConfigLoader} before any work and immutable after. A null stage is off; ingest is always on.
 * {@code workDir} and {@code partitions} say where and how wide to run: they are not part of any stage's identity,
 * so changing them never recomputes a stage or changes an output byte.
 *
 * @param source      the recipe file as given (for messages)
 * @param input       a .jsonl/.jsonl.gz file, a directory of them, or a glob
 * @param workDir     where the stages write (one folder per stage) and manifest.json goes
 * @param partitions  Spark partitions for the shuffles (0 = Spark's default parallelism)
 * @param shards      output files per stage (null = one per 128 MiB of input, at least 1)
 * @param seed        the shuffle seed
 * @param progressSeconds seconds between progress lines
 */
public record PrepareConfig(String source, String input, String workDir, int partitions, Integer shards, long seed,
                            double progressSeconds, IngestConfig ingest, NormalizeConfig normalize, FilterConfig filter,
                            ExactDedupConfig exactDedup, FuzzyDedupConfig fuzzyDedup, Shuffle shuffle, Tokenize tokenize, Binidx binidx)
        implements Serializable {

    public static final long DEFAULT_SEED = 42L;
    public static final double DEFAULT_PROGRESS_SECONDS = 30;
    public static final long AUTO_SHARD_BYTES = 128L << 20;

    /** shuffle: how many shuffled copies (make_data's N_EPOCH); each copy is a full seeded permutation. */
    public record Shuffle(int copies) implements Serializable {
    }

    /** tokenize: RWKV world tokenizer; {@code eod} appends the end-of-document token 0 (make_data does). */
    public record Tokenize(boolean eod) implements Serializable {
    }

    /** binidx: the output prefix (null = WORK_DIR/binidx/data) and the context length for magic_prime (null = none). */
    public record Binidx(String out, Integer ctxLen) implements Serializable {
    }

    /** The stages that run, in order. */
    public List<StageName> stages() {
        List<StageName> s = new ArrayList<>();
        s.add(StageName.INGEST);
        if (normalize != null) {
            s.add(StageName.NORMALIZE);
        }
        if (filter != null) {
            s.add(StageName.FILTER);
        }
        if (exactDedup != null) {
            s.add(StageName.EXACT_DEDUP);
        }
        if (fuzzyDedup != null) {
            s.add(StageName.FUZZY_DEDUP);
        }
        if (shuffle != null) {
            s.add(StageName.SHUFFLE);
        }
        if (tokenize != null) {
            s.add(StageName.TOKENIZE);
        }
        if (binidx != null) {
            s.add(StageName.BINIDX);
        }
        return s;
    }

    /** The settings of one stage (what its identity hash covers besides its input). */
    public Object settings(StageName stage) {
        switch (stage) {
            case INGEST: return ingest;
            case NORMALIZE: return normalize;
            case FILTER: return filter;
            case EXACT_DEDUP: return exactDedup;
            case FUZZY_DEDUP: return fuzzyDedup;
            case SHUFFLE: return new ShuffleSettings(shuffle.copies(), seed);
            case TOKENIZE: return tokenize;
            case BINIDX: return binidx;
            default: throw new IllegalArgumentException(stage.toString());
        }
    }

    /** The shuffle's identity: its copies and the seed. */
    public record ShuffleSettings(int copies, long seed) implements Serializable {
    }
}
