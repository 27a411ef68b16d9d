package dev.gosling.trainer.model;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.data.WorldTokenizer;

import java.util.function.Consumer;

/**
 * Text generation in RNN mode: feeds the prompt token by token, then samples up to {@code maxTokens} tokens, stopping
 * at end-of-document (token 0). Text is streamed as it is decided: token bytes go through an incremental UTF-8
 * decoder, so a character split over two tokens comes out whole (invalid bytes become U+FFFD, as Python's
 * {@code errors='replace'}). Only ids the tokenizer can decode (and EOD) are candidates.
 */
public final class Generator {
    private final Rwkv7Rnn rnn;
    private final WorldTokenizer tokenizer;
    private final int candidates;

    public Generator(Rwkv7Rnn rnn, WorldTokenizer tokenizer) {
        this.rnn = rnn;
        this.tokenizer = tokenizer;
        this.candidates = Math.min(rnn.config().vocabSize(), tokenizer.maxTokenId() + 1);
    }

    /**
     * Generates after {@code prompt} (an empty prompt starts from EOD, the start of a document in the training
     * data). {@code text} receives the decoded text piece by piece. Returns the generated ids, EOD excluded.
     */
    public int[] generate(int[] prompt, int maxTokens, TokenSampler sampler, Consumer<String> text) {
        if (maxTokens < 0) {
            throw new GoslingException("--max_tokens " + maxTokens + " must be >= 0");
        }
        int vocab = rnn.config().vocabSize();
        for (int i = 0; i < prompt.length; i++) {
            if (prompt[i] < 0 || prompt[i] >= vocab) {
                throw new GoslingException("prompt token " + i + " has id " + prompt[i] + ", outside the model's vocab (0.."
                        + (vocab - 1) + "); this model was trained with --vocab_size " + vocab);
            }
        }
        Rwkv7State state = rnn.newState();
        int[] context = prompt.length == 0 ? new int[] {WorldTokenizer.EOD} : prompt;
        for (int i = 0; i < context.length - 1; i++) {
            rnn.advance(context[i], state);
        }
        float[] logits = new float[vocab];
        rnn.logits(context[context.length - 1], state, logits);
        Utf8Stream stream = new Utf8Stream(text);
        int[] out = new int[maxTokens];
        int n = 0;
        while (n < maxTokens) {
            int token = sampler.sample(logits, candidates);
            if (token == WorldTokenizer.EOD) {
                break;
            }
            out[n++] = token;
            stream.write(tokenizer.tokenBytes(token));
            if (n < maxTokens) {
                rnn.logits(token, state, logits);
            }
        }
        stream.finish();
        return java.util.Arrays.copyOf(out, n);
    }
}
