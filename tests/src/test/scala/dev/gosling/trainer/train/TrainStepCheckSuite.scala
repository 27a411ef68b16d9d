package dev.gosling.trainer.train

import dev.gosling.trainer.backend.cpu.CpuBackend
import dev.gosling.trainer.model.ModelConfig
import org.scalatest.funsuite.AnyFunSuite

import java.io.{ByteArrayOutputStream, PrintStream}
import java.nio.charset.StandardCharsets

/**
 * The GPU check's training-step comparison runs its whole harness here with a second CPU backend (1 thread against
 * 2) standing in for the GPU: loss, per-tensor cosine and the loss curve are computed and reported, and the curve
 * learns (the GPU itself is checked by scripts/gpu-check).
 */
class TrainStepCheckSuite extends AnyFunSuite {
  test("one-thread CPU vs two-thread CPU passes the loss, cosine and curve checks, and the curve goes down") {
    val bytes = new ByteArrayOutputStream()
    val out = new PrintStream(bytes, true, StandardCharsets.UTF_8)
    val a = new CpuBackend(1)
    val b = new CpuBackend(2)
    try {
      val ok = TrainStepCheck.run(out, a, b, "stand-in", ModelConfig.of(2, 64, 1000, 32), 2, 30)
      val text = bytes.toString(StandardCharsets.UTF_8)
      assert(ok, text)
      assert(text.contains("lowest cosine similarity over"), text)
      assert("""grad_cp 1: loss \S+, gradients ‖Δ‖/‖g‖ \S+ against grad_cp 0 \(tolerance 1e-06\) ok""".r.findFirstIn(text).isDefined, text)
      val curve = """loss (\d+\.\d+) -> (\d+\.\d+) \(device\)""".r.findFirstMatchIn(text).get
      assert(curve.group(2).toDouble < curve.group(1).toDouble - 0.1, text)
    } finally { a.close(); b.close() }
  }
}
