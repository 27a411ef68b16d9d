package dev.gosling.jobs;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.backend.Accelerators;
import dev.gosling.trainer.backend.cuda.CudaProbe;
import dev.gosling.trainer.dist.Collective;
import dev.gosling.trainer.dist.NcclCollective;
import dev.gosling.trainer.train.Checkpoints;
import dev.gosling.trainer.train.LoopOptions;
import dev.gosling.trainer.train.ModelFactory;
import dev.gosling.trainer.train.RankContext;
import dev.gosling.trainer.train.StopFlag;
import dev.gosling.trainer.train.TrainConfig;
import dev.gosling.trainer.train.TrainSettings;
import dev.gosling.trainer.train.Trainer;
import org.apache.spark.BarrierTaskContext;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkException;
import org.apache.spark.SparkFiles;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.rdd.RDD;
import org.apache.spark.resource.ResourceInformation;
import org.apache.spark.sql.SparkSession;
import scala.collection.Iterator;
import scala.reflect.ClassTag$;
import scala.runtime.AbstractFunction1;

import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.Serializable;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * {@code gosling train --spark}: one Spark barrier stage whose world-size tasks each run the Spark-free
 * {@link Trainer} as one data-parallel rank, as XGBoost4J-Spark runs its booster: rank = partition id; each task
 * takes its GPU from the task's resources ({@code spark.task.resource.gpu.amount=1}); on GPUs rank 0 makes the NCCL
 * unique id and shares it through the barrier's allGather, on CPUs the ranks reduce through allGather itself
 * ({@link BarrierCollective}, for test-size models).
 * <p>
 * Before the stage starts: dynamic allocation is refused, GPU tasks need spark.task.resource.gpu.amount=1, and the
 * cluster must offer a task slot per rank (an error names both numbers, instead of Spark's endless slot check). The
 * barrier stage is a shuffle-map stage (its output is repartitioned), so a task that dies fails the whole stage and
 * Spark runs it again (up to spark.stage.maxConsecutiveAttempts): every task then resumes from the latest checkpoint
 * and its optimizer state (train_stage ≥ 2 auto-resume; --save_steps bounds the work lost).
 */
public final class TrainJob {
    private TrainJob() {
    }

    /**
     * How the stage is launched.
     *
     * @param shipData        send the .bin/.idx with SparkContext.addFile instead of reading --data_file on every executor
     * @param timeoutSeconds  the longest a rank waits for the others (NCCL calls and init; Spark's own barrier calls wait
     *                        spark.barrier.sync.timeout, which `gosling train --spark` sets to the same value)
     * @param slotWaitSeconds how long to wait for executors to register enough task slots before refusing
     * @param failRank        test hook: this rank throws after step {@code failAfterStep}, on the stage's first attempt only
     *                        (−1: never)
     */
    public record Options(boolean shipData, long timeoutSeconds, long slotWaitSeconds, int failRank, long failAfterStep)
            implements Serializable {
        public static Options defaults() {
            return new Options(false, 1800, 60, -1, -1);
        }

        public Options withShipData(boolean ship) {
            return new Options(ship, timeoutSeconds, slotWaitSeconds, failRank, failAfterStep);
        }

        public Options withSlotWait(long seconds) {
            return new Options(shipData, timeoutSeconds, seconds, failRank, failAfterStep);
        }

        public Options withTimeout(long seconds) {
            return new Options(shipData, seconds, slotWaitSeconds, failRank, failAfterStep);
        }

        /** Test hook: rank {@code rank} fails after step {@code afterStep} on the first stage attempt. */
        public Options withFailure(int rank, long afterStep) {
            return new Options(shipData, timeoutSeconds, slotWaitSeconds, rank, afterStep);
        }
    }

    /** One line per rank, as each task reported it ("rank=0 gpu=1 host=… FINISHED steps=…"). */
    public record Result(List<String> ranks) {
    }

    /** Runs the barrier stage; prints rank 0's console output through the executor's stdout, and a summary to {@code out}. */
    public static Result run(SparkSession spark, TrainSettings settings, Options options, PrintStream out) {
        TrainConfig config = settings.config();
        SparkContext sc = spark.sparkContext();
        int world = Math.toIntExact(config.devices() * (long) config.numNodes());
        boolean gpuTasks = checkConf(sc.getConf(), config, sc.isLocal());
        int slots = waitForSlots(sc, world, options.slotWaitSeconds());
        if (slots < world) {
            throw new GoslingException("--devices " + config.devices() + " --num_nodes " + config.numNodes() + " asks for " + world
                    + " ranks (one barrier task each), but the cluster offers " + slots + (gpuTasks ? " GPU" : "") + " task slots"
                    + (gpuTasks ? " (executors x spark.executor.resource.gpu.amount / spark.task.resource.gpu.amount, bounded by cores)" : "")
                    + "; add executors or lower --devices/--num_nodes");
        }
        Map<String, String> flags = new LinkedHashMap<>(config.asFlags());
        if (options.shipData()) {
            for (String ext : new String[] {".bin", ".idx"}) {
                sc.addFile(Path.of(config.dataFile() + ext).toAbsolutePath().toString());
            }
        }
        Map<String, String> hadoop = new LinkedHashMap<>();
        if (ProjDirSync.isUri(config.projDir())) {
            sc.hadoopConfiguration().forEach(e -> hadoop.put(e.getKey(), e.getValue()));
        }
        out.printf(Locale.ROOT, "gosling train --spark: %d ranks as one barrier stage on %s (%s), strategy %s%n", world, sc.master(),
                gpuTasks ? "one GPU per task" : "CPU backend, allGather collective", config.strategy());
        out.flush();
        RankTask task = new RankTask(flags, loopFlags(settings.loop()), options, hadoop);
        JavaSparkContext jsc = JavaSparkContext.fromSparkContext(sc);
        RDD<String> trained = jsc.parallelize(IntStream.range(0, world).boxed().toList(), world).rdd()
                .barrier().mapPartitions(task, false, ClassTag$.MODULE$.apply(String.class));
        List<String> lines;
        try {
            // repartition(1) makes the barrier stage a shuffle-map stage: Spark retries a failed barrier map stage as a
            // whole, but aborts a failed barrier result stage.
            lines = new ArrayList<>(JavaRDD.fromRDD(trained, ClassTag$.MODULE$.apply(String.class)).repartition(1).collect());
        } catch (RuntimeException e) {
            GoslingException user = GoslingException.findIn(e);
            if (user != null) {
                throw user;
            }
            throw new GoslingException("train --spark: the barrier stage failed: " + firstLine(e));
        }
        lines.sort(null);
        lines.forEach(out::println);
        out.flush();
        return new Result(lines);
    }

    /**
     * The checks on the Spark configuration; returns whether the tasks get GPUs from Spark's scheduler. One-line
     * errors naming the key to change.
     */
    public static boolean checkConf(SparkConf conf, TrainConfig config, boolean local) {
        if (conf.getBoolean("spark.dynamicAllocation.enabled", false)) {
            throw new GoslingException("spark.dynamicAllocation.enabled=true: a barrier stage needs a fixed set of executors; "
                    + "set spark.dynamicAllocation.enabled=false for gosling train --spark");
        }
        boolean gpuTasks = conf.contains("spark.task.resource.gpu.amount");
        if (gpuTasks && Double.parseDouble(conf.get("spark.task.resource.gpu.amount")) != 1.0) {
            throw new GoslingException("spark.task.resource.gpu.amount=" + conf.get("spark.task.resource.gpu.amount")
                    + ": each trainer rank needs a whole GPU; set spark.task.resource.gpu.amount=1");
        }
        if (Accelerators.GPU.equals(config.accelerator()) && !gpuTasks && !local) {
            throw new GoslingException("--accelerator gpu on a cluster needs Spark's GPU scheduling: set spark.task.resource.gpu.amount=1, "
                    + "spark.executor.resource.gpu.amount and a discovery script (conf/spark/gpu-discovery.sh); see the README");
        }
        return gpuTasks;
    }

    /** Task slots of the default resource profile (GPU slots when tasks need GPUs), waiting up to the bound for executors. */
    private static int waitForSlots(SparkContext sc, int world, long waitSeconds) {
        long deadline = System.nanoTime() + waitSeconds * 1_000_000_000L;
        while (true) {
            int slots = sc.maxNumConcurrentTasks(sc.resourceProfileManager().defaultResourceProfile());
            if (slots >= world || System.nanoTime() > deadline) {
                return slots;
            }
            try {
                Thread.sleep(200);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return slots;
            }
        }
    }

    private static Map<String, String> loopFlags(LoopOptions loop) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("max_steps", Long.toString(loop.maxSteps()));
        m.put("model_impl", loop.modelImpl());
        m.put("progress_bar", loop.progressBar() ? "1" : "0");
        m.put("save_steps", Long.toString(loop.saveSteps()));
        return m;
    }

    private static String firstLine(Throwable e) {
        String m = String.valueOf(e.getMessage());
        int nl = m.indexOf('\n');
        return nl < 0 ? m : m.substring(0, nl);
    }

    /** One rank: the body of a barrier task. */
    static final class RankTask extends AbstractFunction1<Iterator<Integer>, Iterator<String>> implements Serializable {
        private static final long serialVersionUID = 1L;
        private final Map<String, String> flags;
        private final Map<String, String> loopFlags;
        private final Options options;
        private final Map<String, String> hadoop;

        RankTask(Map<String, String> flags, Map<String, String> loopFlags, Options options, Map<String, String> hadoop) {
            this.flags = new LinkedHashMap<>(flags);
            this.loopFlags = new LinkedHashMap<>(loopFlags);
            this.options = options;
            this.hadoop = new LinkedHashMap<>(hadoop);
        }

        @Override
        public Iterator<String> apply(Iterator<Integer> partition) {
            BarrierTaskContext ctx = BarrierTaskContext.get();
            int rank = ctx.partitionId();
            int world = ctx.getTaskInfos().length;
            String address = gpuAddress(ctx);
            Map<String, String> f = new LinkedHashMap<>(flags);
            boolean gpu = usesGpu(f.get("accelerator"), address);
            f.put("accelerator", gpu ? Accelerators.GPU : Accelerators.CPU);
            int device = gpu ? cudaOrdinal(address, rank) : 0;
            if (options.shipData()) {
                String bin = Path.of(flags.get("data_file") + ".bin").getFileName().toString();
                String local = SparkFiles.get(bin);
                f.put("data_file", local.substring(0, local.length() - ".bin".length()));
            }
            ProjDirSync sync = null;
            try {
                if (ProjDirSync.isUri(flags.get("proj_dir"))) {
                    sync = new ProjDirSync(flags.get("proj_dir"), hadoop, Files.createTempDirectory("gosling-proj-rank" + rank + "-"));
                    sync.download(rank == 0);
                    f.put("proj_dir", sync.local().toString());
                }
                if (ctx.stageAttemptNumber() > 0 && "0".equals(f.get("train_stage")) && hasCheckpoint(Path.of(f.get("proj_dir")))) {
                    // A retried stage continues from the latest save of the failed attempt (auto-resume), not from scratch.
                    f.put("train_stage", "3");
                }
                TrainSettings settings = TrainSettings.load(List.of(), merged(f, loopFlags));
                ModelFactory factory = ModelFactory.select(settings.config().accelerator(), settings.loop().modelImpl());
                try (Collective collective = join(ctx, gpu, rank, world, device)) {
                    KillWatch watch = new KillWatch(ctx, collective);
                    try {
                        RankContext context = new RankContext(collective, device, Math.max(1, ctx.cpus()), listener(sync, ctx, rank));
                        PrintWriter out = rank == 0 ? new PrintWriter(System.out, true, StandardCharsets.UTF_8)
                                : new PrintWriter(Writer.nullWriter());
                        Trainer.Result r = new Trainer(settings.config(), settings.loop(), factory, out, System.err, context).run(new StopFlag());
                        out.flush();
                        String line = String.format(Locale.ROOT, "rank=%d gpu=%s host=%s attempt=%d %s steps=%d next_step=%d loss=%.6f tokens_per_s=%.0f",
                                rank, address == null ? "-" : address, ctx.getTaskInfos()[rank].address(), ctx.stageAttemptNumber(), r.outcome(),
                                r.steps(), r.realStep(), r.lastLoss(), r.tokensPerSecond());
                        return scala.jdk.javaapi.CollectionConverters.asScala(List.of(line).iterator());
                    } finally {
                        watch.close();
                    }
                }
            } catch (java.io.IOException e) {
                throw new GoslingException("rank " + rank + ": cannot make a local working directory: " + e.getMessage());
            } finally {
                if (sync != null) {
                    sync.deleteLocal();
                }
            }
        }

        private RankContext.Listener listener(ProjDirSync sync, BarrierTaskContext ctx, int rank) {
            return new RankContext.Listener() {
                @Override
                public void committed(List<Path> files) {
                    if (sync != null) {
                        sync.upload(files);
                    }
                }

                @Override
                public void stepDone(long nextRealStep) {
                    if (rank == options.failRank() && nextRealStep == options.failAfterStep() && ctx.stageAttemptNumber() == 0) {
                        throw new IllegalStateException("test hook: rank " + rank + " fails after step " + (nextRealStep - 1)
                                + " on the stage's first attempt");
                    }
                }
            };
        }

        /** The rank's collective: NCCL (rank 0's unique id shared through allGather) on GPUs, allGather itself on CPUs. */
        private Collective join(BarrierTaskContext ctx, boolean gpu, int rank, int world, int device) {
            if (!gpu) {
                return new BarrierCollective(ctx);
            }
            String mine = rank == 0 ? Base64.getEncoder().encodeToString(NcclCollective.newUniqueId()) : "";
            String id = ctx.allGather(mine)[0];
            return NcclCollective.join(Base64.getDecoder().decode(id), world, rank, device, options.timeoutSeconds());
        }

        private static boolean hasCheckpoint(Path projDir) {
            if (!Files.isDirectory(projDir)) {
                return false;
            }
            Checkpoints.Scan scan = Checkpoints.scan(projDir);
            return scan.hasLast() || scan.max().isPresent();
        }

        private static Map<String, String> merged(Map<String, String> a, Map<String, String> b) {
            Map<String, String> m = new LinkedHashMap<>(a);
            m.putAll(b);
            return m;
        }
    }

    /** The first GPU address Spark gave this task, or null when it gave none (local mode, CPU clusters). */
    static String gpuAddress(BarrierTaskContext ctx) {
        ResourceInformation gpu = ctx.resourcesJMap().get("gpu");
        return gpu == null || gpu.addresses().length == 0 ? null : gpu.addresses()[0];
    }

    /** Whether this rank trains on a GPU: --accelerator gpu, or auto with CUDA usable here. */
    private static boolean usesGpu(String accelerator, String address) {
        if (Accelerators.CPU.equals(accelerator)) {
            return false;
        }
        if (Accelerators.GPU.equals(accelerator)) {
            return true;
        }
        return CudaProbe.probe().available();
    }

    /**
     * The CUDA device ordinal of Spark's GPU address in this process: the address's position in CUDA_VISIBLE_DEVICES
     * when the executor has one (ordinals are renumbered from 0 there), the address itself otherwise; without an
     * address (local mode) the rank, as one host's GPUs in order.
     */
    static int cudaOrdinal(String address, int rank) {
        if (address == null) {
            return rank;
        }
        String visible = System.getenv("CUDA_VISIBLE_DEVICES");
        if (visible != null && !visible.isBlank()) {
            String[] ids = visible.split(",");
            for (int i = 0; i < ids.length; i++) {
                if (ids[i].strip().equals(address)) {
                    return i;
                }
            }
            throw new GoslingException("Spark gave this task GPU " + address + " but CUDA_VISIBLE_DEVICES=" + visible
                    + " hides it; make the discovery script and CUDA_VISIBLE_DEVICES agree");
        }
        try {
            return Integer.parseInt(address.strip());
        } catch (NumberFormatException e) {
            throw new GoslingException("Spark GPU address '" + address + "' is not a device number; the discovery script must print "
                    + "CUDA device indices, e.g. {\"name\":\"gpu\",\"addresses\":[\"0\",\"1\"]}");
        }
    }

    /**
     * Spark marks a task to kill (another rank failed, the job was cancelled) without stopping its thread; this
     * watches the flag and aborts the collective, so that a rank waiting in NCCL gives up at once.
     */
    private static final class KillWatch implements AutoCloseable {
        private final Thread thread;

        KillWatch(BarrierTaskContext ctx, Collective collective) {
            thread = new Thread(() -> {
                while (!Thread.currentThread().isInterrupted()) {
                    if (ctx.isInterrupted()) {
                        collective.abort("the Spark task was killed: " + (ctx.getKillReason().isDefined() ? ctx.getKillReason().get() : "no reason"));
                        return;
                    }
                    try {
                        Thread.sleep(500);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            }, "gosling-kill-watch-" + ctx.partitionId());
            thread.setDaemon(true);
            thread.start();
        }

        @Override
        public void close() {
            thread.interrupt();
        }
    }
}
