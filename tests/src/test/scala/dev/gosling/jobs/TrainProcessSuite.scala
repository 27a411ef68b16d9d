package dev.gosling.jobs

import dev.gosling.trainer.checkpoint.TorchCheckpoint
import dev.gosling.trainer.train.{BigramModelFactory, MetricsLog, TrainFixture, TrainState}
import org.scalatest.funsuite.AnyFunSuite

import java.io.File
import java.nio.charset.StandardCharsets.UTF_8
import java.nio.file.{Files, Path}
import java.util.concurrent.TimeUnit
import scala.jdk.CollectionConverters._

/**
 * `gosling train` as a real child JVM (dev.gosling.jobs.Main on this test class path, the test model chosen with
 * --model_impl): SIGTERM ends it with exit 0 after saving rwkv-last.pth + state; SIGKILL at any moment leaves every
 * checkpoint under its final name complete; resuming after either ends in the same weights as an uninterrupted run.
 */
class TrainProcessSuite extends AnyFunSuite {
  private val java = Path.of(sys.props("java.home"), "bin", "java").toString

  private def args(proj: Path, extra: (String, String)*): Seq[String] =
    TrainFixture.flags(proj, 16, 4032, (Seq("epoch_save" -> "1", "my_exit_tokens" -> (40L * 4032 * 16).toString) ++ extra): _*)
      .toSeq.sortBy(_._1).flatMap { case (k, v) => Seq("--" + k, v) } ++ Seq("--model_impl", BigramModelFactory.Name)

  private def start(proj: Path, log: Path): Process =
    new ProcessBuilder((Seq(java, "-Xmx1g", "-cp", sys.props("java.class.path"), "dev.gosling.jobs.Main", "train") ++ args(proj)).asJava)
      .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile)).start()

  private def steps(proj: Path): Int = MetricsLog.read(proj).size

  private def waitFor(what: String, p: Process, seconds: Int)(ok: => Boolean): Unit = {
    val deadline = System.nanoTime() + seconds * 1_000_000_000L
    while (!ok) {
      assert(p.isAlive, s"the child exited before $what")
      assert(System.nanoTime() < deadline, s"timed out waiting for $what")
      Thread.sleep(20)
    }
  }

  /** Every rwkv*.pth and .state under its final name reads back completely. */
  private def allComplete(proj: Path): Unit =
    Files.list(proj).iterator.asScala.map(_.getFileName.toString).foreach { n =>
      if (n.startsWith("rwkv") && n.endsWith(".pth")) TorchCheckpoint.read(proj.resolve(n))
      if (n.endsWith(".state")) TrainState.read(proj.resolve(n))
    }

  test("SIGTERM and SIGKILL on a real `gosling train`: exit 0 with rwkv-last, intact files, and an exact continuation") {
    val whole = TrainFixture.fresh("proc-whole")
    TrainFixture.init(TrainFixture.flags(whole, 16, 4032))
    TrainFixture.train(TrainFixture.flags(whole, 16, 4032, "epoch_save" -> "1", "my_exit_tokens" -> (40L * 4032 * 16).toString))

    val proj = TrainFixture.fresh("proc")
    TrainFixture.init(TrainFixture.flags(proj, 16, 4032))
    val log = proj.resolve("child.log")
    val p = start(proj, log)
    waitFor("5 steps", p, 120)(steps(proj) >= 5)
    val t0 = System.nanoTime()
    p.destroy() // SIGTERM
    assert(p.waitFor(20, TimeUnit.SECONDS), "no exit within 20 s of SIGTERM")
    val seconds = (System.nanoTime() - t0) / 1e9
    val output = Files.readString(log, UTF_8)
    assert(p.exitValue() == 0, output)
    assert(output.contains("SIGTERM: finishing this step, then saving rwkv-last.pth") && output.contains("Stopped (SIGTERM) before step"), output)
    assert(seconds < 10, seconds)
    // Off a terminal the progress bar prints plain lines: here the one at the end.
    assert(output.linesIterator.exists(l => l.startsWith("train ") && l.contains(" it/s loss ") && l.endsWith(" Kt/s")), output)
    val stopped = TrainState.read(proj.resolve("rwkv-last.state")).state().position()
    assert(stopped.globalStep() == steps(proj))
    allComplete(proj)

    for (delay <- Seq(700, 1900)) { // SIGKILL mid-run, saves included: a miniepoch (and a save) every 10 steps
      val q = start(proj, log)
      waitFor("the resumed child's first step", q, 120)(Files.readString(log, UTF_8).contains("continuing exactly") && steps(proj) > 0)
      Thread.sleep(delay)
      q.destroyForcibly()
      assert(q.waitFor(20, TimeUnit.SECONDS))
      allComplete(proj)
    }
    val last = start(proj, log)
    assert(last.waitFor(120, TimeUnit.SECONDS), "the last child did not finish")
    assert(last.exitValue() == 0, Files.readString(log, UTF_8))
    assert(TrainState.read(proj.resolve("rwkv-final.state")).master().sameElements(TrainState.read(whole.resolve("rwkv-final.state")).master()))
    assert(Files.readAllBytes(proj.resolve("rwkv-final.pth")).sameElements(Files.readAllBytes(whole.resolve("rwkv-final.pth"))))
    assert(!Files.list(proj).iterator.asScala.exists(_.getFileName.toString.endsWith(".tmp")))
  }
}
