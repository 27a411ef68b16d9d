package dev.gosling.jobs

import dev.gosling.testkit.{Shared, SparkTestSession}
import dev.gosling.trainer.GoslingException
import dev.gosling.trainer.train.DistTrainFixture._
import dev.gosling.trainer.train.TrainFixture.config
import dev.gosling.trainer.train.{LoopOptions, TrainSettings, TrainLog}
import org.apache.spark.SparkConf
import org.apache.spark.sql.SparkSession
import org.scalatest.BeforeAndAfterAll
import org.scalatest.funsuite.AnyFunSuite

import java.io.{ByteArrayOutputStream, PrintStream}
import java.nio.charset.StandardCharsets.UTF_8
import java.nio.file.{Files, Path}
import scala.jdk.CollectionConverters._

/**
 * `gosling train --spark` for real: a barrier stage on `local-cluster[2,1,1024]` (two executor JVMs, one core each),
 * each standalone worker given one fake GPU by conf/spark/fake-gpu-discovery.sh, tasks asking for one GPU each; the
 * trainer runs the RWKV-7 model on the CPU backend with the allGather collective.
 */
class TrainJobClusterSuite extends AnyFunSuite with BeforeAndAfterAll {
  private val Master = "local-cluster[2,1,1024]"

  private def spark(): SparkSession = SparkTestSession.get(Master, Map(
    "spark.worker.resource.gpu.amount" -> "1",
    "spark.worker.resource.gpu.discoveryScript" -> Shared.repo.resolve("conf/spark/fake-gpu-discovery.sh").toString,
    "spark.executor.resource.gpu.amount" -> "1",
    "spark.task.resource.gpu.amount" -> "1",
    "spark.barrier.sync.timeout" -> "120s",
    // A retried barrier stage waits for the failed attempt's tasks to free their slots; check every second, not 15 s.
    "spark.scheduler.barrier.maxConcurrentTasksCheck.interval" -> "1s"))

  private def settings(m: Map[String, String], loop: Map[String, String] = Map.empty): TrainSettings =
    TrainSettings.load(java.util.List.of(), (m ++ loop + ("progress_bar" -> "0")).asJava)

  private def runJob(m: Map[String, String], options: TrainJob.Options = TrainJob.Options.defaults().withSlotWait(60),
                     loop: Map[String, String] = Map.empty): TrainJob.Result =
    TrainJob.run(spark(), settings(m, loop), options.withTimeout(120), new PrintStream(new ByteArrayOutputStream(), true, UTF_8))

  /** rank -> field -> value, from the tasks' summary lines. */
  private def fields(r: TrainJob.Result): Map[Int, Map[String, String]] =
    r.ranks.asScala.map { line =>
      val kv = line.split(" ").filter(_.contains("=")).map { w => val Array(k, v) = w.split("=", 2); k -> v }.toMap
      kv("rank").toInt -> kv
    }.toMap

  test("2 ranks on 2 executors get distinct GPUs, train as 1 rank with twice the micro-batch, and equal --devices 2 bit for bit " +
    "(data shipped with addFile, proj_dir a file:// URI)") {
    // Spark's allGather polls its barrier once a second, and a zero1 step makes 4 of them: few steps.
    val steps = 4
    val remote = Files.createTempDirectory("gosling-spark-uri")
    val onSpark = runJob(flags(Path.of("unused"), 2, 4, steps, "proj_dir" -> remote.toUri.toString, "strategy" -> "zero1"),
      TrainJob.Options.defaults().withSlotWait(60).withShipData(true))
    val ranks = fields(onSpark)
    assert(ranks.keySet == Set(0, 1))
    assert(ranks.values.map(_("gpu")).toSet == Set("0", "1"), onSpark.ranks)
    assert(ranks.values.forall(f => f("steps") == steps.toString && f("next_step") == steps.toString), onSpark.ranks)
    // Rank 0 copied its files to the URI; no rank left anything else there.
    val names = Files.list(remote).iterator.asScala.map(_.getFileName.toString).toSet
    assert(names == Set("rwkv-init.pth", "rwkv-final.pth", "rwkv-final.state", TrainLog.FILE, "metrics.jsonl", "train_loss.png"), names)

    val threads = Files.createTempDirectory("gosling-threads")
    inProcess(flags(threads, 2, 4, steps, "strategy" -> "zero1"))
    assert(losses(remote) == losses(threads))
    assert(master(remote.resolve("rwkv-final.state")).sameElements(master(threads.resolve("rwkv-final.state"))))

    val one = Files.createTempDirectory("gosling-one")
    inProcess(flags(one, 1, 8, steps))
    for ((a, b) <- losses(remote).zip(losses(one))) assert(math.abs(a - b) < 1e-5 * a, (losses(remote), losses(one)))
    assert(maxRelDiff(master(remote.resolve("rwkv-final.state")), master(one.resolve("rwkv-final.state"))) < 1e-2)
  }

