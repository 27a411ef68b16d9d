package dev.gosling.trainer.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.gosling.trainer.GoslingException;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;

/**
 * Tokenizer throughput: MB of UTF-8 per second per core (MB = 10^6 bytes; per CPU-second of the encoding thread, so
 * other work on a shared machine does not count against it) and per wall-second, the median over timed repetitions
 * after a warm-up, for the byte path ({@link WorldTokenizer#encodeUtf8(byte[], int, int, IntList)}), the String path
 * ({@link WorldTokenizer#encode(CharSequence, IntList)}) and the byte path on two threads at once. Every corpus is
 * first checked to round-trip. Not a test: it prints a table.
 */
public final class TokenizerBenchmark {
    /** Where the bundled demo corpus lives when the data module ships it. */
    static final String SAMPLE_RESOURCE = "/dev/gosling/data/sample.jsonl";
    private static final Path[] FORTUNES_ZH = {
        Paths.get("/usr/share/games/fortunes/zh"),
        Paths.get("/usr/share/games/fortunes/chinese"),
        Paths.get("/usr/share/games/fortunes/tang300"),
        Paths.get("/usr/share/games/fortunes/song100"),
    };
    private static final int MIN_REPS = 5;
    private static final double MIN_REP_SECONDS = 0.2;
    private static final long SEED = 20230424L;
    private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();

    private TokenizerBenchmark() {
    }

    /** A corpus: its documents as text and as strict UTF-8. */
    record Corpus(String name, String source, List<String> texts, List<byte[]> utf8, long bytes) {
        static Corpus of(String name, String source, List<String> texts) {
            List<byte[]> utf8 = new ArrayList<>(texts.size());
            long bytes = 0;
            for (String t : texts) {
                byte[] b = WorldTokenizer.utf8(t);
                utf8.add(b);
                bytes += b.length;
            }
            return new Corpus(name, source, texts, utf8, bytes);
        }
    }

