package dev.gosling.trainer.dist;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.backend.Backend;
import dev.gosling.trainer.backend.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * N ranks that are threads of one JVM ({@code gosling train --devices N} on the CPU, and tests): each rank copies its
 * tensor to a host array, the ranks meet at a barrier, each sums its own {@link Shard} over all ranks' arrays (in rank
 * order), they meet again and copy the result back. Works with any backend, since it goes through the host.
 * <p>
 * Every barrier waits at most the group's timeout; a rank that does not arrive makes the call fail on every rank
 * with the missing ranks named, and a rank whose trainer failed {@link #abort}s the group so that the others stop
 * waiting at once. Ranks must call the same operations in the same order; a mismatch is reported as such.
 */
public final class InProcessCollective implements Collective {

    /** The state the ranks of one group share. */
    public static final class Group {
        private final int size;
        private final long timeoutNanos;
        private final Object lock = new Object();
        private final boolean[] arrived;
        private int arrivedCount;
        private long generation;
        private String generationOp;
        private String abortReason;
        /** Each rank's published host array of the current operation. */
        private final float[][] slots;
        private final double[][] values;
        /** The sum of the current all-reduce (each rank writes its own shard of it). */
        private float[] sum = new float[0];

        /** A group of {@code size} ranks whose barriers wait at most {@code timeoutSeconds}. */
        public Group(int size, long timeoutSeconds) {
            if (size < 1) {
                throw new IllegalArgumentException("group size " + size);
            }
            this.size = size;
            this.timeoutNanos = TimeUnit.SECONDS.toNanos(timeoutSeconds);
            this.arrived = new boolean[size];
            this.slots = new float[size][];
            this.values = new double[size][];
        }

        /** Rank {@code rank}'s collective (one per training thread). */
        public InProcessCollective rank(int rank) {
            if (rank < 0 || rank >= size) {
                throw new IllegalArgumentException("rank " + rank + " of " + size);
            }
            return new InProcessCollective(this, rank);
        }

        /** Fails every waiting and later call of every rank with {@code reason} (first reason wins). */
        public void abort(String reason) {
            synchronized (lock) {
                if (abortReason == null) {
                    abortReason = reason;
                }
                lock.notifyAll();
            }
        }

        /**
         * Waits until every rank has arrived at operation {@code op}; the last to arrive runs {@code onAllArrived}
         * (under the lock) before releasing the others.
         */
        private void await(int rank, String op, Runnable onAllArrived) {
            synchronized (lock) {
                checkAborted(rank);
                if (arrivedCount == 0) {
                    generationOp = op;
                } else if (!generationOp.equals(op)) {
                    abortReason = "ranks called different collective operations (" + generationOp + " and " + op
                            + " by rank " + rank + "); every rank must make the same calls in the same order";
                    lock.notifyAll();
                    checkAborted(rank);
                }
                long mine = generation;
                arrived[rank] = true;
                arrivedCount++;
                if (arrivedCount == size) {
                    if (onAllArrived != null) {
                        onAllArrived.run();
                    }
                    java.util.Arrays.fill(arrived, false);
                    arrivedCount = 0;
                    generation++;
                    lock.notifyAll();
                    return;
                }
                long deadline = System.nanoTime() + timeoutNanos;
                while (generation == mine && abortReason == null) {
                    long left = deadline - System.nanoTime();
                    if (left <= 0) {
                        List<Integer> missing = new ArrayList<>();
                        for (int r = 0; r < size; r++) {
                            if (!arrived[r]) {
                                missing.add(r);
                            }
                        }
                        abortReason = "rank(s) " + missing + " of " + size + " did not reach " + op + " within "
                                + TimeUnit.NANOSECONDS.toSeconds(timeoutNanos) + " s (rank " + rank + " waited); a rank is stuck or has died";
                        lock.notifyAll();
                        break;
                    }
                    try {
                        TimeUnit.NANOSECONDS.timedWait(lock, left);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        abortReason = "rank " + rank + " was interrupted in " + op;
                        lock.notifyAll();
                    }
                }
                if (generation == mine) {
                    checkAborted(rank);
                }
            }
        }

        private void checkAborted(int rank) {
            if (abortReason != null) {
                throw new GoslingException("collective of " + size + " in-process ranks, at rank " + rank + ": " + abortReason);
            }
        }
    }

    private final Group group;
    private final int rank;
    /** This rank's host copy of the tensor being reduced (exactly its length, as Backend.download wants). */
    private float[] host = new float[0];
    private float[] shardHost = new float[0];

    private InProcessCollective(Group group, int rank) {
        this.group = group;
        this.rank = rank;
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int worldSize() {
        return group.size;
    }

    @Override
    public void allReduceSum(Backend backend, Tensor t) {
        int n = hostLength(t);
        backend.download(t, host);
        group.slots[rank] = host;
        group.await(rank, "allReduceSum(" + n + ")", () -> {
            if (group.sum.length != n) {
                group.sum = new float[n];
            }
        });
        Shard s = shard(n);
        sumShard(s, group.sum);
        group.await(rank, "allReduceSum(" + n + ") result", null);
        backend.upload(group.sum, t);
        // The next operation's first barrier keeps everyone from reusing the arrays before all have uploaded.
    }

    @Override
    public void reduceScatterSum(Backend backend, Tensor t) {
        int n = hostLength(t);
        backend.download(t, host);
        group.slots[rank] = host;
        group.await(rank, "reduceScatterSum(" + n + ")", null);
        Shard s = shard(n);
        float[] mine = shardBuffer(s);
        for (int i = 0; i < mine.length; i++) {
            int at = (int) s.start() + i;
            float v = group.slots[0][at];
            for (int r = 1; r < group.size; r++) {
                v += group.slots[r][at];
            }
            mine[i] = v;
        }
        // Others may still read this rank's host array: wait before anyone downloads into theirs again.
        group.await(rank, "reduceScatterSum(" + n + ") done", null);
        upload(backend, t, s, mine);
    }

    @Override
    public void allGather(Backend backend, Tensor t) {
        int n = hostLength(t);
        Shard s = shard(n);
        float[] mine = shardBuffer(s);
        try (Tensor view = backend.view(t, s.start(), (int) s.length())) {
            backend.download(view, mine);
        }
        group.slots[rank] = mine;
        group.await(rank, "allGather(" + n + ")", null);
        for (int r = 0; r < group.size; r++) {
            Shard other = Shard.of(n, group.size, r);
            System.arraycopy(group.slots[r], 0, host, (int) other.start(), (int) other.length());
        }
        group.await(rank, "allGather(" + n + ") done", null);
        backend.upload(host, t);
    }

    @Override
    public double[] allGather(double[] values) {
        group.values[rank] = values.clone();
        group.await(rank, "allGather(values of " + values.length + ")", null);
        double[] all = new double[group.size * values.length];
        for (int r = 0; r < group.size; r++) {
            if (group.values[r].length != values.length) {
                throw new IllegalStateException("rank " + r + " gathered " + group.values[r].length + " values, rank " + rank + " " + values.length);
            }
            System.arraycopy(group.values[r], 0, all, r * values.length, values.length);
        }
        group.await(rank, "allGather(values of " + values.length + ") done", null);
        return all;
    }

    @Override
    public String name() {
        return "in-process(" + group.size + " ranks)";
    }

    @Override
    public void abort(String reason) {
        group.abort(reason);
    }

    @Override
    public void close() {
    }

    /** sum[i] = Σ_r slots[r][i] in rank order, for i in shard s. */
    private void sumShard(Shard s, float[] sum) {
        float[][] slots = group.slots;
        for (int i = (int) s.start(); i < s.end(); i++) {
            float v = slots[0][i];
            for (int r = 1; r < slots.length; r++) {
                v += slots[r][i];
            }
            sum[i] = v;
        }
    }

    private int hostLength(Tensor t) {
        if (t.numel() > Integer.MAX_VALUE - 8) {
            throw new GoslingException("the in-process collective holds tensors in Java arrays: " + t.numel()
                    + " elements is too many; use the GPU (NCCL) for models this large");
        }
        int n = (int) t.numel();
        if (host.length != n) {
            host = new float[n];
        }
        return n;
    }

    private float[] shardBuffer(Shard s) {
        if (shardHost.length != s.length()) {
            shardHost = new float[(int) s.length()];
        }
        return shardHost;
    }

    private static void upload(Backend backend, Tensor t, Shard s, float[] values) {
        try (Tensor view = backend.view(t, s.start(), (int) s.length())) {
            backend.upload(values, view);
        }
    }
}