  test("a task that dies mid-run fails the barrier stage; Spark retries it and the ranks resume from the latest save, " +
    "ending with the weights of an undisturbed run") {
    val steps = 6
    val proj = Files.createTempDirectory("gosling-spark-killed")
    val m = flags(proj, 2, 4, steps, "strategy" -> "ddp")
    // rwkv-last.pth every 2 steps; rank 1 throws after its 3rd step on the first attempt, so the retry resumes at step 2.
    val result = runJob(m, TrainJob.Options.defaults().withSlotWait(60).withFailure(1, 3), Map("save_steps" -> "2"))
    val ranks = fields(result)
    assert(ranks.values.forall(_("attempt") == "1"), result.ranks)
    assert(ranks.values.forall(f => f("steps") == "4" && f("next_step") == steps.toString), result.ranks)
    val log = Files.readAllLines(proj.resolve(TrainLog.FILE)).asScala
    assert(log.count(_.startsWith("NEW RUN")) == 2, log)

    val undisturbed = Files.createTempDirectory("gosling-undisturbed")
    inProcess(flags(undisturbed, 2, 4, steps, "strategy" -> "ddp"))
    assert(master(proj.resolve("rwkv-final.state")).sameElements(master(undisturbed.resolve("rwkv-final.state"))))
  }

  test("refused before the stage starts: more ranks than GPU slots (naming both numbers), dynamic allocation, a fractional GPU") {
    val proj = Files.createTempDirectory("gosling-spark-bad")
    val e = intercept[GoslingException](runJob(flags(proj, 3, 4, 2, "accelerator" -> "cpu"), TrainJob.Options.defaults().withSlotWait(2)))
    assert(e.getMessage.contains("asks for 3 ranks (one barrier task each), but the cluster offers 2 GPU task slots"), e.getMessage)
    val cfg = config(flags(proj, 2, 4, 2, "accelerator" -> "cpu"))
    val e2 = intercept[GoslingException](TrainJob.checkConf(new SparkConf().set("spark.dynamicAllocation.enabled", "true"), cfg, false))
    assert(e2.getMessage.startsWith("spark.dynamicAllocation.enabled=true") && e2.getMessage.contains("set spark.dynamicAllocation.enabled=false"))
    val e3 = intercept[GoslingException](TrainJob.checkConf(new SparkConf().set("spark.task.resource.gpu.amount", "0.5"), cfg, false))
    assert(e3.getMessage.contains("set spark.task.resource.gpu.amount=1"))
    val e4 = intercept[GoslingException](TrainJob.checkConf(new SparkConf(), config(flags(proj, 2, 4, 2, "accelerator" -> "gpu")), false))
    assert(e4.getMessage.contains("needs Spark's GPU scheduling"))
    assert(TrainJob.cudaOrdinal("3", 0) == 3 && TrainJob.cudaOrdinal(null, 1) == 1)
  }

  override def afterAll(): Unit = SparkTestSession.get(SparkTestSession.LocalMaster) // the next suites expect the local master
}
