package dev.gosling.trainer.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.checkpoint.AtomicFiles;
import dev.gosling.trainer.model.ModelConfig;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.zip.CRC32C;

/**
 * What a {@code rwkv-N.pth} does not hold and an exact continuation needs, saved beside it as {@code rwkv-N.state}:
 * the fp32 master weights, AdamW's two moments and step count, the learning-rate schedule's step, and the data
 * position (miniepoch, step within it, the miniepoch's loss so far). train_temp restores weights only (§5.2); with a
 * matching .state Gosling continues bit for bit.
 * <p>
 * File layout, little-endian: the 8 bytes {@code GOSSTATE}, u32 version (1), u32 header length H, H bytes of UTF-8
 * JSON (the fields of this record), then P float32 master weights, P float32 first moments, P float32 second moments
 * (P = the model's parameter count, {@code ParameterLayout} order), then the CRC-32C of every preceding byte. Written
 * atomically; read back fully validated, every problem one line naming the file.
 *
 * @param checkpoint the file name of the .pth this state belongs to
 * @param model      the model (its ctx_len is the run's)
 * @param realBsz    the global batch in samples
 * @param magicPrime the sampler's prime
 * @param dataTokens tokens in the .bin the position refers to
 * @param position   where the run stands
 */
public record TrainState(String checkpoint, ModelConfig model, long realBsz, long magicPrime, long dataTokens, Position position) {
    private static final byte[] MAGIC = "GOSSTATE".getBytes(StandardCharsets.US_ASCII);
    private static final int VERSION = 1;
    private static final int PREFIX_BYTES = 16;
    private static final int CHUNK_FLOATS = 1 << 18;
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * Where a run stands after its last step.
     *
     * @param epoch              the miniepoch of the next step
     * @param stepInEpoch        the next step within that miniepoch (0 after a miniepoch's end)
     * @param globalStep         the schedule's process-local step (train_temp's global_step), continued on resume
     * @param scheduleEpochBegin the epoch_begin of the process that started the schedule (real_step = global_step +
     *                           scheduleEpochBegin·epoch_steps)
     * @param warmupSteps        the schedule's warmup, kept so a resume does not redo it
     * @param adamStep           AdamW's step count t (bias correction)
     * @param epochLossSum       sum of this miniepoch's step losses so far (train_log.txt's mean)
     * @param epochLossSteps     number of those steps
     */
    public record Position(long epoch, long stepInEpoch, long globalStep, long scheduleEpochBegin, int warmupSteps,
                           long adamStep, double epochLossSum, long epochLossSteps) {
    }

    /** A state read back with its three buffers (null when only validated). */
    public record Loaded(TrainState state, float[] master, float[] firstMoment, float[] secondMoment) {
    }

    /** {@code rwkv-N.pth} → {@code rwkv-N.state} in the same folder. */
    public static Path besides(Path checkpoint) {
        String name = checkpoint.getFileName().toString();
        String stem = name.endsWith(".pth") ? name.substring(0, name.length() - 4) : name;
        return checkpoint.resolveSibling(stem + ".state");
    }

    /** Writes this state with the three buffers, atomically. */
    public void write(Path file, float[] master, float[] firstMoment, float[] secondMoment) {
        long parameters = master.length;
        if (firstMoment.length != parameters || secondMoment.length != parameters) {
            throw new IllegalArgumentException("buffers of " + master.length + "/" + firstMoment.length + "/" + secondMoment.length + " floats");
        }
        byte[] header = headerJson(parameters).getBytes(StandardCharsets.UTF_8);
        AtomicFiles.write(file, channel -> {
            CRC32C crc = new CRC32C();
            ByteBuffer prefix = ByteBuffer.allocate(PREFIX_BYTES + header.length).order(ByteOrder.LITTLE_ENDIAN);
            prefix.put(MAGIC).putInt(VERSION).putInt(header.length).put(header).flip();
            crc.update(prefix.duplicate());
            writeFully(channel, prefix);
            ByteBuffer chunk = ByteBuffer.allocateDirect(CHUNK_FLOATS * 4).order(ByteOrder.LITTLE_ENDIAN);
            for (float[] values : new float[][] {master, firstMoment, secondMoment}) {
                for (int from = 0; from < values.length; from += CHUNK_FLOATS) {
                    int n = Math.min(CHUNK_FLOATS, values.length - from);
                    chunk.clear();
                    chunk.asFloatBuffer().put(values, from, n);
                    chunk.limit(n * 4);
                    crc.update(chunk.duplicate());
                    writeFully(channel, chunk);
                }
            }
            ByteBuffer tail = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
            tail.putInt((int) crc.getValue()).flip();
            writeFully(channel, tail);
        });
    }

    /** Reads and validates {@code file} completely (magic, version, header, size, checksum) and returns its buffers. */
    public static Loaded read(Path file) {
        return read(file, true);
    }

    /** Validates {@code file} completely like {@link #read(Path)} but keeps only the header (for inspect). */
    public static TrainState validate(Path file) {
        return read(file, false).state();
    }

    private static Loaded read(Path file, boolean keep) {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = channel.size();
            CRC32C crc = new CRC32C();
            ByteBuffer prefix = ByteBuffer.allocate(PREFIX_BYTES).order(ByteOrder.LITTLE_ENDIAN);
            if (size < PREFIX_BYTES + 4) {
                throw bad(file, "is " + size + " bytes, too short for a training state");
            }
            readFully(channel, prefix, file);
            prefix.flip();
            byte[] magic = new byte[MAGIC.length];
            prefix.get(magic);
            if (!Arrays.equals(magic, MAGIC)) {
                throw bad(file, "is not a Gosling training state (no GOSSTATE magic)");
            }
            int version = prefix.getInt();
            if (version != VERSION) {
                throw bad(file, "has state format version " + version + ", this gosling reads version " + VERSION);
            }
            int headerLength = prefix.getInt();
            if (headerLength <= 0 || headerLength > size - PREFIX_BYTES - 4) {
                throw bad(file, "has a header length of " + headerLength + " bytes, which does not fit the file");
            }
            prefix.flip();
            crc.update(prefix);
            ByteBuffer header = ByteBuffer.allocate(headerLength);
            readFully(channel, header, file);
            header.flip();
            crc.update(header.duplicate());
            TrainState state = parseHeader(file, new String(header.array(), StandardCharsets.UTF_8));
            long parameters = parameters(file, state);
            long expected = PREFIX_BYTES + headerLength + 12 * parameters + 4;
            if (size != expected) {
                throw bad(file, "is " + size + " bytes but its header promises " + expected + " (" + parameters
                        + " parameters); the file is truncated or damaged");
            }
            float[][] buffers = new float[3][];
            ByteBuffer chunk = ByteBuffer.allocateDirect(CHUNK_FLOATS * 4).order(ByteOrder.LITTLE_ENDIAN);
            for (int b = 0; b < 3; b++) {
                float[] values = keep ? new float[(int) parameters] : null;
                for (long from = 0; from < parameters; from += CHUNK_FLOATS) {
                    int n = (int) Math.min(CHUNK_FLOATS, parameters - from);
                    chunk.clear().limit(n * 4);
                    readFully(channel, chunk, file);
                    chunk.flip();
                    crc.update(chunk.duplicate());
                    if (values != null) {
                        chunk.asFloatBuffer().get(values, (int) from, n);
                    }
                }
                buffers[b] = values;
            }
            ByteBuffer tail = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
            readFully(channel, tail, file);
            tail.flip();
            if (tail.getInt() != (int) crc.getValue()) {
                throw bad(file, "fails its CRC-32C check (the file is damaged)");
            }
            return new Loaded(state, buffers[0], buffers[1], buffers[2]);
        } catch (NoSuchFileException e) {
            throw new GoslingException(file + ": no such file");
        } catch (IOException e) {
            throw new GoslingException(file + ": cannot read: " + AtomicFiles.describe(e));
        }
    }

    /**
     * Checks that this state can continue a run of {@code model} with this batch, sampler and data; one-line error
     * naming the first difference and what to do.
     */
    public void requireFits(Path file, ModelConfig runModel, long runRealBsz, long runMagicPrime, long runDataTokens) {
        if (!model.equals(runModel)) {
            throw bad(file, "was saved for " + describe(model) + ", but this run is " + describe(runModel)
                    + "; resume with the same model flags, or move the .state away to load the weights alone");
        }
        if (realBsz != runRealBsz || magicPrime != runMagicPrime || dataTokens != runDataTokens) {
            throw bad(file, "was saved at a data position of real_bsz " + realBsz + ", magic_prime " + magicPrime + ", "
                    + dataTokens + " data tokens, but this run has real_bsz " + runRealBsz + ", magic_prime " + runMagicPrime + ", "
                    + runDataTokens + " data tokens; resume with the same --micro_bsz/--magic_prime/--data_file, or move the .state"
                    + " away to load the weights alone (as train_temp does)");
        }
    }

    /** A multi-line description for {@code gosling inspect}. */
    public String describe() {
        Position p = position;
        return "checkpoint: " + checkpoint + System.lineSeparator()
                + "model: " + describe(model) + System.lineSeparator()
                + "data: real_bsz " + realBsz + ", magic_prime " + magicPrime + ", " + dataTokens + " tokens" + System.lineSeparator()
                + "position: miniepoch " + p.epoch() + " step " + p.stepInEpoch() + ", schedule step " + p.globalStep()
                + " (epoch_begin " + p.scheduleEpochBegin() + ", warmup " + p.warmupSteps() + "), AdamW step " + p.adamStep()
                + ", miniepoch loss so far " + (p.epochLossSteps() == 0 ? "-" : String.valueOf(p.epochLossSum() / p.epochLossSteps()))
                + " over " + p.epochLossSteps() + " steps" + System.lineSeparator();
    }

    private static String describe(ModelConfig m) {
        ModelConfig.LoraDims d = m.lora();
        return "L" + m.nLayer() + "-D" + m.nEmbd() + " vocab " + m.vocabSize() + " ctx_len " + m.ctxLen() + " ffn " + m.dimFfn()
                + " lora " + d.decay() + "/" + d.aaa() + "/" + d.mv() + "/" + d.gate();
    }

    private String headerJson(long parameters) {
        ObjectNode n = JSON.createObjectNode();
        n.put("format", "gosling-train-state");
        n.put("checkpoint", checkpoint);
        n.put("parameters", parameters);
        n.put("n_layer", model.nLayer());
        n.put("n_embd", model.nEmbd());
        n.put("vocab_size", model.vocabSize());
        n.put("head_size", model.headSize());
        n.put("ctx_len", model.ctxLen());
        n.put("dim_ffn", model.dimFfn());
        n.put("d_decay_lora", model.lora().decay());
        n.put("d_aaa_lora", model.lora().aaa());
        n.put("d_mv_lora", model.lora().mv());
        n.put("d_gate_lora", model.lora().gate());
        n.put("real_bsz", realBsz);
        n.put("magic_prime", magicPrime);
        n.put("data_tokens", dataTokens);
        n.put("epoch", position.epoch());
        n.put("step_in_epoch", position.stepInEpoch());
        n.put("global_step", position.globalStep());
        n.put("schedule_epoch_begin", position.scheduleEpochBegin());
        n.put("warmup_steps", position.warmupSteps());
        n.put("adam_step", position.adamStep());
        n.put("epoch_loss_sum", position.epochLossSum());
        n.put("epoch_loss_steps", position.epochLossSteps());
        return n.toString();
    }

    private static TrainState parseHeader(Path file, String text) {
        JsonNode n;
        try {
            n = JSON.readTree(text);
        } catch (IOException e) {
            throw bad(file, "has a header that is not JSON: " + AtomicFiles.describe(e));
        }
        if (n == null || !n.isObject() || !"gosling-train-state".equals(n.path("format").asText())) {
            throw bad(file, "has no gosling-train-state header");
        }
        JsonNode checkpoint = n.get("checkpoint");
        if (checkpoint == null || !checkpoint.isTextual()) {
            throw bad(file, "header lacks 'checkpoint'");
        }
        ModelConfig model;
        try {
            model = new ModelConfig(integer(file, n, "n_layer"), integer(file, n, "n_embd"), integer(file, n, "vocab_size"),
                    integer(file, n, "head_size"), integer(file, n, "ctx_len"), integer(file, n, "dim_ffn"),
                    new ModelConfig.LoraDims(integer(file, n, "d_decay_lora"), integer(file, n, "d_aaa_lora"),
                            integer(file, n, "d_mv_lora"), integer(file, n, "d_gate_lora")));
        } catch (GoslingException e) {
            if (e.getMessage().startsWith(file.toString())) {
                throw e;
            }
            throw bad(file, "describes an invalid model: " + e.getMessage());
        }
        Position position = new Position(lng(file, n, "epoch"), lng(file, n, "step_in_epoch"), lng(file, n, "global_step"),
                lng(file, n, "schedule_epoch_begin"), integer(file, n, "warmup_steps"), lng(file, n, "adam_step"),
                dbl(file, n, "epoch_loss_sum"), lng(file, n, "epoch_loss_steps"));
        if (position.epoch() < 0 || position.stepInEpoch() < 0 || position.globalStep() < 0 || position.scheduleEpochBegin() < 0
                || position.adamStep() < 0 || position.epochLossSteps() < 0 || position.epochLossSteps() > position.stepInEpoch()) {
            throw bad(file, "has an impossible position " + position);
        }
        TrainState state = new TrainState(checkpoint.asText(), model, lng(file, n, "real_bsz"), lng(file, n, "magic_prime"),
                lng(file, n, "data_tokens"), position);
        long parameters = lng(file, n, "parameters");
        if (parameters != parameters(file, state)) {
            throw bad(file, "says " + parameters + " parameters but its model has " + parameters(file, state));
        }
        return state;
    }

    private static long parameters(Path file, TrainState state) {
        long p = new dev.gosling.trainer.model.ParameterLayout(state.model()).totalElements();
        if (p > Integer.MAX_VALUE - 8) {
            throw bad(file, "holds " + p + " parameters, more than a Java array (this CPU trainer) can hold");
        }
        return p;
    }

    private static long lng(Path file, JsonNode n, String key) {
        JsonNode v = n.get(key);
        if (v == null || !v.isIntegralNumber() || !v.canConvertToLong()) {
            throw bad(file, "header field '" + key + "' is missing or not an integer");
        }
        return v.asLong();
    }

    private static int integer(Path file, JsonNode n, String key) {
        long v = lng(file, n, key);
        if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
            throw bad(file, "header field '" + key + "' is out of range: " + v);
        }
        return (int) v;
    }

    private static double dbl(Path file, JsonNode n, String key) {
        JsonNode v = n.get(key);
        if (v == null || !v.isNumber()) {
            throw bad(file, "header field '" + key + "' is missing or not a number");
        }
        return v.asDouble();
    }

    private static GoslingException bad(Path file, String what) {
        return new GoslingException(file + ": " + what);
    }

    private static void writeFully(FileChannel channel, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
    }

    private static void readFully(FileChannel channel, ByteBuffer buffer, Path file) throws IOException {
        while (buffer.hasRemaining()) {
            if (channel.read(buffer) < 0) {
                throw bad(file, "ends early (truncated)");
            }
        }
    }
}
