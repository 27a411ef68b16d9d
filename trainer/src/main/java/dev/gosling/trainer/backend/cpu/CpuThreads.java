package dev.gosling.trainer.backend.cpu;

import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * A fixed pool that splits an index range into one contiguous chunk per thread; the caller runs chunk 0. Every op
 * computes each output element inside exactly one chunk, in a fixed order, so results do not depend on the thread
 * count. Not for concurrent use by several callers (the backend is single-threaded from the model's side).
 */
final class CpuThreads implements AutoCloseable {

    /** Work on indices [lo, hi); {@code slot} in [0, threads) names per-thread scratch. */
    interface RangeBody {
        void run(int slot, int lo, int hi);
    }

    final int threads;
    private final ExecutorService pool;
    private final Future<?>[] pending;
    /** Per-slot scratch; grows on first use to the largest size asked, then is reused (no per-step allocation). */
    private final double[][] scratch;

    CpuThreads(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        this.threads = threads;
        this.pending = new Future<?>[threads];
        this.scratch = new double[threads][];
        this.pool = threads == 1 ? null : Executors.newFixedThreadPool(threads - 1, r -> {
            Thread t = new Thread(r, "gosling-cpu-backend");
            t.setDaemon(true);
            return t;
        });
    }

    /**
     * Runs {@code body} over [0, n) split into at most {@code threads} chunks of at least {@code minChunk} indices
     * (small ranges stay on the caller: a hand-off costs microseconds).
     */
    void forRange(int n, int minChunk, RangeBody body) {
        int chunks = (int) Math.min(threads, Math.max(1L, n / Math.max(1, minChunk)));
        if (chunks <= 1) {
            body.run(0, 0, n);
            return;
        }
        for (int s = 1; s < chunks; s++) {
            final int slot = s;
            final int lo = bound(n, chunks, s);
            final int hi = bound(n, chunks, s + 1);
            pending[s] = pool.submit(() -> body.run(slot, lo, hi));
        }
        Throwable failure = null;
        try {
            body.run(0, 0, bound(n, chunks, 1));
        } catch (RuntimeException | Error e) {
            failure = e;
        }
        for (int s = 1; s < chunks; s++) {
            try {
                pending[s].get();
            } catch (ExecutionException e) {
                if (failure == null) {
                    failure = e.getCause();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                if (failure == null) {
                    failure = e;
                }
            }
            pending[s] = null;
        }
        if (failure instanceof RuntimeException re) {
            throw re;
        } else if (failure instanceof Error err) {
            throw err;
        } else if (failure != null) {
            throw new IllegalStateException("CPU backend worker failed", failure);
        }
    }

    /**
     * Scratch of at least {@code length} doubles for the chunk running in {@code slot}; contents are left over from
     * earlier use, so callers clear what they read. Safe because a slot runs one chunk at a time, and the pool's
     * submit/get order makes a slot's array visible to whichever thread runs that slot next.
     */
    double[] scratch(int slot, int length) {
        double[] s = scratch[slot];
        if (s == null || s.length < length) {
            s = new double[length];
            scratch[slot] = s;
        }
        return s;
    }

    private static int bound(int n, int chunks, int s) {
        return (int) ((long) n * s / chunks);
    }

    @Override
    public void close() {
        if (pool != null) {
            pool.shutdownNow();
        }
    }
}
