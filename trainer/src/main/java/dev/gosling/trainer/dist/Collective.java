package dev.gosling.trainer.dist;

import dev.gosling.trainer.backend.Backend;
import dev.gosling.trainer.backend.Tensor;

/**
 * How the ranks of a data-parallel run combine their gradients: the trainer is handed one and never knows whether
 * the other ranks are threads of this process ({@link InProcessCollective}), Spark barrier tasks (jobs/) or GPUs linked
 * by NCCL ({@link NcclCollective}). Every rank calls the same methods in the same order with tensors of the same size;
 * a call returns when this rank's result is in place. A rank that does not arrive within the implementation's bounded
 * wait makes the call fail with an error naming the rank, never a silent hang.
 * <p>
 * Sums over ranks are taken in rank order (((t₀ + t₁) + t₂) …, in float) by the host implementations, so the in-process
 * and the Spark collective give the same bits; NCCL uses its own order.
 */
public interface Collective extends AutoCloseable {

    /** This process's rank, 0 ≤ rank &lt; {@link #worldSize()}. */
    int rank();

    int worldSize();

    /** t ← Σ over all ranks of t, in place (F32 tensors of equal size on every rank). */
    void allReduceSum(Backend backend, Tensor t);

    /**
     * This rank's {@link #shard} of t ← Σ over all ranks of that part of t; the rest of t is left undefined (ZeRO-2's
     * gradient reduction: each rank gets only the summed gradients its optimizer shard needs).
     */
    void reduceScatterSum(Backend backend, Tensor t);

    /** Shard r of t ← shard r of rank r's t, for every r (ZeRO's parameter all-gather after a sharded step). */
    void allGather(Backend backend, Tensor t);

    /** Every rank's {@code values} (the same length on every rank), concatenated in rank order. */
    double[] allGather(double[] values);

    /** A short name for logs, e.g. "single", "nccl(2 ranks)". */
    String name();

    /**
     * Makes this rank's pending and later calls, and where the implementation can those of the other ranks, fail with
     * {@code reason} instead of waiting (a rank's trainer failed). The default does nothing.
     */
    default void abort(String reason) {
    }

    /** This rank's part of a flat buffer of n elements ({@link Shard#of}). */
    default Shard shard(long n) {
        return Shard.of(n, worldSize(), rank());
    }

    @Override
    void close();

    /** The collective of a run alone: world size 1, every reduction a no-op. */
    static Collective single() {
        return Single.INSTANCE;
    }

    /** World size 1. */
    final class Single implements Collective {
        private static final Single INSTANCE = new Single();

        private Single() {
        }

        @Override
        public int rank() {
            return 0;
        }

        @Override
        public int worldSize() {
            return 1;
        }

        @Override
        public void allReduceSum(Backend backend, Tensor t) {
        }

        @Override
        public void reduceScatterSum(Backend backend, Tensor t) {
        }

        @Override
        public void allGather(Backend backend, Tensor t) {
        }

        @Override
        public double[] allGather(double[] values) {
            return values.clone();
        }

        @Override
        public String name() {
            return "single";
        }

        @Override
        public void close() {
        }
    }
}
