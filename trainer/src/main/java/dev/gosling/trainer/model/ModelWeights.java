package dev.gosling.trainer.model;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.checkpoint.DType;
import dev.gosling.trainer.checkpoint.NamedTensor;
import dev.gosling.trainer.checkpoint.SafeTensors;
import dev.gosling.trainer.checkpoint.StateDict;
import dev.gosling.trainer.checkpoint.TorchCheckpoint;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * An RWKV-7 state dict as fp32 weights in {@link ParameterLayout} order, with the config inferred from its shapes
 * (released models use LoRA dims of their own, rwkv7-reference.md §6.2). Reads {@code .pth} (and
 * {@code .safetensors}) files in bf16, fp16 or fp32; a ZeRO-3 {@code _forward_module.} key prefix is stripped.
 */
public final class ModelWeights {
    /** The key prefix DeepSpeed ZeRO-3 checkpoints carry. */
    public static final String ZERO_PREFIX = "_forward_module.";

    private final ModelConfig config;
    private final float[] params;

    public ModelWeights(ModelConfig config, float[] params) {
        if (params.length != new ParameterLayout(config).totalElements()) {
            throw new IllegalArgumentException("params has " + params.length + " floats, the config needs "
                    + new ParameterLayout(config).totalElements());
        }
        this.config = config;
        this.params = params;
    }

    public ModelConfig config() {
        return config;
    }

    /** The weights (not a copy). */
    public float[] params() {
        return params;
    }

    /**
     * Reads a checkpoint. ctx_len is not stored in one, so the caller gives it (any multiple of 16 for generation).
     * One-line errors for a missing file, a foreign format, or keys and shapes that are not an RWKV-7 model.
     */
    public static ModelWeights read(Path file, int ctxLen) {
        if (!Files.isRegularFile(file)) {
            throw new GoslingException("--load_model " + file + ": no such file");
        }
        String name = file.getFileName().toString();
        StateDict dict = name.endsWith(".safetensors") ? SafeTensors.read(file) : TorchCheckpoint.read(file);
        return fromStateDict(dict, ctxLen, file.toString());
    }

    /** The weights of a state dict (prefix stripped, config inferred, every shape checked). */
    public static ModelWeights fromStateDict(StateDict dict, int ctxLen, String source) {
        Map<String, NamedTensor> byName = new LinkedHashMap<>();
        for (NamedTensor t : dict) {
            String key = t.name().startsWith(ZERO_PREFIX) ? t.name().substring(ZERO_PREFIX.length()) : t.name();
            if (byName.put(key, t) != null) {
                throw new GoslingException(source + ": key '" + key + "' appears twice (with and without '" + ZERO_PREFIX + "')");
            }
        }
        Map<String, long[]> shapes = new LinkedHashMap<>();
        byName.forEach((k, t) -> shapes.put(k, t.shape()));
        ModelConfig config;
        try {
            config = ModelConfig.inferFromShapes(shapes, ctxLen);
        } catch (GoslingException e) {
            throw new GoslingException(source + ": " + e.getMessage(), e);
        }
        ParameterLayout layout = new ParameterLayout(config);
        layout.checkShapes(shapes, source);
        float[] params = layout.newBuffer();
        for (ParamSpec spec : layout.params()) {
            float[] values = byName.get(spec.name()).toFloats();
            System.arraycopy(values, 0, params, Math.toIntExact(spec.offset()), values.length);
        }
        return new ModelWeights(config, params);
    }

    /** A state dict of these weights in state-dict order, stored as {@code dtype} (bf16 as train_temp writes). */
    public StateDict toStateDict(DType dtype) {
        ParameterLayout layout = new ParameterLayout(config);
        StateDict dict = new StateDict();
        for (ParamSpec spec : layout.params()) {
            float[] values = new float[Math.toIntExact(spec.numel())];
            System.arraycopy(params, Math.toIntExact(spec.offset()), values, 0, values.length);
            dict.add(NamedTensor.fromFloats(spec.name(), dtype, spec.shape(), values));
        }
        return dict;
    }
}
