package dev.gosling.pipeline.clean;

import java.util.Locale;

/**
 * The C4 clean-up (TFDS c4_utils.clean_page, line by line over str.splitlines(), each line stripped): a line with a
 * word over max_word_length characters goes; citation marks [1] [edit] [citation needed] are cut; a line not ending in
 * an end mark (or ending in "...") goes; a line with fewer than min_words_per_line words goes; "lorem ipsum" drops the
 * document; a line mentioning javascript goes; a "{" drops the document; a policy line goes. The document is dropped
 * when its kept lines hold fewer than min_num_sentences sentences; otherwise it becomes its kept lines joined by "\n".
 * <p>Words per line are counted CJK-aware ({@link Words#countLineWords}: whitespace words, each CJK character one word).
 * Sentences are counted by a rule, not NLTK's punkt model: a sentence is a stretch holding a letter, digit or CJK
 * character that ends at terminal punctuation (. ! ? … 。 ！ ？ ｡, a "." between letters or digits does not end one)
 * or at the end of the line.
 */
public final class C4Filter {
    private final C4Rules rules;
    private final Lines lines = new Lines();
    private final StringBuilder out = new StringBuilder();
    private final StringBuilder line = new StringBuilder();
    private final int[] longest = new int[1];
    private String detail;
    private int linesRemoved;
    private String result;

    public C4Filter(C4Rules rules) {
        this.rules = rules;
    }

    public String detail() {
        return detail;
    }

    /** Lines the last check removed. */
    public int linesRemoved() {
        return linesRemoved;
    }

    /** The document after the last check (when it passed): its kept lines joined by "\n". */
    public String result() {
        return result;
    }

    public String check(DocView d) {
        char[] text = d.chars();
        lines.splitLines(text, d.size());
        out.setLength(0);
        linesRemoved = 0;
        result = null;
        int sentences = 0;
        int kept = 0;
        for (int i = 0; i < lines.count(); i++) {
            int a = Chars.skipSpaceForward(text, lines.start(i), lines.end(i));
            int b = Chars.skipSpaceBackward(text, a, lines.end(i));
            int words = Words.countLineWords(text, a, b, longest);
            if (rules.maxWordLength() != null && longest[0] > rules.maxWordLength()) {
                linesRemoved++;
                continue;
            }
            String l = new String(text, a, b - a);
            if (rules.removeCitations() && l.indexOf('[') >= 0) {
                String cut = removeCitations(l);
                if (cut.length() != l.length()) {
                    l = cut;
                    words = Words.countLineWords(l, 0, l.length(), null);
                }
            }
            if (rules.filterNoTerminalPunct() && (!endsWithEndMark(l) || l.endsWith("..."))) {
                linesRemoved++;
                continue;
            }
            if (rules.minWordsPerLine() != null && words < rules.minWordsPerLine()) {
                linesRemoved++;
                continue;
            }
            String lower = rules.filterLoremIpsum() || rules.filterJavascript() || rules.filterPolicy() ? l.toLowerCase(Locale.ROOT) : l;
            if (rules.filterLoremIpsum() && lower.contains("lorem ipsum")) {
                detail = "line " + (i + 1) + " says lorem ipsum";
                return "filter_lorem_ipsum";
            }
            if (rules.filterJavascript() && lower.contains("javascript")) {
                linesRemoved++;
                continue;
            }
            if (rules.filterCurlyBracket() && l.indexOf('{') >= 0) {
                detail = "line " + (i + 1) + " holds a curly bracket";
                return "filter_curly_bracket";
            }
            if (rules.filterPolicy() && isPolicy(lower)) {
                linesRemoved++;
                continue;
            }
            if (rules.minNumSentences() != null) {
                sentences += sentences(l);
            }
            if (kept++ > 0) {
                out.append('\n');
            }
            out.append(l);
        }
        if (rules.minNumSentences() != null && sentences < rules.minNumSentences()) {
            detail = sentences + " sentences in the kept lines < " + rules.minNumSentences();
            return "min_num_sentences";
        }
        int a = Chars.skipSpaceForward(out, 0, out.length());
        int b = Chars.skipSpaceBackward(out, a, out.length());
        if (a == b) {
            detail = "every line was removed (" + linesRemoved + ")";
            return "no_lines_left";
        }
        String text0 = d.text();
        result = linesRemoved == 0 && b - a == text0.length() && out.length() == text0.length() && text0.contentEquals(out) ? text0 : out.substring(a, b);
        return null;
    }

    private boolean endsWithEndMark(String l) {
        for (String m : rules.endPunctuation()) {
            if (l.endsWith(m)) {
                return true;
            }
        }
        return false;
    }

    private static boolean isPolicy(String lower) {
        for (String p : C4Rules.POLICY_SUBSTRINGS) {
            if (lower.contains(p)) {
                return true;
            }
        }
        return false;
    }

    /** C4's citation regex \[\d*\]|\[edit\]|\[citation needed\], removed. */
    private String removeCitations(String s) {
        line.setLength(0);
        int n = s.length();
        int i = 0;
        while (i < n) {
            char c = s.charAt(i);
            if (c == '[') {
                int j = i + 1;
                while (j < n && s.charAt(j) >= '0' && s.charAt(j) <= '9') {
                    j++;
                }
                if (j < n && s.charAt(j) == ']') {
                    i = j + 1;
                    continue;
                }
                if (TextCounts.startsWith(s, i, n, "[edit]")) {
                    i += 6;
                    continue;
                }
                if (TextCounts.startsWith(s, i, n, "[citation needed]")) {
                    i += 17;
                    continue;
                }
            }
            line.append(c);
            i++;
        }
        return line.toString();
    }

    /** The sentence rule of the class comment. */
    static int sentences(String s) {
        int n = s.length();
        int count = 0;
        boolean content = false;
        for (int i = 0; i < n; ) {
            int cp = s.charAt(i);
            if (cp < 128) {
                i++;
                byte k = Chars.asciiClass((char) cp);
                if (k == 2) {
                    content = true;
                    continue;
                }
                if (k != 3 || (cp != '.' && cp != '!' && cp != '?')) {
                    continue;
                }
            } else {
                cp = s.codePointAt(i);
                i += Character.charCount(cp);
            }
            if (Chars.isWordChar(cp) || Chars.isCjk(cp)) {
                content = true;
            } else if (isTerminal(cp)) {
                if (cp == '.' && i < n && Chars.isWordChar(s.codePointAt(i))) {
                    continue; // 3.14, e.g, www.example
                }
                if (content) {
                    count++;
                    content = false;
                }
            }
        }
        return content ? count + 1 : count;
    }

    private static boolean isTerminal(int cp) {
        return cp == '.' || cp == '!' || cp == '?' || cp == '\u2026' || cp == '\u3002' || cp == '\uFF01' || cp == '\uFF1F'
                || cp == '\uFF61';
    }
}
