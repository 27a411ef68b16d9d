package dev.gosling.pipeline.dedup;

import java.util.Arrays;

/**
 * The shingling of fuzzy dedup: text to 64-bit shingle hashes, without a String per token or per shingle.
 *
 * <p><b>Tokens.</b> The text is read once, code point by code point. A letter, digit or combining mark extends the
 * current word (lower-cased with {@link Character#toLowerCase(int)}); anything else (space, punctuation, symbols) ends
 * it, so case, punctuation and spacing never change a shingle. A code point of a script written without spaces —
 * Han, Hiragana, Katakana, Hangul, Bopomofo, Thai, Lao, Khmer, Myanmar ({@link #isCharTokenScript}) — is a token by
 * itself. Each token is hashed in place as it is read (FNV-1a over code points, then the MurmurHash3 finaliser).
 *
 * <p><b>Mode, per document, by script.</b> If at least half of a document's tokens are such single characters the
 * document is shingled by characters: shingles are {@code charN} consecutive tokens (default 5, as Data-Juicer's
 * character mode; a Chinese word is about 1.5 characters, so 5 characters cover 3–4 words). Otherwise shingles are
 * {@code wordN} consecutive tokens (word 5-grams by default, as datatrove, BigCode and Dolma). Latin words inside a
 * Chinese document still count as one token each. A document with fewer tokens than the shingle size has one shingle,
 * all its tokens (as BigCode); a document with no token has no shingle ({@link Mode#NONE}) and takes no part in
 * fuzzy dedup.
 *
 * <p><b>Shingle hash.</b> The token hashes of a window are folded in order ({@code h = (h ^ t) * M}, seeded with the
 * window length) and finished with the MurmurHash3 finaliser: a well-mixed 64-bit value; MinHash uses its top 61 bits.
 *
 * <p>Not thread-safe: one instance per task; its buffers are reused from document to document.
 */
public final class Shingler {
    /** How a document was shingled. */
    public enum Mode { NONE, WORDS, CHARS }

    private static final long FNV_OFFSET = 0xcbf29ce484222325L;
    private static final long FNV_PRIME = 0x100000001b3L;
    private static final long FOLD = 0x9E3779B97F4A7C15L;
    private static final long FOLD_MUL = 0xBF58476D1CE4E5B9L;
    /** ASCII letters and digits to their lower-case value; 0 for separators. */
    private static final byte[] ASCII = new byte[128];

    static {
        for (int c = 0; c < 128; c++) {
            if (c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
                ASCII[c] = (byte) c;
            } else if (c >= 'A' && c <= 'Z') {
                ASCII[c] = (byte) (c + 32);
            }
        }
    }

    private final int wordN;
    private final int charN;
    private long[] tokens = new long[1024];
    private int tokenCount;
    private int charTokenCount;
    private long[] shingles = new long[1024];
    private int shingleCount;

    public Shingler(int wordN, int charN) {
        if (wordN < 1 || charN < 1) {
            throw new IllegalArgumentException("shingle sizes must be >= 1: " + wordN + ", " + charN);
        }
        this.wordN = wordN;
        this.charN = charN;
    }

    /** MurmurHash3's 64-bit finaliser: a bijection that mixes every input bit into every output bit. */
    public static long fmix64(long k) {
        k ^= k >>> 33;
        k *= 0xff51afd7ed558ccdL;
        k ^= k >>> 33;
        k *= 0xc4ceb9fe1a85ec53L;
        k ^= k >>> 33;
        return k;
    }

    /** True for a code point of a script written without spaces between words (each one is a token by itself). */
    public static boolean isCharTokenScript(int cp) {
        if (cp < 0x0E00) {
            return false;
        }
        return cp <= 0x0EFF                              // Thai, Lao
                || cp >= 0x1000 && cp <= 0x109F           // Myanmar
                || cp >= 0x1100 && cp <= 0x11FF           // Hangul Jamo
                || cp >= 0x1780 && cp <= 0x17FF           // Khmer
                || cp >= 0x2E80 && cp <= 0x2FDF           // CJK radicals, Kangxi radicals
                || cp == 0x3005 || cp == 0x3007 || cp >= 0x3021 && cp <= 0x3029 // 々 〇 Hangzhou numerals
                || cp >= 0x3040 && cp <= 0x31FF           // Hiragana, Katakana, Bopomofo, Hangul compatibility Jamo
                || cp >= 0x3400 && cp <= 0x4DBF           // CJK extension A
                || cp >= 0x4E00 && cp <= 0x9FFF           // CJK unified ideographs
                || cp >= 0xA960 && cp <= 0xA97F           // Hangul Jamo extended A
                || cp >= 0xAC00 && cp <= 0xD7FF           // Hangul syllables, Jamo extended B
                || cp >= 0xF900 && cp <= 0xFAFF           // CJK compatibility ideographs
                || cp >= 0xFF66 && cp <= 0xFFDC           // half-width Katakana and Hangul
                || cp >= 0x20000 && cp <= 0x323AF;        // CJK extensions B–H
    }

