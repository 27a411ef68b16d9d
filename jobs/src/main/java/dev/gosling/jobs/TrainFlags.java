package dev.gosling.jobs;

import dev.gosling.trainer.train.LoopOptions;
import dev.gosling.trainer.train.TrainConfig;
import dev.gosling.trainer.train.TrainSettings;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The training flags of {@code gosling init} and {@code gosling train}, generated from the config records so that
 * every key {@link TrainConfig} and {@link LoopOptions} know is a flag under train_temp's name
 * ({@code --lr_init 6e-4}), with its default in the help, and nothing else.
 */
final class TrainFlags {
    private TrainFlags() {
    }

    /** Keys of {@link TrainConfig} that are Gosling's own, not train_temp's. */
    private static final java.util.Set<String> GOSLING_KEYS = java.util.Set.of("keep");

    /** Adds one {@code --key VALUE} option per training key to {@code spec}. */
    static void addTo(CommandSpec spec) {
        for (String key : TrainSettings.KEYS) {
            String def = TrainConfig.DEFAULTS.containsKey(key) ? TrainConfig.DEFAULTS.get(key) : LoopOptions.DEFAULTS.get(key);
            String origin = TrainConfig.DEFAULTS.containsKey(key) && !GOSLING_KEYS.contains(key) ? "train_temp's --" + key
                    : "Gosling: " + goslingHelp(key);
            spec.addOption(OptionSpec.builder("--" + key)
                    .paramLabel(label(key))
                    .type(String.class)
                    .arity("1")
                    .description(origin + " (default: " + (def.isEmpty() ? "\"\"" : def) + ")")
                    .build());
        }
    }

    /** The training flags given on the command line (name without dashes → value), in order of the keys. */
    static Map<String, String> given(CommandSpec spec) {
        CommandLine.ParseResult parsed = spec.commandLine().getParseResult();
        Map<String, String> flags = new LinkedHashMap<>();
        for (String key : TrainSettings.KEYS) {
            OptionSpec option = spec.findOption("--" + key);
            if (option != null && parsed.hasMatchedOption(option)) {
                flags.put(key, option.getValue());
            }
        }
        return flags;
    }

    private static String label(String key) {
        return switch (key) {
            case "load_model" -> "FILE";
            case "proj_dir" -> "DIR";
            case "data_file" -> "PREFIX";
            default -> "VALUE";
        };
    }

    private static String goslingHelp(String key) {
        return switch (key) {
            case "keep" -> "with grad_cp 0, 1.." + dev.gosling.trainer.model.Rwkv7Model.MAX_KEEP + " keep more of each layer's activations for the backward pass instead of"
                    + " recomputing them (" + dev.gosling.trainer.model.Rwkv7Model.KEEP_LEVELS + "): faster, more memory, the"
                    + " same gradients; 0 recomputes them";
            case "max_steps" -> "stop after N steps of this process, saving rwkv-last.pth + state as on SIGTERM; 0 = until my_exit_tokens";
            case "model_impl" -> "the model implementation by name; empty = the RWKV-7 model for --accelerator";
            case "progress_bar" -> "1 draws the progress bar on stderr, 0 does not";
            case "save_steps" -> "also save rwkv-last.pth + state every N steps (bounds what a failure loses); 0 = only train_temp's saves";
            default -> key;
        };
    }
}
