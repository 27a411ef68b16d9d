package dev.gosling.pipeline.clean;

import java.util.List;

/** Small string helpers with Python semantics (str.count, str.endswith with a tuple, case-insensitive search). */
final class TextCounts {
    private TextCounts() {
    }

    /** Python s.count(ch) for one char. */
    static int count(CharSequence s, char ch) {
        int n = 0;
        for (int i = 0, len = s.length(); i < len; i++) {
            if (s.charAt(i) == ch) {
                n++;
            }
        }
        return n;
    }

    /** Python s.count(sub): non-overlapping occurrences. */
    static int count(String s, String sub) {
        int n = 0;
        int i = s.indexOf(sub);
        while (i >= 0) {
            n++;
            i = s.indexOf(sub, i + sub.length());
        }
        return n;
    }

    static boolean endsWith(CharSequence s, int from, int to, String suffix) {
        int len = suffix.length();
        if (to - from < len) {
            return false;
        }
        for (int k = 0; k < len; k++) {
            if (s.charAt(to - len + k) != suffix.charAt(k)) {
                return false;
            }
        }
        return true;
    }

    static boolean endsWithAny(CharSequence s, int from, int to, List<String> suffixes) {
        for (int k = 0, n = suffixes.size(); k < n; k++) {
            if (endsWith(s, from, to, suffixes.get(k))) {
                return true;
            }
        }
        return false;
    }

    static boolean startsWith(CharSequence s, int from, int to, String prefix) {
        int len = prefix.length();
        if (to - from < len) {
            return false;
        }
        for (int k = 0; k < len; k++) {
            if (s.charAt(from + k) != prefix.charAt(k)) {
                return false;
            }
        }
        return true;
    }

    /** Whether lower(s) contains the lower-case ASCII needle (compares Character.toLowerCase of each char). */
    static boolean containsLower(CharSequence s, String needle) {
        int n = s.length() - needle.length();
        char first = needle.charAt(0);
        outer:
        for (int i = 0; i <= n; i++) {
            if (Character.toLowerCase(s.charAt(i)) != first) {
                continue;
            }
            for (int k = 1; k < needle.length(); k++) {
                if (Character.toLowerCase(s.charAt(i + k)) != needle.charAt(k)) {
                    continue outer;
                }
            }
            return true;
        }
        return false;
    }

    /** Whether s holds a supplementary code point (then lengths in code points differ from String.length()). */
    static boolean hasSurrogates(CharSequence s) {
        for (int i = 0, n = s.length(); i < n; i++) {
            if (Character.isSurrogate(s.charAt(i))) {
                return true;
            }
        }
        return false;
    }
}
