package dev.gosling.trainer.dist;

/**
 * A rank's contiguous part [start, end) of a flat buffer of n elements split over W ranks: every rank but the last
 * gets n / W elements, the last also gets the remainder (fewer than W elements). Contiguous shards keep the sharded
 * optimizer a plain AdamW over a view, and let NCCL's in-place reduce-scatter and all-gather work on equal pieces.
 */
public record Shard(long start, long end) {

    public static Shard of(long n, int worldSize, int rank) {
        if (worldSize < 1 || rank < 0 || rank >= worldSize || n < 0) {
            throw new IllegalArgumentException("shard " + rank + " of " + worldSize + " over " + n + " elements");
        }
        long piece = n / worldSize;
        long start = rank * piece;
        return new Shard(start, rank == worldSize - 1 ? n : start + piece);
    }

    public long length() {
        return end - start;
    }
}
