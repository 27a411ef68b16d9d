package dev.gosling.trainer.train;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.checkpoint.DType;
import dev.gosling.trainer.checkpoint.FloatCodec;
import dev.gosling.trainer.checkpoint.NamedTensor;
import dev.gosling.trainer.checkpoint.SafeTensors;
import dev.gosling.trainer.checkpoint.StateDict;
import dev.gosling.trainer.checkpoint.TorchCheckpoint;
import dev.gosling.trainer.model.Bf16;
import dev.gosling.trainer.model.Initializer;
import dev.gosling.trainer.model.ModelConfig;
import dev.gosling.trainer.model.ParamSpec;
import dev.gosling.trainer.model.ParameterLayout;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Checkpoint files of a run (rwkv7-reference.md §5.2, §9): their names, train_temp's auto-resume scan, and the
 * conversions between a state dict and the fp32 master weights (bf16 on disk, {@link ParameterLayout} order).
 */
public final class Checkpoints {
    public static final String INIT = "rwkv-init.pth";
    public static final String FINAL = "rwkv-final.pth";
    /** Gosling's: written when a run is stopped (signal, max_steps) between miniepochs; resumed from with its state. */
    public static final String LAST = "rwkv-last.pth";
    /** ZeRO-3 checkpoints carry this key prefix; the loader strips it as train.py does. */
    public static final String ZERO3_PREFIX = "_forward_module.";

    private Checkpoints() {
    }

    /** {@code proj_dir/rwkv-N.pth}. */
    public static Path numbered(Path projDir, long miniepoch) {
        return projDir.resolve("rwkv-" + miniepoch + ".pth");
    }

    /**
     * What train.py's auto-resume finds in proj_dir: the miniepoch numbers of the {@code rwkv*.pth} files, sorted,
     * with {@code rwkv-init.pth} as −1 and {@code rwkv-final.pth} skipped; and whether Gosling's {@code rwkv-last.pth}
     * is there (train.py would fail on that name; Gosling reads it separately).
     */
    public record Scan(List<Long> numbers, boolean hasLast) {
        public Scan {
            numbers = List.copyOf(numbers);
        }

        /** max_p: the checkpoint to resume from. */
        public Optional<Long> max() {
            return numbers.isEmpty() ? Optional.empty() : Optional.of(numbers.get(numbers.size() - 1));
        }

        /** my_pile_prev_p: the fallback when max_p cannot be loaded ("Bad checkpoint"). */
        public Optional<Long> previous() {
            return numbers.size() < 2 ? Optional.empty() : Optional.of(numbers.get(numbers.size() - 2));
        }

        /** The file of number {@code p} (−1: rwkv-init.pth). */
        public static Path file(Path projDir, long p) {
            return p == -1 ? projDir.resolve(INIT) : numbered(projDir, p);
        }
    }

    /**
     * train.py's scan: every file whose name starts with {@code rwkv} and ends with {@code .pth};
     * {@code name.split("-")[1].split(".")[0]} is "final" (skipped), "init" (−1) or an integer. A name that fits none
     * stops the run with one line, as it stops train.py (there with a Python traceback).
     */
    public static Scan scan(Path projDir) {
        List<Long> numbers = new ArrayList<>();
        boolean hasLast = false;
        if (!Files.isDirectory(projDir)) {
            return new Scan(numbers, false);
        }
        try (Stream<Path> files = Files.list(projDir)) {
            for (Path file : (Iterable<Path>) files.sorted()::iterator) {
                String name = file.getFileName().toString();
                if (!name.startsWith("rwkv") || !name.endsWith(".pth")) {
                    continue;
                }
                if (name.equals(LAST)) {
                    hasLast = true;
                    continue;
                }
                String[] dashed = name.split("-", -1);
                String p = dashed.length > 1 ? dashed[1].split("\\.", -1)[0] : null;
                if ("final".equals(p)) {
                    continue;
                }
                if ("init".equals(p)) {
                    numbers.add(-1L);
                    continue;
                }
                try {
                    numbers.add(Long.parseLong(p == null ? "" : p));
                } catch (NumberFormatException e) {
                    throw new GoslingException(file + ": auto-resume (--train_stage >= 2) reads a miniepoch number from every rwkv*.pth "
                            + "in --proj_dir and cannot read one from this name (train_temp stops here too); move or rename it");
                }
            }
        } catch (IOException e) {
            throw new GoslingException(projDir + ": cannot list --proj_dir: " + e.getMessage());
        }
        Collections.sort(numbers);
        return new Scan(numbers, hasLast);
    }

    /** The master weights as a bf16 state dict in layout order (what train_temp saves). */
    public static StateDict toStateDict(ParameterLayout layout, float[] master) {
        StateDict dict = new StateDict();
        for (ParamSpec spec : layout.params()) {
            float[] values = Arrays.copyOfRange(master, (int) spec.offset(), (int) spec.end());
            dict.add(NamedTensor.fromFloats(spec.name(), DType.BF16, spec.shape(), values));
        }
        return dict;
    }

