package dev.gosling.pipeline.prepare;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.gosling.pipeline.StageMeter;
import dev.gosling.pipeline.StageOutput;
import dev.gosling.pipeline.clean.FilterStage;
import dev.gosling.pipeline.clean.NormalizeStage;
import dev.gosling.pipeline.dedup.ExactDedup;
import dev.gosling.pipeline.dedup.FuzzyDedupStage;
import dev.gosling.pipeline.export.BinidxExport;
import dev.gosling.pipeline.export.DataReport;
import dev.gosling.pipeline.export.QuarantineWriter;
import dev.gosling.pipeline.export.ShuffledCopies;
import dev.gosling.pipeline.ingest.IngestStage;
import dev.gosling.pipeline.ingest.InputFiles;
import dev.gosling.pipeline.ingest.LineOutcome;
import dev.gosling.pipeline.ingest.RejectReason;
import dev.gosling.pipeline.tokenize.TokenizeStage;
import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.data.BinIdxReader;
import dev.gosling.trainer.data.MagicPrime;
import org.apache.spark.SparkException;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.storage.StorageLevel;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.count;
import static org.apache.spark.sql.functions.length;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.octet_length;
import static org.apache.spark.sql.functions.sum;

/**
 * `gosling prepare`: runs the stages of a {@link PrepareConfig} in order, each reading the previous stage's Parquet.
 * A stage whose completion marker carries the same identity key (its settings, the output sharding, and the key of
 * its input: for ingest, each input file's path, size and modification time) is skipped; {@code fromStage} rebuilds
 * that stage and all after it. Every stage writes its kept rows and its rejects as Parquet, sharded by document id
 * and sorted, with file names fixed, so the bytes depend only on the input and the settings; then stats.json and the
 * marker. At the end manifest.json gathers the settings, seed, input checksums and every count.
 */
public final class PreparePlan {
    /** Changes when a stage's output format or semantics change, so old work dirs are rebuilt rather than trusted. */
    public static final String FORMAT = "gosling-prepare/1";
    /** A stage's input smaller than this is not spread over more partitions than its files give. */
    static final long SPREAD_BYTES = 16L << 20;
    private static final StructType REJECTS = new StructType(new StructField[] {
            DataTypes.createStructField(StageOutput.ID, DataTypes.LongType, false),
            DataTypes.createStructField(StageOutput.REASON, DataTypes.StringType, true),
            DataTypes.createStructField(StageOutput.DETAIL, DataTypes.StringType, true),
            DataTypes.createStructField(StageOutput.DUPLICATE_OF, DataTypes.LongType, true),
            DataTypes.createStructField(StageOutput.TEXT, DataTypes.StringType, true)});

    private final SparkSession spark;
    private final JavaSparkContext sc;
    private final PrepareConfig cfg;
    private final PrintStream out;
    private final StageStore store;
    private final int partitions;
    private List<Path> files;
    private int shards;

    /** What a run did: per stage its stats, whether it ran (and in how many seconds) or was up to date. */
    public record Result(Path workDir, Path manifest, Map<StageName, JsonNode> stats, List<StageName> ran,
                         List<StageName> skipped, Map<StageName, Double> seconds, Path bin, Path idx) {
    }

    private PreparePlan(SparkSession spark, PrepareConfig cfg, PrintStream out) {
        this.spark = spark;
        this.sc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        this.cfg = cfg;
        this.out = out;
        this.store = new StageStore(Paths.get(cfg.workDir()).toAbsolutePath().normalize());
        this.partitions = cfg.partitions() > 0 ? cfg.partitions() : Math.max(2, sc.defaultParallelism());
    }

