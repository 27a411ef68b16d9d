package dev.gosling.jobs;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.train.Trainer;
import dev.gosling.trainer.train.TrainSettings;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code gosling init}: train_temp's prepare stage (train.py --train_stage 1): writes {@code proj_dir/rwkv-init.pth}. */
@Command(name = "init", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Write the initial weights proj_dir/rwkv-init.pth (bf16) as RWKV-LM's train.py --train_stage 1 does.",
                "With --load_model, that checkpoint's tensors are merged into the fresh init (train_temp's rule).",
                "Takes the same flags and YAML files as `gosling train`; the data flags are not needed."})
public final class InitCommand implements Callable<Integer> {

    @Option(names = "--config", paramLabel = "FILE.yaml", description = "YAML file of flag values; repeatable; flags override.")
    List<Path> configs = new ArrayList<>();

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        Map<String, String> flags = new LinkedHashMap<>(TrainFlags.given(spec));
        String stage = flags.get("train_stage");
        if (stage != null && !stage.strip().equals("1")) {
            throw new GoslingException("--train_stage " + stage + ": `gosling init` is train_stage 1; use `gosling train` for other stages");
        }
        flags.put("train_stage", "1");
        Trainer.init(TrainSettings.load(configs, flags).config(), spec.commandLine().getOut());
        return 0;
    }
}
