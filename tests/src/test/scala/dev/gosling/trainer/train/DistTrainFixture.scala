package dev.gosling.trainer.train

import dev.gosling.trainer.train.TrainFixture._

import java.io.{ByteArrayOutputStream, PrintStream, PrintWriter, StringWriter}
import java.nio.charset.StandardCharsets.UTF_8
import java.nio.file.Path
import scala.jdk.CollectionConverters._

/**
 * Data-parallel runs of the real RWKV-7 model on the CPU backend (L2-D64, vocab 256, ctx 32) on [[TrainFixture.demo]]:
 * small enough that a step takes milliseconds, real enough that every parameter has a gradient.
 */
object DistTrainFixture {
  val Ctx = 32

  /** Flags for `steps` steps with a global batch of `realBsz` samples. */
  def flags(proj: Path, devices: Int, microBsz: Int, steps: Int, extra: (String, String)*): Map[String, String] =
    TrainFixture.flags(proj, Ctx, microBsz, (Seq("devices" -> devices.toString, "my_exit_tokens" -> (steps.toLong * devices * microBsz * Ctx).toString,
      "lr_init" -> "3e-3", "lr_final" -> "1e-3", "warmup_steps" -> "2", "train_stage" -> "0") ++ extra): _*)

  /** `gosling train --devices N` in this JVM: (rank 0's result, what rank 0 printed). */
  def inProcess(m: Map[String, String], options: LoopOptions = new LoopOptions(0, "", false), stop: StopFlag = new StopFlag): (Trainer.Result, String) = {
    val text = new StringWriter()
    val out = new PrintWriter(text)
    val result = DataParallel.run(config(m), options, new Rwkv7Factory, out, new PrintStream(new ByteArrayOutputStream(), true, UTF_8), stop, 60)
    out.flush()
    (result, text.toString)
  }

  def losses(proj: Path): Seq[Double] = MetricsLog.read(proj).asScala.toSeq.map(_.loss)

  def master(file: Path): Array[Float] = TrainState.read(file).master()

  /** Largest |a − b| / (|b| + scale) over the elements. */
  def maxRelDiff(a: Array[Float], b: Array[Float], scale: Double = 1e-3): Double = {
    require(a.length == b.length)
    a.indices.map(i => math.abs(a(i) - b(i)) / (math.abs(b(i)) + scale)).max
  }
}
