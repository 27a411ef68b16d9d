package dev.gosling.trainer.train;

import dev.gosling.trainer.backend.Accelerators;
import dev.gosling.trainer.backend.Backend;
import dev.gosling.trainer.backend.DType;
import dev.gosling.trainer.backend.cuda.CudaBackend;
import dev.gosling.trainer.model.DeviceTrainable;
import dev.gosling.trainer.model.ModelConfig;
import dev.gosling.trainer.model.ParameterLayout;
import dev.gosling.trainer.model.Rwkv7Model;
import dev.gosling.trainer.model.TrainableModel;

/**
 * The RWKV-7 model on the backend {@code --accelerator} picks (fp32 tensors and master weights; on a GPU the GEMMs
 * round their inputs as --precision says, bf16 by default, like the reference's mixed precision): the
 * default implementation for every accelerator. The model it returns owns its backend and closes it.
 */
public final class Rwkv7Factory implements ModelFactory {

    @Override
    public String name() {
        return "rwkv7";
    }

    @Override
    public boolean isDefaultFor(String accelerator) {
        return true;
    }

    @Override
    public TrainableModel create(ModelConfig config, String accelerator, int maxBatchSize, boolean gradCheckpoint) {
        return create(config, accelerator, "bf16", maxBatchSize, gradCheckpoint, 0, Runtime.getRuntime().availableProcessors(), false);
    }

    @Override
    public TrainableModel create(ModelConfig config, String accelerator, String precision, int maxBatchSize, boolean gradCheckpoint,
                                 int device, int cpuThreads, boolean partitionGradients) {
        return create(config, accelerator, precision, maxBatchSize, gradCheckpoint, 0, device, cpuThreads, partitionGradients);
    }

    @Override
    public TrainableModel create(ModelConfig config, String accelerator, String precision, int maxBatchSize, boolean gradCheckpoint,
                                 int keep, int device, int cpuThreads, boolean partitionGradients) {
        Backend backend = Accelerators.open(accelerator, device, cpuThreads, System.err::println);
        if (backend instanceof CudaBackend gpu) {
            gpu.setGemmPrecision(switch (precision) {
                case "fp32" -> CudaBackend.GemmPrecision.FP32;
                case "tf32" -> CudaBackend.GemmPrecision.TF32;
                default -> CudaBackend.GemmPrecision.BF16;
            });
        }
        try {
            return new OwningModel(new Rwkv7Model(config, backend, DType.F32, maxBatchSize, gradCheckpoint, partitionGradients, keep), backend);
        } catch (RuntimeException | Error e) {
            backend.close();
            throw e;
        }
    }

    /** The model and the backend it runs on, closed together. */
    private record OwningModel(Rwkv7Model model, Backend backend) implements TrainableModel {
        @Override
        public ModelConfig config() {
            return model.config();
        }

        @Override
        public ParameterLayout layout() {
            return model.layout();
        }

        @Override
        public void setParameters(float[] master) {
            model.setParameters(master);
        }

        @Override
        public double forwardBackward(int[] inputs, int[] targets, int batchSize, float[] grads) {
            return model.forwardBackward(inputs, targets, batchSize, grads);
        }

        @Override
        public DeviceTrainable onDevice() {
            return model;
        }

        @Override
        public double loss(int[] inputs, int[] targets, int batchSize) {
            return model.loss(inputs, targets, batchSize);
        }

        @Override
        public void close() {
            try {
                model.close();
            } finally {
                backend.close();
            }
        }
    }
}
