package dev.gosling.trainer.model;

import dev.gosling.trainer.GoslingException;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token from logits as the {@code rwkv} pip package's {@code sample_logits} does: softmax; nucleus
 * (top-p) filtering that keeps every token whose probability is at least the cutoff, the probability at which the
 * descending cumulative sum first reaches top_p; then {@code probs^(1/temperature)}, renormalised, and one draw from a
 * seeded generator. Temperature 0 is greedy: the argmax (lowest id on ties), no randomness.
 *
 * <p>(Not the training data sampler, {@link dev.gosling.trainer.data.MagicPrimeSampler}.) Scratch arrays are made on
 * first use and reused; not thread-safe.
 */
public final class TokenSampler {
    private final double temperature;
    private final double topP;
    private final long seed;
    private final SplittableRandom random;
    private double[] probs = new double[0];
    private double[] sorted = new double[0];

    /**
     * @param temperature ≥ 0; 0 means greedy
     * @param topP        in (0, 1]; 1 keeps every token
     * @param seed        the generator's seed: the same seed, logits and settings give the same tokens
     */
    public TokenSampler(double temperature, double topP, long seed) {
        if (!(temperature >= 0) || Double.isInfinite(temperature)) {
            throw new GoslingException("--temperature " + temperature + " must be a finite number >= 0 (0 = greedy)");
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new GoslingException("--top_p " + topP + " must be in (0, 1] (1 = no nucleus filtering)");
        }
        this.temperature = temperature;
        this.topP = topP;
        this.seed = seed;
        this.random = new SplittableRandom(seed);
    }

    public double temperature() {
        return temperature;
    }

    public double topP() {
        return topP;
    }

    public long seed() {
        return seed;
    }

    /** A token id in [0, logits.length). */
    public int sample(float[] logits) {
        return sample(logits, logits.length);
    }

    /** A token id in [0, n): only the first {@code n} logits are candidates (e.g. ids the tokenizer can decode). */
    public int sample(float[] logits, int n) {
        if (n < 1 || n > logits.length) {
            throw new IllegalArgumentException("candidates " + n + " outside 1.." + logits.length);
        }
        int best = 0;
        for (int i = 1; i < n; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        if (temperature == 0) {
            return best;
        }
        if (probs.length < n) {
            probs = new double[n];
            sorted = new double[n];
        }
        double max = logits[best];
        double sum = 0;
        for (int i = 0; i < n; i++) {
            double e = Math.exp(logits[i] - max);
            probs[i] = e;
            sum += e;
        }
        for (int i = 0; i < n; i++) {
            probs[i] /= sum;
        }
        double cutoff = 0;
        if (topP < 1) {
            System.arraycopy(probs, 0, sorted, 0, n);
            Arrays.sort(sorted, 0, n);
            double cumulative = 0;
            cutoff = sorted[0];
            for (int i = n - 1; i >= 0; i--) {
                cumulative += sorted[i];
                if (cumulative >= topP) {
                    cutoff = sorted[i];
                    break;
                }
            }
        }
        double total = 0;
        double exponent = 1.0 / temperature;
        for (int i = 0; i < n; i++) {
            double q = probs[i] < cutoff ? 0 : temperature == 1 ? probs[i] : Math.pow(probs[i], exponent);
            probs[i] = q;
            total += q;
        }
        if (!(total > 0)) {
            // probs^(1/T) underflowed everywhere (a tiny temperature): the limit is greedy
            return best;
        }
        double u = random.nextDouble() * total;
        double acc = 0;
        int last = best;
        for (int i = 0; i < n; i++) {
            if (probs[i] > 0) {
                acc += probs[i];
                last = i;
                if (u < acc) {
                    return i;
                }
            }
        }
        return last;
    }
}
