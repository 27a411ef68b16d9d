package dev.gosling.trainer.train

import dev.gosling.trainer.GoslingException
import org.scalatest.funsuite.AnyFunSuite

import java.io.{ByteArrayOutputStream, PrintStream}
import java.nio.charset.StandardCharsets
import scala.jdk.CollectionConverters._

/** The training benchmark runs end to end on tiny models on the CPU and prints one row per case. */
class TrainBenchmarkSuite extends AnyFunSuite {
  test("prints a table row per case with positive tokens/s; grad_cp runs too") {
    val bytes = new ByteArrayOutputStream()
    val out = new PrintStream(bytes, true, StandardCharsets.UTF_8)
    val cases = Seq("L2-D64:16:1", "L2-D64:16:2").map(TrainBenchmark.parse).asJava
    val rows = TrainBenchmark.run(out, cases, "cpu", "fp32", true, 1).asScala
    val text = bytes.toString(StandardCharsets.UTF_8)
    assert(text.linesIterator.count(_.startsWith("| L2-D64 ctx 16 bsz ")) == 2, text)
    assert(rows.forall(r => r.failure == null && r.tokensPerSecond > 0 && !r.tokensPerSecond.isInfinite), text)
    assert(rows.forall(_.peakGiB < 0)) // no device memory to report on the CPU
  }

  test("the issue's cases carry the official figures; bad case strings are one-line errors") {
    assert(TrainBenchmark.parse("L12-D768:4096:8").official == 181.9e3)
    assert(TrainBenchmark.parse("L6-D512:512:2").official == 0)
    val e = intercept[GoslingException](TrainBenchmark.parse("L12:4096"))
    assert(e.getMessage.contains("L<layers>-D<width>:<ctx_len>:<micro_bsz>"))
  }
}
