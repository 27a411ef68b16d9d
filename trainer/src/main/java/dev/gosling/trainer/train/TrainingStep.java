package dev.gosling.trainer.train;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.backend.Backend;
import dev.gosling.trainer.backend.DType;
import dev.gosling.trainer.backend.Tensor;
import dev.gosling.trainer.dist.Collective;
import dev.gosling.trainer.dist.Shard;
import dev.gosling.trainer.dist.Strategy;
import dev.gosling.trainer.model.DeviceTrainable;
import dev.gosling.trainer.model.GradientSink;
import dev.gosling.trainer.model.ParameterLayout;
import dev.gosling.trainer.model.TrainableModel;
import dev.gosling.trainer.model.WeightCopy;
import dev.gosling.trainer.optim.AdamW;
import dev.gosling.trainer.optim.DeviceAdamW;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * One optimizer step of the loop, wherever the weights live: a micro-batch's forward and backward, the gradient
 * reduction over ranks, clipping and AdamW. A model that trains on its device ({@link DeviceTrainable}) keeps
 * weights, gradients and moments there ({@link OnDevice}); any other model gets host float arrays and {@link AdamW}
 * ({@link OnHost}). The host sees the weights and moments only through {@link #snapshot}.
 * <p>
 * With several ranks every method that touches the optimizer ({@link #update}, {@link #snapshot}) is a collective call:
 * every rank makes it, in the same order.
 */
abstract class TrainingStep implements AutoCloseable {

    /** The step for {@code model}: on its device when it has one. */
    static TrainingStep of(TrainableModel model, TrainConfig config, ParameterLayout layout, Collective collective) {
        DeviceTrainable device = model.onDevice();
        if (device != null) {
            return new OnDevice(device, config, layout, collective, Strategy.parse(config.strategy()));
        }
        if (collective.worldSize() > 1) {
            throw new GoslingException("model implementation " + model.getClass().getSimpleName()
                    + " trains on the host only and cannot join " + collective.worldSize() + " data-parallel ranks; use --devices 1");
        }
        return new OnHost(model, config, layout);
    }

    /** Sets the weights (and, when {@code state} is not null, the optimizer's moments and step) to start from. */
    abstract void load(float[] master, TrainState.Loaded state);

    /** Forward and backward of one micro-batch; returns this rank's mean loss. */
    abstract double forwardBackward(int[] inputs, int[] targets, int batchSize);

    /** Reduces the gradients over the ranks, clips and applies AdamW at base rate lr; returns the gradient norm. */
    abstract double update(double lr);

    /** Optimizer steps taken (the bias correction's t). */
    abstract long adamSteps();

    /** Copies the master weights and the moments into the arrays (layout length each). */
    abstract void snapshot(float[] master, float[] firstMoment, float[] secondMoment);

    /** One line on where the optimizer's state lives and how much of it this rank holds. */
    abstract String memoryLine();

    @Override
    public abstract void close();

    /**
     * Weights, gradients and AdamW on the model's backend. Under {@link Strategy#ZERO1} this rank's AdamW covers its
     * contiguous shard of the flat buffer only. Under {@link Strategy#ZERO2} it covers piece r of every gradient bucket
     * ({@link ParameterLayout#buckets()}, split evenly as reduce-scatter splits it): each bucket is reduce-scattered as
     * soon as the backward pass finishes it ({@link #bucketReady}), straight into this rank's piece of
     * {@link #ownedGrads}, so the model needs no whole gradient buffer. In both the global gradient norm is the square
     * root of the sum over ranks of each rank's Σ g², and the updated parts are all-gathered so every rank holds the
     * whole weights.
     * <p>
     * The gradient reductions overlap the backward pass where the collective can run them beside the backend's work
     * ({@link Collective#overlapsCompute}: NCCL): ddp and zero1 then all-reduce each bucket as it is finished instead of
     * the whole buffer after the pass, and zero2's reduce-scatters run there too. A started reduction's memory is left
     * alone until it is done: the model's buckets are disjoint ranges of the gradients that it does not write again in
     * the pass, except zero2's block slots, whose reuse waits for the slot's earlier reduction ({@link #beforeReuse},
     * device-side); {@link #ownedGrads} is read only in {@link #update}, which first waits for every started reduction
     * ({@link Collective#awaitPending}) before the norm and the optimizer read a gradient. Over the host collectives
     * ddp and zero1 make one call after the pass, as every call is a meeting of the ranks.
     */
    private static final class OnDevice extends TrainingStep implements GradientSink {
        private final DeviceTrainable model;
        private final Backend backend;
        private final Collective collective;
        private final Strategy strategy;
        private final ParameterLayout layout;
        /**
         * The ranges whose pieces the ranks own, each split evenly over the ranks: ZeRO-1 one range, the whole buffer;
         * ZeRO-2 the gradient buckets; empty for ddp.
         */
        private final List<ParameterLayout.Bucket> shardBuckets;
        private final DeviceAdamW adam;
        private final long length;
        /** Whether the backward pass hands the buckets to {@link #bucketReady} to be reduced one by one. */
        private final boolean bucketed;
        /** A backward pass may have started reductions that {@link #update} has not awaited yet. */
        private boolean reductionsInFlight;
        /** ZeRO-2: this rank's reduced gradient pieces back to back (adam's pieces), and a view per bucket; else null. */
        private final Tensor ownedGrads;
        private final Tensor[] ownedPieces;

        OnDevice(DeviceTrainable model, TrainConfig config, ParameterLayout layout, Collective collective, Strategy requested) {
            this.model = model;
            this.backend = model.backend();
            this.collective = collective;
            // One rank has nothing to share: every strategy is the plain step (and stays bit for bit what it was).
            this.strategy = collective.worldSize() == 1 ? Strategy.DDP : requested;
            this.layout = layout;
            this.length = layout.totalElements();
            this.shardBuckets = switch (strategy) {
                case DDP -> List.of();
                case ZERO1 -> List.of(new ParameterLayout.Bucket(0, 0, length, -1));
                case ZERO2 -> layout.buckets();
            };
            this.bucketed = strategy == Strategy.ZERO2 || (collective.worldSize() > 1 && collective.overlapsCompute());
            List<Shard> pieces = strategy == Strategy.DDP ? null : bucketPieces(shardBuckets, collective);
            this.adam = new DeviceAdamW(backend, layout, config.beta1(), config.beta2(), config.adamEps(), config.weightDecay(),
                    config.gradClip(), pieces);
            if (strategy == Strategy.ZERO2) {
                try {
                    this.ownedGrads = backend.allocate(DType.F32, (int) adam.ownedLength());
                } catch (RuntimeException | Error e) {
                    adam.close();
                    throw e;
                }
                this.ownedPieces = new Tensor[pieces.size()];
                for (int i = 0; i < pieces.size(); i++) {
                    if (pieces.get(i).length() > 0) {
                        ownedPieces[i] = backend.view(ownedGrads, adam.ownedOffset(i), (int) pieces.get(i).length());
                    }
                }
            } else {
                this.ownedGrads = null;
                this.ownedPieces = null;
            }
        }

        /** Piece r of every bucket, in layout coordinates: the part of it reduce-scatter leaves summed on this rank. */
        private static List<Shard> bucketPieces(List<ParameterLayout.Bucket> buckets, Collective collective) {
            List<Shard> pieces = new ArrayList<>();
            for (ParameterLayout.Bucket bucket : buckets) {
                Shard piece = collective.shard(bucket.length());
                pieces.add(new Shard(bucket.start() + piece.start(), bucket.start() + piece.end()));
            }
            return pieces;
        }

        @Override
        void load(float[] master, TrainState.Loaded state) {
            backend.upload(master, model.masterParameters());
            model.parametersUpdated();
            if (state != null) {
                adam.restore(state.firstMoment(), state.secondMoment(), state.state().position().adamStep());
            }
        }

        @Override
        double forwardBackward(int[] inputs, int[] targets, int batchSize) {
            if (!bucketed) {
                return model.forwardBackward(inputs, targets, batchSize);
            }
            reductionsInFlight = true;
            return model.forwardBackward(inputs, targets, batchSize, this);
        }

        /**
         * Called by the backward pass for each finished bucket (every rank calls it for the same buckets in the same
         * order, the model's): starts its sum over the ranks, in place (ddp, zero1), or into this rank's piece of
         * {@link #ownedGrads} (zero2). It runs while the backward pass goes on; {@link #update} waits for it.
         */
        @Override
        public void bucketReady(ParameterLayout.Bucket bucket, Tensor grads) {
            if (strategy == Strategy.ZERO2) {
                collective.reduceScatterSumAsync(backend, grads, ownedPieces[bucket.index()]);
            } else {
                collective.allReduceSumAsync(backend, grads);
            }
        }

        /** ZeRO-2's block slot is about to be overwritten: the backend's work waits for the reduction still reading it. */
        @Override
        public void beforeReuse(ParameterLayout.Bucket bucket, Tensor grads) {
            collective.awaitOnDevice(backend, grads);
        }

        @Override
        double update(double lr) {
            Tensor params = model.masterParameters();
            int ranks = collective.worldSize();
            // Nothing below reads a gradient before the reductions the backward pass started are done.
            collective.awaitPending(backend);
            reductionsInFlight = false;
            double norm;
            // ddp's optimizer updates every weight (each rank the same): it writes the model's weight copy too, if any
            WeightCopy written = null;
            if (strategy == Strategy.DDP) {
                Tensor grads = model.gradients();
                if (!bucketed) {
                    collective.allReduceSum(backend, grads);
                }
                written = model.weightCopy();
                norm = adam.step(params, grads, lr, ranks, written);
            } else if (strategy == Strategy.ZERO1) {
                Tensor grads = model.gradients();
                if (!bucketed) {
                    collective.allReduceSum(backend, grads);
                }
                double mine;
                try (Tensor g = adam.shardOf(grads)) {
                    mine = adam.shard().length() == 0 ? 0 : backend.sumOfSquares(g);
                }
                norm = adam.step(params, grads, lr, ranks, sumOverRanks(mine));
            } else {
                // The buckets were reduced during the backward pass; ownedGrads holds this rank's summed pieces.
                double mine = adam.ownedLength() == 0 ? 0 : backend.sumOfSquares(ownedGrads);
                norm = adam.stepOwned(params, ownedGrads, lr, ranks, sumOverRanks(mine));
            }
            // Rank r updated piece r of each shard bucket: all-gathering bucket by bucket gives every rank the whole weights.
            for (ParameterLayout.Bucket bucket : shardBuckets) {
                try (Tensor b = backend.view(params, bucket.start(), (int) bucket.length())) {
                    collective.allGather(backend, b);
                }
            }
            if (written == null) {
                model.parametersUpdated();
            }
            return norm;
        }

        /** Σ over ranks of each rank's sum of squares, added in rank order (the same double on every rank). */
        private double sumOverRanks(double mine) {
            double sum = 0;
            for (double s : collective.allGather(new double[] {mine})) {
                sum += s;
            }
            return sum;
        }

        @Override
        long adamSteps() {
            return adam.stepCount();
        }

        @Override
        void snapshot(float[] master, float[] firstMoment, float[] secondMoment) {
            backend.download(model.masterParameters(), master);
            if (adam.isWhole()) {
                adam.downloadMoments(firstMoment, secondMoment);
            } else {
                snapshotBuckets(firstMoment, secondMoment);
            }
        }

        /**
         * A sharded rank's moments are piece r of every shard bucket: gather them bucket by bucket through a scratch
         * tensor of the largest bucket (the only time a rank holds more than its pieces, one moment at a time), each
         * rank placing its piece where reduce-scatter put it, into the whole host arrays in layout order (so the
         * checkpoint is the same whatever the strategy or the world size).
         */
        private void snapshotBuckets(float[] firstMoment, float[] secondMoment) {
            long largest = 0;
            for (ParameterLayout.Bucket bucket : shardBuckets) {
                largest = Math.max(largest, bucket.length());
            }
            try (Tensor scratch = backend.allocate(DType.F32, (int) largest)) {
                for (ParameterLayout.Bucket bucket : shardBuckets) {
                    int n = (int) bucket.length();
                    Shard piece = collective.shard(n);
                    float[] host = n == length ? null : new float[n]; // ZeRO-1's one bucket downloads straight into the result
                    try (Tensor whole = backend.view(scratch, 0, n)) {
                        for (int k = 0; k < 2; k++) {
                            Tensor moment = k == 0 ? adam.firstMoment() : adam.secondMoment();
                            if (piece.length() > 0) {
                                try (Tensor mine = backend.view(whole, piece.start(), (int) piece.length());
                                     Tensor src = backend.view(moment, adam.ownedOffset(bucket.index()), (int) piece.length())) {
                                    backend.copy(src, mine);
                                }
                            }
                            collective.allGather(backend, whole);
                            float[] out = k == 0 ? firstMoment : secondMoment;
                            if (host == null) {
                                backend.download(whole, out);
                            } else {
                                backend.download(whole, host);
                                System.arraycopy(host, 0, out, (int) bucket.start(), n);
                            }
                        }
                    }
                }
            }
        }

        @Override
        String memoryLine() {
            double mib = 1024.0 * 1024.0;
            String state = switch (strategy) {
                case DDP -> "all " + length + " parameters";
                case ZERO1 -> "shard [" + adam.shard().start() + ", " + adam.shard().end() + ") of " + length;
                case ZERO2 -> "piece " + collective.rank() + " of each of " + layout.buckets().size() + " buckets, " + adam.ownedLength()
                        + " of " + length + " parameters";
            };
            String gradients = strategy == Strategy.ZERO2
                    ? String.format(Locale.ROOT, "%.1f MiB (non-block parameters and two block slots %.1f MiB, reduced pieces %.1f MiB)",
                    (model.gradientElements() + adam.ownedLength()) * 4.0 / mib, model.gradientElements() * 4.0 / mib,
                    adam.ownedLength() * 4.0 / mib)
                    : String.format(Locale.ROOT, "%.1f MiB (%s)", model.gradientElements() * 4.0 / mib,
                    model.gradientElements() == length ? "whole buffer" : model.gradientElements() + " of " + length + " elements");
            String reduction = collective.worldSize() == 1 ? ""
                    : bucketed && collective.overlapsCompute() ? "; reduced bucket by bucket, overlapping the backward pass"
                    : bucketed ? "; reduced bucket by bucket during the backward pass" : "; reduced after the backward pass";
            return String.format(Locale.ROOT, "%s over %d rank(s) (%s): AdamW state %.1f MiB on each rank (%s), fp32 weights %.1f MiB, "
                            + "gradients %s%s", strategy.name().toLowerCase(Locale.ROOT), collective.worldSize(), collective.name(),
                    adam.stateBytes() / mib, state, length * 4.0 / mib, gradients, reduction);
        }

        @Override
        public void close() {
            if (reductionsInFlight) {
                // A step failed between starting reductions and awaiting them: they must be done (or, NCCL, aborted)
                // before their memory is freed and the backend is closed, which would otherwise wait for them unbounded.
                try {
                    collective.awaitPending(backend);
                } catch (RuntimeException e) {
                    // the error that ended the step is the one to report
                }
                reductionsInFlight = false;
            }
            if (ownedGrads != null) {
                ownedGrads.close();
            }
            adam.close();
        }
    }

    /** Host float arrays and {@link AdamW}, for models without a device. */
    private static final class OnHost extends TrainingStep {
        private final TrainableModel model;
        private final AdamW adam;
        private final float[] master;
        private final float[] grads;

        OnHost(TrainableModel model, TrainConfig config, ParameterLayout layout) {
            this.model = model;
            this.adam = config.adamW(layout);
            this.master = layout.newBuffer();
            this.grads = layout.newBuffer();
        }

        @Override
        void load(float[] weights, TrainState.Loaded state) {
            System.arraycopy(weights, 0, master, 0, master.length);
            model.setParameters(master);
            if (state != null) {
                adam.restore(state.firstMoment(), state.secondMoment(), state.state().position().adamStep());
            }
        }

        @Override
        double forwardBackward(int[] inputs, int[] targets, int batchSize) {
            return model.forwardBackward(inputs, targets, batchSize, grads);
        }

        @Override
        double update(double lr) {
            double norm = adam.step(master, grads, lr);
            model.setParameters(master);
            return norm;
        }

        @Override
        long adamSteps() {
            return adam.stepCount();
        }

        @Override
        void snapshot(float[] weights, float[] firstMoment, float[] secondMoment) {
            System.arraycopy(master, 0, weights, 0, master.length);
            System.arraycopy(adam.firstMoment(), 0, firstMoment, 0, master.length);
            System.arraycopy(adam.secondMoment(), 0, secondMoment, 0, master.length);
        }

        @Override
        String memoryLine() {
            return String.format(java.util.Locale.ROOT, "host AdamW: state %.1f MiB (all %d parameters)", master.length * 8.0 / (1024 * 1024), master.length);
        }

        @Override
        public void close() {
        }
    }
}
