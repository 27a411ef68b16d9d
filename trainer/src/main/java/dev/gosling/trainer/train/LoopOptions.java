package dev.gosling.trainer.train;

import dev.gosling.trainer.GoslingException;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Gosling's own training-loop options, beside train_temp's {@link TrainConfig}: they change how the loop runs, never
 * what it computes. Built from the same YAML files and flags, validated once, immutable.
 *
 * @param maxSteps    stop after this many optimizer steps of this process, saving {@code rwkv-last.pth} plus its state
 *                    exactly as SIGTERM does (0: run until my_exit_tokens). A resumed run continues where it stopped,
 *                    so {@code max_steps} slices a run into jobs of bounded length (and keeps tests short).
 * @param modelImpl   the {@link ModelFactory} by name; empty: the RWKV-7 model registered for --accelerator
 * @param progressBar whether to draw the progress bar on stderr
 * @param saveSteps   also save {@code rwkv-last.pth} plus its state after every step whose number (real_step + 1) is a
 *                    multiple of this (0: only train_temp's saves). A miniepoch is 40320 samples, hours of a large
 *                    run; this bounds what a failure loses (a Spark stage retry resumes from the latest save).
 */
public record LoopOptions(long maxSteps, String modelImpl, boolean progressBar, long saveSteps) {

    /** Every accepted key with its default. */
    public static final Map<String, String> DEFAULTS;

    static {
        Map<String, String> d = new LinkedHashMap<>();
        d.put("max_steps", "0");
        d.put("model_impl", "");
        d.put("progress_bar", "1");
        d.put("save_steps", "0");
        DEFAULTS = Collections.unmodifiableMap(d);
    }

    public LoopOptions {
        if (maxSteps < 0) {
            throw new GoslingException("--max_steps " + maxSteps + " must be >= 0 (0 runs until my_exit_tokens)");
        }
        modelImpl = modelImpl == null ? "" : modelImpl.strip();
        if (saveSteps < 0) {
            throw new GoslingException("--save_steps " + saveSteps + " must be >= 0 (0: save only at miniepoch ends)");
        }
    }

    public LoopOptions(long maxSteps, String modelImpl, boolean progressBar) {
        this(maxSteps, modelImpl, progressBar, 0);
    }

    /** The defaults: run to the end, the default model, a progress bar. */
    public static LoopOptions defaults() {
        return new LoopOptions(0, "", true);
    }

    /** From flag name → value (absent keys take their defaults); unknown keys and bad values are one-line errors. */
    public static LoopOptions fromMap(Map<String, String> flags) {
        for (String key : flags.keySet()) {
            if (!DEFAULTS.containsKey(key)) {
                throw new GoslingException("unknown loop option '" + key + "'; the options are " + String.join(", ", DEFAULTS.keySet()));
            }
        }
        long steps = integer(flags, "max_steps");
        long saveSteps = integer(flags, "save_steps");
        String bar = flags.getOrDefault("progress_bar", DEFAULTS.get("progress_bar")).strip();
        if (!bar.equals("0") && !bar.equals("1")) {
            throw new GoslingException("--progress_bar '" + bar + "' must be 0 or 1");
        }
        return new LoopOptions(steps, flags.getOrDefault("model_impl", ""), bar.equals("1"), saveSteps);
    }

    private static long integer(Map<String, String> flags, String key) {
        String value = flags.getOrDefault(key, DEFAULTS.get(key)).strip();
        try {
            return Long.parseLong(value);
        } catch (NumberFormatException e) {
            throw new GoslingException("--" + key + " '" + value + "' is not an integer");
        }
    }

    public LoopOptions withMaxSteps(long steps) {
        return new LoopOptions(steps, modelImpl, progressBar, saveSteps);
    }

    public LoopOptions withProgressBar(boolean bar) {
        return new LoopOptions(maxSteps, modelImpl, bar, saveSteps);
    }
}