    private static boolean isWordPart(int cp) {
        if (Character.isLetterOrDigit(cp)) {
            return true;
        }
        int t = Character.getType(cp);
        return t == Character.NON_SPACING_MARK || t == Character.COMBINING_SPACING_MARK || t == Character.ENCLOSING_MARK;
    }

    private void addToken(long h, boolean charToken) {
        if (tokenCount == tokens.length) {
            tokens = Arrays.copyOf(tokens, tokens.length * 2);
        }
        tokens[tokenCount++] = fmix64(h);
        if (charToken) {
            charTokenCount++;
        }
    }

    /** Splits the text into token hashes (see the class comment); returns the number of tokens. */
    public int tokenize(String text) {
        tokenCount = 0;
        charTokenCount = 0;
        if (text == null) {
            return 0;
        }
        final int len = text.length();
        long h = FNV_OFFSET;
        boolean inWord = false;
        int i = 0;
        while (i < len) {
            char c = text.charAt(i);
            if (c < 128) {
                i++;
                int lc = ASCII[c];
                if (lc != 0) {
                    h = (h ^ lc) * FNV_PRIME;
                    inWord = true;
                } else if (inWord) {
                    addToken(h, false);
                    h = FNV_OFFSET;
                    inWord = false;
                }
                continue;
            }
            int cp = Character.codePointAt(text, i);
            i += Character.charCount(cp);
            if (isCharTokenScript(cp) && isWordPart(cp)) {
                if (inWord) {
                    addToken(h, false);
                    inWord = false;
                }
                addToken((FNV_OFFSET ^ cp) * FNV_PRIME, true);
                h = FNV_OFFSET;
            } else if (isWordPart(cp)) {
                h = (h ^ Character.toLowerCase(cp)) * FNV_PRIME;
                inWord = true;
            } else if (inWord) {
                addToken(h, false);
                h = FNV_OFFSET;
                inWord = false;
            }
        }
        if (inWord) {
            addToken(h, false);
        }
        return tokenCount;
    }

    /**
     * Shingles a document: tokenizes it, picks the mode, and fills {@link #hashes()} with one hash per window
     * (repeated shingles stay repeated; MinHash does not care). Returns the mode.
     */
    public Mode shingle(String text) {
        tokenize(text);
        shingleCount = 0;
        if (tokenCount == 0) {
            return Mode.NONE;
        }
        Mode mode = 2L * charTokenCount >= tokenCount ? Mode.CHARS : Mode.WORDS;
        int n = Math.min(mode == Mode.CHARS ? charN : wordN, tokenCount);
        int windows = tokenCount - n + 1;
        if (shingles.length < windows) {
            shingles = new long[Math.max(windows, shingles.length * 2)];
        }
        final long[] t = tokens;
        final long seed = FOLD * n;
        for (int w = 0; w < windows; w++) {
            long h = seed;
            for (int j = w, end = w + n; j < end; j++) {
                h = (h ^ t[j]) * FOLD_MUL;
            }
            shingles[w] = fmix64(h);
        }
        shingleCount = windows;
        return mode;
    }

    /** The shingle hashes of the last {@link #shingle} call, valid up to {@link #size()}; reused by the next call. */
    public long[] hashes() {
        return shingles;
    }

    public int size() {
        return shingleCount;
    }

    /** Tokens in the last document. */
    public int tokenCount() {
        return tokenCount;
    }

    /** The document's shingle set: its shingle hashes sorted ascending, without repeats (a new array). */
    public long[] shingleSet(String text) {
        shingle(text);
        long[] s = Arrays.copyOf(shingles, shingleCount);
        Arrays.sort(s);
        int u = 0;
        for (int i = 0; i < s.length; i++) {
            if (i == 0 || s[i] != s[i - 1]) {
                s[u++] = s[i];
            }
        }
        return u == s.length ? s : Arrays.copyOf(s, u);
    }

    /** Exact Jaccard similarity |A ∩ B| / |A ∪ B| of two shingle sets from {@link #shingleSet}; 0 when both are empty. */
    public static double jaccard(long[] a, long[] b) {
        int i = 0;
        int j = 0;
        long inter = 0;
        while (i < a.length && j < b.length) {
            long x = a[i];
            long y = b[j];
            if (x == y) {
                inter++;
                i++;
                j++;
            } else if (x < y) {
                i++;
            } else {
                j++;
            }
        }
        long union = (long) a.length + b.length - inter;
        return union == 0 ? 0.0 : (double) inter / union;
    }
}
