package dev.gosling.backend.cuda

import dev.gosling.trainer.backend.cpu.CpuBackend
import dev.gosling.trainer.backend.cuda.{CudaBackend, CudaProbe, GpuOpChecks}
import org.scalatest.BeforeAndAfterAll
import org.scalatest.funsuite.AnyFunSuite

import scala.jdk.CollectionConverters._

/**
 * Every CUDA op against the CPU backend (GpuOpChecks: fresh random inputs at several sizes, outputs poisoned with
 * NaN, gradients accumulated onto random values; fp32 within 1e-5 of the float64 CPU reference, AdamW bit-exact).
 * The same checks run on a GPU machine without Maven through scripts/gpu-check. Without a usable GPU (CI) every test
 * is CANCELED with the probe's one-line reason.
 */
class CudaBackendSuite extends AnyFunSuite with BeforeAndAfterAll {

  private val probe = CudaProbe.probe()
  private lazy val gpu = new CudaBackend()
  private lazy val cpu = new CpuBackend()
  private var opened = false

  override def beforeAll(): Unit =
    if (!probe.available) System.err.println(s"[CudaBackendSuite] every CUDA test CANCELED: no usable GPU: ${probe.reason}")

  override def afterAll(): Unit = if (opened) { gpu.close(); cpu.close() }

  private def requireGpu(): Unit = {
    if (!probe.available) cancel(s"no usable GPU, CUDA suite skipped: ${probe.reason}")
    opened = true
  }

  for (check <- GpuOpChecks.all(false).asScala) {
    test(s"CUDA ${check.name} matches the CPU backend") {
      requireGpu()
      val rows = check.run(gpu, cpu).asScala
      assert(rows.nonEmpty)
      for (r <- rows) {
        info(f"${r.quantity}%-22s error ${r.error}%.2e (tolerance ${r.tolerance}%.0e)")
        assert(r.failure == null, s"${r.quantity}: ${r.failure}")
        assert(r.finite, s"${r.quantity}: NaN or Inf in the GPU result")
        assert(r.error <= r.tolerance, s"${r.quantity}: error ${r.error} over ${r.tolerance}")
      }
    }
  }

  test("a training-step allocation pattern makes no cudaMalloc after the first step") {
    requireGpu()
    def step(): Unit = {
      val ts = Seq.tabulate(20)(i => gpu.allocate(dev.gosling.trainer.backend.DType.F32, 1000 + 37 * i, 3))
      ts.foreach(_.close())
    }
    step()
    val before = gpu.mallocCalls()
    step(); step()
    assert(gpu.mallocCalls() == before)
  }
}
