package dev.gosling.pipeline.prepare;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.MissingNode;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.gosling.pipeline.clean.C4Rules;
import dev.gosling.pipeline.clean.FilterConfig;
import dev.gosling.pipeline.clean.FineWebRules;
import dev.gosling.pipeline.clean.GopherQualityRules;
import dev.gosling.pipeline.clean.GopherRepetitionRules;
import dev.gosling.pipeline.clean.LengthRules;
import dev.gosling.pipeline.clean.NormalizeConfig;
import dev.gosling.pipeline.clean.Words;
import dev.gosling.pipeline.dedup.ExactDedupConfig;
import dev.gosling.pipeline.dedup.FuzzyDedupConfig;
import dev.gosling.pipeline.ingest.IngestConfig;
import dev.gosling.trainer.GoslingException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Builds a {@link PrepareConfig} from a YAML recipe plus overrides, validating everything before any work: an unknown
 * key, a wrong type or an impossible value is one {@link GoslingException} line naming where it came from
 * (FILE:LINE for the recipe, the flag for an override), the key, and what to do.
 *
 * <p>Rules of the recipe format: a stage is on when its key is present ({@code true} or {@code {}} for its defaults,
 * a map to change some); absent, {@code false} or {@code null} is off. The same holds for the filter groups. Inside a
 * group, a threshold left out takes the reference default and a threshold set to {@code null} is not checked.
 * Overrides change settings of stages and groups the recipe has; they never switch one on implicitly.
 */
