package dev.gosling.trainer.data;

import dev.gosling.trainer.GoslingException;

import java.util.Arrays;
import java.util.BitSet;

/**
 * A byte trie of all tokens as a double array, one {@code int} per node, so one step of the greedy walk is one load
 * from a ~0.5 MB array that stays in L2 (and its hot top in L1): the child of a node on byte b is cell
 * {@code base + b}, and it is that node's child when the cell's label is b. A label check is enough because no two
 * nodes share a base (a classic double array stores the parent instead, which needs twice the bits).
 * Nodes are placed breadth-first, so the short, frequent prefixes sit together at the front.
 */
final class DoubleArrayTrie {
    // Cell layout (32 bits): base (23 bits) | label (9 bits: the byte, or FREE).
    private static final int LABEL_BITS = 9;
    private static final int LABEL_MASK = (1 << LABEL_BITS) - 1;
    private static final int BASE_SHIFT = LABEL_BITS;
    private static final int MAX_CELLS = 1 << (32 - BASE_SHIFT);
    /** The label of a free cell: not a byte, so no walk ever enters a free cell. */
    private static final int FREE = 0x100;

    private final int[] cells;
    /**
     * Per node, the longest token that is a prefix of (or equal to) the node's bytes, as {@code length << 16 | id}.
     * The walk just goes as deep as the text allows and reads this once where it stops, so it needs no branch per
     * byte to remember the last token it passed.
     */
    private final int[] longestToken;
    private final int rootBase;

