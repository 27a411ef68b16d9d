package dev.gosling.pipeline.clean;

import java.util.Arrays;

/**
 * Line and paragraph ranges of a text, in the reusable arrays {@link #starts}/{@link #ends}, split the way each
 * reference rule splits: Python's str.splitlines(), str.split("\n"), re.split(r"\n+") and re.split(r"\n{2,}").
 */
public final class Lines {
    int[] starts = new int[64];
    int[] ends = new int[64];
    int count;

    public int count() {
        return count;
    }

    public int start(int i) {
        return starts[i];
    }

    public int end(int i) {
        return ends[i];
    }

    private void add(int a, int b) {
        if (count == starts.length) {
            starts = Arrays.copyOf(starts, count * 2);
            ends = Arrays.copyOf(ends, count * 2);
        }
        starts[count] = a;
        ends[count] = b;
        count++;
    }

    public Lines splitLines(CharSequence s) {
        return splitLines(s.toString().toCharArray(), s.length());
    }

    public Lines splitNewline(CharSequence s) {
        return splitNewline(s.toString().toCharArray(), s.length());
    }

    public Lines splitNewlineRuns(CharSequence s, int from, int to, int minRun) {
        return splitNewlineRuns(s.toString().toCharArray(), from, to, minRun);
    }

    /** Python str.splitlines(): \n, \r, \r\n, \v, \f, \x1c-\x1e, \x85, \u2028, \u2029 end a line; no trailing empty line. */
    public Lines splitLines(char[] s, int n) {
        count = 0;
        int a = 0;
        int i = 0;
        while (i < n) {
            char c = s[i];
            if (c == '\n' || (c <= 0x1E && (c == '\r' || c == 0x0B || c == 0x0C || c >= 0x1C)) || c == 0x85 || c == 0x2028 || c == 0x2029) {
                add(a, i);
                i += (c == '\r' && i + 1 < n && s[i + 1] == '\n') ? 2 : 1;
                a = i;
            } else {
                i++;
            }
        }
        if (a < n) {
            add(a, n);
        }
        return this;
    }

    /** Python str.split("\n"): every \n splits, empty pieces kept. */
    public Lines splitNewline(char[] s, int n) {
        count = 0;
        int a = 0;
        for (int i = 0; i < n; i++) {
            if (s[i] == '\n') {
                add(a, i);
                a = i + 1;
            }
        }
        add(a, n);
        return this;
    }

    /** Python re.split(r"\n{minRun,}", s[from:to]): runs of at least minRun newlines split; pieces may be empty. */
    public Lines splitNewlineRuns(char[] s, int from, int to, int minRun) {
        count = 0;
        int a = from;
        int i = from;
        while (i < to) {
            if (s[i] == '\n') {
                int j = i;
                while (j < to && s[j] == '\n') {
                    j++;
                }
                if (j - i >= minRun) {
                    add(a, i);
                    a = j;
                }
                i = j;
            } else {
                i++;
            }
        }
        add(a, to);
        return this;
    }
}
