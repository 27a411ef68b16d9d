package dev.gosling.trainer.train;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.backend.Backend;
import dev.gosling.trainer.backend.DType;
import dev.gosling.trainer.backend.Tensor;
import dev.gosling.trainer.dist.Collective;
import dev.gosling.trainer.dist.Strategy;
import dev.gosling.trainer.model.DeviceTrainable;
import dev.gosling.trainer.model.ParameterLayout;
import dev.gosling.trainer.model.TrainableModel;
import dev.gosling.trainer.optim.AdamW;
import dev.gosling.trainer.optim.DeviceAdamW;

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
     * Weights, gradients and AdamW on the model's backend. Under {@link Strategy#ZERO1}/{@link Strategy#ZERO2} this
     * rank's AdamW covers its shard of the flat buffer only; the global gradient norm is the square root of the sum
     * over ranks of each shard's Σ g², and the updated shards are all-gathered so every rank holds the whole weights.
     */
    private static final class OnDevice extends TrainingStep {
        private final DeviceTrainable model;
        private final Backend backend;
        private final Collective collective;
        private final Strategy strategy;
        private final DeviceAdamW adam;
        private final long length;

        OnDevice(DeviceTrainable model, TrainConfig config, ParameterLayout layout, Collective collective, Strategy requested) {
            this.model = model;
            this.backend = model.backend();
            this.collective = collective;
            // One rank has nothing to share: every strategy is the plain step (and stays bit for bit what it was).
            this.strategy = collective.worldSize() == 1 ? Strategy.DDP : requested;
            this.length = layout.totalElements();
            this.adam = new DeviceAdamW(backend, layout, config.beta1(), config.beta2(), config.adamEps(), config.weightDecay(),
                    config.gradClip(), strategy.shardsOptimizer() ? collective.shard(length) : null);
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
            return model.forwardBackward(inputs, targets, batchSize);
        }

        @Override
        double update(double lr) {
            Tensor params = model.masterParameters();
            Tensor grads = model.gradients();
            int ranks = collective.worldSize();
            double norm;
            if (strategy == Strategy.DDP) {
                collective.allReduceSum(backend, grads);
                norm = adam.step(params, grads, lr, ranks);
            } else {
                if (strategy == Strategy.ZERO1) {
                    collective.allReduceSum(backend, grads);
                } else {
                    collective.reduceScatterSum(backend, grads);
                }
                double mine;
                try (Tensor g = adam.shardOf(grads)) {
                    mine = adam.shard().length() == 0 ? 0 : backend.sumOfSquares(g);
                }
                double sum = 0;
                for (double s : collective.allGather(new double[] {mine})) {
                    sum += s;
                }
                norm = adam.step(params, grads, lr, ranks, sum);
                collective.allGather(backend, params);
            }
            model.parametersUpdated();
            return norm;
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
                return;
            }
            // Each rank holds one shard of the moments: gather them through a whole-length scratch tensor (the only
            // time a sharded rank holds a whole moment buffer, and only one of the two at a time).
            try (Tensor whole = backend.allocate(DType.F32, (int) length); Tensor mine = adam.shardOf(whole)) {
                gather(adam.firstMoment(), whole, mine, firstMoment);
                gather(adam.secondMoment(), whole, mine, secondMoment);
            }
        }

        private void gather(Tensor moment, Tensor whole, Tensor mine, float[] out) {
            if (moment.numel() > 0) {
                backend.copy(moment, mine);
            }
            collective.allGather(backend, whole);
            backend.download(whole, out);
        }

        @Override
        String memoryLine() {
            double mib = 1024.0 * 1024.0;
            return String.format(java.util.Locale.ROOT, "%s over %d rank(s) (%s): AdamW state %.1f MiB on each rank (%s), fp32 weights %.1f MiB, "
                            + "gradients %.1f MiB (whole buffer)", strategy.name().toLowerCase(java.util.Locale.ROOT), collective.worldSize(),
                    collective.name(), adam.stateBytes() / mib,
                    adam.isWhole() ? "all " + length + " parameters" : "shard [" + adam.shard().start() + ", " + adam.shard().end() + ") of " + length,
                    length * 4.0 / mib, length * 4.0 / mib);
        }

        @Override
        public void close() {
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
