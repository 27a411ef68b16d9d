package dev.gosling.trainer.train;

import dev.gosling.trainer.dist.Collective;

import java.nio.file.Path;
import java.util.List;

/**
 * Where one data-parallel rank of a {@link Trainer} runs: the {@link Collective} that joins it to the other ranks, the
 * GPU it owns (a CUDA device ordinal of this process) and the CPU threads its backend may use, plus a {@link Listener}
 * for what the launcher does around the loop (copying committed checkpoints to a Hadoop file system, test hooks).
 */
public record RankContext(Collective collective, int device, int cpuThreads, Listener listener) {

    /** Called on the training thread; the default does nothing. */
    public interface Listener {
        /** Rank 0 has committed these files in proj_dir (a checkpoint, its state, the logs and the plot). */
        default void committed(List<Path> files) {
        }

        /** Every rank has finished the step before {@code nextRealStep} (and any save after it). */
        default void stepDone(long nextRealStep) {
        }
    }

    public static final Listener NO_LISTENER = new Listener() {
    };

    public RankContext {
        if (cpuThreads < 1) {
            throw new IllegalArgumentException("cpuThreads " + cpuThreads);
        }
        if (device < 0) {
            throw new IllegalArgumentException("device " + device);
        }
        listener = listener == null ? NO_LISTENER : listener;
    }

    /** A run alone: world size 1, GPU 0, every core of this machine. */
    public static RankContext single() {
        return new RankContext(Collective.single(), 0, Runtime.getRuntime().availableProcessors(), NO_LISTENER);
    }

    public int rank() {
        return collective.rank();
    }

    public int worldSize() {
        return collective.worldSize();
    }

    public RankContext withListener(Listener l) {
        return new RankContext(collective, device, cpuThreads, l);
    }
}
