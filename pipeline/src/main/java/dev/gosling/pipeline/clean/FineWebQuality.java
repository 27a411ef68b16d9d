package dev.gosling.pipeline.clean;

import java.util.Locale;

/**
 * FineWeb's quality rules (datatrove FineWebQualityFilter semantics) over the non-blank lines of text.split("\n"):
 * share of lines ending in terminal punctuation, share of short lines, characters in duplicated lines over the
 * characters that are not newlines, newlines per word.
 */
public final class FineWebQuality {
    private final FineWebRules rules;
    private final Lines all = new Lines();
    private final Repetition rep = new Repetition();
    private final java.util.BitSet lastChars = new java.util.BitSet(); // single-char stop chars, by char
    private final java.util.List<char[]> longStops = new java.util.ArrayList<>();
    private int[] starts = new int[64];
    private int[] ends = new int[64];
    private String detail;

    public FineWebQuality(FineWebRules rules) {
        this.rules = rules;
        for (String c : rules.stopChars()) {
            if (c.length() == 1) {
                lastChars.set(c.charAt(0));
            } else {
                longStops.add(c.toCharArray());
            }
        }
    }

    /** Python line.endswith(stop_chars). */
    private boolean endsWithStopChar(char[] s, int a, int b) {
        if (b > a && lastChars.get(s[b - 1])) {
            return true;
        }
        for (char[] stop : longStops) {
            int len = stop.length;
            if (b - a >= len && java.util.Arrays.equals(s, b - len, b, stop, 0, len)) {
                return true;
            }
        }
        return false;
    }

    public String detail() {
        return detail;
    }

    public String check(DocView d) {
        char[] text = d.chars();
        all.splitNewline(text, d.size());
        int n = 0;
        for (int i = 0; i < all.count(); i++) {
            int a = all.start(i);
            int b = all.end(i);
            if (Chars.skipSpaceForward(text, a, b) == b) {
                continue; // line.strip() == ""
            }
            if (n == starts.length) {
                starts = java.util.Arrays.copyOf(starts, 2 * n);
                ends = java.util.Arrays.copyOf(ends, 2 * n);
            }
            starts[n] = a;
            ends[n] = b;
            n++;
        }
        if (n == 0) {
            detail = "no non-blank line";
            return "empty";
        }
        if (rules.linePunctThr() != null) {
            int punct = 0;
            for (int i = 0; i < n; i++) {
                if (endsWithStopChar(text, starts[i], ends[i])) {
                    punct++;
                }
            }
            double ratio = (double) punct / n;
            if (ratio < rules.linePunctThr() && !(ratio == 0 && rules.linePunctExcludeZero())) {
                return fail("line_punct_thr", "lines ending in terminal punctuation %.3f < %s", ratio, rules.linePunctThr());
            }
        }
        if (rules.shortLineThr() != null) {
            int shortLines = 0;
            for (int i = 0; i < n; i++) {
                if (d.length(starts[i], ends[i]) <= rules.shortLineLength()) {
                    shortLines++;
                }
            }
            double ratio = (double) shortLines / n;
            if (ratio > rules.shortLineThr()) {
                return fail("short_line_thr", "lines of at most " + rules.shortLineLength() + " characters %.3f > %s", ratio,
                        rules.shortLineThr());
            }
        }
        int newlines = d.count('\n');
        if (rules.charDuplicatesRatio() != null) {
            rep.findDuplicates(text, starts, ends, n, d.astral());
            double ratio = (double) rep.dupChars() / Math.max(1, d.length() - newlines);
            if (ratio > rules.charDuplicatesRatio()) {
                return fail("char_duplicates_ratio", "characters in duplicated lines %.3f > %s", ratio, rules.charDuplicatesRatio());
            }
        }
        if (rules.newLineRatio() != null) {
            int words = d.words().count();
            double ratio = (double) newlines / Math.max(1, words);
            if (ratio > rules.newLineRatio()) {
                return fail("new_line_ratio", "newlines per word %.3f > %s", ratio, rules.newLineRatio());
            }
        }
        return null;
    }

    private String fail(String key, String format, double value, Double limit) {
        detail = String.format(Locale.ROOT, format, value, limit);
        return key;
    }
}