    /** Usage: {@code TokenizerBenchmark [--seconds N] [input.jsonl | input.txt]...} */
    public static void main(String[] args) {
        int seconds = 5;
        List<Path> inputs = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--seconds") && i + 1 < args.length) {
                try {
                    seconds = Integer.parseInt(args[++i]);
                } catch (NumberFormatException e) {
                    System.err.println("--seconds " + args[i] + " is not a whole number; give e.g. --seconds 5");
                    System.exit(2);
                }
            } else if (args[i].equals("--input") && i + 1 < args.length) {
                inputs.add(Paths.get(args[++i]));
            } else {
                inputs.add(Paths.get(args[i]));
            }
        }
        try {
            run(System.out, inputs, seconds);
        } catch (GoslingException e) {
            System.err.println(e.getMessage());
            System.exit(1);
        }
    }

    /**
     * Measures each input (jsonl: the "text" field of each line; other files: documents separated by lines
     * holding only "%", as in fortune files) or, with no input, the built-in English and Chinese corpora.
     * {@code seconds} is the least timed duration per row.
     */
    public static void run(PrintStream out, List<Path> inputs, int seconds) {
        if (seconds < 1) {
            throw new GoslingException("--seconds " + seconds + " must be at least 1");
        }
        List<Corpus> corpora = new ArrayList<>();
        if (inputs.isEmpty()) {
            corpora.add(builtInEnglish());
            corpora.add(builtInChinese());
        } else {
            for (Path p : inputs) {
                corpora.add(readCorpus(p));
            }
        }
        WorldTokenizer tok = WorldTokenizer.world();
        out.printf(Locale.ROOT, "World tokenizer (%s), Java %s, %d cores, load average %.1f at start%n",
                tok.sourceName(), System.getProperty("java.version"), Runtime.getRuntime().availableProcessors(),
                ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
        out.printf(Locale.ROOT, "MB = 10^6 bytes of UTF-8. MB/s/core = MB per CPU-second of each encoding thread;"
                + " MB/s wall = all threads' MB per wall-second. Medians of >= %d reps (>= %d s) after warm-up.%n",
                MIN_REPS, seconds);
        out.printf(Locale.ROOT, "%-10s %-40s %6s %7s %9s %6s %-6s %7s %9s %9s %9s%n", "corpus", "source",
                "docs", "MB", "tokens", "B/tok", "path", "threads", "MB/s/core", "MB/s wall", "Mtok/s");
        for (Corpus c : corpora) {
            long tokens = checkRoundTrip(tok, c);
            double mb = c.bytes() / 1e6;
            String head = String.format(Locale.ROOT, "%-10s %-40s %6d %7.2f %9d %6.2f", c.name(),
                    abbreviate(c.source(), 40), c.texts().size(), mb, tokens, (double) c.bytes() / tokens);
            Timing bytesPath = measure(1, () -> encodeBytes(tok, c, new IntList()), seconds);
            printRow(out, head, "utf8", 1, mb, tokens, bytesPath);
            Timing stringPath = measure(1, () -> encodeStrings(tok, c, new IntList()), seconds);
            printRow(out, head, "String", 1, mb, tokens, stringPath);
            Timing twoThreads = measure(2, () -> encodeBytes(tok, c, new IntList()), seconds);
            printRow(out, head, "utf8", 2, mb, tokens, twoThreads);
        }
    }

    /** Seconds for one pass over the corpus by each thread: wall time, and CPU time per thread. */
    private record Timing(double wallSeconds, double cpuSecondsPerThread) {
    }

    private static void printRow(PrintStream out, String head, String path, int threads, double mb, long tokens,
                                 Timing t) {
        out.printf(Locale.ROOT, "%s %-6s %7d %9.1f %9.1f %9.2f%n", head, path, threads, mb / t.cpuSecondsPerThread(),
                threads * mb / t.wallSeconds(), threads * tokens / t.wallSeconds() / 1e6);
    }

    private static long checkRoundTrip(WorldTokenizer tok, Corpus c) {
        long tokens = 0;
        IntList ids = new IntList();
        for (int d = 0; d < c.utf8().size(); d++) {
            ids.clear();
            tok.encodeUtf8(c.utf8().get(d), 0, c.utf8().get(d).length, ids);
            byte[] back = tok.decodeBytes(ids.array(), 0, ids.size());
            if (!Arrays.equals(back, c.utf8().get(d))) {
                throw new IllegalStateException(c.name() + " document " + d + " does not round-trip");
            }
            tokens += ids.size();
        }
        return tokens;
    }

    private static long encodeBytes(WorldTokenizer tok, Corpus c, IntList ids) {
        long n = 0;
        for (byte[] doc : c.utf8()) {
            ids.clear();
            n += tok.encodeUtf8(doc, 0, doc.length, ids);
        }
        return n;
    }

    private static long encodeStrings(WorldTokenizer tok, Corpus c, IntList ids) {
        long n = 0;
        for (String doc : c.texts()) {
            ids.clear();
            n += tok.encode(doc, ids);
        }
        return n;
    }

    /** One pass over a corpus; returns the token count (so the JIT cannot drop the work). */
    private interface Pass {
        long run();
    }

    /**
     * Runs {@code passes} passes on each of {@code threads} threads at once; returns {wall ns, summed CPU ns, sink}.
     * One thread runs on the caller.
     */
    private static long[] runPasses(ExecutorService pool, int threads, Pass pass, int passes) {
        Callable<long[]> work = () -> {
            long cpu0 = THREADS.getCurrentThreadCpuTime();
            long sink = 0;
            for (int k = 0; k < passes; k++) {
                sink += pass.run();
            }
            return new long[] {THREADS.getCurrentThreadCpuTime() - cpu0, sink};
        };
        long wall0 = System.nanoTime();
        try {
            if (threads == 1) {
                long[] r = work.call();
                return new long[] {System.nanoTime() - wall0, r[0], r[1]};
            }
            List<Future<long[]>> futures = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                futures.add(pool.submit(work));
            }
            long cpu = 0;
            long sink = 0;
            for (Future<long[]> f : futures) {
                long[] r = f.get();
                cpu += r[0];
                sink += r[1];
            }
            return new long[] {System.nanoTime() - wall0, cpu, sink};
        } catch (Exception e) {
            throw new IllegalStateException("benchmark pass failed", e);
        }
    }

    /** Warm up, pick passes per rep so a rep lasts >= 0.2 s, then time reps; medians per pass. */
    private static Timing measure(int threads, Pass pass, int seconds) {
        ExecutorService pool = threads > 1 ? Executors.newFixedThreadPool(threads) : null;
        try {
            long sink = 0;
            long warmEnd = System.nanoTime() + (long) (Math.max(1.0, seconds / 2.0) * 1e9);
            int passes = 0;
            long t0 = System.nanoTime();
            while (System.nanoTime() < warmEnd) {
                sink += runPasses(pool, threads, pass, 1)[2];
                passes++;
            }
            double perPass = (System.nanoTime() - t0) / 1e9 / passes;
            int passesPerRep = (int) Math.max(1, Math.ceil(MIN_REP_SECONDS / perPass));
            List<Double> wall = new ArrayList<>();
            List<Double> cpu = new ArrayList<>();
            long timedStart = System.nanoTime();
            while (wall.size() < MIN_REPS || System.nanoTime() - timedStart < seconds * 1_000_000_000L) {
                long[] r = runPasses(pool, threads, pass, passesPerRep);
                wall.add(r[0] / 1e9 / passesPerRep);
                cpu.add(r[1] / 1e9 / passesPerRep / threads);
                sink += r[2];
            }
            if (sink == 42) {
                System.out.print(""); // keeps the results alive
            }
            return new Timing(median(wall), median(cpu));
        } finally {
            if (pool != null) {
                pool.shutdownNow();
            }
        }
    }

    private static double median(List<Double> xs) {
        double[] a = xs.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        return a.length % 2 == 1 ? a[a.length / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
    }

    private static String abbreviate(String s, int width) {
        return s.length() <= width ? s : "…" + s.substring(s.length() - width + 1);
    }

    // ---- corpora ----

    static Corpus readCorpus(Path path) {
        String name = path.getFileName().toString();
        if (name.endsWith(".jsonl") || name.endsWith(".json")) {
            try {
                return Corpus.of(name, path.toString(), readJsonl(Files.readAllBytes(path), path.toString()));
            } catch (IOException e) {
                throw new GoslingException("cannot read " + path + ": " + e.getMessage() + "; check --input");
            }
        }
        return Corpus.of(name, path.toString(), readDocuments(List.of(path)));
    }

    static List<String> readJsonl(byte[] bytes, String source) {
        ObjectMapper json = new ObjectMapper();
        List<String> texts = new ArrayList<>();
        String[] lines = new String(bytes, StandardCharsets.UTF_8).split("\n");
        for (int i = 0; i < lines.length; i++) {
            if (lines[i].isBlank()) {
                continue;
            }
            JsonNode text;
            try {
                text = json.readTree(lines[i]).get("text");
            } catch (IOException e) {
                throw new GoslingException(source + ":" + (i + 1) + ": not a JSON object; each line of a jsonl input"
                        + " must be one JSON object with a \"text\" field");
            }
            if (text == null || !text.isTextual()) {
                throw new GoslingException(source + ":" + (i + 1) + ": no \"text\" string field; each line of a"
                        + " jsonl input must have one");
            }
            texts.add(text.asText());
        }
        return texts;
    }

    /** Plain text files; a line holding only "%" separates documents (the fortune format). */
    static List<String> readDocuments(List<Path> files) {
        List<String> docs = new ArrayList<>();
        for (Path f : files) {
            String all;
            try {
                all = new String(Files.readAllBytes(f), StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new GoslingException("cannot read " + f + ": " + e.getMessage() + "; check --input");
            }
            for (String doc : all.split("(?m)^%\r?\n")) {
                if (!doc.isBlank()) {
                    docs.add(doc);
                }
            }
        }
        return docs;
    }

    static Corpus builtInEnglish() {
        try (InputStream in = TokenizerBenchmark.class.getResourceAsStream(SAMPLE_RESOURCE)) {
            if (in != null) {
                return Corpus.of("english", "classpath:" + SAMPLE_RESOURCE, readJsonl(in.readAllBytes(),
                        SAMPLE_RESOURCE));
            }
        } catch (IOException e) {
            // Fall through to the generated text.
        }
        return Corpus.of("english", "generated (Zipf words, seed " + SEED + ")", generatedEnglish(4_000_000));
    }

    static Corpus builtInChinese() {
        List<Path> files = new ArrayList<>();
        for (Path p : FORTUNES_ZH) {
            if (Files.isDirectory(p)) {
                try (Stream<Path> s = Files.list(p)) {
                    s.filter(f -> Files.isRegularFile(f) && !f.toString().endsWith(".dat")
                            && !f.toString().endsWith(".u8")).sorted().forEach(files::add);
                } catch (IOException e) {
                    // An unreadable folder is treated as absent.
                }
            } else if (Files.isRegularFile(p)) {
                files.add(p);
            }
        }
        if (!files.isEmpty()) {
            return Corpus.of("chinese", "fortunes-zh (" + files.size() + " files)", readDocuments(files));
        }
        return Corpus.of("chinese", "synthetic (Zipf CJK vocab tokens, seed " + SEED + ")",
                syntheticChinese(WorldTokenizer.world(), 4_000_000));
    }

    private static final String[] WORDS = ("the of and to a in is that for it as was with be by on not he this are"
            + " or his from at which but have an they you were her she there one all we their would been has more"
            + " when will if no out so said what up its about into than them can only other time new some could"
            + " these two may first then do any like my now over such our man me even most made after also did"
            + " many before must through back years where much your way well down should because each just those"
            + " people how too little state good very make world still own see men work long get here between both"
            + " life being under never day same another know while last might us great old year off come since"
            + " against go came right used take three language model training data tokenizer water history city"
            + " government system number however university company century music including several")
            .split(" ");

    /** English-like text: words drawn with a Zipf law, sentences, commas and paragraphs. */
    static List<String> generatedEnglish(int targetBytes) {
        Random rnd = new Random(SEED);
        double[] cdf = zipfCdf(WORDS.length, 1.0);
        List<String> docs = new ArrayList<>();
        long total = 0;
        while (total < targetBytes) {
            StringBuilder doc = new StringBuilder();
            int sentences = 10 + rnd.nextInt(40);
            for (int s = 0; s < sentences; s++) {
                int words = 5 + rnd.nextInt(20);
                for (int w = 0; w < words; w++) {
                    String word = WORDS[sample(cdf, rnd)];
                    if (w == 0) {
                        word = Character.toUpperCase(word.charAt(0)) + word.substring(1);
                    } else {
                        doc.append(rnd.nextInt(12) == 0 ? ", " : " ");
                    }
                    doc.append(word);
                }
                doc.append(rnd.nextInt(10) == 0 ? "?" : ".");
                doc.append(rnd.nextInt(6) == 0 ? "\n\n" : " ");
            }
            total += doc.length();
            docs.add(doc.toString());
        }
        return docs;
    }

    /** Chinese-like text: the vocab's CJK tokens (rank = id order, short first) drawn with a Zipf law, punctuation. */
    static List<String> syntheticChinese(WorldTokenizer tok, int targetBytes) {
        List<String> cjk = new ArrayList<>();
        CharsetDecoder decoder = Utf8.strictDecoder();
        for (int id = 1; id <= tok.maxTokenId(); id++) {
            byte[] token = tok.tokenBytes(id);
            String s = Utf8.decodeStrict(decoder, token, 0, token.length);
            if (s != null && !s.isEmpty() && s.chars().allMatch(ch -> ch >= 0x4E00 && ch <= 0x9FFF)) {
                cjk.add(s);
            }
        }
        String[] punctuation = {"，", "。", "、", "！", "？", "；", "：", "“", "”"};
        Random rnd = new Random(SEED);
        double[] cdf = zipfCdf(cjk.size(), 1.0);
        List<String> docs = new ArrayList<>();
        long total = 0;
        while (total < targetBytes) {
            StringBuilder doc = new StringBuilder();
            int clauses = 20 + rnd.nextInt(60);
            for (int k = 0; k < clauses; k++) {
                int words = 2 + rnd.nextInt(8);
                for (int w = 0; w < words; w++) {
                    doc.append(cjk.get(sample(cdf, rnd)));
                }
                doc.append(punctuation[rnd.nextInt(3) == 0 ? rnd.nextInt(punctuation.length) : rnd.nextInt(2)]);
                if (rnd.nextInt(15) == 0) {
                    doc.append('\n');
                }
            }
            total += doc.length() * 3L;
            docs.add(doc.toString());
        }
        return docs;
    }

    private static double[] zipfCdf(int n, double exponent) {
        double[] cdf = new double[n];
        double sum = 0;
        for (int r = 0; r < n; r++) {
            sum += 1.0 / Math.pow(r + 1, exponent);
            cdf[r] = sum;
        }
        for (int r = 0; r < n; r++) {
            cdf[r] /= sum;
        }
        return cdf;
    }

    private static int sample(double[] cdf, Random rnd) {
        int i = Arrays.binarySearch(cdf, rnd.nextDouble());
        return Math.min(cdf.length - 1, i >= 0 ? i : -i - 1);
    }
}
