package dev.gosling.trainer.train;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.backend.Accelerators;
import dev.gosling.trainer.backend.cuda.CudaProbe;
import dev.gosling.trainer.dist.Collective;
import dev.gosling.trainer.dist.InProcessCollective;
import dev.gosling.trainer.dist.NcclCollective;

import java.io.PrintStream;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

/**
 * {@code gosling train --devices N} on one host without Spark: N {@link Trainer} ranks as threads of this process,
 * each with its own backend. On GPUs rank r runs on CUDA device r and the ranks reduce through NCCL; on the CPU each
 * rank's backend gets an equal share of the cores and the ranks reduce through shared memory
 * ({@link InProcessCollective}). Rank 0 prints and writes; a rank that fails aborts the others and its error is the
 * one reported.
 */
public final class DataParallel {
    private DataParallel() {
    }

    /**
     * Trains with {@code config.devices()} ranks in this process (one rank: the plain {@link Trainer}).
     *
     * @param timeoutSeconds the longest any rank waits for the others in one collective call
     */
    public static Trainer.Result run(TrainConfig config, LoopOptions options, ModelFactory factory, PrintWriter out, PrintStream err,
                                     StopFlag stop, long timeoutSeconds) {
        return run(config, options, factory, out, err, stop, timeoutSeconds, RankContext.NO_LISTENER);
    }

    /** As above, with {@code listener} on every rank (benchmarks and checks stop or observe the ranks through it). */
    public static Trainer.Result run(TrainConfig config, LoopOptions options, ModelFactory factory, PrintWriter out, PrintStream err,
                                     StopFlag stop, long timeoutSeconds, RankContext.Listener listener) {
        if (config.numNodes() != 1) {
            throw new GoslingException("--num_nodes " + config.numNodes() + ": several hosts need a cluster; use `gosling train --spark` "
                    + "(one Spark barrier task per GPU), or --num_nodes 1 on this host");
        }
        int world = config.devices();
        if (world == 1) {
            return new Trainer(config, options, factory, out, err, RankContext.single().withListener(listener)).run(stop);
        }
        boolean gpu = usesGpu(config.accelerator(), world);
        int cores = Runtime.getRuntime().availableProcessors();
        int threadsPerRank = Math.max(1, cores / world);
        InProcessCollective.Group group = gpu ? null : new InProcessCollective.Group(world, timeoutSeconds);
        byte[] ncclId = gpu ? NcclCollective.newUniqueId() : null;
        List<Collective> joined = java.util.Collections.synchronizedList(new ArrayList<>());
        Trainer.Result[] results = new Trainer.Result[world];
        AtomicReference<Throwable> first = new AtomicReference<>();
        List<Thread> threads = new ArrayList<>();
        for (int r = 0; r < world; r++) {
            final int rank = r;
            Thread t = new Thread(() -> {
                Collective collective = null;
                try {
                    collective = gpu ? NcclCollective.join(ncclId, world, rank, rank, timeoutSeconds) : group.rank(rank);
                    joined.add(collective);
                    if (first.get() != null) {
                        collective.abort("another rank failed");
                    }
                    RankContext context = new RankContext(collective, gpu ? rank : 0, threadsPerRank, listener);
                    results[rank] = new Trainer(config, options, factory, out, err, context).run(stop);
                } catch (Throwable e) {
                    if (first.compareAndSet(null, e)) {
                        String why = "rank " + rank + " failed: " + e.getMessage();
                        if (group != null) {
                            group.abort(why);
                        }
                        synchronized (joined) {
                            joined.forEach(c -> c.abort(why));
                        }
                    }
                } finally {
                    if (collective != null) {
                        collective.close();
                    }
                }
            }, "gosling-rank-" + rank);
            threads.add(t);
            t.start();
        }
        for (Thread t : threads) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                stop.request("interrupted");
                // The ranks stop together after their current step; wait for them so their files are complete.
                threads.forEach(DataParallel::joinQuietly);
                break;
            }
        }
        Throwable failure = first.get();
        if (failure instanceof RuntimeException e) {
            throw e;
        }
        if (failure instanceof Error e) {
            throw e;
        }
        if (failure != null) {
            throw new IllegalStateException(failure);
        }
        return results[0];
    }

    /** Whether --accelerator puts the ranks on GPUs (auto: when CUDA is usable), checking there are enough of them. */
    private static boolean usesGpu(String accelerator, int world) {
        if (Accelerators.CPU.equals(accelerator)) {
            return false;
        }
        CudaProbe.Result probe = CudaProbe.probe();
        if (!probe.available()) {
            if (Accelerators.GPU.equals(accelerator)) {
                throw new GoslingException("--accelerator gpu --devices " + world + ": " + probe.reason());
            }
            return false;
        }
        if (probe.devices() < world) {
            throw new GoslingException("--devices " + world + " asks for " + world + " GPUs but this machine has " + probe.devices()
                    + "; use --devices " + probe.devices() + " or fewer");
        }
        return true;
    }

    private static void joinQuietly(Thread t) {
        boolean interrupted = false;
        while (t.isAlive()) {
            try {
                t.join();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}
