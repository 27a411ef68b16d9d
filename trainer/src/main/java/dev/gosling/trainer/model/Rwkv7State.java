package dev.gosling.trainer.model;

/**
 * The recurrent state of an RWKV-7 model in RNN mode (rwkv7-reference.md §6.4, "RNN (inference) form"), fp32 as the
 * reference keeps it. Per layer: the time mix's previous LN1 output [C], the WKV state [H, 64, 64] (row = value
 * index i, column = key index j, row-major), and the channel mix's previous LN2 output [C]. A new state is all zeros, which is the parallel form's start of a sample (x_{−1} = 0, S = 0).
 *
 * <p>{@code v_first} is not part of the state: it is layer 0's value of the current token, made and consumed within
 * one step.
 */
public final class Rwkv7State {
    private final int nLayer;
    private final int nEmbd;
    private final int nHead;
    final float[][] attX;
    final float[][] ffnX;
    final float[][] wkvStates;

    public Rwkv7State(ModelConfig config) {
        this.nLayer = config.nLayer();
        this.nEmbd = config.nEmbd();
        this.nHead = config.nHead();
        this.attX = new float[nLayer][nEmbd];
        this.ffnX = new float[nLayer][nEmbd];
        this.wkvStates = new float[nLayer][nHead * config.headSize() * config.headSize()];
    }

    private Rwkv7State(Rwkv7State other) {
        this.nLayer = other.nLayer;
        this.nEmbd = other.nEmbd;
        this.nHead = other.nHead;
        this.attX = deepCopy(other.attX);
        this.ffnX = deepCopy(other.ffnX);
        this.wkvStates = deepCopy(other.wkvStates);
    }

    private static float[][] deepCopy(float[][] a) {
        float[][] out = new float[a.length][];
        for (int i = 0; i < a.length; i++) {
            out[i] = a[i].clone();
        }
        return out;
    }

    /** An independent copy (e.g. to reuse a processed prompt). */
    public Rwkv7State copy() {
        return new Rwkv7State(this);
    }

    /** Back to the start of a sample: all zeros. */
    public void reset() {
        for (int l = 0; l < nLayer; l++) {
            java.util.Arrays.fill(attX[l], 0f);
            java.util.Arrays.fill(ffnX[l], 0f);
            java.util.Arrays.fill(wkvStates[l], 0f);
        }
    }

    public int nLayer() {
        return nLayer;
    }

    /** Layer {@code l}'s WKV state, [H, 64, 64] row-major (a copy). */
    public float[] wkv(int l) {
        return wkvStates[l].clone();
    }

    /** Whether this state fits a model of {@code config}. */
    boolean fits(ModelConfig config) {
        return config.nLayer() == nLayer && config.nEmbd() == nEmbd && config.nHead() == nHead;
    }
}
