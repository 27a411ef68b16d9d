package dev.gosling.pipeline.clean;

import java.util.List;
import java.util.Locale;

/**
 * The Gopher quality rules (datatrove GopherQualityFilter semantics) over the CJK-aware words of {@link Words}:
 * non-symbol word count, mean word length, '#' and ellipsis per word, bullet and ellipsis line shares (lines as
 * str.splitlines()), share of words with a letter, stop-word occurrences.
 */
public final class GopherQuality {
    private final GopherQualityRules rules;
    private final Lines lines = new Lines();
    private final String[] stop;
    private final long[] stopHash;
    private final int stopMaxLen;
    private final boolean[] firstChars = new boolean[128];
    private String detail;

    public GopherQuality(GopherQualityRules rules) {
        this.rules = rules;
        List<String> words = rules.stopWords() == null ? List.of() : rules.stopWords();
        stop = words.toArray(new String[0]);
        stopHash = new long[stop.length];
        int max = 0;
        for (int i = 0; i < stop.length; i++) {
            stopHash[i] = hash(stop[i]);
            max = Math.max(max, stop[i].length());
            char f = stop[i].charAt(0);
            if (f < 128) {
                firstChars[f] = true;
            }
        }
        stopMaxLen = max;
    }

    public String detail() {
        return detail;
    }

    public String check(DocView d) {
        String text = d.text();
        char[] chars = d.chars();
        Words w = d.words();
        int nWords = w.count();
        int nonSymbol = 0;
        long lenSum = 0;
        int alpha = 0;
        int stopCount = 0;
        for (int i = 0; i < nWords; i++) {
            if (!w.isSymbol(i)) {
                nonSymbol++;
                lenSum += w.codePoints(i);
            }
            if (w.hasAlpha(i)) {
                alpha++;
            }
            if (stop.length > 0 && w.end(i) - w.start(i) <= stopMaxLen && isStopWord(chars, w.start(i), w.end(i))) {
                stopCount++;
            }
        }
        if (rules.minDocWords() != null && nonSymbol < rules.minDocWords()) {
            return fail("min_doc_words", nonSymbol + " words < " + rules.minDocWords());
        }
        if (rules.maxDocWords() != null && nonSymbol > rules.maxDocWords()) {
            return fail("max_doc_words", nonSymbol + " words > " + rules.maxDocWords());
        }
        if (nonSymbol > 0) { // numpy's mean of nothing is NaN, which passes both comparisons
            double avg = (double) lenSum / nonSymbol;
            if (rules.minAvgWordLength() != null && avg < rules.minAvgWordLength()) {
                return fail("min_avg_word_length", fmt("mean word length %.2f < %s", avg, rules.minAvgWordLength()));
            }
            if (rules.maxAvgWordLength() != null && avg > rules.maxAvgWordLength()) {
                return fail("max_avg_word_length", fmt("mean word length %.2f > %s", avg, rules.maxAvgWordLength()));
            }
        }
        if (nWords > 0 && rules.maxSymbolWordRatio() != null) {
            double hashes = (double) d.count('#') / nWords;
            if (hashes > rules.maxSymbolWordRatio()) {
                return fail("max_symbol_word_ratio", fmt("'#' per word %.3f > %s", hashes, rules.maxSymbolWordRatio()));
            }
            double ellipses = (double) (TextCounts.count(text, "...") + d.count('\u2026')) / nWords;
            if (ellipses > rules.maxSymbolWordRatio()) {
                return fail("max_symbol_word_ratio", fmt("ellipses per word %.3f > %s", ellipses, rules.maxSymbolWordRatio()));
            }
        }
        if (rules.maxBulletLinesRatio() != null || rules.maxEllipsisLinesRatio() != null) {
            lines.splitLines(chars, d.size());
            int n = lines.count();
            if (n > 0) {
                int bullets = 0;
                int ellipsisEnds = 0;
                for (int i = 0; i < n; i++) {
                    int a = Chars.skipSpaceForward(chars, lines.start(i), lines.end(i));
                    int b = Chars.skipSpaceBackward(chars, lines.start(i), lines.end(i));
                    if (a < lines.end(i) && (chars[a] == '\u2022' || chars[a] == '-')) {
                        bullets++;
                    }
                    int from = lines.start(i);
                    if ((b - from >= 3 && chars[b - 1] == '.' && chars[b - 2] == '.' && chars[b - 3] == '.')
                            || (b > from && chars[b - 1] == '\u2026')) {
                        ellipsisEnds++;
                    }
                }
                if (rules.maxBulletLinesRatio() != null && (double) bullets / n > rules.maxBulletLinesRatio()) {
                    return fail("max_bullet_lines_ratio", fmt("bullet lines %.3f > %s", (double) bullets / n, rules.maxBulletLinesRatio()));
                }
                if (rules.maxEllipsisLinesRatio() != null && (double) ellipsisEnds / n > rules.maxEllipsisLinesRatio()) {
                    return fail("max_ellipsis_lines_ratio", fmt("lines ending in an ellipsis %.3f > %s", (double) ellipsisEnds / n,
                            rules.maxEllipsisLinesRatio()));
                }
            }
        }
        if (nWords > 0 && rules.minAlphaWordsRatio() != null && (double) alpha / nWords < rules.minAlphaWordsRatio()) {
            return fail("min_alpha_words_ratio", fmt("words with a letter %.3f < %s", (double) alpha / nWords, rules.minAlphaWordsRatio()));
        }
        if (rules.minStopWords() != null && stopCount < rules.minStopWords()) {
            return fail("min_stop_words", stopCount + " stop words < " + rules.minStopWords());
        }
        return null;
    }

    private boolean isStopWord(char[] text, int a, int b) {
        char first = text[a];
        if (first < 128 && !firstChars[first]) {
            return false; // most words start with a letter no stop word starts with
        }
        long h = hash(text, a, b);
        for (int k = 0; k < stop.length; k++) {
            if (stopHash[k] == h && stop[k].length() == b - a && same(stop[k], text, a)) {
                return true;
            }
        }
        return false;
    }

    private static boolean same(String word, char[] text, int a) {
        for (int i = 0; i < word.length(); i++) {
            if (word.charAt(i) != text[a + i]) {
                return false;
            }
        }
        return true;
    }

    private static long hash(char[] s, int a, int b) {
        long h = 0xCBF29CE484222325L;
        for (int i = a; i < b; i++) {
            h = (h ^ s[i]) * 0x100000001B3L;
        }
        return h;
    }

    private static long hash(String s) {
        return hash(s.toCharArray(), 0, s.length());
    }

    private String fail(String key, String why) {
        detail = why;
        return key;
    }

    private static String fmt(String f, Object... args) {
        return String.format(Locale.ROOT, f, args);
    }
}
