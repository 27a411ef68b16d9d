package dev.gosling.pipeline.clean;

/** Small string helpers with Python semantics. */
final class TextCounts {
    private TextCounts() {
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

    /** Python s[from:to].startswith(prefix). */
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
}
