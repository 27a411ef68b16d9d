package dev.gosling.trainer.model;

import dev.gosling.trainer.GoslingException;

import java.util.Arrays;
import java.util.Map;

/**
 * The shape of an RWKV-7 (x070) model (rwkv7-reference.md §6.2). Validated on construction, immutable.
 *
 * @param nLayer    L, at least 2 (the init divides by L−1; web-rwkv reads {@code blocks.1})
 * @param nEmbd     C, a positive multiple of 64
 * @param vocabSize V
 * @param headSize  64: the WKV kernel and the fused kernels hard-code it
 * @param ctxLen    T, a positive multiple of 16 (the WKV kernel saves its state every 16 steps)
 * @param dimFfn    the FFN hidden size; x070 hard-codes 4·C, other values come only from foreign checkpoints
 * @param lora      the four LoRA ranks (decay, a, value-residual, gate)
 */
public record ModelConfig(int nLayer, int nEmbd, int vocabSize, int headSize, int ctxLen, int dimFfn, LoraDims lora) {

    /** The world tokenizer's vocabulary size, the default. */
    public static final int WORLD_VOCAB_SIZE = 65536;
    public static final int HEAD_SIZE = 64;

    /**
     * The LoRA ranks of the time mix: D_DECAY (w1/w2), D_AAA (a1/a2), D_MV (v1/v2), D_GATE (g1/g2).
     * Released models use other values than the current formula, so these are data, not derived.
     */
    public record LoraDims(int decay, int aaa, int mv, int gate) {
        public LoraDims {
            if (decay <= 0 || aaa <= 0 || mv <= 0 || gate <= 0) {
                throw new GoslingException("LoRA dims must be positive, got decay " + decay + ", aaa " + aaa + ", mv " + mv
                        + ", gate " + gate + "; set d_decay_lora/d_aaa_lora/d_mv_lora/d_gate_lora or leave them 0 for the formula");
            }
        }

        /** train_temp since 2025-07-06: max(32, round(k·√C/32)·32) with k = 2.5, 2.5, 1.7, 5 (Python round: half to even). */
        public static LoraDims current(int nEmbd) {
            double root = Math.sqrt(nEmbd);
            return new LoraDims(roundTo32(2.5 * root), roundTo32(2.5 * root), roundTo32(1.7 * root), roundTo32(5.0 * root));
        }

        /** RWKV-v5 x070 and train_temp before 2025-07-06: 1.8·√C, 1.8·√C, 1.3·√C, 0.6·C^0.8. */
        public static LoraDims legacy(int nEmbd) {
            double root = Math.sqrt(nEmbd);
            return new LoraDims(roundTo32(1.8 * root), roundTo32(1.8 * root), roundTo32(1.3 * root),
                    roundTo32(0.6 * Math.pow(nEmbd, 0.8)));
        }

        private static int roundTo32(double x) {
            return Math.max(32, (int) (Math.rint(x / 32.0) * 32.0));
        }
    }

    public ModelConfig {
        if (lora == null) {
            throw new GoslingException("ModelConfig: LoRA dims missing; use ModelConfig.of(...) for the current formula");
        }
        if (nLayer < 2) {
            throw new GoslingException("--n_layer " + nLayer + ": RWKV-7 needs at least 2 layers (the init divides by n_layer-1); use 2 or more");
        }
        if (nEmbd <= 0 || nEmbd % 64 != 0) {
            throw new GoslingException("--n_embd " + nEmbd + " is not a positive multiple of 64 (head size 64 is hard-coded); use e.g. "
                    + Math.max(64, (nEmbd + 63) / 64 * 64));
        }
        if (headSize != HEAD_SIZE) {
            throw new GoslingException("--head_size " + headSize + ": the RWKV-7 kernels support only 64; use --head_size 64");
        }
        if (vocabSize <= 0) {
            throw new GoslingException("--vocab_size " + vocabSize + " must be positive; the world tokenizer has 65536");
        }
        if (ctxLen <= 0 || ctxLen % 16 != 0) {
            throw new GoslingException("--ctx_len " + ctxLen + " is not a positive multiple of 16 (the WKV kernel saves its state every 16 steps); use e.g. "
                    + Math.max(16, (ctxLen + 15) / 16 * 16));
        }
        if (dimFfn <= 0 || dimFfn % 32 != 0) {
            throw new GoslingException("dim_ffn " + dimFfn + " is not a positive multiple of 32; x070 uses 4*n_embd = " + 4L * nEmbd);
        }
    }

