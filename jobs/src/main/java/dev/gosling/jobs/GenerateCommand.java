package dev.gosling.jobs;

import dev.gosling.trainer.data.WorldTokenizer;
import dev.gosling.trainer.model.Generator;
import dev.gosling.trainer.model.ModelWeights;
import dev.gosling.trainer.model.ParameterLayout;
import dev.gosling.trainer.model.Rwkv7Rnn;
import dev.gosling.trainer.model.TokenSampler;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code gosling generate --load_model X.pth --prompt "..."}: RWKV-7 text generation on the CPU in RNN mode, printing
 * the prompt and then the continuation as it is sampled (UTF-8 on stdout). Stops at end-of-document or
 * {@code --max_tokens}.
 */
@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Generate text from an RWKV-7 checkpoint (.pth or .safetensors) on the CPU, token by token.")
public final class GenerateCommand implements Callable<Integer> {

    /** A checkpoint has no ctx_len and RNN mode has no limit; the config needs some multiple of 16. */
    private static final int CTX_LEN = 4096;

    @Option(names = "--load_model", required = true, paramLabel = "FILE", description = "The checkpoint (bf16, fp16 or fp32).")
    Path loadModel;

    @Option(names = "--prompt", description = "Text to continue (default: empty, which starts a new document).")
    String prompt = "";

    @Option(names = "--temperature", description = "Sampling temperature; 0 = greedy (default: ${DEFAULT-VALUE}).")
    double temperature = 1.0;

    @Option(names = "--top_p", description = "Nucleus sampling threshold in (0, 1] (default: ${DEFAULT-VALUE}).")
    double topP = 0.85;

    @Option(names = "--max_tokens", description = "Most tokens to generate (default: ${DEFAULT-VALUE}).")
    int maxTokens = 200;

    @Option(names = "--seed", description = "Sampling seed; the same seed gives the same text (default: ${DEFAULT-VALUE}).")
    long seed = 42;

    @Override
    public Integer call() {
        TokenSampler sampler = new TokenSampler(temperature, topP, seed);
        WorldTokenizer tokenizer = WorldTokenizer.world();
        int[] promptIds = tokenizer.encode(prompt);
        ModelWeights weights = ModelWeights.read(loadModel, CTX_LEN);
        Rwkv7Rnn rnn = new Rwkv7Rnn(new ParameterLayout(weights.config()), weights.params());
        Writer out = new OutputStreamWriter(System.out, StandardCharsets.UTF_8);
        write(out, prompt);
        new Generator(rnn, tokenizer).generate(promptIds, maxTokens, sampler, piece -> write(out, piece));
        write(out, System.lineSeparator());
        return 0;
    }

    private static void write(Writer out, String text) {
        try {
            out.write(text);
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
