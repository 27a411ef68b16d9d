package dev.gosling.trainer.data;

import dev.gosling.trainer.GoslingException;

import java.util.Arrays;
import java.util.BitSet;

/**
 * A byte trie of all tokens as a double array (base/check), one {@code long} per node, so one step of the
 * greedy walk is one array load: the child of node s on byte b is cell {@code base(s) + b}, valid when
 * {@code check(cell) == s}. Nodes are placed breadth-first, so the short, frequent prefixes sit together
 * near the front of the array and stay in cache.
 */
final class DoubleArrayTrie {
    // Cell layout (64 bits): check = the parent cell (24 bits) | base (24 bits) | token id ending here (16 bits, 0 = none).
    private static final int BASE_SHIFT = 16;
    private static final int CHECK_SHIFT = 40;
    private static final int FIELD_MASK = 0xFFFFFF;
    private static final int ID_MASK = 0xFFFF;
    /** The check of a free cell: no node has this index, so no walk ever enters a free cell. */
    private static final int NO_PARENT = FIELD_MASK;
    private static final int ROOT = 0;

    private final long[] cells;
    private final int rootBase;
    private final int maxDepth;

    private DoubleArrayTrie(long[] cells, int rootBase, int maxDepth) {
        this.cells = cells;
        this.rootBase = rootBase;
        this.maxDepth = maxDepth;
    }

    int cellCount() {
        return cells.length;
    }

    /**
     * Greedy longest match (maximal munch) from {@code pos}: emits one id per token into {@code out} while
     * {@code pos < stop}; a walk may read bytes up to {@code walkEnd} (so it needs {@code walkEnd - pos >=} the longest
     * token, or {@code walkEnd} = the end of the text). Every single byte is a token, so each step progresses.
     * Returns the position after the last token.
     */
    int encode(byte[] text, int pos, int stop, int walkEnd, IntList out) {
        final long[] cells = this.cells;
        final int rootBase = this.rootBase;
        int[] ids = out.array();
        int n = out.size();
        while (pos < stop) {
            // The first byte always matches (ids 1..256 are the single bytes), so take it without a check.
            long cell = cells[rootBase + (text[pos] & 0xFF)];
            int node = rootBase + (text[pos] & 0xFF);
            int best = (int) cell & ID_MASK;
            int i = pos + 1;
            int bestEnd = i;
            while (i < walkEnd) {
                int child = (int) (cell >>> BASE_SHIFT & FIELD_MASK) + (text[i] & 0xFF);
                long next = cells[child];
                if ((int) (next >>> CHECK_SHIFT) != node) {
                    break;
                }
                i++;
                int id = (int) next & ID_MASK;
                if (id != 0) {
                    best = id;
                    bestEnd = i;
                }
                node = child;
                cell = next;
            }
            if (n == ids.length) {
                out.setSize(n);
                out.ensureCapacity(n + 1);
                ids = out.array();
            }
            ids[n++] = best;
            pos = bestEnd;
        }
        out.setSize(n);
        return pos;
    }

    int maxDepth() {
        return maxDepth;
    }

    /**
     * Builds the trie of {@code tokens[1..]} (index = id). Every single byte must be a token, and no two tokens may
     * be equal; {@code sourceName} names the vocab in the error otherwise.
     */
    static DoubleArrayTrie build(byte[][] tokens, String sourceName) {
        int count = tokens.length - 1;
        Integer[] sorted = new Integer[count];
        for (int id = 1; id <= count; id++) {
            sorted[id - 1] = id;
        }
        Arrays.sort(sorted, (a, b) -> Arrays.compareUnsigned(tokens[a], tokens[b]));
        int maxDepth = 0;
        for (int k = 0; k < count; k++) {
            maxDepth = Math.max(maxDepth, tokens[sorted[k]].length);
            if (k > 0 && Arrays.equals(tokens[sorted[k - 1]], tokens[sorted[k]])) {
                int first = Math.min(sorted[k - 1], sorted[k]);
                int second = Math.max(sorted[k - 1], sorted[k]);
                // Ids equal line numbers (they are checked contiguous from line 1).
                throw new GoslingException(sourceName + ":" + second + ": token " + second
                        + " has the same bytes as token " + first + " (a vocab must not repeat a token); " + VocabParser.FIX);
            }
        }
        boolean[] single = new boolean[256];
        for (int id = 1; id <= count; id++) {
            if (tokens[id].length == 1) {
                single[tokens[id][0] & 0xFF] = true;
            }
        }
        for (int b = 0; b < 256; b++) {
            if (!single[b]) {
                throw new GoslingException(String.format("%s: no token for the single byte 0x%02X; greedy"
                        + " encoding needs all 256 single bytes in the vocab; %s", sourceName, b, VocabParser.FIX));
            }
        }
        return new Builder(tokens, sorted).build(maxDepth);
    }

