package dev.gosling.pipeline.clean;

import java.util.Arrays;

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
        char[] c = s.toString().toCharArray();
        return scan(c, c.length);
    }

    /** Character kinds for the scan: 0 space, 1 word character (2 if alphabetic too), 3 CJK, 4 other (symbol). */
    private static int kind(int cp) {
        if (cp < 128) {
            switch (Chars.asciiClass((char) cp)) {
                case 1: return 0;
                case 2: return cp >= '0' && cp <= '9' ? 1 : 2;
                default: return 4;
            }
        }
        if (Chars.isSpace(cp)) {
            return 0;
        }
        if (Chars.isCjk(cp)) {
            return 3;
        }
        if (Chars.isWordChar(cp)) {
            return Chars.isAlpha(cp) ? 2 : 1;
        }
        return 4;
    }

    public Words scan(char[] s, int n) {
        count = 0;
        int i = 0;
        while (i < n) {
            int cp = s[i];
            int w = 1;
            if (Character.isHighSurrogate((char) cp) && i + 1 < n && Character.isLowSurrogate(s[i + 1])) {
                cp = Character.toCodePoint((char) cp, s[i + 1]);
                w = 2;
            }
            int k = kind(cp);
            if (k == 0) {
                i += w;
            } else if (k == 3) {
                add(i, i + w, 1, (byte) (CJK | (Chars.isAlpha(cp) ? ALPHA : 0)));
                i += w;
            } else if (k <= 2) {
                int from = i;
                int points = 0;
                boolean alpha = false;
                while (i < n) {
                    char ch = s[i];
                    if (ch < 128) { // the common case, without code point decoding
                        byte a = Chars.asciiClass(ch);
                        if (a == 2) {
                            alpha |= ch > '9';
                            points++;
                            i++;
                            continue;
                        }
                        if (Chars.isJoiner(ch) && i + 1 < n && isWordStart(s, i + 1, n)) {
                            points++;
                            i++;
                            continue;
                        }
                        break;
                    }
                    cp = ch;
                    w = 1;
                    if (Character.isHighSurrogate(ch) && i + 1 < n && Character.isLowSurrogate(s[i + 1])) {
                        cp = Character.toCodePoint(ch, s[i + 1]);
                        w = 2;
                    }
                    int kk = kind(cp);
                    if (kk == 1 || kk == 2) {
                        alpha |= kk == 2;
                    } else if (Chars.isJoiner(cp) && i + 1 < n && isWordStart(s, i + 1, n)) {
                        w = 1;
                    } else if (kk == 4 && Character.getType(cp) == Character.FORMAT) {
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
                    cp = s[i];
                    w = 1;
                    if (Character.isHighSurrogate((char) cp) && i + 1 < n && Character.isLowSurrogate(s[i + 1])) {
                        cp = Character.toCodePoint((char) cp, s[i + 1]);
                        w = 2;
                    }
                    if (kind(cp) != 4) {
                        break;
                    }
                    points++;
                    i += w;
                }
                add(from, i, points, SYMBOL);
            }
        }
        return this;
    }

    private static boolean isWordStart(char[] s, int i, int n) {
        int cp = s[i];
        if (Character.isHighSurrogate((char) cp) && i + 1 < n && Character.isLowSurrogate(s[i + 1])) {
            cp = Character.toCodePoint((char) cp, s[i + 1]);
        }
        int k = kind(cp);
        return k == 1 || k == 2;
    }

    private void add(int from, int to, int points, byte f) {
        if (count == start.length) {
            int cap = count * 2;
            start = Arrays.copyOf(start, cap);
            end = Arrays.copyOf(end, cap);
            cps = Arrays.copyOf(cps, cap);
            flags = Arrays.copyOf(flags, cap);
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
        char[] c = new char[to - from];
        for (int i = from; i < to; i++) {
            c[i - from] = s.charAt(i);
        }
        return countLineWords(c, 0, c.length, longest);
    }

    public static int countLineWords(char[] s, int from, int to, int[] longest) {
        int words = 0;
        int run = 0;
        int max = 0;
        int i = from;
        while (i < to) {
            int cp = s[i++];
            if (cp < 128) {
                if (Chars.asciiClass((char) cp) == 1) {
                    if (run > 0) {
                        words++;
                        max = Math.max(max, run);
                        run = 0;
                    }
                } else {
                    run++;
                }
                continue;
            }
            if (Character.isHighSurrogate((char) cp) && i < to && Character.isLowSurrogate(s[i])) {
                cp = Character.toCodePoint((char) cp, s[i++]);
            }
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
