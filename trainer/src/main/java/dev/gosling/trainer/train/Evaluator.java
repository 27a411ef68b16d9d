package dev.gosling.trainer.train;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.checkpoint.StateDict;
import dev.gosling.trainer.data.BinIdxReader;
import dev.gosling.trainer.model.Initializer;
import dev.gosling.trainer.model.ModelConfig;
import dev.gosling.trainer.model.ParameterLayout;
import dev.gosling.trainer.model.TrainableModel;

import java.nio.file.Path;

/**
 * {@code gosling eval}: the mean cross-entropy (and perplexity) of a model over a binidx, read as consecutive
 * ctx_len windows of the flat token stream: window k predicts tokens kT+1 … kT+T from tokens kT … kT+T−1, so every
 * token after the first is predicted once (a last partial window is left out). Windows go through
 * {@link TrainableModel#loss} micro_bsz at a time; the mean is over windows, all of T tokens.
 */
public final class Evaluator {
    private Evaluator() {
    }

    /**
     * @param windows windows evaluated
     * @param tokens  tokens predicted (windows · ctx_len)
     * @param meanLoss mean cross-entropy per token, in nats
     */
    public record Result(long windows, long tokens, double meanLoss) {
        public double perplexity() {
            return Math.exp(meanLoss);
        }
    }

    /** Evaluates {@code model} (parameters already set) over {@code data}; {@code maxWindows} 0 means all windows. */
    public static Result evaluate(TrainableModel model, BinIdxReader data, int microBsz, long maxWindows) {
        int ctx = model.config().ctxLen();
        int vocab = model.config().vocabSize();
        long available = (data.tokenCount() - 1) / ctx;
        long windows = maxWindows > 0 ? Math.min(maxWindows, available) : available;
        if (windows < 1) {
            throw new GoslingException(data.binPath() + ": has " + data.tokenCount() + " tokens, fewer than one window of ctx_len " + ctx
                    + " + 1; lower --ctx_len");
        }
        if (microBsz < 1) {
            throw new GoslingException("--micro_bsz " + microBsz + " must be at least 1");
        }
        int[] window = new int[ctx + 1];
        int[] inputs = new int[microBsz * ctx];
        int[] targets = new int[microBsz * ctx];
        double sum = 0;
        for (long first = 0; first < windows; first += microBsz) {
            int batch = (int) Math.min(microBsz, windows - first);
            for (int j = 0; j < batch; j++) {
                long offset = (first + j) * ctx;
                data.readTokens(offset, window, 0, ctx + 1);
                for (int t = 0; t <= ctx; t++) {
                    if (window[t] >= vocab) {
                        throw new GoslingException(data.binPath() + ": token " + window[t] + " at token offset " + (offset + t)
                                + " is outside the model's vocabulary of " + vocab + "; evaluate data made with the model's tokenizer");
                    }
                }
                System.arraycopy(window, 0, inputs, j * ctx, ctx);
                System.arraycopy(window, 1, targets, j * ctx, ctx);
            }
            double loss = model.loss(batch == microBsz ? inputs : java.util.Arrays.copyOf(inputs, batch * ctx),
                    batch == microBsz ? targets : java.util.Arrays.copyOf(targets, batch * ctx), batch);
            sum += loss * batch;
        }
        return new Result(windows, windows * ctx, sum / windows);
    }

    /**
     * Loads {@code checkpoint} (its model shape inferred from the tensors, ctx_len given), builds the model with
     * {@code factory} and evaluates it over the binidx {@code dataFile}.
     */
    public static Result evaluate(Path checkpoint, Path dataFile, int ctxLen, int microBsz, String accelerator, ModelFactory factory,
                                  long maxWindows) {
        StateDict dict = Checkpoints.read(checkpoint);
        ModelConfig config;
        try {
            config = ModelConfig.inferFromShapes(Checkpoints.shapes(dict), ctxLen);
        } catch (GoslingException e) {
            throw new GoslingException(checkpoint + ": " + e.getMessage());
        }
        ParameterLayout layout = new ParameterLayout(config);
        float[] master = Checkpoints.toMaster(dict, layout, new Initializer(layout, 0));
        try (BinIdxReader data = BinIdxReader.open(dataFile); TrainableModel model = factory.create(config, accelerator, microBsz, false)) {
            model.setParameters(master);
            return evaluate(model, data, microBsz, maxWindows);
        }
    }
}
