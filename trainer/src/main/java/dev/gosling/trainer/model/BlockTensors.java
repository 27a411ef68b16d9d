package dev.gosling.trainer.model;

import dev.gosling.trainer.backend.Tensor;

import java.util.function.Function;

/**
 * The tensors of one block's parameters (or of their gradients) by role, looked up once by state-dict name so the
 * forward and backward passes read fields instead of names. {@code ln0} is null outside block 0.
 */
final class BlockTensors {
    final Tensor ln1W, ln1B, ln2W, ln2B, ln0W, ln0B;
    final Tensor xR, xW, xK, xV, xA, xG;
    final Tensor w1, w2, w0, a1, a2, a0, v1, v2, v0, g1, g2;
    final Tensor kK, kA, rK;
    final Tensor receptance, key, value, output;
    final Tensor lnXW, lnXB;
    final Tensor ffnXK, ffnKey, ffnValue;
    /** The time mix's six token-shift mixes in the order x_r, x_k, x_w, x_v, x_a, x_g (Rwkv7Model.MIX_R …). */
    final Tensor[] attMixes;
    /** The channel mix's one, x_k. */
    final Tensor[] ffnMixes;

    /** {@code byName} maps a full state-dict name ({@code blocks.3.att.w0}) to its tensor. */
    BlockTensors(int layer, Function<String, Tensor> byName) {
        String p = "blocks." + layer + ".";
        Function<String, Tensor> t = local -> byName.apply(p + local);
        ln1W = t.apply("ln1.weight");
        ln1B = t.apply("ln1.bias");
        ln2W = t.apply("ln2.weight");
        ln2B = t.apply("ln2.bias");
        ln0W = layer == 0 ? t.apply("ln0.weight") : null;
        ln0B = layer == 0 ? t.apply("ln0.bias") : null;
        xR = t.apply("att.x_r");
        xW = t.apply("att.x_w");
        xK = t.apply("att.x_k");
        xV = t.apply("att.x_v");
        xA = t.apply("att.x_a");
        xG = t.apply("att.x_g");
        w1 = t.apply("att.w1");
        w2 = t.apply("att.w2");
        w0 = t.apply("att.w0");
        a1 = t.apply("att.a1");
        a2 = t.apply("att.a2");
        a0 = t.apply("att.a0");
        v1 = t.apply("att.v1");
        v2 = t.apply("att.v2");
        v0 = t.apply("att.v0");
        g1 = t.apply("att.g1");
        g2 = t.apply("att.g2");
        kK = t.apply("att.k_k");
        kA = t.apply("att.k_a");
        rK = t.apply("att.r_k");
        receptance = t.apply("att.receptance.weight");
        key = t.apply("att.key.weight");
        value = t.apply("att.value.weight");
        output = t.apply("att.output.weight");
        lnXW = t.apply("att.ln_x.weight");
        lnXB = t.apply("att.ln_x.bias");
        ffnXK = t.apply("ffn.x_k");
        ffnKey = t.apply("ffn.key.weight");
        ffnValue = t.apply("ffn.value.weight");
        attMixes = new Tensor[] {xR, xK, xW, xV, xA, xG};
        ffnMixes = new Tensor[] {ffnXK};
    }
}
