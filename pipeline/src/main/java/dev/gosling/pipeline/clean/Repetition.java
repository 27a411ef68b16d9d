package dev.gosling.pipeline.clean;

import java.util.Arrays;

/**
 * The repetition measures of the Gopher and FineWeb filters, exact (every hash match is confirmed by comparing the
 * characters) and allocation-free per document: the buffers grow to the largest document of the task and are reused.
 * <ul>
 *   <li>{@link #findDuplicates}: over a list of text ranges, how many repeat an earlier one and their total length
 *       (datatrove's {@code find_duplicates});</li>
 *   <li>{@link #topNGramChars}: length of the most frequent word n-gram joined with spaces, times its count
 *       ({@code find_top_duplicate}, ties go to the n-gram seen first, like {@code Counter.most_common});</li>
 *   <li>{@link #duplicateNGramChars}: characters covered by repeated word n-grams joined without separator, scanning
 *       left to right and skipping over a repeat ({@code find_all_duplicate}).</li>
 * </ul>
 * Lengths are code points (Python {@code len}). Not thread-safe: one instance per task.
 */
public final class Repetition {
    private static final long B = 0x9E3779B97F4A7C15L | 1; // odd multiplier of the polynomial hashes (mod 2^64)

    private int[] slots = new int[1024];   // entry + 1, 0 = empty
    private long[] slotHash = new long[1024];
    private int mask = 1023;

    private long dupElements;
    private long dupChars;

    // per-document word data
    private char[] text;
    private Words words;
    private long[] wordPrefix = new long[256];   // polynomial over word hashes
    private long[] wordPow = new long[256];
    private int[] cpPrefix = new int[256];       // code points of words[0..k)
    private char[] cat = new char[1024];         // words concatenated without separator
    private int[] catStart = new int[256];       // where word k starts in cat; catStart[count] = total
    private long[] catPrefix = new long[1024];
    private long[] catPow = new long[1024];
    private int[] counts = new int[256];
    private int preparedFor = -1;

    /** Duplicate elements after find_duplicates. */
    public long dupElements() {
        return dupElements;
    }

    /** Their characters (code points). */
    public long dupChars() {
        return dupChars;
    }

    /** find_duplicates over the ranges [starts[i], ends[i]) of text; results in dupElements() and dupChars(). */
    public void findDuplicates(CharSequence s, int[] starts, int[] ends, int n, boolean astral) {
        findDuplicates(s.toString().toCharArray(), starts, ends, n, astral);
    }

    public void findDuplicates(char[] s, int[] starts, int[] ends, int n, boolean astral) {
        clear(n);
        dupElements = 0;
        dupChars = 0;
        for (int i = 0; i < n; i++) {
            int a = starts[i];
            int b = ends[i];
            long h = 0xCBF29CE484222325L;
            for (int k = a; k < b; k++) {
                h = (h ^ s[k]) * 0x100000001B3L;
            }
            h = mix(h ^ (b - a));
            int slot = (int) h & mask;
            while (true) {
                int e = slots[slot] - 1;
                if (e < 0) {
                    slots[slot] = i + 1;
                    slotHash[slot] = h;
                    break;
                }
                if (slotHash[slot] == h && Arrays.equals(s, starts[e], ends[e], s, a, b)) {
                    dupElements++;
                    dupChars += astral ? Chars.codePoints(s, a, b) : b - a;
                    break;
                }
                slot = (slot + 1) & mask;
            }
        }
    }

    /** Prepares the word hashes of one document; call before the n-gram measures. */
    public void prepareWords(CharSequence s, Words w) {
        prepareWords(s.toString().toCharArray(), w);
    }

