package dev.gosling.trainer.train;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.model.ModelConfig;
import dev.gosling.trainer.model.TrainableModel;

import java.util.ArrayList;
import java.util.List;
import java.util.ServiceLoader;

/**
 * Builds the {@link TrainableModel} that {@code gosling train} and {@code gosling eval} drive. Implementations are
 * found with {@link ServiceLoader} (a {@code META-INF/services/dev.gosling.trainer.train.ModelFactory} entry), so the
 * loop knows no model class: the RWKV-7 model registers itself as the default for its accelerator ({@code cpu},
 * {@code gpu}); other implementations are chosen by name with {@code --model_impl}.
 */
public interface ModelFactory {

    /** The name {@code --model_impl} selects, e.g. {@code rwkv7}. */
    String name();

    /** Whether this is the implementation used for {@code --accelerator accelerator} when no --model_impl is given. */
    boolean isDefaultFor(String accelerator);

    /**
     * A model of {@code config} for {@code accelerator} ({@code auto}, {@code cpu} or {@code gpu}) that takes micro-batches
     * of up to {@code maxBatchSize} samples, recomputing each block in the backward pass when {@code gradCheckpoint}
     * (--grad_cp 1); parameters not yet set (the loop calls {@link TrainableModel#setParameters} before the first step).
     * The caller closes it.
     */
    TrainableModel create(ModelConfig config, String accelerator, int maxBatchSize, boolean gradCheckpoint);

    /**
     * {@link #create(ModelConfig, String, int, boolean)} for one rank of a data-parallel run: on CUDA device
     * {@code device} of this process, with at most {@code cpuThreads} threads for a CPU backend, computing in
     * {@code precision} (--precision: bf16, tf32 or fp32, how the GEMMs of a GPU model round their inputs; master
     * weights are fp32 in every case). With {@code partitionGradients} (ZeRO-2 over several ranks) a model that trains
     * on its device may keep gradient buckets instead of a whole gradient buffer
     * ({@link dev.gosling.trainer.model.DeviceTrainable#forwardBackward(int[], int[], int, dev.gosling.trainer.model.GradientSink)});
     * others ignore it. Implementations that cannot choose a device accept only device 0; those with one precision
     * ignore it.
     */
    default TrainableModel create(ModelConfig config, String accelerator, String precision, int maxBatchSize, boolean gradCheckpoint,
                                  int device, int cpuThreads, boolean partitionGradients) {
        if (device != 0) {
            throw new GoslingException("model implementation " + name() + " runs on device 0 only, this rank needs device " + device
                    + "; use the RWKV-7 model (leave --model_impl out)");
        }
        return create(config, accelerator, maxBatchSize, gradCheckpoint);
    }

    /**
     * {@link #create(ModelConfig, String, String, int, boolean, int, int, boolean)} keeping, with {@code keep} above
     * 0 (--keep), what each layer's backward pass reads instead of recomputing it: more memory,
     * less time, the same gradients. Implementations that recompute nothing, or cannot keep it, refuse a nonzero
     * {@code keep} with a one-line error.
     */
    default TrainableModel create(ModelConfig config, String accelerator, String precision, int maxBatchSize, boolean gradCheckpoint,
                                  int keep, int device, int cpuThreads, boolean partitionGradients) {
        if (keep != 0) {
            throw new GoslingException("--keep " + keep + ": model implementation " + name()
                    + " does not keep activations per layer; use --keep 0, or the RWKV-7 model (leave --model_impl out)");
        }
        return create(config, accelerator, precision, maxBatchSize, gradCheckpoint, device, cpuThreads, partitionGradients);
    }

    /** Every implementation on the class path, in ServiceLoader order. */
    static List<ModelFactory> available() {
        List<ModelFactory> found = new ArrayList<>();
        ClassLoader loader = Thread.currentThread().getContextClassLoader();
        for (ModelFactory factory : ServiceLoader.load(ModelFactory.class, loader != null ? loader : ModelFactory.class.getClassLoader())) {
            found.add(factory);
        }
        return found;
    }

    /**
     * The implementation named {@code modelImpl}, or, when it is empty, the default for {@code accelerator}.
     * One-line errors when there is none or the choice is ambiguous.
     */
    static ModelFactory select(String accelerator, String modelImpl) {
        return select(available(), accelerator, modelImpl);
    }

    /** {@link #select(String, String)} over an explicit list (tests). */
    static ModelFactory select(List<ModelFactory> factories, String accelerator, String modelImpl) {
        List<String> names = new ArrayList<>();
        for (ModelFactory f : factories) {
            names.add(f.name());
        }
        String others = names.isEmpty() ? "" : " (model implementations in this build: " + String.join(", ", names) + ")";
        if (modelImpl != null && !modelImpl.isEmpty()) {
            for (ModelFactory f : factories) {
                if (f.name().equals(modelImpl)) {
                    return f;
                }
            }
            throw new GoslingException("--model_impl " + modelImpl + ": no such model implementation in this build" + others
                    + "; leave --model_impl out to use the RWKV-7 model for --accelerator");
        }
        List<ModelFactory> defaults = new ArrayList<>();
        for (ModelFactory f : factories) {
            if (f.isDefaultFor(accelerator)) {
                defaults.add(f);
            }
        }
        if (defaults.isEmpty()) {
            String which = accelerator.equals("gpu") ? "CUDA" : accelerator.toUpperCase(java.util.Locale.ROOT);
            throw new GoslingException("--accelerator " + accelerator + ": the RWKV-7 " + which
                    + " model is not built into this version of gosling, so there is nothing to train" + others);
        }
        if (defaults.size() > 1) {
            List<String> ambiguous = new ArrayList<>();
            defaults.forEach(f -> ambiguous.add(f.name()));
            throw new GoslingException("--accelerator " + accelerator + ": several model implementations claim it ("
                    + String.join(", ", ambiguous) + "); choose one with --model_impl");
        }
        return defaults.get(0);
    }
}
