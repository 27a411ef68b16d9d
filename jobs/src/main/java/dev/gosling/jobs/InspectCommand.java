package dev.gosling.jobs;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.checkpoint.CheckpointInspector;
import dev.gosling.trainer.data.BinIdxFormat;
import dev.gosling.trainer.data.BinIdxReader;
import dev.gosling.trainer.data.MagicPrime;
import dev.gosling.trainer.train.TrainState;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code gosling inspect FILE...}: what a checkpoint, a binidx or a training state holds. */
@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = {"Print what a file holds: .pth/.safetensors (tensors, dtypes, shapes, inferred RWKV-7 size),",
                ".idx/.bin (dtype, items, documents, tokens, magic_prime per ctx_len), .state (a training state)."})
public final class InspectCommand implements Callable<Integer> {
    private static final int[] CTX_LENS = {512, 1024, 2048, 4096};

    @Parameters(arity = "1..*", paramLabel = "FILE", description = "Files to inspect (kind from the extension).")
    List<Path> files;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        for (int i = 0; i < files.size(); i++) {
            if (i > 0) {
                out.println();
            }
            out.print(describe(files.get(i)));
            out.flush();
        }
        return 0;
    }

    static String describe(Path file) {
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        if (name.endsWith(".pth") || name.endsWith(".safetensors") || name.endsWith(".pt") || name.endsWith(".bin") && isZip(file)) {
            return CheckpointInspector.inspect(file).table();
        }
        if (name.endsWith(".idx") || name.endsWith(".bin")) {
            return binidx(file);
        }
        if (name.endsWith(".state")) {
            TrainState state = TrainState.validate(file);
            return file + "  (Gosling training state, " + size(file) + " bytes, checksum OK)" + System.lineSeparator() + state.describe();
        }
        throw new GoslingException(file + ": unknown kind of file; inspect reads .pth, .safetensors, .idx/.bin and .state");
    }

    private static String binidx(Path file) {
        try (BinIdxReader data = BinIdxReader.open(file)) {
            StringBuilder sb = new StringBuilder();
            String nl = System.lineSeparator();
            sb.append(data.binPath()).append(" + ").append(data.idxPath().getFileName()).append("  (binidx)").append(nl);
            sb.append(String.format(Locale.ROOT, "dtype: %d (%s, %d bytes per token)%n", data.dtypeCode(),
                    BinIdxFormat.dtypeName(data.dtypeCode()), data.itemSizeBytes()));
            sb.append(String.format(Locale.ROOT, "items: %d%n", data.itemCount()));
            sb.append(String.format(Locale.ROOT, "documents: %d%n", data.documentCount()));
            sb.append(String.format(Locale.ROOT, "tokens: %d (--my_exit_tokens for one pass)%n", data.tokenCount()));
            sb.append(String.format(Locale.ROOT, "bytes: .bin %d, .idx %d%n", size(data.binPath()), size(data.idxPath())));
            StringBuilder primes = new StringBuilder();
            for (int ctx : CTX_LENS) {
                if (data.tokenCount() >= 3L * ctx) {
                    primes.append(primes.length() == 0 ? "" : ", ").append("ctx_len ").append(ctx).append(" -> ")
                            .append(MagicPrime.magicPrime(data.tokenCount(), ctx));
                }
            }
            sb.append("magic_prime: ").append(primes.length() == 0 ? "(too few tokens)" : primes).append(nl);
            return sb.toString();
        }
    }

    private static boolean isZip(Path file) {
        try (var in = Files.newInputStream(file)) {
            byte[] head = in.readNBytes(2);
            return head.length == 2 && head[0] == 'P' && head[1] == 'K';
        } catch (java.io.IOException e) {
            return false;
        }
    }

    private static long size(Path file) {
        try {
            return Files.size(file);
        } catch (java.io.IOException e) {
            throw new GoslingException(file + ": cannot read its size: " + e.getMessage());
        }
    }
}
