package dev.gosling.pipeline.clean;

/**
 * Splits a text into words the way the filters count them, for every script: a word is a run of letters, digits and
 * marks (with . , ' ’ - _ kept inside it when letters or digits stand on both sides: 3.14, don't, well-known); a run of
 * punctuation or symbols is one symbol word (as NLTK's tokenizers give "..." or "?!" for English); every CJK ideograph
 * or kana is a word by itself (character-based counting: Chinese and Japanese have no spaces between words).
 * The arrays are reused from one document to the next: one instance per task, not thread-safe.
 */
public final class Words {
    /** Flag bits. */
    public static final byte SYMBOL = 1;
    public static final byte CJK = 2;
    public static final byte ALPHA = 4;

    private int count;
    private int[] start = new int[256];
    private int[] end = new int[256];
    private int[] cps = new int[256];
    private byte[] flags = new byte[256];

    public int count() {
        return count;
    }

    public int start(int i) {
        return start[i];
    }

    public int end(int i) {
        return end[i];
    }

    /** Python len() of the word: code points. */
    public int codePoints(int i) {
        return cps[i];
    }

    public boolean isSymbol(int i) {
        return (flags[i] & SYMBOL) != 0;
    }

    public boolean isCjk(int i) {
        return (flags[i] & CJK) != 0;
    }

    /** At least one alphabetic character (Python: any(c.isalpha() for c in w)). */
    public boolean hasAlpha(int i) {
        return (flags[i] & ALPHA) != 0;
    }

    public Words scan(CharSequence s) {
        count = 0;
        int n = s.length();
        int i = 0;
        while (i < n) {
            int cp = Character.codePointAt(s, i);
            int w = Character.charCount(cp);
            if (Chars.isSpace(cp)) {
                i += w;
            } else if (Chars.isCjk(cp)) {
                add(i, i + w, 1, (byte) (CJK | (Chars.isAlpha(cp) ? ALPHA : 0)));
                i += w;
            } else if (Chars.isWordChar(cp)) {
                int from = i;
                int points = 0;
                boolean alpha = false;
                while (i < n) {
                    cp = Character.codePointAt(s, i);
                    w = Character.charCount(cp);
                    if (Chars.isWordChar(cp)) {
                        alpha |= Chars.isAlpha(cp);
                    } else if (Chars.isJoiner(cp) && i + 1 < n && Chars.isWordChar(Character.codePointAt(s, i + 1))) {
                        w = 1;
                    } else if (cp >= 128 && Character.getType(cp) == Character.FORMAT) {
                        // soft hyphen, zero-width joiners: part of the word they sit in
                    } else {
                        break;
                    }
                    points++;
                    i += w;
                }
                add(from, i, points, alpha ? ALPHA : 0);
            } else {
                int from = i;
                int points = 0;
                while (i < n) {
                    cp = Character.codePointAt(s, i);
                    if (Chars.isSpace(cp) || Chars.isCjk(cp) || Chars.isWordChar(cp)) {
                        break;
                    }
                    points++;
                    i += Character.charCount(cp);
                }
                add(from, i, points, SYMBOL);
            }
        }
        return this;
    }

    private void add(int from, int to, int points, byte f) {
        if (count == start.length) {
            int cap = count * 2;
            start = java.util.Arrays.copyOf(start, cap);
            end = java.util.Arrays.copyOf(end, cap);
            cps = java.util.Arrays.copyOf(cps, cap);
            flags = java.util.Arrays.copyOf(flags, cap);
        }
        start[count] = from;
        end[count] = to;
        cps[count] = points;
        flags[count] = f;
        count++;
    }

    /**
     * Words for C4's per-line rules, CJK-aware: {@code len(line.split())} for space-delimited text (punctuation stays
     * attached), plus one word per CJK character (a CJK character also ends the space-delimited word before it).
     * Returns the number of words and stores the longest word's length (code points) in {@code longest[0]}.
     */
    public static int countLineWords(CharSequence s, int from, int to, int[] longest) {
        int words = 0;
        int run = 0;
        int max = 0;
        int i = from;
        while (i < to) {
            int cp = Character.codePointAt(s, i);
            i += Character.charCount(cp);
            if (Chars.isSpace(cp)) {
                if (run > 0) {
                    words++;
                    max = Math.max(max, run);
                    run = 0;
                }
            } else if (Chars.isCjk(cp)) {
                if (run > 0) {
                    words++;
                    max = Math.max(max, run);
                    run = 0;
                }
                words++;
                max = Math.max(max, 1);
            } else {
                run++;
            }
        }
        if (run > 0) {
            words++;
            max = Math.max(max, run);
        }
        if (longest != null) {
            longest[0] = max;
        }
        return words;
    }
}