    public static Result run(SparkSession spark, PrepareConfig cfg, String fromStage, PrintStream out) {
        StageName from = null;
        if (fromStage != null) {
            from = StageName.ofKey(fromStage);
            if (from == null || !cfg.stages().contains(from)) {
                throw new GoslingException("--from-stage " + fromStage + ": not a stage of " + cfg.source() + " (its stages: "
                        + String.join(", ", cfg.stages().stream().map(StageName::key).toList()) + ")");
            }
        }
        PreparePlan plan = new PreparePlan(spark, cfg, out);
        try {
            return plan.runLocked(from);
        } catch (SparkException e) {
            GoslingException user = GoslingException.findIn(e);
            throw user != null ? user : new GoslingException("prepare: a Spark job failed: " + firstLine(e.getMessage()), e);
        }
    }

    private Result runLocked(StageName from) throws SparkException {
        files = InputFiles.resolve(cfg.input());
        long inputBytes = 0;
        for (Path f : files) {
            inputBytes += size(f);
        }
        if (inputBytes == 0) {
            throw new GoslingException(cfg.input() + ": the input is empty (" + files.size() + " file(s), 0 bytes); nothing to prepare");
        }
        shards = cfg.shards() != null ? cfg.shards()
                : (int) Math.max(1, Math.min(100_000, (inputBytes + PrepareConfig.AUTO_SHARD_BYTES - 1) / PrepareConfig.AUTO_SHARD_BYTES));
        Path work = store.work();
        try {
            Files.createDirectories(work);
        } catch (IOException e) {
            throw new GoslingException(work + ": cannot create the work directory: " + e.getMessage(), e);
        }
        try (FileChannel lockFile = FileChannel.open(work.resolve(".lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
             FileLock lock = tryLock(lockFile, work);
             ProgressReporter progress = new ProgressReporter(spark.sparkContext(), out, cfg.progressSeconds())) {
            return runStages(from, progress);
        } catch (IOException e) {
            throw new GoslingException(work + ": cannot lock the work directory: " + e.getMessage(), e);
        } finally {
            sc.clearJobGroup();
        }
    }

    private static FileLock tryLock(FileChannel ch, Path work) throws IOException {
        FileLock l;
        try {
            l = ch.tryLock();
        } catch (OverlappingFileLockException e) {
            l = null;
        }
        if (l == null) {
            throw new GoslingException(work + ": another prepare is running on this work directory; wait for it or use another --work-dir");
        }
        return l;
    }

    private Result runStages(StageName from, ProgressReporter progress) throws SparkException {
        out.println("prepare: " + cfg.source() + ": " + files.size() + " input file(s), stages " + String.join(" -> ",
                cfg.stages().stream().map(StageName::key).toList()) + "; work dir " + store.work() + "; " + shards + " shard(s), "
                + partitions + " partitions");
        Map<StageName, JsonNode> stats = new LinkedHashMap<>();
        Map<StageName, JsonNode> markers = new LinkedHashMap<>();
        List<StageName> ran = new ArrayList<>();
        List<StageName> skipped = new ArrayList<>();
        Map<StageName, Double> seconds = new LinkedHashMap<>();
        String prevKey = inputFingerprint();
        StageName prev = null;
        boolean forced = false;
        for (StageName s : cfg.stages()) {
            forced |= s == from;
            if (prev != null && stats.get(prev).path("output").path("rows").asLong() == 0) {
                throw new GoslingException("prepare: no document left after stage " + prev.key() + " ("
                        + describe(stats.get(prev).path("rejected").path("by_reason")) + "); see " + store.dir(prev).resolve("rejects"));
            }
            String key = key(s, prevKey);
            JsonNode marker = forced ? null : store.completed(s, key);
            if (marker != null) {
                JsonNode st = Json.read(store.dir(s).resolve(StageStore.STATS));
                stats.put(s, st);
                markers.put(s, marker);
                skipped.add(s);
                out.println("prepare [" + s.key() + "] up to date (key " + key.substring(0, 12) + "), skipped: " + summary(st));
            } else {
                store.invalidate(s);
                long t0 = System.nanoTime();
                String group = "prepare-" + s.key();
                sc.setJobGroup(group, "prepare " + s.key() + " -> " + store.dir(s), false);
                long expected = prev == null ? -1 : stats.get(prev).path("output").path("rows").asLong();
                StageMeter meter = new StageMeter(spark.sparkContext(), s.key());
                progress.start(s.key(), group, meter, expected);
                ObjectNode st;
                try {
                    st = s == StageName.BINIDX ? runBinidx(key, prev) : runParquetStage(s, key, prev, meter, stats.get(prev));
                } finally {
                    progress.stop();
                }
                Path tmp = store.work().resolve(".tmp-" + s.key());
                AtomicFiles.write(tmp.resolve(StageStore.STATS), Json.bytes(st));
                List<Path> external = new ArrayList<>();
                if (s == StageName.BINIDX && cfg.binidx().out() != null) {
                    Path prefix = Paths.get(cfg.binidx().out()).toAbsolutePath().normalize();
                    external.add(Paths.get(prefix + ".bin"));
                    external.add(Paths.get(prefix + ".idx"));
                }
                markers.put(s, store.commit(s, tmp, key, external));
                stats.put(s, st);
                ran.add(s);
                seconds.put(s, (System.nanoTime() - t0) / 1e9);
                out.println(String.format(Locale.ROOT, "prepare [%s] done in %.1f s: %s", s.key(), seconds.get(s), summary(st)));
            }
            if (s == StageName.INGEST && stats.get(s).path("input_rows").asLong() == 0) {
                throw new GoslingException(cfg.input() + ": the input holds no document (" + files.size()
                        + " file(s) without a non-empty line); nothing to prepare");
            }
            prevKey = key;
            prev = s;
        }
        Path manifest = store.work().resolve("manifest.json");
        AtomicFiles.write(manifest, Json.bytes(manifest(stats, markers)));
        Path bin = null;
        Path idx = null;
        if (cfg.binidx() != null) {
            Path prefix = binidxPrefix(store.dir(StageName.BINIDX));
            bin = Paths.get(prefix + ".bin");
            idx = Paths.get(prefix + ".idx");
            printBinidx(stats.get(StageName.BINIDX), prefix);
        }
        out.println("prepare: manifest " + manifest);
        return new Result(store.work(), manifest, stats, ran, skipped, seconds, bin, idx);
    }

    // ------------------------------------------------------------------ identity

    private String inputFingerprint() {
        StringBuilder sb = new StringBuilder(FORMAT).append("\ninputs\n");
        for (Path f : files) {
            try {
                sb.append(f).append('\t').append(Files.size(f)).append('\t').append(Files.getLastModifiedTime(f).toMillis()).append('\n');
            } catch (IOException e) {
                throw new GoslingException(f + ": cannot stat: " + e.getMessage(), e);
            }
        }
        return AtomicFiles.sha256(sb.toString().getBytes(StandardCharsets.UTF_8));
    }

    private String key(StageName s, String inputKey) {
        String settings = Json.canonical(cfg.settings(s));
        // Where the work dir is never matters; an explicit binidx prefix does (its files are the stage's output).
        String extra = s != StageName.BINIDX ? "shards=" + shards
                : cfg.binidx().out() != null ? "prefix=" + binidxPrefix(store.dir(s)) : "prefix=data";
        return AtomicFiles.sha256((FORMAT + "\n" + s.key() + "\n" + settings + "\n" + extra + "\n" + inputKey).getBytes(StandardCharsets.UTF_8));
    }

    private Path binidxPrefix(Path stageDir) {
        return cfg.binidx().out() != null ? Paths.get(cfg.binidx().out()).toAbsolutePath().normalize() : stageDir.resolve("data");
    }

    // ------------------------------------------------------------------ Parquet stages

    private Dataset<Row> read(StageName s) {
        StructType schema;
        if (s == StageName.SHUFFLE) {
            schema = ShuffledCopies.ROWS;
        } else if (s == StageName.TOKENIZE) {
            schema = TokenizeStage.ROWS;
        } else {
            schema = StageOutput.DOCS;
        }
        Dataset<Row> d = spark.read().schema(schema).parquet(store.dir(s).resolve("data").toUri().toString());
        // Few large shards read as few partitions: spread the rows so every core works (the output is re-sharded and
        // sorted by id afterwards, so this never changes a byte). Below SPREAD_BYTES the extra shuffle costs more.
        long bytes = Json.read(store.dir(s).resolve(StageStore.STATS)).path("output").path("bytes").asLong();
        return bytes >= SPREAD_BYTES && d.rdd().getNumPartitions() < partitions ? d.repartition(partitions, col(StageOutput.ID)) : d;
    }

    private ObjectNode runParquetStage(StageName s, String key, StageName prev, StageMeter meter, JsonNode prevStats) {
        StageOutput o;
        FuzzyDedupStage.Output fuzzy = null;
        switch (s) {
            case INGEST:
                o = IngestStage.run(spark, files, cfg.ingest(), meter);
                break;
            case NORMALIZE:
                o = NormalizeStage.run(read(prev), cfg.normalize(), meter);
                break;
            case FILTER:
                o = FilterStage.run(read(prev), cfg.filter(), meter);
                break;
            case EXACT_DEDUP:
                o = ExactDedup.run(read(prev), cfg.exactDedup(), partitions, meter);
                break;
            case FUZZY_DEDUP:
                fuzzy = FuzzyDedupStage.run(spark, read(prev), cfg.fuzzyDedup(), meter);
                o = fuzzy.output();
                break;
            case SHUFFLE:
                o = ShuffledCopies.run(read(prev), cfg.shuffle().copies(), cfg.seed(), meter);
                break;
            case TOKENIZE:
                o = TokenizeStage.run(read(prev), cfg.tokenize().eod(), meter);
                break;
            default:
                throw new IllegalArgumentException(s.toString());
        }
        Path tmp = store.begin(s);
        ObjectNode st = Json.object();
        st.put("stage", s.key());
        st.put("key", key);
        materialize(s, o, tmp, st);
        st.put("input_rows", prevStats == null ? st.path("output").path("rows").asLong() + st.path("rejected").path("rows").asLong()
                : prevStats.path("output").path("rows").asLong());
        if (s == StageName.INGEST) {
            ingestExtras(st, tmp);
        }
        if (fuzzy != null) {
            fuzzyExtras(st, fuzzy.counters());
        }
        return st;
    }

    /**
     * FuzzyDedup's counters (computed on the driver, not as columns) join the stage's counters, and its derived
     * parameters (permutations, the LSH threshold) are recorded next to them. Its own counts of kept and removed
     * documents must agree with the rows written: a cheap check that the rejects are exactly its clusters.
     */
    private void fuzzyExtras(ObjectNode st, Map<String, Long> counters) {
        long kept = st.path("output").path("rows").asLong();
        long removed = st.path("rejected").path("rows").asLong();
        if (counters.get("fuzzy_kept") != kept || counters.get("fuzzy_duplicates") != removed) {
            throw new IllegalStateException("fuzzy_dedup: wrote " + kept + " kept / " + removed + " removed rows, but FuzzyDedup counted "
                    + counters.get("fuzzy_kept") + " / " + counters.get("fuzzy_duplicates"));
        }
        Map<String, JsonNode> all = new TreeMap<>(toMap(st.path("counters")));
        counters.forEach((k, v) -> all.put(k, Json.tree(v)));
        ObjectNode cn = st.putObject("counters");
        all.forEach(cn::set);
        st.set("parameters", Json.tree(cfg.fuzzyDedup().describe()));
    }

    /** Writes kept rows and rejects, sharded by id and sorted, and returns the counts (exact: from the rows written). */
    private void materialize(StageName s, StageOutput o, Path tmp, ObjectNode st) {
        List<String> columns = List.of(o.rows().columns());
        Column[] sort = o.sortColumns().stream().map(org.apache.spark.sql.functions::col).toArray(Column[]::new);
        Dataset<Row> rows = o.rows().repartition(shards, col(StageOutput.ID)).sortWithinPartitions(sort)
                .persist(StorageLevel.MEMORY_AND_DISK());
        try {
            String sizeColumn = columns.contains(StageOutput.TEXT) ? StageOutput.TEXT : TokenizeStage.TOKENS;
            List<Column> aggs = new ArrayList<>();
            aggs.add(count(lit(1)).as("rows"));
            aggs.add(sum(octet_length(col(sizeColumn))).as("bytes"));
            aggs.add(columns.contains(StageOutput.TEXT) ? sum(length(col(StageOutput.TEXT))).as("chars") : lit(0L).as("chars"));
            List<String> counters = new ArrayList<>();
            for (String c : columns) {
                if (c.startsWith(StageOutput.COUNTER_PREFIX)) {
                    counters.add(c);
                    aggs.add(sum(col(c)).as(c));
                }
            }
            Column reason = o.hasRejects() ? col(StageOutput.REASON) : lit(null).cast(DataTypes.StringType).as(StageOutput.REASON);
            sc.setJobDescription("prepare " + s.key() + ": run the stage and count (" + shards + " shards)");
            List<Row> groups = rows.groupBy(reason).agg(aggs.get(0), aggs.subList(1, aggs.size()).toArray(new Column[0])).collectAsList();
            st.put("shards", shards);
            ObjectNode kept = st.putObject("output");
            ObjectNode rejected = st.putObject("rejected");
            ObjectNode byReason = Json.object();
            Map<String, Long> counterSums = new TreeMap<>();
            long rj = 0;
            long rjBytes = 0;
            kept.put("rows", 0L).put("bytes", 0L).put("chars", 0L);
            for (Row g : groups) {
                String why = g.isNullAt(0) ? null : g.getString(0);
                long n = g.getLong(1);
                long bytes = g.isNullAt(2) ? 0 : g.getLong(2);
                if (why == null) {
                    kept.put("rows", n).put("bytes", bytes).put("chars", g.isNullAt(3) ? 0 : g.getLong(3));
                    for (int i = 0; i < counters.size(); i++) {
                        counterSums.merge(counters.get(i).substring(StageOutput.COUNTER_PREFIX.length()), g.getLong(4 + i), Long::sum);
                    }
                } else {
                    rj += n;
                    rjBytes += bytes;
                    byReason.put(why, n);
                    for (int i = 0; i < counters.size(); i++) {
                        counterSums.merge(counters.get(i).substring(StageOutput.COUNTER_PREFIX.length()), g.getLong(4 + i), Long::sum);
                    }
                }
            }
            rejected.put("rows", rj).put("bytes", rjBytes);
            rejected.set("by_reason", sorted(byReason));
            ObjectNode cn = st.putObject("counters");
            counterSums.forEach(cn::put);

            sc.setJobDescription("prepare " + s.key() + ": write kept rows");
            Dataset<Row> keep = o.hasRejects() ? rows.filter(col(StageOutput.REASON).isNull()) : rows;
            keep.select(o.keptColumns().stream().map(org.apache.spark.sql.functions::col).toArray(Column[]::new))
                    .write().parquet(tmp.resolve("data").toUri().toString());
            StageStore.tidyParquetDir(tmp.resolve("data"));
            if (o.hasRejects()) {
                sc.setJobDescription("prepare " + s.key() + ": write rejects");
                rows.filter(col(StageOutput.REASON).isNotNull())
                        .select(StageOutput.REJECT_COLUMNS.stream().map(org.apache.spark.sql.functions::col).toArray(Column[]::new))
                        .write().parquet(tmp.resolve("rejects").toUri().toString());
                StageStore.tidyParquetDir(tmp.resolve("rejects"));
            }
        } finally {
            rows.unpersist(false);
        }
    }

    private static ObjectNode sorted(ObjectNode o) {
        ObjectNode s = Json.object();
        new TreeMap<String, JsonNode>(toMap(o)).forEach(s::set);
        return s;
    }

    private static Map<String, JsonNode> toMap(JsonNode o) {
        Map<String, JsonNode> m = new LinkedHashMap<>();
        o.fields().forEachRemaining(e -> m.put(e.getKey(), e.getValue()));
        return m;
    }

    /** Input checksums and the human-readable quarantine file (make-data's format) for ingest. */
    private void ingestExtras(ObjectNode st, Path tmp) {
        List<Path> abs = new ArrayList<>(files);
        Map<Path, String> sums = StageStore.checksums(abs);
        ArrayNode inputs = st.putArray("inputs");
        for (int i = 0; i < files.size(); i++) {
            ObjectNode f = inputs.addObject();
            f.put("ordinal", i);
            f.put("path", files.get(i).toString());
            f.put("bytes", size(files.get(i)));
            f.put("sha256", sums.get(files.get(i)));
        }
        if (st.path("rejected").path("rows").asLong() > 0) {
            sc.setJobDescription("prepare ingest: write quarantine.jsonl");
            Iterator<Row> rows = spark.read().schema(REJECTS).parquet(tmp.resolve("rejects").toUri().toString())
                    .orderBy(StageOutput.ID).toLocalIterator();
            Iterator<LineOutcome> outcomes = new Iterator<>() {
                @Override
                public boolean hasNext() {
                    return rows.hasNext();
                }

                @Override
                public LineOutcome next() {
                    Row r = rows.next();
                    return LineOutcome.reject(r.getLong(0), RejectReason.valueOf(r.getString(1).toUpperCase(Locale.ROOT)), r.getString(2),
                            r.getString(4).getBytes(StandardCharsets.UTF_8));
                }
            };
            QuarantineWriter.write(outcomes, files, tmp.resolve("quarantine.jsonl"));
        }
    }

    // ------------------------------------------------------------------ binidx

    private ObjectNode runBinidx(String key, StageName prev) {
        Path tmp = store.begin(StageName.BINIDX);
        Path prefix = cfg.binidx().out() != null ? binidxPrefix(tmp) : tmp.resolve("data");
        sc.setJobDescription("prepare binidx: sort (copy, rank, id) and write " + prefix + ".bin/.idx");
        BinidxExport.Written w = BinidxExport.write(read(prev), partitions, prefix);
        try (BinIdxReader r = BinIdxReader.open(prefix)) {
            if (r.tokenCount() != w.tokens() || r.itemCount() != w.items()) {
                throw new GoslingException(prefix + ".idx: verification failed: wrote " + w.tokens() + " tokens / " + w.items()
                        + " items, read back " + r.tokenCount() + " / " + r.itemCount());
            }
        }
        ObjectNode st = Json.object();
        st.put("stage", StageName.BINIDX.key());
        st.put("key", key);
        st.put("input_rows", Json.read(store.dir(prev).resolve(StageStore.STATS)).path("output").path("rows").asLong());
        ObjectNode o = st.putObject("output");
        o.put("rows", w.items());
        o.put("tokens", w.tokens());
        o.put("longest_item", w.longestItem());
        o.put("max_length", DataReport.alignUp16(w.longestItem()));
        o.put("prefix", cfg.binidx().out() != null ? cfg.binidx().out() : "data");
        if (cfg.binidx().ctxLen() != null) {
            st.put("ctx_len", cfg.binidx().ctxLen());
            try {
                st.put("magic_prime", MagicPrime.magicPrime(w.tokens(), cfg.binidx().ctxLen()));
            } catch (GoslingException e) {
                st.put("magic_prime_error", e.getMessage());
            }
        }
        return st;
    }

    private void printBinidx(JsonNode st, Path prefix) {
        JsonNode o = st.path("output");
        out.println("### Final " + prefix.getFileName() + ".bin/idx has " + o.path("tokens").asLong() + " tokens, "
                + o.path("rows").asLong() + " items. Dtype <class 'numpy.uint16'>");
        out.println("### max_length = " + o.path("max_length").asLong());
        if (st.has("magic_prime")) {
            out.println("### magic_prime = " + st.path("magic_prime").asLong() + " (for ctxlen " + st.path("ctx_len").asInt() + ")");
            out.println("--my_exit_tokens " + o.path("tokens").asLong() + " --magic_prime " + st.path("magic_prime").asLong()
                    + " --ctx_len " + st.path("ctx_len").asInt() + "  (data: " + prefix + ")");
        } else if (st.has("magic_prime_error")) {
            out.println("### magic_prime: not computed: " + st.path("magic_prime_error").asText());
        }
    }

    // ------------------------------------------------------------------ manifest and messages

    private ObjectNode manifest(Map<StageName, JsonNode> stats, Map<StageName, JsonNode> markers) {
        ObjectNode m = Json.object();
        m.put("format", FORMAT);
        m.put("recipe", cfg.source());
        ObjectNode settings = m.putObject("settings");
        settings.put("input", cfg.input());
        settings.put("seed", cfg.seed());
        settings.put("shards", shards);
        ArrayNode names = settings.putArray("stages");
        cfg.stages().forEach(s -> names.add(s.key()));
        for (StageName s : cfg.stages()) {
            settings.set(s.key(), Json.tree(cfg.settings(s)));
        }
        m.set("inputs", stats.get(StageName.INGEST).path("inputs"));
        ArrayNode stages = m.putArray("stages");
        for (StageName s : cfg.stages()) {
            ObjectNode e = stages.addObject();
            ((ObjectNode) stats.get(s)).fields().forEachRemaining(f -> {
                if (!f.getKey().equals("inputs")) {
                    e.set(f.getKey(), f.getValue());
                }
            });
            e.set("files", markers.get(s).path("files"));
        }
        return m;
    }

    private static String summary(JsonNode st) {
        JsonNode o = st.path("output");
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "%,d -> %,d rows", st.path("input_rows").asLong(o.path("rows").asLong()), o.path("rows").asLong()));
        if (o.has("bytes")) {
            sb.append(", ").append(ProgressReporter.mb(o.path("bytes").asLong()));
        }
        if (o.has("tokens")) {
            sb.append(String.format(Locale.ROOT, ", %,d tokens", o.path("tokens").asLong()));
        }
        long rj = st.path("rejected").path("rows").asLong();
        if (rj > 0) {
            sb.append(String.format(Locale.ROOT, ", removed %,d (%s)", rj, describe(st.path("rejected").path("by_reason"))));
        }
        JsonNode c = st.path("counters");
        if (c.size() > 0) {
            sb.append(", counters ").append(Json.canonical(c));
        }
        return sb.toString();
    }

    private static String describe(JsonNode byReason) {
        StringBuilder sb = new StringBuilder();
        byReason.fields().forEachRemaining(e -> sb.append(sb.length() == 0 ? "" : ", ").append(e.getKey()).append(' ')
                .append(String.format(Locale.ROOT, "%,d", e.getValue().asLong())));
        return sb.length() == 0 ? "none" : sb.toString();
    }

    private static long size(Path f) {
        try {
            return Files.size(f);
        } catch (IOException e) {
            throw new GoslingException(f + ": cannot stat: " + e.getMessage(), e);
        }
    }

    private static String firstLine(String m) {
        String s = String.valueOf(m);
        int nl = s.indexOf('\n');
        return nl >= 0 ? s.substring(0, nl) : s;
    }
}