    /** A model as train_temp builds it today: head size 64, FFN 4·C, LoRA dims from the current formula. */
    public static ModelConfig of(int nLayer, int nEmbd, int vocabSize, int ctxLen) {
        checkEmbd(nEmbd);
        return new ModelConfig(nLayer, nEmbd, vocabSize, HEAD_SIZE, ctxLen, 4 * nEmbd, LoraDims.current(nEmbd));
    }

    /** The same model with explicit LoRA dims (to produce checkpoints shaped like a released model). */
    public ModelConfig withLora(LoraDims dims) {
        return new ModelConfig(nLayer, nEmbd, vocabSize, headSize, ctxLen, dimFfn, dims);
    }

    /** H = C / 64. */
    public int nHead() {
        return nEmbd / headSize;
    }

    /**
     * The config of a state dict, from its tensor shapes (name → shape): C and V from {@code emb.weight}, L from the
     * highest block index, H from {@code blocks.0.att.r_k}, the LoRA dims from w1/a1/g1 and v1 (layer 1, as web-rwkv
     * reads it), the FFN size from {@code ffn.key.weight}. Then every tensor is checked against the resulting layout.
     * ctx_len is not stored in a checkpoint, so the caller gives it.
     */
    public static ModelConfig inferFromShapes(Map<String, long[]> shapes, int ctxLen) {
        long[] emb = requireShape(shapes, "emb.weight", 2);
        int nLayer = -1;
        for (String name : shapes.keySet()) {
            if (name.startsWith("blocks.")) {
                int end = name.indexOf('.', 7);
                try {
                    nLayer = Math.max(nLayer, Integer.parseInt(name.substring(7, end < 0 ? name.length() : end)) + 1);
                } catch (NumberFormatException e) {
                    throw new GoslingException("state dict key '" + name + "' has no layer number after 'blocks.'; is this an RWKV-7 checkpoint?");
                }
            }
        }
        if (nLayer < 0) {
            throw new GoslingException("state dict has no 'blocks.N.' keys; is this an RWKV-7 checkpoint?");
        }
        long[] rk = requireShape(shapes, "blocks.0.att.r_k", 2);
        long[] w1 = requireShape(shapes, "blocks.0.att.w1", 2);
        long[] a1 = requireShape(shapes, "blocks.0.att.a1", 2);
        long[] g1 = requireShape(shapes, "blocks.0.att.g1", 2);
        long[] v1 = requireShape(shapes, nLayer > 1 ? "blocks.1.att.v1" : "blocks.0.att.v1", 2);
        long[] ffnKey = requireShape(shapes, "blocks.0.ffn.key.weight", 2);
        if (rk[0] * rk[1] != emb[1]) {
            throw new GoslingException("state dict: blocks.0.att.r_k has shape " + Arrays.toString(rk) + " but emb.weight has n_embd "
                    + emb[1] + "; expected [n_embd/64, 64]");
        }
        ModelConfig config = new ModelConfig(nLayer, toInt(emb[1], "emb.weight"), toInt(emb[0], "emb.weight"), toInt(rk[1], "blocks.0.att.r_k"),
                ctxLen, toInt(ffnKey[0], "blocks.0.ffn.key.weight"),
                new LoraDims(toInt(w1[1], "blocks.0.att.w1"), toInt(a1[1], "blocks.0.att.a1"), toInt(v1[1], "att.v1 (LoRA dim D_MV)"),
                        toInt(g1[1], "blocks.0.att.g1")));
        new ParameterLayout(config).checkShapes(shapes, "state dict");
        return config;
    }

    private static void checkEmbd(int nEmbd) {
        if (nEmbd <= 0 || nEmbd % 64 != 0) {
            throw new GoslingException("--n_embd " + nEmbd + " is not a positive multiple of 64 (head size 64 is hard-coded); use e.g. "
                    + Math.max(64, (nEmbd + 63) / 64 * 64));
        }
    }

    private static long[] requireShape(Map<String, long[]> shapes, String name, int rank) {
        long[] shape = shapes.get(name);
        if (shape == null) {
            throw new GoslingException("state dict has no '" + name + "'; an RWKV-7 (x070) checkpoint needs it");
        }
        if (shape.length != rank) {
            throw new GoslingException("state dict: '" + name + "' has shape " + Arrays.toString(shape) + ", expected " + rank + " dimensions");
        }
        return shape;
    }

    private static int toInt(long value, String name) {
        if (value <= 0 || value > Integer.MAX_VALUE) {
            throw new GoslingException("state dict: '" + name + "' has a dimension " + value + " out of range");
        }
        return (int) value;
    }
}
