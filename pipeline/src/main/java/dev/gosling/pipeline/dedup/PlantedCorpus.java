package dev.gosling.pipeline.dedup;

import dev.gosling.trainer.GoslingException;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * A planted near-duplicate benchmark: families of documents at a controlled Jaccard similarity on fuzzy dedup's own
 * shingling ({@link Shingler}), plus unrelated documents; English-like text (a Zipf vocabulary of 30 000 words, the
 * 100 most common English words on top, sentences, commas, paragraphs) and optionally Chinese-like text (a Zipf pool of
 * 3 500 Han characters, Chinese punctuation).
 *
 * <p><b>Exact similarity by construction.</b> A family has a base document whose {@code n} shingles are all distinct
 * (checked; redrawn otherwise) and variants made by substituting tokens with fresh ones (tokens absent from the base,
 * all different). Substitutions are laid out so that they destroy exactly {@code d} shingle windows: disjoint window
 * intervals, each interior interval at least one shingle long in tokens ({@code tokens w0+k-1 .. w1} destroy exactly
 * windows {@code w0 .. w1}); every destroyed window is replaced by a new, distinct one. Hence
 * {@code J(base, variant) = (n − d) / (n + d)}, and {@code d = round(n (1 − s) / (1 + s))} (at least 1 when s < 1) puts
 * it at the target {@code s} within the granularity of {@code n}. Variants also get formatting noise that the shingling
 * ignores (capitalisation, punctuation swaps, extra spaces and line breaks). {@link #familyPairs} measures the Jaccard
 * similarity of every pair of a family with the real shingler: base–variant pairs equal the formula, variant–variant
 * pairs are whatever their edits give.
 *
 * <p><b>Layout.</b> Documents {@code 0 .. families·familySize − 1} are families (member 0 is the base; member j ≥ 1 has
 * target {@code levels[(f·(familySize−1) + j − 1) mod levels.length]}, so levels are equally represented); the rest are
 * unrelated. Document ids are a fixed permutation of {@code [0, size)} (multiplication by a prime modulo the size), so a
 * family's smallest id is not its base. Every document is generated independently from {@code (seed, index)}, so a
 * corpus of any size is generated in parallel by {@link #dataset}.
 */
public final class PlantedCorpus implements Serializable {
    private static final long serialVersionUID = 1L;

    /**
     * @param seed         generator seed
     * @param families     number of near-duplicate families
     * @param familySize   documents per family, the base included (≥ 2)
     * @param levels       target Jaccard similarities of variants to their base, in (0, 1]
     * @param unrelated    documents outside any family
     * @param minTokens    shortest document, in tokens (≥ 2 × the larger shingle size)
     * @param maxTokens    longest document, in tokens (lengths are log-uniform between the two)
     * @param cjkFraction  share of families and unrelated documents written in Chinese-like text
     * @param shingleWords word shingle size of the dedup being benchmarked
     * @param cjkShingleChars character shingle size of the dedup being benchmarked
     */
    public record Spec(long seed, int families, int familySize, double[] levels, int unrelated, int minTokens,
                       int maxTokens, double cjkFraction, int shingleWords, int cjkShingleChars) implements Serializable {
        public Spec {
            if (families < 0 || unrelated < 0 || familySize < 2) {
                throw new GoslingException("planted corpus: families, unrelated must be >= 0 and family size >= 2");
            }
            if (levels == null || levels.length == 0 || Arrays.stream(levels).anyMatch(l -> !(l > 0 && l <= 1))) {
                throw new GoslingException("planted corpus: similarity levels must be in (0, 1]: " + Arrays.toString(levels));
            }
            if (shingleWords < 1 || cjkShingleChars < 1) {
                throw new GoslingException("planted corpus: shingle sizes must be >= 1");
            }
            int k = Math.max(shingleWords, cjkShingleChars);
            if (minTokens < 2 * k || maxTokens < minTokens) {
                throw new GoslingException("planted corpus: need 2 x shingle size <= min tokens <= max tokens, got "
                        + minTokens + ".." + maxTokens);
            }
            if (!(cjkFraction >= 0 && cjkFraction <= 1)) {
                throw new GoslingException("planted corpus: cjk fraction must be in [0, 1]: " + cjkFraction);
            }
            levels = levels.clone();
        }

        public long size() {
            return (long) families * familySize + unrelated;
        }
    }

    /**
     * One document.
     *
     * @param family -1 for an unrelated document
     * @param member 0 for a family's base (and for unrelated documents)
     * @param target  the variant's target Jaccard similarity to its base; 1 for a base, 0 for an unrelated document
     * @param planned the similarity the construction guarantees, {@code (n − d) / (n + d)}; 1 for a base, 0 for an
     *                unrelated document
     */
    public record Doc(long index, long id, String text, int family, int member, double target, double planned,
                      boolean cjk) {
    }

    /** Two documents of one family and the Jaccard similarity of their shingle sets, measured. */
    public record Pair(long idA, long idB, int family, double jaccard) {
    }

    private final Spec spec;
    private final long size;
    private final long idMultiplier;

    public PlantedCorpus(Spec spec) {
        this.spec = spec;
        this.size = spec.size();
        this.idMultiplier = coprimeMultiplier(size);
    }

    public Spec spec() {
        return spec;
    }

    public long size() {
        return size;
    }

    private static long coprimeMultiplier(long n) {
        long m = 2_147_483_647L; // a prime; the next odd numbers until one is coprime with n
        while (n > 1 && java.math.BigInteger.valueOf(m).gcd(java.math.BigInteger.valueOf(n)).longValue() != 1) {
            m += 2;
        }
        return m;
    }

    /** The id of the document at {@code index}: {@code index · m mod size}, a bijection of [0, size). */
    public long id(long index) {
        return java.math.BigInteger.valueOf(index).multiply(java.math.BigInteger.valueOf(idMultiplier))
                .mod(java.math.BigInteger.valueOf(size)).longValue();
    }

    // ---------------------------------------------------------------- vocabulary

    private static final String[] COMMON = ("the of and to a in is that for it as was with be by on not he i this are "
            + "or his from at which but have an they you were her she there been one all we their has would when if so "
            + "no will can more about said up what out its who into them than some could him time only other new my "
            + "also do may these two like then first any now such over our most very after even made many where before "
            + "through just well").split(" ");
    private static final String[] ONSETS = {"b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t",
        "v", "w", "y", "z", "br", "ch", "cl", "cr", "dr", "fl", "fr", "gl", "gr", "pl", "pr", "sc", "sh", "sl", "sp", "st",
        "str", "th", "tr", "wh", ""};
    private static final String[] NUCLEI = {"a", "e", "i", "o", "u", "ai", "ea", "ee", "io", "ou", "oo", "y"};
    private static final String[] CODAS = {"", "", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ng", "ck", "rt", "ss", "x"};
    static final int VOCABULARY = 30_000;
    static final int HAN_POOL = 3_500;
    private static final int HAN_FIRST = 0x4E00;
    private static final int HAN_COUNT = 0x9FA5 - 0x4E00 + 1;

    /** Words by rank (most frequent first) and the Zipf cumulative distribution; fixed, independent of any seed. */
    private static final class Vocabulary {
        static final String[] WORDS;
        static final double[] WORD_CDF;
        static final int[] HAN;
        static final double[] HAN_CDF;

        static {
            SplittableRandom r = new SplittableRandom(0x5EEDL);
            Set<String> words = new LinkedHashSet<>(Arrays.asList(COMMON));
            while (words.size() < VOCABULARY) {
                int rank = words.size();
                int syllables = rank < 2_000 ? 1 + r.nextInt(2) : rank < 10_000 ? 2 + r.nextInt(2) : 2 + r.nextInt(3);
                StringBuilder sb = new StringBuilder();
                for (int s = 0; s < syllables; s++) {
                    sb.append(ONSETS[r.nextInt(ONSETS.length)]).append(NUCLEI[r.nextInt(NUCLEI.length)]);
                    if (s == syllables - 1 || r.nextInt(3) == 0) {
                        sb.append(CODAS[r.nextInt(CODAS.length)]);
                    }
                }
                words.add(sb.toString());
            }
            WORDS = words.toArray(new String[0]);
            WORD_CDF = zipf(VOCABULARY);
            // A pool of distinct Han characters, in a fixed random order (rank = frequency).
            int[] all = new int[HAN_COUNT];
            for (int i = 0; i < HAN_COUNT; i++) {
                all[i] = HAN_FIRST + i;
            }
            for (int i = HAN_COUNT - 1; i > 0; i--) {
                int j = r.nextInt(i + 1);
                int t = all[i];
                all[i] = all[j];
                all[j] = t;
            }
            HAN = all;
            HAN_CDF = zipf(HAN_POOL);
        }

        private static double[] zipf(int n) {
            double[] cdf = new double[n];
            double acc = 0;
            for (int i = 0; i < n; i++) {
                acc += 1.0 / (i + 1);
                cdf[i] = acc;
            }
            for (int i = 0; i < n; i++) {
                cdf[i] /= acc;
            }
            return cdf;
        }

        static int sample(double[] cdf, SplittableRandom r) {
            int i = Arrays.binarySearch(cdf, r.nextDouble());
            return Math.min(i >= 0 ? i : -i - 1, cdf.length - 1);
        }
    }

    // ---------------------------------------------------------------- documents as tokens + separators

    /** Separator codes after a token: English {@code " ", ", ", ". ", "? ", "! ", ".\n\n"}; Chinese without spaces. */
    private static final String[] EN_SEP = {" ", ", ", ". ", "? ", "! ", ".\n\n"};
    private static final String[] ZH_SEP = {"", "，", "。", "？", "！", "。\n\n"};
    /** Separators that formatting noise may put in place of a space or a comma; none joins or splits tokens. */
    private static final String[] EN_NOISE = {"  ", "; ", " - ", "\n", ",  ", " (", ") "};
    private static final String[] ZH_NOISE = {"、", "；", " ", "\n", "：", "「", "」"};

    /** A document before rendering: token ranks (English words or Han pool indexes), separator codes, noise. */
    private static final class Draft {
        final boolean cjk;
        final int[] tokens;
        final byte[] seps;
        double planned = 1.0;   // (n - d) / (n + d) for a variant
        String[] noiseSep;      // per token: a replacement separator, or null
        boolean[] capitalise;   // per token: capitalise the word (English)

        Draft(boolean cjk, int[] tokens, byte[] seps) {
            this.cjk = cjk;
            this.tokens = tokens;
            this.seps = seps;
        }

        Draft copy() {
            return new Draft(cjk, tokens.clone(), seps.clone());
        }

        String render() {
            StringBuilder sb = new StringBuilder(tokens.length * (cjk ? 2 : 7));
            boolean sentenceStart = true;
            for (int i = 0; i < tokens.length; i++) {
                if (cjk) {
                    sb.appendCodePoint(hanOf(tokens[i]));
                } else {
                    String w = wordOf(tokens[i]);
                    if (sentenceStart || capitalise != null && capitalise[i]) {
                        sb.append(Character.toUpperCase(w.charAt(0))).append(w, 1, w.length());
                    } else {
                        sb.append(w);
                    }
                }
                int s = seps[i];
                if (i == tokens.length - 1) {
                    sb.append(cjk ? "。" : ".");
                    break;
                }
                if (noiseSep != null && noiseSep[i] != null) {
                    sb.append(noiseSep[i]);
                } else {
                    sb.append(cjk ? ZH_SEP[s] : EN_SEP[s]);
                }
                sentenceStart = s >= 2;
            }
            return sb.toString();
        }
    }

    /** English tokens are vocabulary ranks; fresh tokens past the vocabulary are spelled from their number. */
    static String wordOf(int token) {
        if (token < VOCABULARY) {
            return Vocabulary.WORDS[token];
        }
        // A fresh word outside the vocabulary: "q" + letters of the number (no vocabulary word starts with q).
        StringBuilder sb = new StringBuilder("q");
        int x = token - VOCABULARY;
        do {
            sb.append((char) ('a' + x % 26));
            x /= 26;
        } while (x > 0);
        return sb.toString();
    }

    static int hanOf(int token) {
        return Vocabulary.HAN[token];
    }

    private static long mix(long seed, long a, long b, long c) {
        long h = Shingler.fmix64(seed ^ 0x9E3779B97F4A7C15L);
        h = Shingler.fmix64(h ^ a * 0xC2B2AE3D27D4EB4FL);
        h = Shingler.fmix64(h ^ b * 0x165667B19E3779F9L);
        return Shingler.fmix64(h ^ c * 0x27D4EB2F165667C5L);
    }

    private int tokenCount(SplittableRandom r) {
        double lo = Math.log(spec.minTokens());
        double hi = Math.log(spec.maxTokens() + 1.0);
        return (int) Math.min(spec.maxTokens(), Math.floor(Math.exp(lo + (hi - lo) * r.nextDouble())));
    }

    private Draft draw(SplittableRandom r, boolean cjk) {
        int n = tokenCount(r);
        int[] tokens = new int[n];
        byte[] seps = new byte[n];
        int sentence = 0;
        int sentenceLength = cjk ? 8 + r.nextInt(23) : 6 + r.nextInt(23);
        int sentencesInParagraph = 0;
        int paragraphLength = 2 + r.nextInt(5);
        for (int i = 0; i < n; i++) {
            tokens[i] = cjk ? Vocabulary.sample(Vocabulary.HAN_CDF, r) : Vocabulary.sample(Vocabulary.WORD_CDF, r);
            sentence++;
            if (sentence >= sentenceLength) {
                sentence = 0;
                sentenceLength = cjk ? 8 + r.nextInt(23) : 6 + r.nextInt(23);
                sentencesInParagraph++;
                if (sentencesInParagraph >= paragraphLength) {
                    sentencesInParagraph = 0;
                    paragraphLength = 2 + r.nextInt(5);
                    seps[i] = 5;
                } else {
                    int p = r.nextInt(20);
                    seps[i] = (byte) (p == 0 ? 3 : p == 1 ? 4 : 2);
                }
            } else {
                seps[i] = (byte) (r.nextInt(cjk ? 6 : 12) == 0 ? 1 : 0);
            }
        }
        return new Draft(cjk, tokens, seps);
    }

    private int shingleSize(boolean cjk) {
        return cjk ? spec.cjkShingleChars() : spec.shingleWords();
    }

    /** A base document whose shingles are all distinct (redrawn until they are; rare for Zipf text). */
    private Draft base(long stream, long index, boolean cjk) {
        Shingler shingler = new Shingler(spec.shingleWords(), spec.cjkShingleChars());
        for (int attempt = 0; ; attempt++) {
            SplittableRandom r = new SplittableRandom(mix(spec.seed(), stream, index, attempt));
            Draft d = draw(r, cjk);
            int windows = d.tokens.length - shingleSize(cjk) + 1;
            if (shingler.shingleSet(d.render()).length == windows) {
                return d;
            }
            if (attempt == 1000) {
                throw new IllegalStateException("planted corpus: cannot draw a base document with distinct shingles");
            }
        }
    }

    private boolean familyIsCjk(long stream, long index) {
        return new SplittableRandom(mix(spec.seed(), stream + 100, index, 0)).nextDouble() < spec.cjkFraction();
    }

    /** The target similarity of member {@code j ≥ 1} of family {@code f}. */
    public double target(int family, int member) {
        double[] lv = spec.levels();
        return lv[(int) (((long) family * (spec.familySize() - 1) + member - 1) % lv.length)];
    }

    /** The document at {@code index} (0 ≤ index < size); deterministic, independent of every other document. */
    public Doc doc(long index) {
        if (index < 0 || index >= size) {
            throw new IndexOutOfBoundsException(index);
        }
        long familyDocs = (long) spec.families() * spec.familySize();
        if (index >= familyDocs) {
            long u = index - familyDocs;
            boolean cjk = familyIsCjk(2, u);
            Draft d = draw(new SplittableRandom(mix(spec.seed(), 2, u, 0)), cjk);
            return new Doc(index, id(index), d.render(), -1, 0, 0.0, 0.0, cjk);
        }
        int family = (int) (index / spec.familySize());
        int member = (int) (index % spec.familySize());
        boolean cjk = familyIsCjk(1, family);
        Draft base = base(1, family, cjk);
        if (member == 0) {
            return new Doc(index, id(index), base.render(), family, 0, 1.0, 1.0, cjk);
        }
        double s = target(family, member);
        Draft v = variant(base, s, new SplittableRandom(mix(spec.seed(), 3, family, member)));
        return new Doc(index, id(index), v.render(), family, member, s, v.planned, cjk);
    }

    /** The variant of {@code base} at target similarity {@code s}: exactly d windows destroyed, plus formatting noise. */
    private Draft variant(Draft base, double s, SplittableRandom r) {
        int k = shingleSize(base.cjk);
        int t = base.tokens.length;
        int n = t - k + 1;
        int d = (int) Math.round(n * (1 - s) / (1 + s));
        if (s < 1 && d == 0) {
            d = 1;
        }
        Draft v = base.copy();
        v.planned = (double) (n - Math.min(d, n)) / (n + Math.min(d, n));
        Set<Integer> used = new HashSet<>();
        for (int tok : base.tokens) {
            used.add(tok);
        }
        for (int[] interval : intervals(n, d, k, r)) {
            int w0 = interval[0];
            int w1 = interval[1];
            int from;
            int to;
            if (w0 == 0) {
                from = 0;
                to = w1 == n - 1 ? t - 1 : w1;
            } else if (w1 == n - 1) {
                from = w0 + k - 1;
                to = t - 1;
            } else {
                from = w0 + k - 1;
                to = w1;
            }
            for (int p = from; p <= to; p++) {
                v.tokens[p] = fresh(base.cjk, used, r);
            }
        }
        // Formatting noise: the shingler ignores case and every separator, so none of this changes a shingle.
        v.noiseSep = new String[t];
        v.capitalise = new boolean[t];
        for (int i = 0; i < t; i++) {
            if (v.seps[i] <= 1 && r.nextInt(25) == 0) {
                String[] noise = base.cjk ? ZH_NOISE : EN_NOISE;
                v.noiseSep[i] = noise[r.nextInt(noise.length)];
            }
            v.capitalise[i] = r.nextInt(40) == 0;
        }
        return v;
    }

    /** A token absent from the base and from earlier substitutions. */
    private static int fresh(boolean cjk, Set<Integer> used, SplittableRandom r) {
        while (true) {
            int tok = cjk ? r.nextInt(HAN_COUNT) : r.nextInt(VOCABULARY * 4);
            if (used.add(tok)) {
                return tok;
            }
        }
    }

    /**
     * Disjoint window intervals [w0, w1] in [0, n) of total length d; every interval that touches neither end is at
     * least k windows long (so that the tokens w0+k-1 .. w1 exist and destroy exactly w0 .. w1).
     */
    static List<int[]> intervals(int n, int d, int k, SplittableRandom r) {
        List<int[]> out = new ArrayList<>();
        if (d <= 0) {
            return out;
        }
        if (d >= n) {
            out.add(new int[]{0, n - 1});
            return out;
        }
        if (d < k) { // too short for the interior: at one end
            if (r.nextBoolean()) {
                out.add(new int[]{0, d - 1});
            } else {
                out.add(new int[]{n - d, n - 1});
            }
            return out;
        }
        int pieces = 1 + r.nextInt(Math.max(1, d / (2 * k)));
        int[] len = new int[pieces];
        Arrays.fill(len, k);
        for (int extra = d - pieces * k; extra > 0; extra--) {
            len[r.nextInt(pieces)]++;
        }
        // Gaps: a random composition of n - d into pieces + 1 non-negative parts.
        int free = n - d;
        int[] cuts = new int[pieces];
        for (int i = 0; i < pieces; i++) {
            cuts[i] = r.nextInt(free + 1);
        }
        Arrays.sort(cuts);
        int pos = 0;
        int prevCut = 0;
        for (int i = 0; i < pieces; i++) {
            pos += cuts[i] - prevCut;
            prevCut = cuts[i];
            out.add(new int[]{pos, pos + len[i] - 1});
            pos += len[i];
        }
        return out;
    }

    /** Every pair of documents of {@code family}, with their Jaccard similarity measured on the real shingling. */
    public List<Pair> familyPairs(int family) {
        Shingler shingler = new Shingler(spec.shingleWords(), spec.cjkShingleChars());
        int m = spec.familySize();
        long[] ids = new long[m];
        long[][] sets = new long[m][];
        for (int j = 0; j < m; j++) {
            Doc d = doc((long) family * m + j);
            ids[j] = d.id();
            sets[j] = shingler.shingleSet(d.text());
        }
        List<Pair> out = new ArrayList<>();
        for (int i = 0; i < m; i++) {
            for (int j = i + 1; j < m; j++) {
                out.add(new Pair(ids[i], ids[j], family, Shingler.jaccard(sets[i], sets[j])));
            }
        }
        return out;
    }

    public static final StructType SCHEMA = new StructType()
            .add("id", DataTypes.LongType, false)
            .add("text", DataTypes.StringType, false);

    /** The corpus as a Dataset {@code (id: long, text: string)} generated in parallel in {@code partitions} tasks. */
    public Dataset<Row> dataset(SparkSession spark, int partitions) {
        final PlantedCorpus self = this;
        return spark.range(0, size, 1, partitions).toDF("index")
                .mapPartitions((MapPartitionsFunction<Row, Row>) it -> new Iterator<>() {
                    @Override
                    public boolean hasNext() {
                        return it.hasNext();
                    }

                    @Override
                    public Row next() {
                        Doc d = self.doc(it.next().getLong(0));
                        return RowFactory.create(d.id(), d.text());
                    }
                }, Encoders.row(SCHEMA));
    }
}
