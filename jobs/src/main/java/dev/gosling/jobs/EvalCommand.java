package dev.gosling.jobs;

import dev.gosling.trainer.train.Evaluator;
import dev.gosling.trainer.train.ModelFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code gosling eval --load_model X --data_file Y}: mean loss and perplexity over a binidx. */
@Command(name = "eval", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Mean cross-entropy and perplexity of a checkpoint over a binidx, in consecutive ctx_len windows",
                "(every token after the first predicted once). The model's shape comes from the checkpoint."})
public final class EvalCommand implements Callable<Integer> {

    @Option(names = "--load_model", required = true, paramLabel = "FILE", description = "The checkpoint (.pth or .safetensors).")
    Path loadModel;

    @Option(names = "--data_file", required = true, paramLabel = "PREFIX", description = "The binidx (prefix, or the .bin/.idx).")
    Path dataFile;

    @Option(names = "--ctx_len", description = "Window length in tokens (default: ${DEFAULT-VALUE}).")
    int ctxLen = 1024;

    @Option(names = "--micro_bsz", description = "Windows per forward pass (default: ${DEFAULT-VALUE}).")
    int microBsz = 12;

    @Option(names = "--max_windows", description = "Evaluate at most this many windows from the start; 0 = all (default: ${DEFAULT-VALUE}).")
    long maxWindows;

    @Option(names = "--accelerator", description = "cpu or gpu (default: ${DEFAULT-VALUE}, as train).")
    String accelerator = "gpu";

    @Option(names = "--model_impl", description = "Model implementation by name (default: the RWKV-7 model for --accelerator).")
    String modelImpl = "";

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        ModelFactory factory = ModelFactory.select(accelerator, modelImpl);
        Evaluator.Result r = Evaluator.evaluate(loadModel, dataFile, ctxLen, microBsz, accelerator, factory, maxWindows);
        PrintWriter out = spec.commandLine().getOut();
        out.printf(Locale.ROOT, "%s on %s: %d windows of %d tokens (%d tokens predicted): loss %.6f, perplexity %.4f%n",
                loadModel, dataFile, r.windows(), ctxLen, r.tokens(), r.meanLoss(), r.perplexity());
        out.flush();
        return 0;
    }
}