    /** Writes the master weights as a bf16 .pth, atomically. */
    public static void save(Path file, ParameterLayout layout, float[] master) {
        TorchCheckpoint.write(file, toStateDict(layout, master));
    }

    /**
     * A checkpoint's tensors (.safetensors by extension, else a torch .pth), with a ZeRO-3 {@code _forward_module.}
     * key prefix stripped.
     */
    public static StateDict read(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new GoslingException(file + ": no such checkpoint (check --load_model)");
        }
        StateDict raw = file.getFileName().toString().endsWith(".safetensors") ? SafeTensors.read(file) : TorchCheckpoint.read(file);
        StateDict out = new StateDict();
        for (NamedTensor t : raw) {
            String name = t.name().startsWith(ZERO3_PREFIX) ? t.name().substring(ZERO3_PREFIX.length()) : t.name();
            if (out.contains(name)) {
                throw new GoslingException(file + ": key '" + name + "' appears with and without the " + ZERO3_PREFIX + " prefix");
            }
            out.add(name.equals(t.name()) ? t : t.withName(name));
        }
        return out;
    }

    /** Name → shape of every tensor. */
    public static Map<String, long[]> shapes(StateDict dict) {
        Map<String, long[]> shapes = new LinkedHashMap<>();
        for (NamedTensor t : dict) {
            shapes.put(t.name(), t.shape());
        }
        return shapes;
    }

    /**
     * The model a checkpoint holds, checked against the run's flags. The LoRA dims (and the FFN size) come from the
     * checkpoint's shapes, since released models use other dims than the formula; n_layer, n_embd, vocab_size and
     * any LoRA dim given explicitly must agree. With load_partial 1 the flags' model is kept and the checkpoint may
     * lack keys, but every key it has must exist with the same shape.
     */
    public static ModelConfig modelOf(StateDict dict, Path file, TrainConfig config) {
        Map<String, long[]> shapes = shapes(dict);
        ModelConfig requested = config.modelConfig();
        if (config.loadPartial() == 1) {
            ParameterLayout layout = new ParameterLayout(requested);
            for (Map.Entry<String, long[]> e : shapes.entrySet()) {
                Optional<ParamSpec> spec = layout.find(e.getKey());
                if (spec.isEmpty()) {
                    throw new GoslingException(file + ": unexpected key '" + e.getKey() + "' (not in the RWKV-7 x070 layout)");
                }
                if (!Arrays.equals(spec.get().shape(), e.getValue())) {
                    throw new GoslingException(file + ": '" + e.getKey() + "' has shape " + Arrays.toString(e.getValue()) + ", the model "
                            + "of the flags needs " + Arrays.toString(spec.get().shape()) + "; fix --n_layer/--n_embd/--vocab_size or the LoRA dims");
                }
            }
            return requested;
        }
        ModelConfig found;
        try {
            found = ModelConfig.inferFromShapes(shapes, config.ctxLen());
        } catch (GoslingException e) {
            throw new GoslingException(file + ": " + e.getMessage());
        }
        if (found.nLayer() != requested.nLayer() || found.nEmbd() != requested.nEmbd() || found.vocabSize() != requested.vocabSize()) {
            throw new GoslingException(file + ": holds n_layer " + found.nLayer() + ", n_embd " + found.nEmbd() + ", vocab_size "
                    + found.vocabSize() + " but the flags say " + requested.nLayer() + ", " + requested.nEmbd() + ", " + requested.vocabSize()
                    + "; pass --n_layer " + found.nLayer() + " --n_embd " + found.nEmbd() + " --vocab_size " + found.vocabSize()
                    + " (or another checkpoint)");
        }
        int[][] lora = {
            {config.dDecayLora(), found.lora().decay()}, {config.dAaaLora(), found.lora().aaa()},
            {config.dMvLora(), found.lora().mv()}, {config.dGateLora(), found.lora().gate()}};
        String[] names = {"d_decay_lora", "d_aaa_lora", "d_mv_lora", "d_gate_lora"};
        for (int i = 0; i < lora.length; i++) {
            if (lora[i][0] > 0 && lora[i][0] != lora[i][1]) {
                throw new GoslingException(file + ": has LoRA dim " + names[i] + " = " + lora[i][1] + " but --" + names[i] + " is "
                        + lora[i][0] + "; leave --" + names[i] + " 0 to take the checkpoint's");
            }
        }
        return found;
    }

    /**
     * The checkpoint's values as fp32 master weights of {@code layout}. Keys missing from the checkpoint (only possible
     * with load_partial 1) take the fresh init of {@code init} (train.py takes the fresh model's).
     */
    public static float[] toMaster(StateDict dict, ParameterLayout layout, Initializer init) {
        float[] master = layout.newBuffer();
        for (ParamSpec spec : layout.params()) {
            Optional<NamedTensor> tensor = dict.find(spec.name());
            int from = (int) spec.offset();
            if (tensor.isPresent()) {
                float[] values = tensor.get().toFloats();
                System.arraycopy(values, 0, master, from, values.length);
            } else {
                init.fill(spec, master, from);
                for (int i = from; i < spec.end(); i++) {
                    master[i] = Bf16.round(master[i]);
                }
            }
        }
        return master;
    }

    /** Whether {@code dict} holds exactly the bf16 rounding of {@code master}: the test that a .state belongs to its .pth. */
    public static boolean sameBf16(StateDict dict, ParameterLayout layout, float[] master) {
        if (dict.size() != layout.params().size()) {
            return false;
        }
        for (ParamSpec spec : layout.params()) {
            Optional<NamedTensor> tensor = dict.find(spec.name());
            if (tensor.isEmpty() || tensor.get().dtype() != DType.BF16 || tensor.get().numel() != spec.numel()) {
                return false;
            }
            ByteBuffer data = tensor.get().data();
            int base = data.position();
            int from = (int) spec.offset();
            for (int i = 0; i < spec.numel(); i++) {
                if (data.getShort(base + 2 * i) != FloatCodec.toBf16Bits(master[from + i])) {
                    return false;
                }
            }
        }
        return true;
    }

    /**
     * train_stage 1 with --load_model (trainer.py's generate_init_weight): every tensor of {@code source} replaces the
     * fresh init's tensor of that name. Same element count: copied (reshaped). Otherwise the squeezed init tensor's rows
     * are linearly interpolated from the source's rows along the first dimension (row i reads position i/dd·ss),
     * computed in the source's precision; rows must have the same size. Prints what train_temp prints.
     */
    public static void merge(StateDict source, Path file, ParameterLayout layout, float[] master, PrintWriter out) {
        out.println("Combine weights from " + file + "...");
        for (NamedTensor src : source) {
            Optional<ParamSpec> found = layout.find(src.name());
            if (found.isEmpty()) {
                throw new GoslingException(file + ": has '" + src.name() + "', which the new model lacks (train_temp prints 'missing' and stops); "
                        + "merge only checkpoints of the same architecture");
            }
            ParamSpec spec = found.get();
            float[] values = src.toFloats();
            int from = (int) spec.offset();
            if (values.length == spec.numel()) {
                for (int i = 0; i < values.length; i++) {
                    master[from + i] = Bf16.round(values[i]);
                }
                continue;
            }
            long[] target = squeeze(spec.shape());
            long[] given = src.shape();
            long dd = target.length == 0 ? 1 : target[0];
            long ss = given.length == 0 ? 1 : given[0];
            long rowTarget = spec.numel() / dd;
            long rowSource = src.numel() / ss;
            out.println(src.name() + " torch.Size(" + Arrays.toString(given) + ") --> torch.Size(" + Arrays.toString(spec.shape()) + ")");
            if (rowTarget != rowSource) {
                throw new GoslingException(file + ": '" + src.name() + "' of shape " + Arrays.toString(given) + " cannot be resized to "
                        + Arrays.toString(spec.shape()) + ": only the first dimension may differ");
            }
            int row = (int) rowTarget;
            for (long i = 0; i < dd; i++) {
                double pos = (double) i / dd * ss;
                int dst = (int) (from + i * row);
                if (pos >= ss - 1) {
                    int at = (int) ((ss - 1) * row);
                    for (int c = 0; c < row; c++) {
                        master[dst + c] = Bf16.round(values[at + c]);
                    }
                } else {
                    long p0 = (long) Math.floor(pos);
                    float w0 = (float) (1 - (pos - p0));
                    float w1 = (float) (pos - p0);
                    int a = (int) (p0 * row);
                    int b = (int) ((p0 + 1) * row);
                    for (int c = 0; c < row; c++) {
                        float x = round(src.dtype(), values[a + c] * w0);
                        float y = round(src.dtype(), values[b + c] * w1);
                        master[dst + c] = Bf16.round(round(src.dtype(), x + y));
                    }
                }
            }
        }
    }

    /** Rounds a float32 result to the tensor's precision (torch computes bf16/fp16 ops in float and rounds each result). */
    private static float round(DType dtype, float value) {
        return switch (dtype) {
            case BF16 -> FloatCodec.fromBf16Bits(FloatCodec.toBf16Bits(value));
            case F16 -> FloatCodec.fromF16Bits(FloatCodec.toF16Bits(value));
            default -> value;
        };
    }

    private static long[] squeeze(long[] shape) {
        return Arrays.stream(shape).filter(d -> d != 1).toArray();
    }

    /** Deletes temporary files that an interrupted atomic write left in proj_dir ({@code .rwkv-*.tmp}). */
    public static void removeStaleTemporaries(Path projDir) {
        if (!Files.isDirectory(projDir)) {
            return;
        }
        try (Stream<Path> files = Files.list(projDir)) {
            for (Path file : (Iterable<Path>) files::iterator) {
                String name = file.getFileName().toString();
                if (name.startsWith(".rwkv-") && name.endsWith(".tmp") || name.startsWith(".train_loss.png.") && name.endsWith(".tmp")) {
                    Files.deleteIfExists(file);
                }
            }
        } catch (IOException e) {
            throw new GoslingException(projDir + ": cannot list --proj_dir: " + e.getMessage());
        }
    }
}
