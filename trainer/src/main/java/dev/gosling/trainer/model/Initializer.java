package dev.gosling.trainer.model;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * The initial weights of train_temp (RWKV.__init__ followed by generate_init_weight, rwkv7-reference.md §6.5).
 * <p>
 * Deterministic tensors (x_*, w0, a0, v0, k_k, k_a, r_k, ln_x.weight, LayerNorms, zeros) follow the reference's float32
 * arithmetic exactly: scalar formulas in double, stored as float32, tensor ops in float32 left to right. Random
 * tensors (orthogonal matrices, the ±1e-4 uniform embedding) have the reference's distributions but come from a
 * {@link SplittableRandom} seeded per tensor from {@code seed} and the tensor's name, so each tensor's values do not
 * depend on the layout order or the thread count.
 */
public final class Initializer {
    private static final float EMB_BOUND = 1e-4f;

    private final ParameterLayout layout;
    private final long seed;

    public Initializer(ParameterLayout layout, long seed) {
        this.layout = layout;
        this.seed = seed;
    }

    /** The seed every random tensor derives from (record it with the run). */
    public long seed() {
        return seed;
    }

    public ParameterLayout layout() {
        return layout;
    }

    /**
     * Writes every parameter into the contiguous buffer, rounded to bf16 as the reference's {@code rwkv-init.pth}
     * holds them (the official run always trains from that bf16 file). Tensors are initialised in parallel.
     */
    public void initialize(float[] params) {
        if (params.length != layout.totalElements()) {
            throw new IllegalArgumentException("buffer has " + params.length + " floats, layout needs " + layout.totalElements());
        }
        List<ParamSpec> specs = layout.params();
        IntStream.range(0, specs.size()).parallel().forEach(i -> {
            ParamSpec spec = specs.get(i);
            int from = (int) spec.offset();
            fill(spec, params, from);
            for (int k = from; k < from + spec.numel(); k++) {
                params[k] = Bf16.round(params[k]);
            }
        });
    }

    /** One tensor's float32 init (before the bf16 rounding), written at {@code dst[offset …]}. */
    public void fill(ParamSpec spec, float[] dst, int offset) {
        ModelConfig cfg = layout.config();
        int c = cfg.nEmbd();
        int n = (int) spec.numel();
        String name = spec.name();
        String local = spec.layer() < 0 ? name : name.substring(name.indexOf('.', "blocks.".length()) + 1);
        int layer = spec.layer();
        double ratio1ToAlmost0 = 1.0 - (double) layer / cfg.nLayer();
        double ratio0To1 = (double) layer / (cfg.nLayer() - 1);
        switch (local) {
            case "emb.weight" -> uniform(random(name), dst, offset, n);
            case "head.weight" -> {
                double gain = cfg.vocabSize() > c ? 0.5 * Math.sqrt((double) cfg.vocabSize() / c) : 0.5;
                orthogonal(spec, gain, dst, offset);
            }
            case "ln0.weight", "ln1.weight", "ln2.weight", "ln_out.weight" -> Arrays.fill(dst, offset, offset + n, 1f);
            case "ln0.bias", "ln1.bias", "ln2.bias", "ln_out.bias", "att.ln_x.bias",
                    "att.w1", "att.a1", "att.v1", "att.g1", "att.output.weight", "ffn.value.weight" ->
                    Arrays.fill(dst, offset, offset + n, 0f);
            case "att.x_r", "att.x_g" -> oneMinusPow(c, 0.2 * ratio1ToAlmost0, dst, offset);
            case "att.x_w", "att.x_a" -> oneMinusPow(c, 0.9 * ratio1ToAlmost0, dst, offset);
            case "att.x_k", "att.x_v" -> oneMinusPow(c, 0.7 * ratio1ToAlmost0, dst, offset);
            case "ffn.x_k" -> oneMinusPow(c, Math.pow(ratio1ToAlmost0, 4), dst, offset);
            case "att.w0" -> {
                float[] zig = zigzag(c, cfg.headSize());
                double exponent = 1.0 + Math.pow(ratio0To1, 0.3);
                for (int i = 0; i < c; i++) {
                    float www = (float) (-6.0 + 6.0 * Math.pow((double) i / (c - 1), exponent));
                    dst[offset + i] = (www + 0.5f) + zig[i] * 2.5f;
                }
            }
            case "att.a0" -> {
                float[] zig = zigzag(c, cfg.headSize());
                for (int i = 0; i < c; i++) {
                    dst[offset + i] = ((0f - 0.19f) + zig[i] * 0.3f) + linear(i, c) * 0.4f;
                }
            }
            case "att.v0" -> {
                for (int i = 0; i < c; i++) {
                    dst[offset + i] = (0f + 0.73f) - linear(i, c) * 0.4f;
                }
            }
            case "att.k_k" -> {
                for (int i = 0; i < c; i++) {
                    dst[offset + i] = (0f + 0.71f) - linear(i, c) * 0.1f;
                }
            }
            case "att.k_a" -> Arrays.fill(dst, offset, offset + n, 0f + 1.02f);
            case "att.r_k" -> Arrays.fill(dst, offset, offset + n, 0f - 0.04f);
            case "att.ln_x.weight" ->
                    Arrays.fill(dst, offset, offset + n, (float) Math.pow((double) (layer + 1) / cfg.nLayer(), 0.7));
            case "att.w2", "att.a2", "att.v2", "att.g2" -> {
                // ortho_init(x, 0.1): gain √(rows/cols) when rows > cols, else 1, times 0.1.
                double rows = spec.dim(0);
                double cols = spec.dim(1);
                orthogonal(spec, (rows > cols ? Math.sqrt(rows / cols) : 1.0) * 0.1, dst, offset);
            }
            case "att.key.weight" -> orthogonal(spec, 0.1, dst, offset);
            case "att.receptance.weight", "att.value.weight", "ffn.key.weight" -> orthogonal(spec, 1.0, dst, offset);
            default -> throw new IllegalStateException("no init rule for " + name);
        }
    }

