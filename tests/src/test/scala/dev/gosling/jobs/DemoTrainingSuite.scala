package dev.gosling.jobs

import java.io.{ByteArrayOutputStream, PrintStream}
import java.nio.charset.StandardCharsets.UTF_8
import java.nio.file.{Files, Path}

import dev.gosling.pipeline.MakeDataConfig
import dev.gosling.testkit.{Shared, SparkTestSession}
import org.scalatest.funsuite.AnyFunSuite

import scala.jdk.CollectionConverters._

/**
 * Issue 3's "done when", through the CLI as a user runs it: make-data on the sample corpus, `init` and `train` a real
 * RWKV-7 (L2-D128, ctx 128) on the CPU backend until the loss falls from ≈ ln(65536) to below 7, then `generate` text.
 */
class DemoTrainingSuite extends AnyFunSuite {
  private def capture(body: => Int): (Int, String) = {
    val bytes = new ByteArrayOutputStream()
    val saved = System.out
    System.setOut(new PrintStream(bytes, true, UTF_8))
    val code = try body finally System.setOut(saved)
    (code, new String(bytes.toByteArray, UTF_8))
  }

  test("init + train an L2-D128 RWKV-7 on the sample corpus: loss falls from ~11.1 to below 7; generate prints text") {
    val dir = Files.createTempDirectory("gosling-demo-train")
    val data = dir.resolve("demo")
    MakeDataJob.run(SparkTestSession.get(), new MakeDataConfig(Shared.repo.resolve("data/sample/demo.jsonl").toString, 3, 4096,
      data.toString, MakeDataConfig.DEFAULT_SEED, 0, 0, true, false, MakeDataConfig.DEFAULT_MAX_LINE_BYTES, null), new PrintStream(new ByteArrayOutputStream()))
    val proj = dir.resolve("proj")
    val common = Seq("--config", Shared.repo.resolve("conf/models/L2-D128.yaml").toString,
      "--config", Shared.repo.resolve("conf/train/demo-cpu.yaml").toString,
      "--proj_dir", proj.toString, "--data_file", data.toString)
    assert(capture(Main.execute(("init" +: common): _*))._1 == 0)
    assert(Files.exists(proj.resolve("rwkv-init.pth")))
    val (code, _) = capture(Main.execute(("train" +: common) ++ Seq("--lr_init", "6e-3", "--max_steps", "48", "--progress_bar", "0"): _*))
    assert(code == 0)
    val losses = Files.readAllLines(proj.resolve("metrics.jsonl"), UTF_8).asScala.toSeq
      .map(l => new com.fasterxml.jackson.databind.ObjectMapper().readTree(l).get("loss").asDouble)
    assert(losses.size == 48)
    assert(losses.head > 10.5 && losses.head < 11.6, losses.head) // ≈ ln(65536) = 11.09 at init
    val lastTen = losses.takeRight(10).sum / 10
    assert(lastTen < 7.0, s"mean loss of the last 10 steps $lastTen (all: ${losses.map(x => f"$x%.2f").mkString(" ")})")
    val last: Path = proj.resolve("rwkv-last.pth")
    assert(Files.exists(last) && Files.exists(proj.resolve("train_log.txt")) && Files.exists(proj.resolve("train_loss.png")))
    val (genCode, text) = capture(Main.execute("generate", "--load_model", last.toString, "--prompt", "User: hi",
      "--max_tokens", "20", "--temperature", "0"))
    assert(genCode == 0)
    assert(text.startsWith("User: hi") && text.length > "User: hi".length + 5, text)
  }
}
