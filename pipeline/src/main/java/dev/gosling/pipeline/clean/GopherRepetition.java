package dev.gosling.pipeline.clean;

import java.util.Map;

/**
 * The Gopher repetition rules (datatrove GopherRepetitionFilter semantics): duplicate paragraphs (split on two or more
 * newlines of the stripped text) and lines (split on newlines) by count and by characters, the most frequent word
 * 2-4-gram's share of characters, and the share of characters in repeated 5-10-grams. Ratios are over len(text).
 */
public final class GopherRepetition {
    private final GopherRepetitionRules rules;
    private final Lines pieces = new Lines();
    private final Repetition rep = new Repetition();
    private String detail;

    public GopherRepetition(GopherRepetitionRules rules) {
        this.rules = rules;
    }

    public String detail() {
        return detail;
    }

    /** The violated rule's key, or null when the document passes. */
    public String check(DocView d) {
        char[] text = d.chars();
        int n = d.size();
        double len = Math.max(1, d.length());
        if (rules.dupParaFrac() != null || rules.dupParaCharFrac() != null) {
            int a = Chars.skipSpaceForward(text, 0, n);
            int b = Chars.skipSpaceBackward(text, a, n);
            pieces.splitNewlineRuns(text, a, b, 2);
            rep.findDuplicates(text, pieces.starts, pieces.ends, pieces.count, d.astral());
            if (rules.dupParaFrac() != null && (double) rep.dupElements() / pieces.count > rules.dupParaFrac()) {
                return fail("dup_para_frac", (double) rep.dupElements() / pieces.count, rules.dupParaFrac());
            }
            if (rules.dupParaCharFrac() != null && rep.dupChars() / len > rules.dupParaCharFrac()) {
                return fail("dup_para_char_frac", rep.dupChars() / len, rules.dupParaCharFrac());
            }
        }
        if (rules.dupLineFrac() != null || rules.dupLineCharFrac() != null) {
            pieces.splitNewlineRuns(text, 0, n, 1);
            rep.findDuplicates(text, pieces.starts, pieces.ends, pieces.count, d.astral());
            if (rules.dupLineFrac() != null && (double) rep.dupElements() / pieces.count > rules.dupLineFrac()) {
                return fail("dup_line_frac", (double) rep.dupElements() / pieces.count, rules.dupLineFrac());
            }
            if (rules.dupLineCharFrac() != null && rep.dupChars() / len > rules.dupLineCharFrac()) {
                return fail("dup_line_char_frac", rep.dupChars() / len, rules.dupLineCharFrac());
            }
        }
        boolean prepared = false;
        for (Map.Entry<Integer, Double> e : rules.topNGrams().entrySet()) {
            if (!prepared) {
                rep.prepareWords(text, d.words());
                prepared = true;
            }
            double share = rep.topNGramChars(e.getKey()) / len;
            if (share > e.getValue()) {
                return fail("top_n_grams." + e.getKey(), share, e.getValue());
            }
        }
        for (Map.Entry<Integer, Double> e : rules.dupNGrams().entrySet()) {
            if (!prepared) {
                rep.prepareWords(text, d.words());
                prepared = true;
            }
            double share = rep.duplicateNGramChars(e.getKey()) / len;
            if (share > e.getValue()) {
                return fail("dup_n_grams." + e.getKey(), share, e.getValue());
            }
        }
        return null;
    }

    private String fail(String key, double value, double limit) {
        detail = String.format(java.util.Locale.ROOT, "%s %.3f > %s", key, value, limit);
        return key;
    }
}