    private DoubleArrayTrie(int[] cells, int[] longestToken, int rootBase) {
        this.cells = cells;
        this.longestToken = longestToken;
        this.rootBase = rootBase;
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
        final int[] cells = this.cells;
        final int[] longestToken = this.longestToken;
        final int rootBase = this.rootBase;
        int[] ids = out.array();
        int n = out.size();
        while (pos < stop) {
            // The first byte always matches (ids 1..256 are the single bytes), so take it without a check.
            int node = rootBase + (text[pos] & 0xFF);
            int cell = cells[node];
            for (int i = pos + 1; i < walkEnd; i++) {
                int b = text[i] & 0xFF;
                int child = (cell >>> BASE_SHIFT) + b;
                int next = cells[child];
                if ((next & LABEL_MASK) != b) {
                    break;
                }
                node = child;
                cell = next;
            }
            int token = longestToken[node];
            if (n == ids.length) {
                out.setSize(n);
                out.ensureCapacity(n + 1);
                ids = out.array();
            }
            ids[n++] = token & 0xFFFF;
            pos += token >>> 16;
        }
        out.setSize(n);
        return pos;
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
        for (int k = 1; k < count; k++) {
            if (Arrays.equals(tokens[sorted[k - 1]], tokens[sorted[k]])) {
                int first = Math.min(sorted[k - 1], sorted[k]);
                int second = Math.max(sorted[k - 1], sorted[k]);
                // Ids equal line numbers (they are checked contiguous from line 1).
                throw new GoslingException(sourceName + ":" + second + ": token " + second
                        + " has the same bytes as token " + first + " (a vocab must not repeat a token); "
                        + VocabParser.FIX);
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
        return new Builder(tokens, sorted).build(sourceName);
    }

    /** Breadth-first placement: each node's children go to the first unused base where all their cells are free. */
    private static final class Builder {
        private static final int SKIP_AFTER_TRIES = 64;
        private final byte[][] tokens;
        private final Integer[] sorted;
        private int[] cells = new int[1 << 16];
        private int[] longestToken = new int[1 << 16];
        private final BitSet usedCells = new BitSet();
        private final BitSet usedBases = new BitSet();
        private int maxCell;
        private int firstFree = 1;

        Builder(byte[][] tokens, Integer[] sorted) {
            this.tokens = tokens;
            this.sorted = sorted;
        }

        DoubleArrayTrie build(String sourceName) {
            Arrays.fill(cells, FREE);
            final int root = 0;
            usedCells.set(root);
            // The queue holds, per node: its cell, its depth and its range of sorted tokens (all share the prefix).
            IntList queue = new IntList(1 << 16);
            IntList leaves = new IntList(1 << 16);
            queue.add(root);
            queue.add(0);
            queue.add(0);
            queue.add(sorted.length);
            int[] labels = new int[256];
            int[] groupStart = new int[257];
            int rootBase = -1;
            for (int head = 0; head < queue.size(); head += 4) {
                int node = queue.get(head);
                int depth = queue.get(head + 1);
                int lo = queue.get(head + 2);
                int hi = queue.get(head + 3);
                int k = lo;
                if (k < hi && tokens[sorted[k]].length == depth) {
                    k++; // the token that ends at this node (sorted first); the node's cell already says so
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
                int base = findBase(labels, labelCount);
                if (node == root) {
                    rootBase = base;
                }
                usedBases.set(base);
                ensureCells(base + 256);
                cells[node] |= base << BASE_SHIFT;
                for (int g = 0; g < labelCount; g++) {
                    int child = base + labels[g];
                    usedCells.set(child);
                    maxCell = Math.max(maxCell, child);
                    int firstId = sorted[groupStart[g]];
                    boolean endsToken = tokens[firstId].length == depth + 1;
                    cells[child] = labels[g];
                    // Breadth-first, so the parent's entry is final; the root has none, but every depth-1 node
                    // ends a token (all single bytes are tokens).
                    longestToken[child] = endsToken ? (depth + 1) << 16 | firstId : longestToken[node];
                    queue.add(child);
                    queue.add(depth + 1);
                    queue.add(groupStart[g]);
                    queue.add(groupStart[g + 1]);
                }
                firstFree = usedCells.nextClearBit(firstFree);
            }
            // Leaves share a base that no inner node has, over a tail of 256 free cells: a walk past a leaf finds
            // a FREE label and stops. The tail also keeps every base + 255 inside the array.
            int leafBase = Math.max(maxCell + 1, usedBases.length() + 255);
            int length = leafBase + 256;
            if (length > MAX_CELLS) {
                throw new GoslingException(sourceName + ": the vocab needs a trie of " + length + " cells, more than"
                        + " the " + MAX_CELLS + " the tokenizer supports; use a smaller vocab");
            }
            ensureCells(length);
            int[] packed = Arrays.copyOf(cells, length);
            for (int i = 0; i < leaves.size(); i++) {
                packed[leaves.get(i)] |= leafBase << BASE_SHIFT;
            }
            return new DoubleArrayTrie(packed, Arrays.copyOf(longestToken, length), rootBase);
        }

        /**
         * The first base at or after firstFree whose child cells are all free and that no node has yet. When the
         * free cells near firstFree keep failing (their bases are taken), firstFree moves past them, which leaves a
         * few holes but keeps the build linear.
         */
        private int findBase(int[] labels, int labelCount) {
            int first = labels[0];
            int tries = 0;
            for (int cell = usedCells.nextClearBit(Math.max(firstFree, first + 1)); ;
                 cell = usedCells.nextClearBit(cell + 1)) {
                if (++tries == SKIP_AFTER_TRIES) {
                    firstFree = cell;
                }
                int base = cell - first;
                if (usedBases.get(base)) {
                    continue;
                }
                boolean fits = true;
                for (int g = 1; g < labelCount; g++) {
                    if (usedCells.get(base + labels[g])) {
                        fits = false;
                        break;
                    }
                }
                if (fits) {
                    return base;
                }
            }
        }

        private void ensureCells(int size) {
            if (size > cells.length) {
                int old = cells.length;
                cells = Arrays.copyOf(cells, Math.max(size, 2 * old));
                Arrays.fill(cells, old, cells.length, FREE);
                longestToken = Arrays.copyOf(longestToken, cells.length);
            }
        }
    }
}
