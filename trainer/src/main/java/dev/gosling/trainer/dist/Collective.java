package dev.gosling.trainer.dist;

import dev.gosling.trainer.backend.Backend;
import dev.gosling.trainer.backend.Tensor;

/**
 * How the ranks of a data-parallel run combine their gradients: the trainer is handed one and never knows whether
 * the other ranks are threads of this process, Spark tasks or GPUs linked by NCCL. Every rank calls the same methods
 * in the same order with tensors of the same size; a call returns when this rank's result is in place.
 */
public interface Collective extends AutoCloseable {

    /** This process's rank, 0 ≤ rank &lt; {@link #worldSize()}. */
    int rank();

    int worldSize();

    /** t ← Σ over all ranks of t, in place (F32 tensors of equal size on every rank). */
    void allReduceSum(Backend backend, Tensor t);

    /** A short name for logs, e.g. "single", "nccl(2 ranks)". */
    String name();

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
        public String name() {
            return "single";
        }

        @Override
        public void close() {
        }
    }
}
