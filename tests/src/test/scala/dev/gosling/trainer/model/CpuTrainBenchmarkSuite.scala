package dev.gosling.trainer.model

import org.scalatest.funsuite.AnyFunSuite

import java.io.{ByteArrayOutputStream, PrintStream}
import java.nio.charset.StandardCharsets

/** The training-throughput benchmark runs end to end on a tiny model and prints one row per micro-batch size. */
class CpuTrainBenchmarkSuite extends AnyFunSuite {
  test("prints a header and one row per micro_bsz, and returns positive tokens/s") {
    val bytes = new ByteArrayOutputStream()
    val out = new PrintStream(bytes, true, StandardCharsets.UTF_8)
    val tps = CpuTrainBenchmark.run(out, ModelConfig.of(2, 64, 256, 16), 2, 1, 1, true)
    val lines = bytes.toString(StandardCharsets.UTF_8).linesIterator.toSeq
    assert(lines.head.startsWith("RWKV-7 L2-D64 ctx 16 vocab 256"), lines.head)
    assert(lines.head.contains("grad_cp 1"))
    val rows = lines.filter(_.matches("""\|\s+\d+ \|.*"""))
    assert(rows.map(_.split('|')(1).trim.toInt) == Seq(1, 2))
    assert(tps.length == 2 && tps.forall(t => t > 0 && !t.isInfinite))
  }
}