    /** Whether {@code spec}'s init uses the random generator (orthogonal or uniform). */
    public static boolean isRandom(ParamSpec spec) {
        String name = spec.name();
        return name.equals("emb.weight") || name.equals("head.weight") || name.endsWith("att.w2") || name.endsWith("att.a2")
                || name.endsWith("att.v2") || name.endsWith("att.g2") || name.endsWith("att.receptance.weight")
                || name.endsWith("att.key.weight") || name.endsWith("att.value.weight") || name.endsWith("ffn.key.weight");
    }

    /** 1 − ddd^exponent with ddd_i = float32(i/C) and the exponent cast to float32, as torch.pow on a float32 tensor. */
    private static void oneMinusPow(int c, double exponent, float[] dst, int offset) {
        float e = (float) exponent;
        for (int i = 0; i < c; i++) {
            float ddd = (float) ((double) i / c);
            dst[offset + i] = 1.0f - (float) Math.pow(ddd, e);
        }
    }

    /** linear_n = float32(n/(C−1) − 0.5). */
    private static float linear(int i, int c) {
        return (float) ((double) i / (c - 1) - 0.5);
    }

    /** zig_n = z·|z| in float32, z = float32(((n mod N) − (N−1)/2) / ((N−1)/2)). */
    private static float[] zigzag(int c, int headSize) {
        float[] zig = new float[c];
        double half = (headSize - 1) / 2.0;
        for (int i = 0; i < c; i++) {
            float z = (float) (((i % headSize) - half) / half);
            zig[i] = z * Math.abs(z);
        }
        return zig;
    }

    private void orthogonal(ParamSpec spec, double gain, float[] dst, int offset) {
        Orthogonal.fill(random(spec.name()), (int) spec.dim(0), (int) spec.dim(1), gain, dst, offset);
    }

    /** uniform_(−1e-4, 1e-4): a + (b − a)·u in float32. */
    private static void uniform(SplittableRandom random, float[] dst, int offset, int n) {
        for (int i = 0; i < n; i++) {
            dst[offset + i] = -EMB_BOUND + (2 * EMB_BOUND) * (float) random.nextDouble();
        }
    }

    /** A generator for one tensor: the seed and a 64-bit FNV-1a hash of its name, mixed so nearby seeds do not overlap. */
    SplittableRandom random(String tensorName) {
        long hash = 0xcbf29ce484222325L;
        for (byte b : tensorName.getBytes(StandardCharsets.UTF_8)) {
            hash = (hash ^ (b & 0xFF)) * 0x100000001b3L;
        }
        return new SplittableRandom(mix64(mix64(seed) ^ hash));
    }

    private static long mix64(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }
}