    public void prepareWords(char[] s, Words w) {
        text = s;
        words = w;
        int n = w.count();
        if (wordPrefix.length < n + 1) {
            int cap = Math.max(n + 1, 2 * wordPrefix.length);
            wordPrefix = new long[cap];
            wordPow = new long[cap];
            cpPrefix = new int[cap];
            catStart = new int[cap];
            counts = new int[cap];
        }
        int total = 0;
        for (int k = 0; k < n; k++) {
            total += w.end(k) - w.start(k);
        }
        if (cat.length < total + 1) {
            int cap = Math.max(total + 1, 2 * cat.length);
            cat = new char[cap];
            catPrefix = new long[cap];
            catPow = new long[cap];
        }
        wordPrefix[0] = 0;
        wordPow[0] = 1;
        cpPrefix[0] = 0;
        catPrefix[0] = 0;
        catPow[0] = 1;
        int c = 0;
        for (int k = 0; k < n; k++) {
            catStart[k] = c;
            long h = 0xCBF29CE484222325L;
            for (int j = w.start(k), e = w.end(k); j < e; j++) {
                char ch = s[j];
                h = (h ^ ch) * 0x100000001B3L;
                cat[c] = ch;
                catPrefix[c + 1] = catPrefix[c] * B + ch;
                catPow[c + 1] = catPow[c] * B;
                c++;
            }
            wordPrefix[k + 1] = wordPrefix[k] * B + mix(h);
            wordPow[k + 1] = wordPow[k] * B;
            cpPrefix[k + 1] = cpPrefix[k] + w.codePoints(k);
        }
        catStart[n] = c;
        preparedFor = n;
    }

    /** find_top_duplicate over the word n-grams joined with " ": count × length of the most frequent; 0 if no n-gram. */
    public long topNGramChars(int n) {
        int grams = preparedFor - n + 1;
        if (grams <= 0) {
            return 0;
        }
        clear(grams);
        Arrays.fill(counts, 0, grams, 0);
        for (int i = 0; i < grams; i++) {
            long h = mix(wordPrefix[i + n] - wordPrefix[i] * wordPow[n]);
            int slot = (int) h & mask;
            while (true) {
                int e = slots[slot] - 1;
                if (e < 0) {
                    slots[slot] = i + 1;
                    slotHash[slot] = h;
                    counts[i] = 1;
                    break;
                }
                if (slotHash[slot] == h && sameWords(e, i, n)) {
                    counts[e]++;
                    break;
                }
                slot = (slot + 1) & mask;
            }
        }
        int best = 0;
        for (int i = 1; i < grams; i++) {
            if (counts[i] > counts[best]) {
                best = i;
            }
        }
        long len = cpPrefix[best + n] - cpPrefix[best] + (n - 1);
        return len * counts[best];
    }

    private boolean sameWords(int a, int b, int n) {
        for (int k = 0; k < n; k++) {
            if (!Arrays.equals(text, words.start(a + k), words.end(a + k), text, words.start(b + k), words.end(b + k))) {
                return false;
            }
        }
        return true;
    }

    /** find_all_duplicate: characters in n-grams (joined without separator) that repeat an earlier, non-skipped one. */
    public long duplicateNGramChars(int n) {
        int count = preparedFor;
        if (count - n + 1 <= 0) {
            return 0;
        }
        clear(count - n + 1);
        long repeated = 0;
        int idx = 0;
        while (idx < count - n + 1) {
            int a = catStart[idx];
            int b = catStart[idx + n];
            long h = mix(catPrefix[b] - catPrefix[a] * catPow[b - a] + (b - a));
            int slot = (int) h & mask;
            boolean found = false;
            while (true) {
                int e = slots[slot] - 1;
                if (e < 0) {
                    slots[slot] = idx + 1;
                    slotHash[slot] = h;
                    break;
                }
                if (slotHash[slot] == h) {
                    int ea = catStart[e];
                    int eb = catStart[e + n];
                    if (eb - ea == b - a && Arrays.equals(cat, ea, eb, cat, a, b)) {
                        found = true;
                        break;
                    }
                }
                slot = (slot + 1) & mask;
            }
            if (found) {
                repeated += cpPrefix[idx + n] - cpPrefix[idx];
                idx += n;
            } else {
                idx++;
            }
        }
        return repeated;
    }

    private void clear(int expected) {
        int cap = Integer.highestOneBit(Math.max(16, expected) * 2 - 1) << 1;
        if (cap > slots.length) {
            slots = new int[cap];
            slotHash = new long[cap];
        } else {
            Arrays.fill(slots, 0, cap, 0);
        }
        mask = cap - 1;
    }

    static long mix(long z) {
        z = (z ^ (z >>> 33)) * 0xFF51AFD7ED558CCDL;
        z = (z ^ (z >>> 33)) * 0xC4CEB9FE1A85EC53L;
        return z ^ (z >>> 33);
    }
}
