package dev.gosling.trainer.train;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.data.BinIdxReader;
import dev.gosling.trainer.data.MagicPrimeSampler;

/**
 * The micro-batches of one rank (rwkv7-reference.md §4.2): at local step {@code s} of miniepoch {@code e}, slot
 * {@code j} is local sample {@code idx = s·micro_bsz + j}, whose ctx_len+1 tokens start at the sampler's offset for
 * (e, idx, world size, rank) in the flat .bin stream; x is the first ctx_len of them, y the last ctx_len. Allocation
 * free after construction; not thread-safe (one per training thread).
 */
public final class BatchSource {
    private final BinIdxReader data;
    private final MagicPrimeSampler sampler;
    private final int ctxLen;
    private final int microBsz;
    private final int rank;
    private final int worldSize;
    private final int vocabSize;
    private final int[] window;

    public BatchSource(BinIdxReader data, MagicPrimeSampler sampler, int ctxLen, int microBsz, int rank, int worldSize, int vocabSize) {
        if (worldSize < 1 || rank < 0 || rank >= worldSize) {
            throw new IllegalArgumentException("rank " + rank + " of world size " + worldSize);
        }
        this.data = data;
        this.sampler = sampler;
        this.ctxLen = ctxLen;
        this.microBsz = microBsz;
        this.rank = rank;
        this.worldSize = worldSize;
        this.vocabSize = vocabSize;
        this.window = new int[ctxLen + 1];
    }

    public int ctxLen() {
        return ctxLen;
    }

    public int microBsz() {
        return microBsz;
    }

    /** Tokens of one micro-batch: micro_bsz · ctx_len. */
    public int batchTokens() {
        return microBsz * ctxLen;
    }

    /** The token offset of slot {@code slot} at local step {@code step} of miniepoch {@code epoch}. */
    public long offset(long epoch, long step, int slot) {
        return sampler.offset(epoch, step * microBsz + slot, worldSize, rank);
    }

    /**
     * Fills {@code inputs} and {@code targets} (each micro_bsz·ctx_len, row-major) with the micro-batch at local step
     * {@code step} of miniepoch {@code epoch}. A token outside the vocabulary is a one-line error naming its offset.
     */
    public void fill(long epoch, long step, int[] inputs, int[] targets) {
        for (int j = 0; j < microBsz; j++) {
            long offset = offset(epoch, step, j);
            data.readTokens(offset, window, 0, ctxLen + 1);
            for (int t = 0; t <= ctxLen; t++) {
                if (window[t] >= vocabSize) {
                    throw new GoslingException(data.binPath() + ": token " + window[t] + " at token offset " + (offset + t)
                            + " is outside the vocabulary (--vocab_size " + vocabSize + "); pass the vocab_size the data was tokenized with");
                }
            }
            System.arraycopy(window, 0, inputs, j * ctxLen, ctxLen);
            System.arraycopy(window, 1, targets, j * ctxLen, ctxLen);
        }
    }
}
