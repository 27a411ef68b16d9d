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
 * <p>
 * The gradient reductions can also be <em>started</em> ({@link #allReduceSumAsync}, {@link #reduceScatterSumAsync}),
 * so that they run while the backward pass goes on, and waited for later ({@link #awaitPending}). Until then the
 * started operation may still read and write its tensors: the caller must not touch them, except through backend work
 * it has ordered after the operation with {@link #awaitOnDevice}, and must keep them allocated. Started operations
 * count as calls (every rank starts the same ones in the same order, among its other calls), and a synchronous call
 * runs after the operations started before it. The host collectives run the started operations at once, as the
 * synchronous calls ({@link #overlapsCompute} false: the defaults below); NCCL runs them on a stream of its own.
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

    /**
     * Whether the started operations run concurrently with the backend's later work (NCCL: on a stream of their own).
     * When false they are the synchronous calls, and splitting one reduction into several gains nothing: a caller
     * should then make one call (a host collective's call is at least one meeting of the ranks).
     */
    default boolean overlapsCompute() {
        return false;
    }

    /**
     * Starts {@link #allReduceSum} of t and returns without waiting for it: t holds the sum once {@link #awaitPending}
     * (or {@link #awaitOnDevice} for backend work) has ordered the caller after it. The default runs it at once.
     */
    default void allReduceSumAsync(Backend backend, Tensor t) {
        allReduceSum(backend, t);
    }

    /**
     * Starts: {@code piece} ← this rank's {@link #shard} of Σ over all ranks of t (ZeRO-2's reduction of a gradient
     * bucket straight into the rank's piece), returning without waiting for it; t is left undefined. {@code piece} has
     * the shard's length, or is null when this rank's shard of t is empty. The default runs {@link #reduceScatterSum}
     * at once and copies the shard into {@code piece}.
     */
    default void reduceScatterSumAsync(Backend backend, Tensor t, Tensor piece) {
        reduceScatterSum(backend, t);
        Shard s = shard(t.numel());
        if (s.length() > 0) {
            try (Tensor mine = backend.view(t, s.start(), (int) s.length())) {
                backend.copy(mine, piece);
            }
        }
    }

    /**
     * Orders the backend's work queued from now on after every started operation that reads or writes memory of t,
     * without the host waiting (CUDA: the backend's stream waits for an event). Call it before the backend overwrites
     * a tensor a started operation may still read (a reused gradient slot), or reads one it writes. The default does
     * nothing: started operations of the host collectives are done when the start returns.
     */
    default void awaitOnDevice(Backend backend, Tensor t) {
    }

    /**
     * Waits until every started operation is done, bounded and failing as the synchronous calls do (naming this rank
     * and the operation), and orders the backend's later work after them. Call it before anything reads the results
     * (the optimizer's step). The default does nothing.
     */
    default void awaitPending(Backend backend) {
    }

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
