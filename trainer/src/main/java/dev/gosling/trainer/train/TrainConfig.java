package dev.gosling.trainer.train;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.data.MagicPrimeSampler;
import dev.gosling.trainer.dist.Strategy;
import dev.gosling.trainer.model.ModelConfig;
import dev.gosling.trainer.model.ParameterLayout;
import dev.gosling.trainer.optim.AdamW;
import dev.gosling.trainer.optim.LrSchedule;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The training run's settings, under RWKV-LM train_temp's flag names and defaults (rwkv7-reference.md §5.1), with the
 * values train.py derives (dim_att, dim_ffn, epoch_steps, epoch_count) already applied. Built once from a flat
 * name → value map (YAML and CLI flags both feed it), validated once, immutable.
 * <p>
 * Deviations from train.py, each because its default cannot run: {@code data_type} defaults to binidx (train_temp
 * asserts it) and {@code vocab_size} to 65536 (the world tokenizer; 0 breaks the model). The Lightning flags default
 * to the demo's {@code gpu, 1, 1, bf16, deepspeed_stage_2}. {@code d_decay_lora … d_gate_lora} are Gosling's
 * (train_temp's D_*_LORA variables): 0 takes the current formula, a positive value shapes the model like a release.
 * {@code keep} is Gosling's too: with {@code grad_cp 0}, 1 … 4 keep more of each layer's activations for the backward
 * pass instead of recomputing them (the levels: {@code Rwkv7Model.MAX_KEEP}; 1 relu²'s output, one C → 4C GEMM and a
 * relu² a layer less for B·T·4C more bf16 elements a layer); the gradients are the same. With {@code grad_cp 1}, which keeps
 * no layer's tensors, a nonzero keep is refused.
 */
public record TrainConfig(
        String loadModel, String projDir, long randomSeed, String dataFile, String dataType, int vocabSize,
        int ctxLen, int epochSteps, long epochCount, int epochBegin, int epochSave, int microBsz,
        int nLayer, int nEmbd, int dimAtt, int dimFfn,
        double lrInit, double lrFinal, int warmupSteps, double beta1, double beta2, double adamEps,
        double weightDecay, double gradClip,
        int gradCp, int keep, int trainStage, int dsBucketMb, int headSize, int headChunk, String myTesting, String kernel,
        long magicPrime, long myExitTokens,
        String accelerator, int devices, int numNodes, String precision, String strategy,
        String wandb, int loadPartial,
        int dDecayLora, int dAaaLora, int dMvLora, int dGateLora) {

    /** A miniepoch: 40320 = 8! samples. */
    public static final int MINIEPOCH_SAMPLES = 40320;

    /** Every accepted key with its default, in train.py's order. */
    public static final Map<String, String> DEFAULTS;

    static {
        Map<String, String> d = new LinkedHashMap<>();
        d.put("load_model", "");
        d.put("proj_dir", "out");
        d.put("random_seed", "-1");
        d.put("data_file", "");
        d.put("data_type", "binidx");
        d.put("vocab_size", "65536");
        d.put("ctx_len", "1024");
        d.put("epoch_steps", "1000");
        d.put("epoch_count", "500");
        d.put("epoch_begin", "0");
        d.put("epoch_save", "5");
        d.put("micro_bsz", "12");
        d.put("n_layer", "6");
        d.put("n_embd", "512");
        d.put("dim_att", "0");
        d.put("dim_ffn", "0");
        d.put("lr_init", "6e-4");
        d.put("lr_final", "1e-5");
        d.put("warmup_steps", "-1");
        d.put("beta1", "0.9");
        d.put("beta2", "0.99");
        d.put("adam_eps", "1e-18");
        d.put("weight_decay", "0");
        d.put("grad_clip", "1.0");
        d.put("grad_cp", "0");
        d.put("keep", "0");
        d.put("train_stage", "0");
        d.put("ds_bucket_mb", "200");
        d.put("head_size", "64");
        d.put("head_chunk", "0");
        d.put("my_testing", "x070");
        d.put("kernel", "");
        d.put("magic_prime", "0");
        d.put("my_exit_tokens", "0");
        d.put("accelerator", "gpu");
        d.put("devices", "1");
        d.put("num_nodes", "1");
        d.put("precision", "bf16");
        d.put("strategy", "deepspeed_stage_2");
        d.put("wandb", "");
        d.put("load_partial", "0");
        d.put("d_decay_lora", "0");
        d.put("d_aaa_lora", "0");
        d.put("d_mv_lora", "0");
        d.put("d_gate_lora", "0");
        DEFAULTS = Collections.unmodifiableMap(d);
    }

    private static final Pattern INTEGER = Pattern.compile("[+-]?\\d+");
    private static final Pattern DECIMAL = Pattern.compile("[+-]?(\\d+\\.?\\d*|\\.\\d+)([eE][+-]?\\d+)?");

    /**
     * The config from {@code flags} (keys are the flag names without dashes; absent keys take their default),
     * derived values applied, validated. Unknown keys and malformed values are one-line errors naming the key.
     */
    public static TrainConfig fromMap(Map<String, String> flags) {
        for (String key : flags.keySet()) {
            if (!DEFAULTS.containsKey(key)) {
                String near = nearestKey(key, DEFAULTS.keySet());
                throw new GoslingException("unknown training option '" + key + "'"
                        + (near == null ? "" : " (did you mean '" + near + "'?)") + "; the options are train_temp's flag names");
            }
        }
        Values in = new Values(flags);
        int nEmbd = in.integer("n_embd");
        int dimAtt = in.integer("dim_att");
        int dimFfn = in.integer("dim_ffn");
        int microBsz = in.integer("micro_bsz");
        int devices = in.integer("devices");
        int numNodes = in.integer("num_nodes");
        long magicPrime = in.lng("magic_prime");
        long realBsz = (long) numNodes * devices * microBsz;
        TrainConfig config = new TrainConfig(
                in.str("load_model"), in.str("proj_dir"), in.lng("random_seed"), in.str("data_file"), in.str("data_type"),
                in.integer("vocab_size"), in.integer("ctx_len"),
                // train.py overrides these two: a miniepoch is 40320 samples, the run is one pass over p chunks.
                realBsz > 0 ? (int) (MINIEPOCH_SAMPLES / realBsz) : 0, magicPrime / MINIEPOCH_SAMPLES,
                in.integer("epoch_begin"), in.integer("epoch_save"), microBsz,
                in.integer("n_layer"), nEmbd, dimAtt <= 0 ? nEmbd : dimAtt, dimFfn <= 0 ? 4 * nEmbd : dimFfn,
                in.dbl("lr_init"), in.dbl("lr_final"), in.integer("warmup_steps"), in.dbl("beta1"), in.dbl("beta2"),
                in.dbl("adam_eps"), in.dbl("weight_decay"), in.dbl("grad_clip"),
                in.integer("grad_cp"), in.integer("keep"), in.integer("train_stage"), in.integer("ds_bucket_mb"), in.integer("head_size"),
                in.integer("head_chunk"), in.str("my_testing"), in.str("kernel"),
                magicPrime, in.lng("my_exit_tokens"),
                in.str("accelerator"), devices, numNodes, in.str("precision"), in.str("strategy"),
                in.str("wandb"), in.integer("load_partial"),
                in.integer("d_decay_lora"), in.integer("d_aaa_lora"), in.integer("d_mv_lora"), in.integer("d_gate_lora"));
        config.validate();
        return config;
    }

    /** All defaults, validated as a prepare run (train_stage 1) would be. */
    public static TrainConfig defaults() {
        return fromMap(Map.of("train_stage", "1"));
    }

    /** real_bsz = num_nodes·devices·micro_bsz, the global batch in samples. */
    public long realBsz() {
        return (long) numNodes * devices * microBsz;
    }

    /** Whether this run only writes rwkv-init.pth and stops (train_stage 1). */
    public boolean preparesInitOnly() {
        return trainStage == 1;
    }

    /**
     * Checks everything train.py asserts and what would fail later, first error first, each one line naming the flag.
     * A training run (train_stage ≠ 1) also needs the data: magic_prime, my_exit_tokens and the binidx files.
     */
    public void validate() {
        if (!dataType.equals("binidx")) {
            fail("--data_type " + dataType + ": train_temp reads only binidx; convert the data with `gosling prepare` and pass --data_type binidx");
        }
        if (!myTesting.equals("x070")) {
            fail("--my_testing " + myTesting + ": only the RWKV-7 model x070 is implemented; use --my_testing x070");
        }
        if (nLayer < 2) {
            fail("--n_layer " + nLayer + ": RWKV-7 needs at least 2 layers (the init divides by n_layer-1); use 2 or more");
        }
        if (nEmbd <= 0 || nEmbd % 64 != 0) {
            fail("--n_embd " + nEmbd + " is not a positive multiple of 64 (the head size 64 is hard-coded); use e.g. " + roundUp(nEmbd, 64));
        }
        if (headSize != ModelConfig.HEAD_SIZE) {
            fail("--head_size " + headSize + ": the RWKV-7 kernels support only 64; use --head_size 64");
        }
        if (dimAtt != nEmbd) {
            fail("--dim_att " + dimAtt + ": x070 needs dim_att = n_embd (" + nEmbd + "); leave it 0");
        }
        if (dimFfn != 4 * nEmbd) {
            fail("--dim_ffn " + dimFfn + ": x070 hard-codes the FFN as 4*n_embd (" + 4 * nEmbd + "); leave it 0");
        }
        if (vocabSize <= 0) {
            fail("--vocab_size " + vocabSize + " must be positive; the world tokenizer has 65536");
        }
        if (ctxLen <= 0 || ctxLen % 16 != 0) {
            fail("--ctx_len " + ctxLen + " is not a positive multiple of 16 (the WKV kernel saves its state every 16 steps); use e.g. "
                    + roundUp(ctxLen, 16));
        }
        if (dDecayLora < 0 || dAaaLora < 0 || dMvLora < 0 || dGateLora < 0) {
            fail("--d_decay_lora/--d_aaa_lora/--d_mv_lora/--d_gate_lora must be >= 0 (0 takes train_temp's formula)");
        }
        if (microBsz < 1) {
            fail("--micro_bsz " + microBsz + " must be at least 1");
        }
        if (devices < 1) {
            fail("--devices " + devices + " must be at least 1 (GPUs per node)");
        }
        if (numNodes < 1) {
            fail("--num_nodes " + numNodes + " must be at least 1");
        }
        if (MINIEPOCH_SAMPLES % realBsz() != 0) {
            fail("global batch num_nodes*devices*micro_bsz = " + numNodes + "*" + devices + "*" + microBsz + " = " + realBsz()
                    + " does not divide 40320 (a miniepoch); change --micro_bsz so that it does (40320 = 2^7*3^2*5*7)");
        }
        if (!(lrInit > 0)) {
            fail("--lr_init " + lrInit + " must be > 0");
        }
        if (!(lrFinal >= 0)) {
            fail("--lr_final " + lrFinal + " must be >= 0");
        }
        if (!(beta1 >= 0 && beta1 < 1)) {
            fail("--beta1 " + beta1 + " must be in [0, 1); train_temp uses 0.9");
        }
        if (!(beta2 >= 0 && beta2 < 1)) {
            fail("--beta2 " + beta2 + " must be in [0, 1); train_temp uses 0.99");
        }
        if (!(adamEps > 0)) {
            fail("--adam_eps " + adamEps + " must be > 0; train_temp uses 1e-18");
        }
        if (!(weightDecay >= 0)) {
            fail("--weight_decay " + weightDecay + " must be >= 0");
        }
        if (!(gradClip >= 0)) {
            fail("--grad_clip " + gradClip + " must be >= 0 (0 turns clipping off)");
        }
        if (epochBegin < 0) {
            fail("--epoch_begin " + epochBegin + " must be >= 0");
        }
        if (epochSave < 1) {
            fail("--epoch_save " + epochSave + " must be at least 1 (miniepochs between checkpoints)");
        }
        if (trainStage < 0) {
            fail("--train_stage " + trainStage + " must be 0 (train), 1 (write rwkv-init.pth) or >= 2 (train with auto-resume)");
        }
        if (gradCp != 0 && gradCp != 1) {
            fail("--grad_cp " + gradCp + " must be 0 or 1");
        }
        if (keep < 0 || keep > dev.gosling.trainer.model.Rwkv7Model.MAX_KEEP) {
            fail("--keep " + keep + " must be 0 (recompute what the backward pass can) to "
                    + dev.gosling.trainer.model.Rwkv7Model.MAX_KEEP + " (keep it all per layer): "
                    + dev.gosling.trainer.model.Rwkv7Model.KEEP_LEVELS);
        }
        if (keep != 0 && gradCp != 0) {
            fail("--keep " + keep + " with --grad_cp 1: grad_cp recomputes every block and keeps no layer's tensors; use"
                    + " --keep 0 with --grad_cp 1 (least memory), or --grad_cp 0 with --keep (fastest)");
        }
        if (loadPartial != 0 && loadPartial != 1) {
            fail("--load_partial " + loadPartial + " must be 0 or 1");
        }
        if (headChunk < 0) {
            fail("--head_chunk " + headChunk + " must be >= 0");
        }
        if (dsBucketMb < 1) {
            fail("--ds_bucket_mb " + dsBucketMb + " must be at least 1");
        }
        if (randomSeed < -1) {
            fail("--random_seed " + randomSeed + " must be -1 (unset) or >= 0");
        }
        if (!List.of("auto", "gpu", "cpu").contains(accelerator)) {
            fail("--accelerator " + accelerator + " is not supported; use auto, gpu or cpu");
        }
        Strategy.parse(strategy);
        if (!List.of("bf16", "fp32", "tf32").contains(precision)) {
            fail("--precision " + precision + " is not supported; use bf16 (as train_temp's runs), fp32 or tf32");
        }
        if (projDir.isEmpty()) {
            fail("--proj_dir is empty; give the directory for checkpoints and train_log.txt");
        }
        if (preparesInitOnly()) {
            return;
        }
        MagicPrimeSampler.requireUsablePrime(magicPrime);
        if (myExitTokens <= 0) {
            fail("--my_exit_tokens " + myExitTokens + " must be positive (train_temp's cosine schedule needs it); pass the data's token count");
        }
        if (dataFile.isEmpty()) {
            fail("--data_file is empty; give the binidx prefix (path without .bin/.idx), e.g. --data_file data/minipile");
        }
        for (String ext : new String[] {".bin", ".idx"}) {
            if (!Files.isRegularFile(Path.of(dataFile + ext))) {
                fail("--data_file " + dataFile + ": " + dataFile + ext + " not found; give the binidx prefix without extension");
            }
        }
    }

    /** The model this run trains: LoRA dims given as 0 take the current formula. */
    public ModelConfig modelConfig() {
        ModelConfig.LoraDims formula = ModelConfig.LoraDims.current(nEmbd);
        ModelConfig.LoraDims dims = new ModelConfig.LoraDims(
                dDecayLora > 0 ? dDecayLora : formula.decay(), dAaaLora > 0 ? dAaaLora : formula.aaa(),
                dMvLora > 0 ? dMvLora : formula.mv(), dGateLora > 0 ? dGateLora : formula.gate());
        return new ModelConfig(nLayer, nEmbd, vocabSize, headSize, ctxLen, dimFfn, dims);
    }

    /** The learning-rate schedule of §5.3 for this run. */
    public LrSchedule lrSchedule() {
        return new LrSchedule(lrInit, lrFinal, ctxLen, realBsz(), warmupSteps, myExitTokens, epochBegin, epochSteps);
    }

    /** The optimizer of §5.4 over {@code layout}. */
    public AdamW adamW(ParameterLayout layout) {
        return new AdamW(layout, beta1, beta2, adamEps, weightDecay, gradClip);
    }

    /** The sampler of §4 over a .bin of {@code dataTokens} tokens (checks magic_prime against the data). */
    public MagicPrimeSampler sampler(long dataTokens) {
        return new MagicPrimeSampler(magicPrime, ctxLen, dataTokens, epochSteps, realBsz());
    }

    /**
     * The config after auto-resume found {@code checkpoint} (§5.2): {@code lastMiniepoch} is its number, −1 for
     * rwkv-init.pth. epoch_begin becomes lastMiniepoch+1; resuming from a trained checkpoint redoes a 10-step warmup
     * when warmup_steps was negative (the Adam moments start again from zero).
     */
    public TrainConfig resumedFrom(String checkpoint, int lastMiniepoch) {
        Map<String, String> flags = new LinkedHashMap<>(asFlags());
        flags.put("load_model", checkpoint);
        flags.put("epoch_begin", Integer.toString(lastMiniepoch + 1));
        if (lastMiniepoch >= 0 && warmupSteps < 0) {
            flags.put("warmup_steps", "10");
        }
        return fromMap(flags);
    }

    /** Every option as flag name → value, in train.py's order (for train_log.txt's "NEW RUN" line). */
    public Map<String, String> asFlags() {
        Map<String, String> f = new LinkedHashMap<>();
        f.put("load_model", loadModel);
        f.put("proj_dir", projDir);
        f.put("random_seed", Long.toString(randomSeed));
        f.put("data_file", dataFile);
        f.put("data_type", dataType);
        f.put("vocab_size", Integer.toString(vocabSize));
        f.put("ctx_len", Integer.toString(ctxLen));
        f.put("epoch_steps", Integer.toString(epochSteps));
        f.put("epoch_count", Long.toString(epochCount));
        f.put("epoch_begin", Integer.toString(epochBegin));
        f.put("epoch_save", Integer.toString(epochSave));
        f.put("micro_bsz", Integer.toString(microBsz));
        f.put("n_layer", Integer.toString(nLayer));
        f.put("n_embd", Integer.toString(nEmbd));
        f.put("dim_att", Integer.toString(dimAtt));
        f.put("dim_ffn", Integer.toString(dimFfn));
        f.put("lr_init", Double.toString(lrInit));
        f.put("lr_final", Double.toString(lrFinal));
        f.put("warmup_steps", Integer.toString(warmupSteps));
        f.put("beta1", Double.toString(beta1));
        f.put("beta2", Double.toString(beta2));
        f.put("adam_eps", Double.toString(adamEps));
        f.put("weight_decay", Double.toString(weightDecay));
        f.put("grad_clip", Double.toString(gradClip));
        f.put("grad_cp", Integer.toString(gradCp));
        f.put("keep", Integer.toString(keep));
        f.put("train_stage", Integer.toString(trainStage));
        f.put("ds_bucket_mb", Integer.toString(dsBucketMb));
        f.put("head_size", Integer.toString(headSize));
        f.put("head_chunk", Integer.toString(headChunk));
        f.put("my_testing", myTesting);
        f.put("kernel", kernel);
        f.put("magic_prime", Long.toString(magicPrime));
        f.put("my_exit_tokens", Long.toString(myExitTokens));
        f.put("accelerator", accelerator);
        f.put("devices", Integer.toString(devices));
        f.put("num_nodes", Integer.toString(numNodes));
        f.put("precision", precision);
        f.put("strategy", strategy);
        f.put("wandb", wandb);
        f.put("load_partial", Integer.toString(loadPartial));
        f.put("d_decay_lora", Integer.toString(dDecayLora));
        f.put("d_aaa_lora", Integer.toString(dAaaLora));
        f.put("d_mv_lora", Integer.toString(dMvLora));
        f.put("d_gate_lora", Integer.toString(dGateLora));
        return f;
    }

    private static void fail(String message) {
        throw new GoslingException(message);
    }

    private static int roundUp(int value, int multiple) {
        return Math.max(multiple, (value + multiple - 1) / multiple * multiple);
    }

    /** The closest of {@code candidates} to {@code key} within edit distance 3 (dashes read as underscores), or null. */
    static String nearestKey(String key, Iterable<String> candidates) {
        String best = null;
        int bestDistance = 4;
        for (String candidate : candidates) {
            int d = editDistance(key.replace('-', '_').toLowerCase(java.util.Locale.ROOT), candidate);
            if (d < bestDistance) {
                bestDistance = d;
                best = candidate;
            }
        }
        return best;
    }

    private static int editDistance(String a, String b) {
        int[] previous = new int[b.length() + 1];
        int[] current = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            previous[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            current[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int substitute = previous[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
                current[j] = Math.min(substitute, Math.min(previous[j] + 1, current[j - 1] + 1));
            }
            int[] swap = previous;
            previous = current;
            current = swap;
        }
        return previous[b.length()];
    }

    /** Raw values with the defaults underneath, parsed by type with one-line errors. */
    private static final class Values {
        private final Map<String, String> flags;

        Values(Map<String, String> flags) {
            this.flags = flags;
        }

        String str(String key) {
            String value = flags.get(key);
            return value == null ? DEFAULTS.get(key) : value.strip();
        }

        long lng(String key) {
            String value = str(key);
            if (!INTEGER.matcher(value).matches()) {
                throw new GoslingException("--" + key + " '" + value + "' is not an integer");
            }
            try {
                return Long.parseLong(value);
            } catch (NumberFormatException e) {
                throw new GoslingException("--" + key + " '" + value + "' is out of range for an integer");
            }
        }

        int integer(String key) {
            long value = lng(key);
            if (value < Integer.MIN_VALUE || value > Integer.MAX_VALUE) {
                throw new GoslingException("--" + key + " " + value + " is out of range (at most " + Integer.MAX_VALUE + ")");
            }
            return (int) value;
        }

        double dbl(String key) {
            String value = str(key);
            if (!DECIMAL.matcher(value).matches()) {
                throw new GoslingException("--" + key + " '" + value + "' is not a number");
            }
            return Double.parseDouble(value);
        }
    }
}
