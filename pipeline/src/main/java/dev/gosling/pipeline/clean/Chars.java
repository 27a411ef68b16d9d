package dev.gosling.pipeline.clean;

/**
 * Character classes the filters share. Python semantics where the reference filters are Python: {@link #isSpace} is
 * {@code str.isspace()}, {@link #isAlpha} is {@code str.isalpha()}; lengths are counted in code points like {@code len()}.
 * CJK ideographs, kana and bopomofo count as one word each (those scripts put no spaces between words).
 */
public final class Chars {
    private Chars() {
    }

    /** ASCII classes: 0 other (controls), 1 space, 2 letter or digit, 3 punctuation or symbol. */
    private static final byte[] ASCII = new byte[128];

    static {
        for (int c = 0; c < 128; c++) {
            byte k;
            if (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F)) {
                k = 1;
            } else if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
                k = 2;
            } else if (c >= 0x21 && c <= 0x7E) {
                k = 3;
            } else {
                k = 0;
            }
            ASCII[c] = k;
        }
    }

    /** Python's str.isspace() for one code point. */
    public static boolean isSpace(int cp) {
        if (cp < 128) {
            return ASCII[cp] == 1;
        }
        return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029
                || cp == 0x202F || cp == 0x205F || cp == 0x3000;
    }

    /** Han ideographs (all CJK blocks), hiragana, katakana (incl. half-width), bopomofo, and the iteration marks. */
    public static boolean isCjk(int cp) {
        if (cp < 0x2E80) {
            return false;
        }
        return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x3040 && cp <= 0x30FF)
                || (cp >= 0x31F0 && cp <= 0x31FF) || (cp >= 0x3100 && cp <= 0x312F) || (cp >= 0x31A0 && cp <= 0x31BF)
                || cp == 0x3005 || cp == 0x3006 || cp == 0x3007 || (cp >= 0x3021 && cp <= 0x3029)
                || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFF66 && cp <= 0xFF9F) || (cp >= 0x20000 && cp <= 0x3FFFF)
                || (cp >= 0x2E80 && cp <= 0x2FDF);
    }

    /** Letters, digits and combining marks (a word's characters), CJK excluded. */
    public static boolean isWordChar(int cp) {
        if (cp < 128) {
            return ASCII[cp] == 2;
        }
        if (isCjk(cp)) {
            return false;
        }
        if (Character.isLetterOrDigit(cp)) {
            return true;
        }
        int t = Character.getType(cp);
        return t == Character.NON_SPACING_MARK || t == Character.COMBINING_SPACING_MARK || t == Character.ENCLOSING_MARK
                || t == Character.LETTER_NUMBER || t == Character.OTHER_NUMBER;
    }

    /** Python's str.isalpha() for one code point (categories L*). */
    public static boolean isAlpha(int cp) {
        if (cp < 128) {
            return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
        }
        return Character.isLetter(cp);
    }

    /** Punctuation that stays inside a word when letters or digits stand on both sides: e.g, 3.14, don't, well-known. */
    public static boolean isJoiner(int cp) {
        return cp == '.' || cp == ',' || cp == '\'' || cp == '\u2019' || cp == '-' || cp == '_';
    }

    /** The ASCII class of c < 128: 0 other (controls), 1 space, 2 letter or digit, 3 punctuation or symbol. */
    static byte asciiClass(char c) {
        return ASCII[c];
    }

    /** Python str.strip() on a char array: the index of the first non-space char in [from, to). */
    public static int skipSpaceForward(char[] s, int from, int to) {
        while (from < to && isSpace(s[from])) {
            from++;
        }
        return from;
    }

    /** Python str.rstrip() on a char array: the end of [from, to) after trailing spaces are removed. */
    public static int skipSpaceBackward(char[] s, int from, int to) {
        while (to > from && isSpace(s[to - 1])) {
            to--;
        }
        return to;
    }

    /** len() of s[from:to] in Python: code points. */
    public static int codePoints(char[] s, int from, int to) {
        int n = to - from;
        for (int i = from + 1; i < to; i++) {
            if (Character.isLowSurrogate(s[i]) && Character.isHighSurrogate(s[i - 1])) {
                n--;
            }
        }
        return n;
    }

    /** Python str.strip(): the index of the first non-space char in [from, to). */
    public static int skipSpaceForward(CharSequence s, int from, int to) {
        while (from < to) {
            char c = s.charAt(from);
            if (!isSpace(c)) { // no supplementary code point is a space
                break;
            }
            from++;
        }
        return from;
    }

    /** Python str.rstrip(): the end of [from, to) after trailing spaces are removed. */
    public static int skipSpaceBackward(CharSequence s, int from, int to) {
        while (to > from) {
            char c = s.charAt(to - 1);
            if (!isSpace(c)) {
                break;
            }
            to--;
        }
        return to;
    }

    /** len() of s[from:to] in Python: code points. */
    public static int codePoints(CharSequence s, int from, int to) {
        int n = to - from;
        for (int i = from; i < to; i++) {
            if (Character.isLowSurrogate(s.charAt(i)) && i > from && Character.isHighSurrogate(s.charAt(i - 1))) {
                n--;
            }
        }
        return n;
    }
}
