package dev.gosling.trainer.train;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.checkpoint.StateDict;
import dev.gosling.trainer.data.BinIdxReader;
import dev.gosling.trainer.data.MagicPrimeSampler;
import dev.gosling.trainer.dist.Collective;
import dev.gosling.trainer.dist.Strategy;
import dev.gosling.trainer.model.Initializer;
import dev.gosling.trainer.model.ModelConfig;
import dev.gosling.trainer.model.OptimizerGroup;
import dev.gosling.trainer.model.ParamSpec;
import dev.gosling.trainer.model.ParameterLayout;
import dev.gosling.trainer.model.Rwkv7Model;
import dev.gosling.trainer.model.TrainableModel;
import dev.gosling.trainer.optim.LrSchedule;

import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.Writer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * train_temp's pretraining loop (rwkv7-reference.md §4, §5) around any {@link TrainableModel}: the magic-prime
 * sampler over a binidx, micro-batches of ctx_len+1 tokens, miniepochs of 40320 samples, the cosine schedule with
 * warmup, AdamW on fp32 master weights, the checkpoints ({@code rwkv-init.pth}, {@code rwkv-N.pth} every epoch_save
 * miniepochs, {@code rwkv-final.pth} after one pass and at my_exit_tokens) and auto-resume from the highest
 * {@code rwkv-N.pth} exactly as §5.2 describes.
 * <p>
 * Beyond train_temp: every checkpoint gets a {@link TrainState} beside it (fp32 masters, AdamW moments and step, the
 * schedule's step, the data position), and auto-resume uses it when it matches, so an interrupted run continues
 * bit for bit; a {@link StopFlag} (SIGINT/SIGTERM, {@code max_steps}) ends the loop after the current step with
 * {@code rwkv-last.pth} plus its state. Each process appends to {@code train_log.txt} (train_temp's format) and
 * {@code metrics.jsonl}, redraws {@code train_loss.png} at each save and shows a progress bar.
 * <p>
 * Spark-free. Data parallel when handed a {@link RankContext} whose {@link Collective} has several ranks (threads of
 * {@code gosling train --devices N}, or Spark barrier tasks launched by jobs/): each rank reads its own samples
 * ({@link BatchSource}, train_temp's rank-aware formula), the gradients are reduced over the ranks by
 * {@code --strategy} ({@link TrainingStep}), the logged loss is the mean over ranks, and only rank 0 writes files
 * and prints. The ranks agree on stopping through the collective, so they all stop after the same step; every
 * rank loads the same checkpoint and state at the start, and the ranks check that they did.
 */
public final class Trainer {
    private static final Set<String> STRING_KEYS = Set.of("load_model", "proj_dir", "data_file", "data_type", "my_testing", "kernel",
            "accelerator", "precision", "strategy", "wandb");
    private static final Set<String> FLOAT_KEYS = Set.of("lr_init", "lr_final", "beta1", "beta2", "adam_eps", "weight_decay", "grad_clip");

    /** How a run ended: at my_exit_tokens (rwkv-final.pth) or on a stop request (rwkv-last.pth). */
    public enum Outcome { FINISHED, STOPPED }

    /**
     * @param outcome    why the loop ended
     * @param checkpoint the last file written ({@code rwkv-final.pth} or {@code rwkv-last.pth})
     * @param steps      optimizer steps of this process
     * @param realStep   the run's next step (steps done over all processes)
     * @param lastLoss   the loss of the last step (NaN when none ran)
     * @param tokensPerSecond tokens per second over this process's steps (0 when none ran)
     */
    public record Result(Outcome outcome, Path checkpoint, long steps, long realStep, double lastLoss, double tokensPerSecond) {
    }

    private final TrainConfig requested;
    private final LoopOptions options;
    private final ModelFactory factory;
    private final PrintWriter out;
    private final PrintStream err;
    private final RankContext rank;
    /** Whether this rank writes files and prints (rank 0). */
    private final boolean writes;

    /**
     * @param config  the validated run (train_stage 0, or ≥ 2 for auto-resume; 1 is {@link #init})
     * @param factory builds the model once its shape is known (it may come from a checkpoint)
     * @param out     the console text train_temp prints (banner, parameters, saves)
     * @param err     where the progress bar goes
     */
    public Trainer(TrainConfig config, LoopOptions options, ModelFactory factory, PrintWriter out, PrintStream err) {
        this(config, options, factory, out, err, RankContext.single());
    }

    /**
     * One rank of a data-parallel run: {@code rank}'s collective must have num_nodes·devices ranks. Ranks other than
     * 0 print nothing and write nothing ({@code out} and {@code err} are ignored there).
     */
    public Trainer(TrainConfig config, LoopOptions options, ModelFactory factory, PrintWriter out, PrintStream err, RankContext rank) {
        if (config.preparesInitOnly()) {
            throw new IllegalArgumentException("train_stage 1 writes rwkv-init.pth: use Trainer.init");
        }
        long ranks = config.devices() * (long) config.numNodes();
        if (ranks != rank.worldSize()) {
            throw new GoslingException("--devices " + config.devices() + " --num_nodes " + config.numNodes() + " is " + ranks
                    + " rank(s), but this trainer was started as one of " + rank.worldSize() + "; on one host use `gosling train --devices N`"
                    + " (N threads), on a cluster `gosling train --spark` (one Spark task per rank)");
        }
        this.requested = config;
        this.factory = factory;
        this.rank = rank;
        this.writes = rank.rank() == 0;
        this.out = writes ? out : new PrintWriter(Writer.nullWriter());
        this.err = err;
        this.options = writes ? options : options.withProgressBar(false);
    }

    /** The seed of the init's random tensors: --random_seed, or 0 when it is −1 (unset), so an init is reproducible. */
    public static long initSeed(TrainConfig config) {
        return Math.max(0, config.randomSeed());
    }

    /**
     * train_stage 1 ({@code gosling init}): generates the init weights (§6.5), merges --load_model into them if given,
     * writes {@code proj_dir/rwkv-init.pth} (bf16) and prints what train_temp prints. Returns the file.
     */
    public static Path init(TrainConfig config, PrintWriter out) {
        Path projDir = Path.of(config.projDir());
        ModelConfig model = config.modelConfig();
        ParameterLayout layout = new ParameterLayout(model);
        float[] master = generateInit(layout, initSeed(config), out);
        if (!config.loadModel().isEmpty()) {
            Path source = Path.of(config.loadModel());
            Checkpoints.merge(Checkpoints.read(source), source, layout, master, out);
        }
        Path file = projDir.resolve(Checkpoints.INIT);
        out.println("Save to " + file + "...");
        out.flush();
        Checkpoints.save(file, layout, master);
        out.println("Done. Now go for stage 2.");
        out.flush();
        return file;
    }

    /** generate_init_weight: the init in bf16 precision, printing each tensor as train_temp does. */
    private static float[] generateInit(ParameterLayout layout, long seed, PrintWriter out) {
        out.println();
        out.println("############################################################################");
        out.println("#");
        out.println("# Init model weight (slow for large models)... [seed " + seed + "]");
        out.println("#");
        out.println("############################################################################");
        out.println();
        float[] master = layout.newBuffer();
        new Initializer(layout, seed).initialize(master);
        ModelConfig c = layout.config();
        for (ParamSpec spec : layout.params()) {
            String n = spec.name();
            out.print(shapeColumns(spec.shape()) + " " + n);
            boolean kept = n.contains("ln_") || n.contains(".ln") || n.endsWith("_w") || n.endsWith("_w1") || n.endsWith("_w2")
                    || n.endsWith("_bias") || !n.contains(".weight");
            if (kept) {
                out.println();
            } else if (n.equals("emb.weight")) {
                out.println(" [scale " + PyFormat.repr(-1e-4) + "]");
            } else if (n.equals("head.weight")) {
                double scale = c.vocabSize() > c.nEmbd() ? 0.5 * Math.sqrt((double) c.vocabSize() / c.nEmbd()) : 0.5;
                out.println(" [scale " + PyFormat.repr(scale) + "]");
            } else if (n.contains(".att.output.") || n.contains(".ffn.value.")) {
                out.println(" [scale 0]");
            } else {
                out.println(" [scale " + PyFormat.repr(n.contains(".att.key.") ? 0.1 : 1.0) + "]");
            }
        }
        out.println("model params " + layout.totalElements());
        out.flush();
        return master;
    }

    private static String shapeColumns(long[] shape) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 4; i++) {
            String s = i < shape.length ? Long.toString(shape[i]) : "";
            sb.append(i == 0 ? "" : " ").append(String.format(java.util.Locale.ROOT, "%-5s", s));
        }
        return sb.toString();
    }

    /** Where the run starts: the effective config, the weights, the state to continue from (if any). */
    private record Start(TrainConfig config, Path loadedFrom, ModelConfig model, float[] master, TrainState.Loaded state) {
    }

    /** Trains until my_exit_tokens or a stop request, then returns; files are committed before it returns. */
    public Result run(StopFlag stop) {
        Path projDir = Path.of(requested.projDir());
        if (writes) {
            try {
                Files.createDirectories(projDir);
            } catch (java.io.IOException e) {
                throw new GoslingException(projDir + ": cannot create --proj_dir: " + e.getMessage());
            }
            Checkpoints.removeStaleTemporaries(projDir);
        }
        try (BinIdxReader data = BinIdxReader.open(Path.of(requested.dataFile()))) {
            // The data checks first (magic_prime against this data), then the checkpoint to start from.
            MagicPrimeSampler sampler = requested.sampler(data.tokenCount());
            Start start = start(projDir, data.tokenCount());
            TrainConfig config = start.config();
            ModelConfig modelConfig = start.model();
            ParameterLayout layout = new ParameterLayout(modelConfig);
            BatchSource batches = new BatchSource(data, sampler, config.ctxLen(), config.microBsz(), rank.rank(), rank.worldSize(),
                    modelConfig.vocabSize());
            // ZeRO-2 over several ranks reduces gradients bucket by bucket during the backward pass, so the model need
            // not hold a whole gradient buffer (TrainingStep; one rank runs every strategy as the plain step).
            boolean partitionGradients = rank.worldSize() > 1 && Strategy.parse(config.strategy()) == Strategy.ZERO2;
            try (TrainableModel model = factory.create(modelConfig, config.accelerator(), config.precision(), config.microBsz(),
                    config.gradCp() != 0, config.keep(), rank.device(), rank.cpuThreads(), partitionGradients)) {
                if (!model.layout().shapes().keySet().equals(layout.shapes().keySet())
                        || model.layout().totalElements() != layout.totalElements()) {
                    throw new IllegalStateException("model implementation " + factory.name() + " returned a model of another layout");
                }
                long kept = model.onDevice() instanceof Rwkv7Model r ? r.keptBytes() : 0;
                try (TrainingStep step = TrainingStep.of(model, config, layout, rank.collective())) {
                    return new Loop(config, start, layout, batches, data.tokenCount(), step, projDir).run(stop);
                } catch (GoslingException e) {
                    throw keepAdvice(e, config.keep(), kept);
                }
            }
        }
    }

    /**
     * An out-of-memory error after the model was built (the optimizer's moments, a GEMM's scratch) names --keep
     * when it is on: what it keeps is the first memory to give back. Other errors, and those that name it already
     * (the model's own), come back unchanged.
     */
    static GoslingException keepAdvice(GoslingException e, int keep, long keptBytes) {
        String message = e.getMessage();
        if (keep == 0 || message == null || !message.contains("out of memory") || message.contains("--keep")) {
            return e;
        }
        return new GoslingException(String.format(java.util.Locale.ROOT, "%s; --keep %d keeps %.1f GiB of activations: %s"
                + " --keep first", message, keep, keptBytes / 1073741824.0, keep > 1 ? "lower or turn off" : "turn off"), e);
    }

    /** Resolves the checkpoint to start from (§5.2 auto-resume, --load_model, or a fresh init) and its state. */
    private Start start(Path projDir, long dataTokens) {
        TrainConfig config = requested;
        if (config.trainStage() >= 2) {
            Checkpoints.Scan scan = Checkpoints.scan(projDir);
            Optional<TrainState.Loaded> last = scan.hasLast() ? lastIfAhead(projDir, scan, dataTokens) : Optional.empty();
            if (last.isPresent()) {
                Path file = projDir.resolve(Checkpoints.LAST);
                Map<String, String> flags = new LinkedHashMap<>(config.asFlags());
                flags.put("load_model", file.toString());
                flags.put("epoch_begin", Long.toString(last.get().state().position().epoch()));
                return new Start(TrainConfig.fromMap(flags), file, last.get().state().model(), last.get().master(), last.get());
            }
            if (scan.max().isEmpty()) {
                throw new GoslingException("--train_stage " + config.trainStage() + " resumes from the highest rwkv-N.pth in " + projDir
                        + ", but there is none; write rwkv-init.pth first with `gosling init` (train_stage 1), or train with --train_stage 0");
            }
            long p = scan.max().get();
            Path file = Checkpoints.Scan.file(projDir, p);
            StateDict dict;
            try {
                dict = Checkpoints.read(file);
            } catch (GoslingException bad) {
                out.println("Bad checkpoint " + file + " (" + bad.getMessage() + ")");
                if (scan.previous().isEmpty()) {
                    throw bad;
                }
                p = scan.previous().get();
                file = Checkpoints.Scan.file(projDir, p);
                out.println("Trying " + file);
                dict = Checkpoints.read(file);
            }
            TrainConfig resumed = config.resumedFrom(file.toString(), (int) p);
            return withState(resumed, file, dict, p == -1 ? null : TrainState.besides(file), dataTokens);
        }
        if (!config.loadModel().isEmpty()) {
            Path file = Path.of(config.loadModel());
            return withState(config, file, Checkpoints.read(file), null, dataTokens);
        }
        // train.py: without --load_model the init is generated, saved as rwkv-init.pth and loaded.
        ModelConfig model = config.modelConfig();
        ParameterLayout layout = new ParameterLayout(model);
        float[] master = generateInit(layout, initSeed(config), out);
        Path file = projDir.resolve(Checkpoints.INIT);
        out.println("Save to " + file + "...");
        if (writes) {
            // Every rank generated the same init from the same seed; rank 0 keeps it.
            Checkpoints.save(file, layout, master);
            rank.listener().committed(List.of(file));
        }
        Map<String, String> flags = new LinkedHashMap<>(config.asFlags());
        flags.put("load_model", file.toString());
        return new Start(TrainConfig.fromMap(flags), file, model, master, null);
    }

    /** The weights of {@code file}, and its state when {@code statePath} exists, fits and belongs to those weights. */
    private Start withState(TrainConfig config, Path file, StateDict dict, Path statePath, long dataTokens) {
        ModelConfig model = Checkpoints.modelOf(dict, file, config);
        ParameterLayout layout = new ParameterLayout(model);
        float[] master = Checkpoints.toMaster(dict, layout, new Initializer(layout, initSeed(config)));
        if (statePath == null || !Files.isRegularFile(statePath)) {
            return new Start(config, file, model, master, null);
        }
        TrainState.Loaded loaded = TrainState.read(statePath);
        TrainState state = loaded.state();
        state.requireFits(statePath, model, config.realBsz(), config.magicPrime(), dataTokens);
        TrainState.Position at = state.position();
        if (at.epoch() != config.epochBegin() || at.stepInEpoch() != 0) {
            throw new GoslingException(statePath + ": is at miniepoch " + at.epoch() + " step " + at.stepInEpoch() + ", but "
                    + file.getFileName() + " ends miniepoch " + (config.epochBegin() - 1) + "; move the .state away to resume from the weights alone");
        }
        if (!Checkpoints.sameBf16(dict, layout, loaded.master())) {
            out.println("Note: " + statePath.getFileName() + " holds other weights than " + file.getFileName()
                    + " (a save was interrupted between the two files); resuming from the weights alone, as train_temp does");
            return new Start(config, file, model, master, null);
        }
        return new Start(config, file, model, loaded.master(), loaded);
    }

    /**
     * rwkv-last.pth with a valid, matching state whose position is after the highest rwkv-N.pth, or empty (then it
     * is ignored with a note and §5.2's rule applies).
     */
    private Optional<TrainState.Loaded> lastIfAhead(Path projDir, Checkpoints.Scan scan, long dataTokens) {
        Path file = projDir.resolve(Checkpoints.LAST);
        Path statePath = TrainState.besides(file);
        if (!Files.isRegularFile(statePath)) {
            out.println("Note: ignoring " + file + ": it has no " + statePath.getFileName() + " (its data position is unknown)");
            return Optional.empty();
        }
        TrainState.Loaded loaded = TrainState.read(statePath);
        TrainState state = loaded.state();
        long nextEpoch = scan.max().map(p -> p + 1).orElse(0L);
        TrainState.Position at = state.position();
        if (at.epoch() < nextEpoch || (at.epoch() == nextEpoch && at.stepInEpoch() == 0)) {
            return Optional.empty(); // a later rwkv-N.pth supersedes it
        }
        StateDict dict = Checkpoints.read(file);
        ModelConfig model = Checkpoints.modelOf(dict, file, requested);
        state.requireFits(statePath, model, requested.realBsz(), requested.magicPrime(), dataTokens);
        if (!Checkpoints.sameBf16(dict, new ParameterLayout(model), loaded.master())) {
            out.println("Note: ignoring " + file + ": " + statePath.getFileName() + " holds other weights (a save was interrupted between the two files)");
            return Optional.empty();
        }
        return Optional.of(loaded);
    }

    /** The loop's mutable state, for one process. */
    private final class Loop {
        private final TrainConfig config;
        private final Start start;
        private final ParameterLayout layout;
        private final BatchSource batches;
        private final long dataTokens;
        private final TrainingStep step;
        private final Path projDir;
        /** Host copies of the weights and moments, filled at each save. */
        private final float[] master;
        private float[] firstMoment;
        private float[] secondMoment;
        private final LrSchedule schedule;
        private final long scheduleEpochBegin;
        private final int warmupSteps;
        private final long epochSteps;
        private final long tokensPerStep;
        private long epoch;
        private long stepInEpoch;
        private long currentEpoch;
        private long globalStep;
        private double epochLossSum;
        private long epochLossSteps;
        private double lastLr;
        private boolean plotFailed;

        Loop(TrainConfig config, Start start, ParameterLayout layout, BatchSource batches, long dataTokens, TrainingStep step, Path projDir) {
            this.config = config;
            this.start = start;
            this.layout = layout;
            this.batches = batches;
            this.dataTokens = dataTokens;
            this.step = step;
            this.projDir = projDir;
            this.master = start.master();
            this.epochSteps = config.epochSteps();
            this.tokensPerStep = (long) config.ctxLen() * config.realBsz();
            this.epoch = config.epochBegin();
            TrainState.Loaded state = start.state();
            if (state != null) {
                TrainState.Position at = state.state().position();
                this.stepInEpoch = at.stepInEpoch();
                this.globalStep = at.globalStep();
                this.scheduleEpochBegin = at.scheduleEpochBegin();
                this.warmupSteps = at.warmupSteps();
                this.epochLossSum = at.epochLossSum();
                this.epochLossSteps = at.epochLossSteps();
            } else {
                this.scheduleEpochBegin = config.epochBegin();
                this.warmupSteps = config.warmupSteps();
            }
            this.schedule = new LrSchedule(config.lrInit(), config.lrFinal(), config.ctxLen(), config.realBsz(), warmupSteps,
                    config.myExitTokens(), scheduleEpochBegin, epochSteps);
            if (schedule.realStep(globalStep) != realStep()) {
                throw new GoslingException(start.loadedFrom() + ": its state puts the schedule at real step " + schedule.realStep(globalStep)
                        + " but the data at " + realStep() + "; the state is inconsistent, move it away to resume from the weights alone");
            }
        }

        /** The run's step about to be taken (train_temp's real_step in on_train_batch_start). */
        long realStep() {
            return epoch * epochSteps + stepInEpoch;
        }

        Result run(StopFlag stop) {
            printStart();
            LocalDateTime now = LocalDateTime.now();
            Map<String, Object> strategy = strategy();
            out.println();
            out.println(PyFormat.repr(strategy));
            out.println();
            out.flush();
            long exitStep = (config.myExitTokens() + tokensPerStep - 1) / tokensPerStep;
            long onePassFinal = config.magicPrime() / config.realBsz() - 1;
            LossPlot plot = new LossPlot(projDir, "RWKV-7 L" + layout.config().nLayer() + "-D" + layout.config().nEmbd() + " ctx "
                    + config.ctxLen() + ", " + projDir.getFileName());
            plot.addAll(MetricsLog.read(projDir));
            long steps = 0;
            double lastLoss = Double.NaN;
            long trainNanos = 0;
            step.load(master, start.state());
            checkRanksAgree();
            int[] inputs = new int[batches.batchTokens()];
            int[] targets = new int[batches.batchTokens()];
            // Only rank 0 writes: the other ranks' log, metrics and bar stay null (try-with-resources skips them).
            try (TrainLog log = writes ? new TrainLog(projDir) : null;
                 MetricsLog metrics = writes ? new MetricsLog(projDir) : null;
                 ProgressDisplay bar = ProgressDisplay.open(options.progressBar(), realStep(), Math.max(exitStep, realStep()), err)) {
                if (writes) {
                    log.newRun(PyFormat.timestamp(now), args(now), strategy);
                }
                String agreedStop = null;
                while (true) {
                    if (schedule.finished(globalStep)) {
                        Path file = save(Checkpoints.FINAL, plot);
                        out.println("Reached my_exit_tokens " + config.myExitTokens() + " at step " + realStep() + ": saved " + file);
                        out.flush();
                        return new Result(Outcome.FINISHED, file, steps, realStep(), lastLoss, rate(steps, trainNanos));
                    }
                    boolean maxReached = options.maxSteps() > 0 && steps >= options.maxSteps();
                    if (maxReached) {
                        stop.request("max_steps " + options.maxSteps());
                    }
                    // Alone, a stop request counts at once; with several ranks only once the ranks have shared it
                    // (after a step), so that they all stop before the same step. max_steps is the same on every rank.
                    boolean alone = rank.worldSize() == 1;
                    if (maxReached || (alone ? stop.requested() : agreedStop != null)) {
                        String why = maxReached || alone || stop.requested() ? stop.reason() : agreedStop;
                        Path file = save(Checkpoints.LAST, plot);
                        out.println("Stopped (" + why + ") before step " + realStep() + " (miniepoch " + epoch + " step "
                                + stepInEpoch + "): saved " + file + " and its state; --train_stage 3 continues from it");
                        out.flush();
                        return new Result(Outcome.STOPPED, file, steps, realStep(), lastLoss, rate(steps, trainNanos));
                    }
                    long t0 = System.nanoTime();
                    long stepIndex = realStep();
                    double lr = schedule.lr(globalStep);
                    batches.fill(epoch, stepInEpoch, inputs, targets);
                    double rankLoss = step.forwardBackward(inputs, targets, config.microBsz());
                    double norm = step.update(lr);
                    // train_temp all-gathers the loss and logs the mean over ranks; the stop requests travel with it.
                    double[] shared = rank.collective().allGather(new double[] {rankLoss, stop.requested() ? 1 : 0});
                    double lossSum = 0;
                    for (int r = 0; r < rank.worldSize(); r++) {
                        lossSum += shared[2 * r];
                        if (shared[2 * r + 1] != 0 && agreedStop == null) {
                            agreedStop = "a stop request on rank " + r;
                        }
                    }
                    double loss = lossSum / rank.worldSize();
                    long nanos = System.nanoTime() - t0;
                    trainNanos += nanos;
                    steps++;
                    globalStep++;
                    stepInEpoch++;
                    lastLoss = loss;
                    lastLr = lr;
                    epochLossSum += loss;
                    epochLossSteps++;
                    double seconds = nanos / 1e9;
                    double tokensPerSecond = tokensPerStep / seconds;
                    if (writes) {
                        metrics.append(new MetricsLog.Row(stepIndex, epoch, loss, lr, (stepIndex + 1) * tokensPerStep, tokensPerSecond, norm,
                                seconds, System.currentTimeMillis() / 1000.0));
                        plot.add(stepIndex, epoch, loss);
                    }
                    bar.update(realStep(), epochLossSum / epochLossSteps, lr, tokensPerSecond / 1000);
                    if (!Double.isFinite(loss)) {
                        throw new GoslingException("the loss is " + loss + " at step " + stepIndex + "; lower --lr_init or check the data; "
                                + "the last good checkpoint is intact");
                    }
                    // on_train_batch_end: Lightning's global_step already counts this step.
                    if (config.magicPrime() > 0 && realStep() == onePassFinal) {
                        save(Checkpoints.FINAL, plot);
                    }
                    if (stepInEpoch == epochSteps) {
                        endMiniepoch(log, plot);
                    }
                    if (options.saveSteps() > 0 && realStep() % options.saveSteps() == 0) {
                        save(Checkpoints.LAST, plot);
                    }
                    rank.listener().stepDone(realStep());
                }
            }
        }

        private void endMiniepoch(TrainLog log, LossPlot plot) {
            long finished = epoch;
            double epochLoss = epochLossSum / epochLossSteps;
            epoch++;
            stepInEpoch = 0;
            epochLossSum = 0;
            epochLossSteps = 0;
            long current = currentEpoch;
            currentEpoch++;
            if (current % config.epochSave() == 0 || current == config.epochCount() - 1) {
                save(Checkpoints.numbered(projDir, finished).getFileName().toString(), plot);
            }
            if (writes) {
                log.miniepoch(finished, epochLoss, lastLr, current, LocalDateTime.now());
                rank.listener().committed(List.of(projDir.resolve(TrainLog.FILE)));
            }
        }

        /**
         * Every rank must start from the same place (the same checkpoint, state and data position): a proj_dir that
         * is not shared, or files that changed between the ranks' reads, would otherwise train silently apart.
         */
        private void checkRanksAgree() {
            if (rank.worldSize() == 1) {
                return;
            }
            double[] mine = {realStep(), step.adamSteps(), start.state() != null ? 1 : 0};
            double[] all = rank.collective().allGather(mine);
            for (int r = 0; r < rank.worldSize(); r++) {
                if (all[3 * r] != all[0] || all[3 * r + 1] != all[1] || all[3 * r + 2] != all[2]) {
                    throw new GoslingException("rank " + r + " starts at step " + (long) all[3 * r] + " (AdamW step " + (long) all[3 * r + 1]
                            + ", state " + (all[3 * r + 2] != 0 ? "restored" : "fresh") + ") but rank 0 at step " + (long) all[0] + " (AdamW step "
                            + (long) all[1] + "); every rank must see the same --proj_dir (a shared path, or a Hadoop URI with --spark)");
                }
            }
        }

        /**
         * Writes {@code name} (bf16 weights) and its .state atomically, then redraws the plot. Every rank calls it (a
         * sharded optimizer gathers its moments); only rank 0 writes.
         */
        private Path save(String name, LossPlot plot) {
            Path file = projDir.resolve(name);
            if (firstMoment == null) {
                firstMoment = layout.newBuffer();
                secondMoment = layout.newBuffer();
            }
            step.snapshot(master, firstMoment, secondMoment);
            if (!writes) {
                return file;
            }
            Checkpoints.save(file, layout, master);
            TrainState state = new TrainState(name, layout.config(), config.realBsz(), config.magicPrime(), dataTokens,
                    new TrainState.Position(epoch, stepInEpoch, globalStep, scheduleEpochBegin, warmupSteps, step.adamSteps(),
                            epochLossSum, epochLossSteps));
            state.write(TrainState.besides(file), master, firstMoment, secondMoment);
            List<Path> committed = new ArrayList<>(List.of(file, TrainState.besides(file), projDir.resolve(TrainLog.FILE),
                    projDir.resolve(MetricsLog.FILE)));
            if (!plotFailed) {
                try {
                    plot.write();
                    committed.add(plot.file());
                } catch (GoslingException e) {
                    plotFailed = true;
                    out.println("Note: " + e.getMessage() + "; training goes on without the plot");
                }
            }
            rank.listener().committed(committed);
            return file;
        }

        private double rate(long steps, long nanos) {
            return nanos == 0 ? 0 : steps * (double) tokensPerStep / (nanos / 1e9);
        }

        private void printStart() {
            long samples = epochSteps * config.realBsz();
            out.println();
            out.println("############################################################################");
            out.println("#");
            out.println("# RWKV-7 " + config.precision().toUpperCase(java.util.Locale.ROOT) + " on " + config.numNodes() + "x" + config.devices() + " "
                    + config.accelerator().toUpperCase(java.util.Locale.ROOT) + ", bsz " + config.numNodes() + "x" + config.devices() + "x"
                    + config.microBsz() + "=" + config.realBsz() + ", " + config.strategy() + " " + (config.gradCp() > 0 ? "with grad_cp"
                    : config.keep() > 0 ? "with keep " + config.keep() : ""));
            out.println("#");
            out.println("# Data = " + config.dataFile() + " (" + config.dataType() + "), ProjDir = " + config.projDir());
            out.println("#");
            out.println("# Epoch = " + config.epochBegin() + " to " + (config.epochBegin() + config.epochCount() - 1)
                    + " (will continue afterwards), save every " + config.epochSave() + " epoch");
            out.println("#");
            out.println("# Each \"epoch\" = " + epochSteps + " steps, " + samples + " samples, " + samples * config.ctxLen() + " tokens");
            out.println("#");
            out.println("# Model = " + config.nLayer() + " n_layer, " + config.nEmbd() + " n_embd, " + config.ctxLen() + " ctx_len");
            out.println("#");
            out.println("# Adam = lr " + PyFormat.repr(config.lrInit()) + " to " + PyFormat.repr(config.lrFinal()) + ", warmup " + warmupSteps
                    + " steps, beta " + PyFormat.repr(new PyFormat.Tuple(List.of(config.beta1(), config.beta2()))) + ", eps "
                    + PyFormat.repr(config.adamEps()));
            out.println("#");
            out.println("# Gosling: model " + factory.name() + ", Java " + Runtime.version() + ", "
                    + (start.state() != null ? "continuing exactly from " + TrainState.besides(start.loadedFrom()).getFileName()
                    : "weights only (fresh AdamW state)"));
            out.println("#");
            out.println("# Optimizer: " + step.memoryLine());
            out.println("#");
            out.println("############################################################################");
            out.println();
            out.println(PyFormat.repr(args(LocalDateTime.now())));
            out.println();
            out.println("########## Loading " + start.loadedFrom() + "... ##########");
            for (ParamSpec spec : layout.params()) {
                out.println(shapeColumns(spec.shape()) + " " + spec.name());
            }
            out.println("### Preparing for training (loaded " + start.loadedFrom() + "). Please wait...");
            out.println("decay " + PyFormat.repr(layout.groupNames(OptimizerGroup.LR_DECAY, config.weightDecay())) + " ");
            out.println();
            out.println("1x " + PyFormat.repr(layout.groupNames(OptimizerGroup.LR_1X, config.weightDecay())) + " ");
            out.println();
            out.println("2x " + PyFormat.repr(layout.groupNames(OptimizerGroup.LR_2X, config.weightDecay())) + " ");
            out.println();
            out.flush();
        }

        /** vars(args) as train.py has them after its derivations, plus Gosling's loop options. */
        private Map<String, Object> args(LocalDateTime now) {
            Map<String, Object> args = new LinkedHashMap<>();
            config.asFlags().forEach((k, v) -> args.put(k, STRING_KEYS.contains(k) ? v
                    : FLOAT_KEYS.contains(k) ? (Object) Double.parseDouble(v) : (Object) Long.parseLong(v)));
            args.put("warmup_steps", (long) warmupSteps);
            args.put("my_timestamp", PyFormat.timestamp(now));
            args.put("betas", new PyFormat.Tuple(List.of(config.beta1(), config.beta2())));
            args.put("real_bsz", config.realBsz());
            args.put("run_name", config.vocabSize() + " ctx" + config.ctxLen() + " L" + config.nLayer() + " D" + config.nEmbd());
            args.put("max_steps", options.maxSteps());
            args.put("model_impl", factory.name());
            return args;
        }

        /** What train_temp logs as DeepSpeed's config: here Gosling's optimizer and precision settings. */
        private Map<String, Object> strategy() {
            Map<String, Object> s = new LinkedHashMap<>();
            s.put("train_micro_batch_size_per_gpu", (long) config.microBsz());
            s.put("gradient_clipping", config.gradClip());
            s.put("precision", config.precision());
            Map<String, Object> optimizer = new LinkedHashMap<>();
            optimizer.put("type", config.weightDecay() > 0 ? "AdamW" : "Adam");
            optimizer.put("betas", new PyFormat.Tuple(List.of(config.beta1(), config.beta2())));
            optimizer.put("eps", config.adamEps());
            optimizer.put("weight_decay", config.weightDecay());
            optimizer.put("master_weights", "fp32");
            s.put("optimizer", optimizer);
            s.put("gosling_state", start.state() != null ? "restored" : "fresh");
            return s;
        }
    }
}
