package dev.gosling.trainer.train;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.backend.Backend;
import dev.gosling.trainer.dist.Collective;
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
 */
abstract class TrainingStep implements AutoCloseable {

    /** The step for {@code model}: on its device when it has one. */
    static TrainingStep of(TrainableModel model, TrainConfig config, ParameterLayout layout, Collective collective) {
        DeviceTrainable device = model.onDevice();
        if (device != null) {
            return new OnDevice(device, config, layout, collective);
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

    @Override
    public abstract void close();

    /** Weights, gradients and AdamW on the model's backend. */
    private static final class OnDevice extends TrainingStep {
        private final DeviceTrainable model;
        private final Backend backend;
        private final Collective collective;
        private final DeviceAdamW adam;

        OnDevice(DeviceTrainable model, TrainConfig config, ParameterLayout layout, Collective collective) {
            this.model = model;
            this.backend = model.backend();
            this.collective = collective;
            this.adam = new DeviceAdamW(backend, layout, config.beta1(), config.beta2(), config.adamEps(), config.weightDecay(),
                    config.gradClip());
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
            collective.allReduceSum(backend, model.gradients());
            double norm = adam.step(model.masterParameters(), model.gradients(), lr, collective.worldSize());
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
            adam.downloadMoments(firstMoment, secondMoment);
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
        public void close() {
        }
    }
}
