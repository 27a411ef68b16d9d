package dev.gosling.trainer.model;

import dev.gosling.trainer.GoslingException;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;

/**
 * Every parameter of an RWKV-7 model in state-dict order (rwkv7-reference.md §6.3), packed back to back into one
 * contiguous fp32 buffer, so the training step works on offsets and never allocates. Layer 0's unused
 * {@code att.v0/v1/v2} are included: the official trainer's strict load requires them.
 */
public final class ParameterLayout {
    private final ModelConfig config;
    private final List<ParamSpec> params;
    private final Map<String, ParamSpec> byName;
    private final long totalElements;
    private final List<Bucket> buckets;

    /**
     * A contiguous range [start, end) of the flat buffer whose gradients are complete at one point of the backward
     * pass: one block's parameters ({@code layer} ≥ 0), or a run of non-block parameters ({@code layer} −1: emb at the
     * front, ln_out and head at the back). ZeRO-2 reduces the gradients bucket by bucket.
     */
    public record Bucket(int index, long start, long end, int layer) {
        public long length() {
            return end - start;
        }

        public boolean isBlock() {
            return layer >= 0;
        }
    }

    public ParameterLayout(ModelConfig config) {
        this.config = config;
        long c = config.nEmbd();
        long v = config.vocabSize();
        long ffn = config.dimFfn();
        ModelConfig.LoraDims lora = config.lora();
        Builder b = new Builder();
        b.add("emb.weight", -1, v, c);
        for (int l = 0; l < config.nLayer(); l++) {
            String p = "blocks." + l + ".";
            b.add(p + "ln1.weight", l, c);
            b.add(p + "ln1.bias", l, c);
            b.add(p + "ln2.weight", l, c);
            b.add(p + "ln2.bias", l, c);
            if (l == 0) {
                b.add(p + "ln0.weight", l, c);
                b.add(p + "ln0.bias", l, c);
            }
            for (String x : new String[] {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g"}) {
                b.add(p + "att." + x, l, 1, 1, c);
            }
            b.add(p + "att.w1", l, c, lora.decay());
            b.add(p + "att.w2", l, lora.decay(), c);
            b.add(p + "att.w0", l, 1, 1, c);
            b.add(p + "att.a1", l, c, lora.aaa());
            b.add(p + "att.a2", l, lora.aaa(), c);
            b.add(p + "att.a0", l, 1, 1, c);
            b.add(p + "att.v1", l, c, lora.mv());
            b.add(p + "att.v2", l, lora.mv(), c);
            b.add(p + "att.v0", l, 1, 1, c);
            b.add(p + "att.g1", l, c, lora.gate());
            b.add(p + "att.g2", l, lora.gate(), c);
            b.add(p + "att.k_k", l, 1, 1, c);
            b.add(p + "att.k_a", l, 1, 1, c);
            b.add(p + "att.r_k", l, config.nHead(), config.headSize());
            b.add(p + "att.receptance.weight", l, c, c);
            b.add(p + "att.key.weight", l, c, c);
            b.add(p + "att.value.weight", l, c, c);
            b.add(p + "att.output.weight", l, c, c);
            b.add(p + "att.ln_x.weight", l, c);
            b.add(p + "att.ln_x.bias", l, c);
            b.add(p + "ffn.x_k", l, 1, 1, c);
            b.add(p + "ffn.key.weight", l, ffn, c);
            b.add(p + "ffn.value.weight", l, c, ffn);
        }
        b.add("ln_out.weight", -1, c);
        b.add("ln_out.bias", -1, c);
        b.add("head.weight", -1, v, c);
        this.params = Collections.unmodifiableList(b.list);
        Map<String, ParamSpec> map = new LinkedHashMap<>();
        for (ParamSpec spec : params) {
            map.put(spec.name(), spec);
        }
        this.byName = Collections.unmodifiableMap(map);
        this.totalElements = b.offset;
        this.buckets = bucketsOf(params, config.nLayer(), totalElements);
    }

    /**
     * Splits the parameters into maximal runs of one layer and checks that each block is one run (so a block's
     * gradients are one contiguous range; block 0's ln0 sits inside block 0's range).
     */
    private static List<Bucket> bucketsOf(List<ParamSpec> params, int nLayer, long total) {
        List<Bucket> out = new ArrayList<>();
        boolean[] seen = new boolean[nLayer];
        int i = 0;
        while (i < params.size()) {
            int layer = params.get(i).layer();
            long start = params.get(i).offset();
            int j = i;
            while (j + 1 < params.size() && params.get(j + 1).layer() == layer) {
                j++;
            }
            if (layer >= 0) {
                if (seen[layer]) {
                    throw new IllegalStateException("block " + layer + "'s parameters are not contiguous in the layout");
                }
                seen[layer] = true;
            }
            out.add(new Bucket(out.size(), start, params.get(j).end(), layer));
            i = j + 1;
        }
        for (int l = 0; l < nLayer; l++) {
            if (out.get(l + 1).layer() != l) {
                throw new IllegalStateException("block " + l + " is not bucket " + (l + 1) + " of the layout");
            }
        }
        if (out.isEmpty() || out.get(out.size() - 1).end() != total) {
            throw new IllegalStateException("the buckets do not cover the layout");
        }
        return Collections.unmodifiableList(out);
    }

    private static final class Builder {
        final List<ParamSpec> list = new ArrayList<>();
        long offset;

        void add(String name, int layer, long... shape) {
            long numel = 1;
            for (long d : shape) {
                numel *= d;
            }
            list.add(new ParamSpec(list.size(), name, shape, offset, numel, layer));
            offset += numel;
        }
    }

    public ModelConfig config() {
        return config;
    }

    /** All parameters, in state-dict order (emb, blocks.0 …, ln_out, head). */
    public List<ParamSpec> params() {
        return params;
    }

    /** The parameter named exactly {@code name}. */
    public ParamSpec get(String name) {
        ParamSpec spec = byName.get(name);
        if (spec == null) {
            throw new GoslingException("no parameter '" + name + "' in the RWKV-7 layout (n_layer " + config.nLayer() + ", n_embd "
                    + config.nEmbd() + "); check the name against the state dict");
        }
        return spec;
    }

    public Optional<ParamSpec> find(String name) {
        return Optional.ofNullable(byName.get(name));
    }

    /** The gradient buckets in layout order: emb, blocks.0 … blocks.L−1, then ln_out and head together. */
    public List<Bucket> buckets() {
        return buckets;
    }

    /** The bucket of block {@code layer}. */
    public Bucket blockBucket(int layer) {
        return buckets.get(layer + 1);
    }

    /** Total number of scalars, the length of the contiguous buffer. */
    public long totalElements() {
        return totalElements;
    }

    /**
     * A zeroed fp32 buffer for the whole model. A Java array holds at most 2^31−9 floats (about 2.1B parameters);
     * larger models must keep their master weights elsewhere (on the device, or sharded).
     */
    public float[] newBuffer() {
        return new float[checkedLength(totalElements, "the model's parameters")];
    }

    /** {@code elements} as an array length, or a one-line error naming {@code what}. */
    public static int checkedLength(long elements, String what) {
        if (elements > Integer.MAX_VALUE - 8) {
            throw new GoslingException(what + " need " + elements + " floats, more than one Java array holds (2^31-9); "
                    + "use a smaller model on the CPU or keep the master weights on the device");
        }
        return (int) elements;
    }

    /** Name → shape for every parameter, in state-dict order. */
    public Map<String, long[]> shapes() {
        Map<String, long[]> out = new LinkedHashMap<>();
        for (ParamSpec spec : params) {
            out.put(spec.name(), spec.shape());
        }
        return out;
    }

    /** Names in {@code group} for this weight decay, sorted as train_temp prints them. */
    public List<String> groupNames(OptimizerGroup group, double weightDecay) {
        TreeSet<String> names = new TreeSet<>();
        for (ParamSpec spec : params) {
            if (spec.group(weightDecay) == group) {
                names.add(spec.name());
            }
        }
        return List.copyOf(names);
    }

    /**
     * Checks a state dict's tensors against this layout as a strict {@code load_state_dict} would: every key present,
     * none extra, every shape equal. One-line error naming the first problem; {@code source} says where it came from.
     */
    public void checkShapes(Map<String, long[]> shapes, String source) {
        for (ParamSpec spec : params) {
            long[] shape = shapes.get(spec.name());
            if (shape == null) {
                throw new GoslingException(source + ": missing '" + spec.name() + "' (shape " + Arrays.toString(spec.shape())
                        + "); an RWKV-7 state dict needs every key, layer 0's att.v0/v1/v2 included");
            }
            if (!Arrays.equals(shape, spec.shape())) {
                throw new GoslingException(source + ": '" + spec.name() + "' has shape " + Arrays.toString(shape) + ", expected "
                        + Arrays.toString(spec.shape()) + " for n_layer " + config.nLayer() + " n_embd " + config.nEmbd()
                        + " lora " + loraString());
            }
        }
        for (String name : shapes.keySet()) {
            if (!byName.containsKey(name)) {
                throw new GoslingException(source + ": unexpected key '" + name + "' (not in the RWKV-7 x070 layout)");
            }
        }
    }

    private String loraString() {
        ModelConfig.LoraDims d = config.lora();
        return d.decay() + "/" + d.aaa() + "/" + d.mv() + "/" + d.gate();
    }
}
