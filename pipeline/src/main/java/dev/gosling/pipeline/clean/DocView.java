package dev.gosling.pipeline.clean;

/**
 * One document as the rules see it, with what they share computed once: its chars in a reused array, Python len()
 * (code points) and the words. Reused for every document of a task.
 */
public final class DocView {
    private final Words words = new Words();
    private String text;
    private char[] chars = new char[4096];
    private int n;
    private boolean astral;
    private int length;
    private boolean wordsReady;

    public DocView reset(String s) {
        text = s;
        n = s.length();
        if (chars.length < n) {
            chars = new char[Math.max(n, 2 * chars.length)];
        }
        s.getChars(0, n, chars, 0);
        astral = false;
        for (int i = 0; i < n; i++) {
            if (Character.isSurrogate(chars[i])) {
                astral = true;
                break;
            }
        }
        length = astral ? s.codePointCount(0, n) : n;
        wordsReady = false;
        return this;
    }

    public String text() {
        return text;
    }

    /** The text's chars in [0, size()); the array is reused. */
    public char[] chars() {
        return chars;
    }

    public int size() {
        return n;
    }

    /** Python len(text). */
    public int length() {
        return length;
    }

    /** Whether the text holds supplementary code points (so char counts and code point counts differ). */
    public boolean astral() {
        return astral;
    }

    /** Python len(s[from:to]). */
    public int length(int from, int to) {
        return astral ? Chars.codePoints(chars, from, to) : to - from;
    }

    public Words words() {
        if (!wordsReady) {
            words.scan(chars, n);
            wordsReady = true;
        }
        return words;
    }

    /** How many times c occurs. */
    public int count(char c) {
        int k = 0;
        for (int i = 0; i < n; i++) {
            if (chars[i] == c) {
                k++;
            }
        }
        return k;
    }
}
