package dev.gosling.pipeline.clean;

/**
 * One document as the rules see it, with what they share computed once: Python len() (code points) and the words.
 * Reused for every document of a task.
 */
public final class DocView {
    private final Words words = new Words();
    private String text;
    private boolean astral;
    private int length;
    private boolean wordsReady;

    public DocView reset(String s) {
        text = s;
        astral = TextCounts.hasSurrogates(s);
        length = astral ? s.codePointCount(0, s.length()) : s.length();
        wordsReady = false;
        return this;
    }

    public String text() {
        return text;
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
        return astral ? Chars.codePoints(text, from, to) : to - from;
    }

    public Words words() {
        if (!wordsReady) {
            words.scan(text);
            wordsReady = true;
        }
        return words;
    }
}
