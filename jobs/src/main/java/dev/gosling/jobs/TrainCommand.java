package dev.gosling.jobs;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.train.DataParallel;
import dev.gosling.trainer.train.ModelFactory;
import dev.gosling.trainer.train.SignalStop;
import dev.gosling.trainer.train.StopFlag;
import dev.gosling.trainer.train.Trainer;
import dev.gosling.trainer.train.TrainSettings;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code gosling train}: train_temp's train.py. Flags keep RWKV-LM's names and defaults; {@code --config FILE.yaml}
 * (repeatable, later files override earlier ones) holds them too, and flags override every file. SIGINT/SIGTERM
 * finish the step in progress, save {@code rwkv-last.pth} plus its state and exit 0; {@code --train_stage 3} resumes.
 */
@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Pretrain RWKV-7 on a binidx as RWKV-LM's train_temp (train.py) does, with its flag names and defaults.",
                "--train_stage 1 writes rwkv-init.pth (as `gosling init`); 0 trains from --load_model or a fresh init;",
                ">= 2 resumes from the highest rwkv-N.pth in --proj_dir, exactly when its .state is there.",
                "SIGINT/SIGTERM: the current step finishes, rwkv-last.pth and its state are saved, exit 0.",
                "--devices N trains N data-parallel ranks in this process (GPU r, or a share of the CPU cores, each);",
                "--spark runs one Spark barrier task per rank (--devices x --num_nodes) on the cluster spark-submit or --master names."})
public final class TrainCommand implements Callable<Integer> {

    @Option(names = "--config", paramLabel = "FILE.yaml", description = "YAML file of flag values (conf/models/*.yaml, conf/train/*.yaml); repeatable, later ones override earlier ones; flags override all.")
    List<Path> configs = new ArrayList<>();

    @Option(names = "--spark", description = "Train as a Spark barrier stage: one task per rank (devices x num_nodes), each on the GPU Spark gives it.")
    boolean spark;

    @Option(names = "--master", description = "With --spark: the Spark master URL (default: spark-submit's, else local[*]).")
    String master;

    @Option(names = "--ship-data", description = "With --spark: send the .bin/.idx to the executors with SparkContext.addFile instead of reading --data_file there.")
    boolean shipData;

    @Option(names = "--timeout", paramLabel = "SECONDS", description = "The longest a rank waits for the others in one collective call, NCCL init and Spark's barrier included (default: ${DEFAULT-VALUE}).")
    long timeoutSeconds = 1800;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        TrainSettings settings = TrainSettings.load(configs, TrainFlags.given(spec));
        PrintWriter out = spec.commandLine().getOut();
        if (settings.config().preparesInitOnly()) {
            Trainer.init(settings.config(), out);
            return 0;
        }
        if (timeoutSeconds < 1) {
            throw new GoslingException("--timeout " + timeoutSeconds + " must be at least 1 second");
        }
        if (spark) {
            SparkSession session = SparkSessions.getOrCreate("gosling train", master,
                    Map.of("spark.barrier.sync.timeout", timeoutSeconds + "s"));
            TrainJob.run(session, settings, TrainJob.Options.defaults().withShipData(shipData).withTimeout(timeoutSeconds), System.out);
            return 0;
        }
        if (master != null || shipData) {
            throw new GoslingException((master != null ? "--master" : "--ship-data") + " needs --spark");
        }
        // The model first: without one nothing else is worth doing.
        ModelFactory factory = ModelFactory.select(settings.config().accelerator(), settings.loop().modelImpl());
        StopFlag stop = new StopFlag();
        Trainer.Result result;
        try (SignalStop signals = SignalStop.install(stop, System.err)) {
            result = DataParallel.run(settings.config(), settings.loop(), factory, out, System.err, stop, timeoutSeconds);
        }
        out.printf(Locale.ROOT, "%s after %d steps of this process (next step %d), last loss %.4f, %.0f tokens/s%n",
                result.outcome() == Trainer.Outcome.FINISHED ? "Finished" : "Stopped", result.steps(), result.realStep(),
                result.lastLoss(), result.tokensPerSecond());
        out.flush();
        return 0;
    }
}