    /** Breadth-first placement: each node's children go to the first free base where all their cells are free. */
    private static final class Builder {
        private final byte[][] tokens;
        private final Integer[] sorted;
        private long[] cells = new long[1 << 16];
        private final BitSet used = new BitSet();
        private int maxBase;
        private int maxCell;

        Builder(byte[][] tokens, Integer[] sorted) {
            this.tokens = tokens;
            this.sorted = sorted;
        }

        DoubleArrayTrie build(int maxDepth) {
            Arrays.fill(cells, (long) NO_PARENT << CHECK_SHIFT);
            used.set(ROOT);
            // The queue holds, per node: its cell, its depth and its range of sorted tokens (all share the prefix).
            IntList queue = new IntList(1 << 16);
            IntList leaves = new IntList(1 << 16);
            queue.add(ROOT);
            queue.add(0);
            queue.add(0);
            queue.add(sorted.length);
            int[] labels = new int[256];
            int[] groupStart = new int[257];
            int rootBase = -1;
            int firstFree = 1;
            for (int head = 0; head < queue.size(); head += 4) {
                int node = queue.get(head);
                int depth = queue.get(head + 1);
                int lo = queue.get(head + 2);
                int hi = queue.get(head + 3);
                int k = lo;
                if (k < hi && tokens[sorted[k]].length == depth) {
                    k++; // the token that ends at this node (sorted first); its id is already in the node's cell
                }
                int labelCount = 0;
                while (k < hi) {
                    int label = tokens[sorted[k]][depth] & 0xFF;
                    labels[labelCount] = label;
                    groupStart[labelCount++] = k;
                    while (k < hi && (tokens[sorted[k]][depth] & 0xFF) == label) {
                        k++;
                    }
                }
                groupStart[labelCount] = hi;
                if (labelCount == 0) {
                    leaves.add(node);
                    continue;
                }
                int base = findBase(labels, labelCount, firstFree);
                if (node == ROOT) {
                    rootBase = base;
                }
                setBase(node, base);
                for (int g = 0; g < labelCount; g++) {
                    int child = base + labels[g];
                    used.set(child);
                    maxCell = Math.max(maxCell, child);
                    int firstId = sorted[groupStart[g]];
                    int id = tokens[firstId].length == depth + 1 ? firstId : 0;
                    cells[child] = ((long) node << CHECK_SHIFT) | id;
                    queue.add(child);
                    queue.add(depth + 1);
                    queue.add(groupStart[g]);
                    queue.add(groupStart[g + 1]);
                }
                firstFree = used.nextClearBit(firstFree);
            }
            // Leaves point at a tail of 256 free cells, so a walk past a leaf finds a foreign check and stops; the
            // same tail keeps every base + 255 inside the array.
            int leafBase = Math.max(maxCell + 1, maxBase + 256);
            long[] packed = Arrays.copyOf(cells, leafBase + 256);
            Arrays.fill(packed, Math.min(cells.length, leafBase + 256), packed.length, (long) NO_PARENT << CHECK_SHIFT);
            for (int i = 0; i < leaves.size(); i++) {
                packed[leaves.get(i)] |= (long) leafBase << BASE_SHIFT;
            }
            if (packed.length > NO_PARENT) {
                throw new IllegalStateException("vocab trie needs " + packed.length + " cells, more than 2^24");
            }
            return new DoubleArrayTrie(packed, rootBase, maxDepth);
        }

        private int findBase(int[] labels, int labelCount, int firstFree) {
            int first = labels[0];
            for (int cell = used.nextClearBit(Math.max(firstFree, first + 1)); ; cell = used.nextClearBit(cell + 1)) {
                int base = cell - first;
                boolean fits = true;
                for (int g = 1; g < labelCount; g++) {
                    if (used.get(base + labels[g])) {
                        fits = false;
                        break;
                    }
                }
                if (fits) {
                    return base;
                }
            }
        }

        private void setBase(int node, int base) {
            maxBase = Math.max(maxBase, base);
            ensureCells(base + 256);
            cells[node] |= (long) base << BASE_SHIFT;
        }

        private void ensureCells(int size) {
            if (size > cells.length) {
                int old = cells.length;
                cells = Arrays.copyOf(cells, Math.max(size, 2 * old));
                Arrays.fill(cells, old, cells.length, (long) NO_PARENT << CHECK_SHIFT);
            }
        }
    }
}
