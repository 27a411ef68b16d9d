package dev.gosling.trainer.train;

import dev.gosling.trainer.GoslingException;

import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The two config records of a training command, built from YAML files and flags in one place: the YAML files in
 * order (a later file overrides an earlier one), then the flags, which override every file. Keys are split between
 * train_temp's {@link TrainConfig} and Gosling's {@link LoopOptions}; each is validated once.
 */
public record TrainSettings(TrainConfig config, LoopOptions loop) {

    /** Every key a YAML file or a flag may set: train_temp's, then Gosling's loop options. */
    public static final Set<String> KEYS;

    static {
        Set<String> keys = new LinkedHashSet<>(TrainConfig.DEFAULTS.keySet());
        keys.addAll(LoopOptions.DEFAULTS.keySet());
        KEYS = Collections.unmodifiableSet(keys);
    }

    /** The settings from {@code yamlFiles} then {@code flags} (flag name without dashes → value). */
    public static TrainSettings load(List<Path> yamlFiles, Map<String, String> flags) {
        Map<String, String> merged = new LinkedHashMap<>();
        for (Path file : yamlFiles) {
            merged.putAll(TrainYaml.read(file, KEYS));
        }
        for (Map.Entry<String, String> flag : flags.entrySet()) {
            if (!KEYS.contains(flag.getKey())) {
                String near = TrainConfig.nearestKey(flag.getKey(), KEYS);
                throw new GoslingException("unknown option --" + flag.getKey() + (near == null ? "" : " (did you mean --" + near + "?)"));
            }
            merged.put(flag.getKey(), flag.getValue());
        }
        Map<String, String> train = new LinkedHashMap<>();
        Map<String, String> loop = new LinkedHashMap<>();
        merged.forEach((k, v) -> (LoopOptions.DEFAULTS.containsKey(k) ? loop : train).put(k, v));
        LoopOptions loopOptions = LoopOptions.fromMap(loop);
        return new TrainSettings(TrainConfig.fromMap(train), loopOptions);
    }
}