public final class PrepareConfigLoader {
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION));
    /** The key a FuzzyDedupConfig message starts with ("fuzzy_dedup.bands = 0: ..."). */
    private static final Pattern FUZZY_KEY = Pattern.compile("(" + Pattern.quote(FuzzyDedupConfig.PREFIX) + "[a-z_]+)");

    /** One override: where it came from (a flag, "--set k=v"), the dotted key, and its value (already YAML). */
    public record Override(String origin, String key, JsonNode value) {
        /** {@code --set key=value}: the value is read as a YAML scalar or flow collection ("0.3", "null", "[a, b]"). */
        public static Override parse(String assignment) {
            int eq = assignment.indexOf('=');
            if (eq <= 0) {
                throw new GoslingException("--set " + assignment + ": expected KEY=VALUE, e.g. --set filter.c4.min_num_sentences=5");
            }
            String key = assignment.substring(0, eq).trim();
            String text = assignment.substring(eq + 1);
            JsonNode value;
            try {
                value = text.isBlank() ? NullNode.getInstance() : YAML.readTree(text);
            } catch (JsonProcessingException e) {
                throw new GoslingException("--set " + assignment + ": the value is not valid YAML (" + firstLine(e.getOriginalMessage()) + ")");
            }
            return new Override("--set " + assignment, key, value == null || value.isMissingNode() ? NullNode.getInstance() : value);
        }

        public Override withOrigin(String flag) {
            return new Override(flag, key, value);
        }

        public static Override of(String flag, String key, Object value) {
            return new Override(flag, key, YAML.valueToTree(value));
        }
    }

    private final String source;
    private final Map<String, String> origins = new HashMap<>();

    private PrepareConfigLoader(String source) {
        this.source = source;
    }

    public static PrepareConfig load(Path recipe, List<Override> overrides) {
        String source = recipe.toString();
        if (!Files.isRegularFile(recipe)) {
            throw new GoslingException(source + ": no such recipe file (see conf/prepare/ for the bundled ones)");
        }
        PrepareConfigLoader l = new PrepareConfigLoader(source);
        ObjectNode root = l.parse(recipe);
        for (Override o : overrides) {
            l.apply(root, o);
        }
        String name = recipe.getFileName().toString().replaceFirst("\\.ya?ml$", "");
        return l.bind(root, name);
    }

    private ObjectNode parse(Path recipe) {
        try {
            // First pass: the line of every key, for messages. Second: the tree.
            try (JsonParser p = YAML.getFactory().createParser(recipe.toFile())) {
                JsonToken t;
                while ((t = p.nextToken()) != null) {
                    if (t == JsonToken.FIELD_NAME) {
                        JsonLocation loc = p.currentTokenLocation();
                        origins.put(dotted(p.getParsingContext().pathAsPointer().toString()), source + ":" + loc.getLineNr());
                    }
                }
            }
            JsonNode tree = YAML.readTree(recipe.toFile());
            if (tree == null || tree.isMissingNode() || tree.isNull()) {
                throw new GoslingException(source + ": the recipe is empty; it needs at least `input:` (see conf/prepare/)");
            }
            if (!tree.isObject()) {
                throw new GoslingException(source + ":1: the recipe must be a YAML map of settings, not a " + kind(tree));
            }
            return (ObjectNode) tree;
        } catch (JsonProcessingException e) {
            JsonLocation loc = e.getLocation();
            throw new GoslingException(source + (loc != null ? ":" + loc.getLineNr() : "") + ": invalid YAML: "
                    + firstLine(e.getOriginalMessage()));
        } catch (IOException e) {
            throw new GoslingException(source + ": cannot read the recipe: " + e.getMessage(), e);
        }
    }

    private static String dotted(String pointer) {
        return pointer.startsWith("/") ? pointer.substring(1).replace('/', '.') : pointer.replace('/', '.');
    }

    private void apply(ObjectNode root, Override o) {
        String[] parts = o.key().split("\\.", -1);
        for (String part : parts) {
            if (part.isEmpty()) {
                throw new GoslingException(o.origin() + ": '" + o.key() + "' is not a key path (use dots between keys, e.g. filter.c4.min_num_sentences)");
            }
        }
        ObjectNode node = root;
        StringBuilder path = new StringBuilder();
        for (int i = 0; i < parts.length - 1; i++) {
            path.append(i == 0 ? "" : ".").append(parts[i]);
            JsonNode child = node.get(parts[i]);
            if ((child != null && child.isBoolean() && child.booleanValue()) || (child == null && i == 0 && parts[0].equals("ingest"))) {
                child = node.putObject(parts[i]); // `stage: true` means its defaults: an empty map; ingest is always on
            }
            if (child == null || !child.isObject()) {
                throw new GoslingException(o.origin() + ": " + path + " is not on in " + source
                        + " (overrides change settings; to switch it on add `" + parts[i] + ":` to the recipe or --set " + path + "=true)");
            }
            node = (ObjectNode) child;
        }
        node.set(parts[parts.length - 1], o.value());
        origins.put(o.key(), o.origin());
    }

    // ---------------------------------------------------------------- binding

    private PrepareConfig bind(ObjectNode rootNode, String recipeName) {
        Section root = new Section(rootNode, "");
        String input = root.string("input", null);
        if (input == null || input.isBlank()) {
            throw new GoslingException(source + ": input: missing; set `input:` in the recipe or pass --input FILE|DIR|GLOB");
        }
        String workDir = root.string("work_dir", "out/prepare/" + recipeName);
        int partitions = root.integer("partitions", 0, 0, 1_000_000, false);
        Integer shards = root.shards();
        long seed = root.longValue("seed", PrepareConfig.DEFAULT_SEED);
        double progress = root.number("progress_seconds", PrepareConfig.DEFAULT_PROGRESS_SECONDS, 0.01, 3600, false);

        Section ing = root.stage("ingest", true);
        IngestConfig ingestDefaults = IngestConfig.defaults();
        int maxLine = ing.integer("max_line_bytes", ingestDefaults.maxLineBytes(), 1024, Integer.MAX_VALUE - 16, false);
        long maxDoc = ing.integer("max_doc_bytes", (int) ingestDefaults.maxDocBytes(), 0, Integer.MAX_VALUE - 16, false);
        if (maxDoc > maxLine) {
            throw ing.error("max_doc_bytes", maxDoc + " exceeds ingest.max_line_bytes " + maxLine
                    + " (a longer line is quarantined before its text is read); lower it, or raise max_line_bytes");
        }
        IngestConfig.Oversize oversize = ing.choice("oversize", IngestConfig.Oversize.class, ingestDefaults.oversize());
        boolean strict = ing.bool("strict", false);
        ing.finish();
        IngestConfig ingest = new IngestConfig(maxLine, maxDoc, oversize, strict);

        NormalizeConfig normalize = null;
        Section norm = root.stage("normalize", false);
        if (norm != null) {
            NormalizeConfig d = NormalizeConfig.defaults();
            normalize = new NormalizeConfig(norm.choice("form", NormalizeConfig.Form.class, d.form()),
                    norm.bool("remove_ansi_escapes", d.removeAnsiEscapes()));
            norm.finish();
        }

        FilterConfig filter = null;
        Section fil = root.stage("filter", false);
        if (fil != null) {
            filter = new FilterConfig(length(fil.stage("length", false)), repetition(fil.stage("gopher_repetition", false)),
                    quality(fil.stage("gopher_quality", false)), c4(fil.stage("c4", false)), fineweb(fil.stage("fineweb", false)));
            fil.finish();
            if (filter.length() == null && filter.gopherRepetition() == null && filter.gopherQuality() == null
                    && filter.c4() == null && filter.fineweb() == null) {
                throw fil.error(null, "no filter group is on; add one of length, gopher_repetition, gopher_quality, c4, fineweb"
                        + " (e.g. `gopher_quality: {}` for the reference thresholds), or remove `filter:`");
            }
        }

        ExactDedupConfig exact = null;
        Section ex = root.stage("exact_dedup", false);
        if (ex != null) {
            ex.finish();
            exact = new ExactDedupConfig();
        }

        FuzzyDedupConfig fuzzy = fuzzyDedup(root.stage("fuzzy_dedup", false));

        PrepareConfig.Shuffle shuffle = null;
        Section sh = root.stage("shuffle", false);
        if (sh != null) {
            shuffle = new PrepareConfig.Shuffle(sh.integer("copies", 1, 1, 10_000, false));
            sh.finish();
        }
        PrepareConfig.Tokenize tokenize = null;
        Section tok = root.stage("tokenize", false);
        if (tok != null) {
            tokenize = new PrepareConfig.Tokenize(tok.bool("eod", true));
            tok.finish();
        }
        PrepareConfig.Binidx binidx = null;
        Section bin = root.stage("binidx", false);
        if (bin != null) {
            binidx = new PrepareConfig.Binidx(bin.string("out", null), bin.integer("ctx_len", null, 1, 1 << 30, true));
            bin.finish();
            if (tokenize == null) {
                throw root.error("binidx", "binidx writes the tokenize stage's tokens; add `tokenize: {}` to the recipe");
            }
        }
        root.finish();
        return new PrepareConfig(source, input, workDir, partitions, shards, seed, progress, ingest, normalize, filter, exact,
                fuzzy, shuffle, tokenize, binidx);
    }

    /**
     * fuzzy_dedup: FuzzyDedupConfig owns its keys, defaults and ranges ({@link FuzzyDedupConfig#fromMap}); this only
     * adds what a recipe needs on top: unknown keys and nulls named like everywhere else, and FILE:LINE (or the flag)
     * in front of FuzzyDedupConfig's own one-line message.
     */
    private FuzzyDedupConfig fuzzyDedup(Section s) {
        if (s == null) {
            return null;
        }
        Map<String, Object> values = new LinkedHashMap<>();
        for (String key : FuzzyDedupConfig.KEYS) {
            JsonNode v = s.take(key);
            if (v.isNull() && !key.equals("checkpoint_dir")) {
                // fromMap would read null as "default"; elsewhere null means "not checked", so refuse the ambiguity
                throw s.error(key, "must be set (leave the key out for the default)");
            }
            if (!v.isMissingNode() && !v.isNull()) {
                values.put(key, YAML.convertValue(v, Object.class));
            }
        }
        s.finish();
        try {
            return FuzzyDedupConfig.fromMap(values, null);
        } catch (GoslingException e) {
            // Its messages start with "fuzzy_dedup.KEY"; put the key's FILE:LINE (or flag) in front, as for other keys.
            Matcher m = FUZZY_KEY.matcher(e.getMessage());
            String key = m.lookingAt() ? m.group(1) : null;
            throw new GoslingException(origins.getOrDefault(key, origins.getOrDefault("fuzzy_dedup", source)) + ": " + e.getMessage(), e);
        }
    }

    private LengthRules length(Section s) {
        if (s == null) {
            return null;
        }
        LengthRules r = new LengthRules(s.integer("min_chars", null, 0, Integer.MAX_VALUE, true),
                s.integer("max_chars", null, 1, Integer.MAX_VALUE, true),
                s.integer("min_tokens", null, 0, Integer.MAX_VALUE, true),
                s.integer("max_tokens", null, 1, Integer.MAX_VALUE, true));
        s.ordered("min_chars", r.minChars(), "max_chars", r.maxChars());
        s.ordered("min_tokens", r.minTokens(), "max_tokens", r.maxTokens());
        s.finish();
        return r;
    }

    private GopherQualityRules quality(Section s) {
        if (s == null) {
            return null;
        }
        GopherQualityRules d = GopherQualityRules.defaults();
        GopherQualityRules r = new GopherQualityRules(
                s.integer("min_doc_words", d.minDocWords(), 0, Integer.MAX_VALUE, true),
                s.integer("max_doc_words", d.maxDocWords(), 1, Integer.MAX_VALUE, true),
                s.nullableNumber("min_avg_word_length", d.minAvgWordLength(), 0, 1e6),
                s.nullableNumber("max_avg_word_length", d.maxAvgWordLength(), 0, 1e6),
                s.nullableNumber("max_symbol_word_ratio", d.maxSymbolWordRatio(), 0, 1e6),
                s.nullableNumber("max_bullet_lines_ratio", d.maxBulletLinesRatio(), 0, 1),
                s.nullableNumber("max_ellipsis_lines_ratio", d.maxEllipsisLinesRatio(), 0, 1),
                s.nullableNumber("min_alpha_words_ratio", d.minAlphaWordsRatio(), 0, 1),
                s.integer("min_stop_words", d.minStopWords(), 0, Integer.MAX_VALUE, true),
                s.strings("stop_words", d.stopWords(), true));
        s.ordered("min_doc_words", r.minDocWords(), "max_doc_words", r.maxDocWords());
        s.ordered("min_avg_word_length", r.minAvgWordLength(), "max_avg_word_length", r.maxAvgWordLength());
        Words w = new Words();
        for (String word : r.stopWords()) {
            if (w.scan(word).count() != 1 || w.start(0) != 0 || w.end(0) != word.length()) {
                throw s.error("stop_words", "'" + word + "' is " + w.count() + " words to the word splitter (each CJK character is a word"
                        + " by itself, punctuation is a word of its own); list single words, e.g. 的 rather than 我们");
            }
        }
        if (r.minStopWords() != null && r.minStopWords() > 0 && r.stopWords().isEmpty()) {
            throw s.error("min_stop_words", r.minStopWords() + " stop words are required but stop_words is empty;"
                    + " list stop words for the corpus' language, or set min_stop_words: null");
        }
        s.finish();
        return r;
    }

    private GopherRepetitionRules repetition(Section s) {
        if (s == null) {
            return null;
        }
        GopherRepetitionRules d = GopherRepetitionRules.defaults();
        GopherRepetitionRules r = new GopherRepetitionRules(
                s.nullableNumber("dup_line_frac", d.dupLineFrac(), 0, 1),
                s.nullableNumber("dup_para_frac", d.dupParaFrac(), 0, 1),
                s.nullableNumber("dup_line_char_frac", d.dupLineCharFrac(), 0, 1),
                s.nullableNumber("dup_para_char_frac", d.dupParaCharFrac(), 0, 1),
                s.nGrams("top_n_grams", d.topNGrams()),
                s.nGrams("dup_n_grams", d.dupNGrams()));
        s.finish();
        return r;
    }

    private C4Rules c4(Section s) {
        if (s == null) {
            return null;
        }
        C4Rules d = C4Rules.defaults();
        C4Rules r = new C4Rules(s.bool("remove_citations", d.removeCitations()),
                s.bool("filter_no_terminal_punct", d.filterNoTerminalPunct()),
                s.strings("end_punctuation", d.endPunctuation(), false),
                s.integer("min_words_per_line", d.minWordsPerLine(), 0, Integer.MAX_VALUE, true),
                s.integer("max_word_length", d.maxWordLength(), 1, Integer.MAX_VALUE, true),
                s.integer("min_num_sentences", d.minNumSentences(), 0, Integer.MAX_VALUE, true),
                s.bool("filter_lorem_ipsum", d.filterLoremIpsum()),
                s.bool("filter_javascript", d.filterJavascript()),
                s.bool("filter_curly_bracket", d.filterCurlyBracket()),
                s.bool("filter_policy", d.filterPolicy()));
        s.finish();
        return r;
    }

    private FineWebRules fineweb(Section s) {
        if (s == null) {
            return null;
        }
        FineWebRules d = FineWebRules.defaults();
        FineWebRules r = new FineWebRules(s.nullableNumber("line_punct_thr", d.linePunctThr(), 0, 1),
                s.bool("line_punct_exclude_zero", d.linePunctExcludeZero()),
                s.strings("stop_chars", d.stopChars(), false),
                s.nullableNumber("short_line_thr", d.shortLineThr(), 0, 1),
                s.integer("short_line_length", d.shortLineLength(), 0, Integer.MAX_VALUE, false),
                s.nullableNumber("char_duplicates_ratio", d.charDuplicatesRatio(), 0, 1),
                s.nullableNumber("new_line_ratio", d.newLineRatio(), 0, 1e6));
        s.finish();
        return r;
    }

    /** One map of the recipe: typed reads that remember which keys were used, so leftovers can be named. */
    private final class Section {
        private final ObjectNode node;
        private final String path;
        private final Set<String> used = new LinkedHashSet<>();

        Section(ObjectNode node, String path) {
            this.node = node;
            this.path = path;
        }

        private String full(String key) {
            return key == null ? path : path.isEmpty() ? key : path + "." + key;
        }

        GoslingException error(String key, String message) {
            String k = full(key);
            String where = origins.getOrDefault(k, origins.getOrDefault(path, source));
            return new GoslingException(where + ": " + (k.isEmpty() ? "" : k + ": ") + message);
        }

        private JsonNode take(String key) {
            used.add(key);
            JsonNode v = node.get(key);
            return v == null ? MissingNode.getInstance() : v;
        }

        /** A stage or group: null when off (absent, false, null); its section when on. */
        Section stage(String key, boolean alwaysOn) {
            JsonNode v = take(key);
            if (v.isMissingNode() || v.isNull() || (v.isBoolean() && !v.booleanValue())) {
                if (alwaysOn && !(v.isBoolean() || v.isNull())) {
                    return new Section(JsonNodeFactory.instance.objectNode(), full(key));
                }
                if (alwaysOn) {
                    throw error(key, "cannot be switched off (every run starts by reading the input); remove the line");
                }
                return null;
            }
            if (v.isBoolean()) {
                return new Section(JsonNodeFactory.instance.objectNode(), full(key));
            }
            if (!v.isObject()) {
                throw error(key, "expected a map of settings, true (defaults) or false (off), got " + kind(v));
            }
            return new Section((ObjectNode) v, full(key));
        }

        String string(String key, String def) {
            JsonNode v = take(key);
            if (v.isMissingNode()) {
                return def;
            }
            if (v.isNull()) {
                return null;
            }
            if (!v.isTextual() && !v.isNumber()) {
                throw error(key, "expected text, got " + kind(v));
            }
            return v.asText();
        }

        boolean bool(String key, boolean def) {
            JsonNode v = take(key);
            if (v.isMissingNode()) {
                return def;
            }
            if (!v.isBoolean()) {
                throw error(key, "expected true or false, got " + kind(v) + " " + v);
            }
            return v.booleanValue();
        }

        long longValue(String key, long def) {
            JsonNode v = take(key);
            if (v.isMissingNode()) {
                return def;
            }
            if (!v.isIntegralNumber() || !v.canConvertToLong()) {
                throw error(key, "expected a whole number, got " + kind(v) + " " + v);
            }
            return v.longValue();
        }

        Integer integer(String key, Integer def, long min, long max, boolean nullable) {
            JsonNode v = take(key);
            if (v.isMissingNode()) {
                return def;
            }
            if (v.isNull()) {
                if (!nullable) {
                    throw error(key, "must be set (null is only allowed for thresholds, where it means 'not checked')");
                }
                return null;
            }
            if (!v.isIntegralNumber() || !v.canConvertToLong()) {
                throw error(key, "expected a whole number, got " + kind(v) + " " + v);
            }
            long x = v.longValue();
            if (x < min || x > max) {
                throw error(key, x + " is out of range [" + min + ", " + max + "]");
            }
            return (int) x;
        }

        double number(String key, double def, double min, double max, boolean nullable) {
            Double d = nullableNumber(key, def, min, max);
            if (d == null) {
                throw error(key, "must be set (null is only allowed for thresholds, where it means 'not checked')");
            }
            return d;
        }

        Double nullableNumber(String key, Double def, double min, double max) {
            JsonNode v = take(key);
            if (v.isMissingNode()) {
                return def;
            }
            if (v.isNull()) {
                return null;
            }
            if (!v.isNumber()) {
                throw error(key, "expected a number, got " + kind(v) + " " + v);
            }
            double x = v.doubleValue();
            if (!(x >= min && x <= max)) {
                throw error(key, fmt(x) + " is out of range [" + fmt(min) + ", " + fmt(max) + "]"
                        + (max == 1 ? " (it is a fraction)" : ""));
            }
            return x;
        }

        <E extends Enum<E>> E choice(String key, Class<E> type, E def) {
            JsonNode v = take(key);
            if (v.isMissingNode()) {
                return def;
            }
            StringBuilder names = new StringBuilder();
            for (E e : type.getEnumConstants()) {
                if (v.isTextual() && e.name().equalsIgnoreCase(v.asText())) {
                    return e;
                }
                names.append(names.length() == 0 ? "" : ", ").append(e.name().toLowerCase(Locale.ROOT));
            }
            throw error(key, "expected one of " + names + ", got " + (v.isTextual() ? "'" + v.asText() + "'" : kind(v) + " " + v));
        }

        List<String> strings(String key, List<String> def, boolean emptyOk) {
            JsonNode v = take(key);
            if (v.isMissingNode()) {
                return def;
            }
            if (!v.isArray()) {
                throw error(key, "expected a list of strings, got " + kind(v));
            }
            List<String> out = new ArrayList<>();
            for (JsonNode e : v) {
                if (!e.isTextual() || e.asText().isEmpty()) {
                    throw error(key, "every entry must be a non-empty string, got " + kind(e) + " " + e);
                }
                out.add(e.asText());
            }
            if (out.isEmpty() && !emptyOk) {
                throw error(key, "the list is empty; list at least one entry");
            }
            return List.copyOf(out);
        }

        /** n -> fraction, merged over the defaults; a null value removes n; null for the whole map removes all. */
        TreeMap<Integer, Double> nGrams(String key, TreeMap<Integer, Double> def) {
            JsonNode v = take(key);
            if (v.isMissingNode()) {
                return new TreeMap<>(def);
            }
            if (v.isNull()) {
                return new TreeMap<>();
            }
            if (!v.isObject()) {
                throw error(key, "expected a map from n to a fraction, e.g. {2: 0.2, 3: 0.18}, got " + kind(v));
            }
            TreeMap<Integer, Double> out = new TreeMap<>(def);
            Iterator<Map.Entry<String, JsonNode>> it = v.fields();
            while (it.hasNext()) {
                Map.Entry<String, JsonNode> e = it.next();
                int n;
                try {
                    n = Integer.parseInt(e.getKey());
                } catch (NumberFormatException ex) {
                    throw error(key + "." + e.getKey(), "n must be a whole number between 1 and 100");
                }
                if (n < 1 || n > 100) {
                    throw error(key + "." + e.getKey(), "n must be between 1 and 100");
                }
                JsonNode f = e.getValue();
                if (f.isNull()) {
                    out.remove(n);
                } else if (!f.isNumber() || f.doubleValue() < 0 || f.doubleValue() > 1) {
                    throw error(key + "." + e.getKey(), "expected a fraction in [0, 1] or null, got " + f);
                } else {
                    out.put(n, f.doubleValue());
                }
            }
            return out;
        }

        Integer shards() {
            JsonNode v = take("shards");
            if (v.isMissingNode() || (v.isTextual() && v.asText().equals("auto"))) {
                return null;
            }
            if (!v.isIntegralNumber() || v.longValue() < 1 || v.longValue() > 100_000) {
                throw error("shards", "expected auto or a whole number in [1, 100000], got " + v);
            }
            return v.intValue();
        }

        <T extends Comparable<T>> void ordered(String minKey, T min, String maxKey, T max) {
            if (min != null && max != null && min.compareTo(max) > 0) {
                throw error(minKey, min + " is above " + full(maxKey) + " " + max + "; no document could pass");
            }
        }

        void finish() {
            Iterator<String> names = node.fieldNames();
            while (names.hasNext()) {
                String k = names.next();
                if (!used.contains(k)) {
                    throw error(k, "unknown key" + (used.isEmpty() ? " (this section takes no settings)" : "; known keys: " + String.join(", ", used)));
                }
            }
        }
    }

    private static String fmt(double x) {
        return x == Math.rint(x) && Math.abs(x) < 1e15 ? Long.toString((long) x) : Double.toString(x);
    }

    private static String kind(JsonNode v) {
        if (v.isTextual()) {
            return "text";
        }
        if (v.isNumber()) {
            return "number";
        }
        if (v.isBoolean()) {
            return "boolean";
        }
        if (v.isArray()) {
            return "list";
        }
        if (v.isObject()) {
            return "map";
        }
        return v.isNull() ? "null" : v.getNodeType().toString().toLowerCase(Locale.ROOT);
    }

    private static String firstLine(String m) {
        String s = String.valueOf(m);
        int nl = s.indexOf('\n');
        return nl >= 0 ? s.substring(0, nl) : s;
    }
}
