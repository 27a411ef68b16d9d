package dev.gosling.backend.cuda

import dev.gosling.trainer.GoslingException
import dev.gosling.trainer.backend.Accelerators
import dev.gosling.trainer.backend.cpu.CpuBackend
import dev.gosling.trainer.backend.cuda.{CudaBackend, CudaProbe}
import org.scalatest.funsuite.AnyFunSuite

import scala.collection.mutable.ArrayBuffer

/** --accelerator auto|gpu|cpu on whatever machine runs the tests (both branches are real: GPU or no GPU). */
class AcceleratorsSuite extends AnyFunSuite {

  private val probe = CudaProbe.probe()

  test("the probe's reason is one non-empty line exactly when no GPU is usable") {
    if (probe.available) {
      assert(probe.devices >= 1)
      assert(probe.reason.isEmpty)
    } else {
      info(s"probe: ${probe.reason}")
      assert(probe.reason.nonEmpty && !probe.reason.contains("\n"))
      assert(probe.devices == 0)
    }
  }

  test("cpu gives the CPU backend") {
    val b = Accelerators.open("cpu", 0, 2, _ => fail("cpu must not log"))
    try assert(b.isInstanceOf[CpuBackend]) finally b.close()
  }

  test("auto gives the GPU when one is usable, else the CPU with one line saying why") {
    val lines = ArrayBuffer.empty[String]
    val b = Accelerators.open("auto", 0, 2, lines += _)
    try {
      if (probe.available) {
        assert(b.isInstanceOf[CudaBackend])
        assert(lines.isEmpty)
      } else {
        assert(b.isInstanceOf[CpuBackend])
        assert(lines.size == 1)
        assert(lines.head.startsWith("--accelerator auto: using the CPU backend: "))
        assert(lines.head.endsWith(probe.reason))
      }
    } finally b.close()
  }

  test("gpu without a usable GPU is a one-line error naming what is missing") {
    if (probe.available) {
      val b = Accelerators.open("gpu", 0, 2, _ => ())
      try assert(b.isInstanceOf[CudaBackend]) finally b.close()
    } else {
      val e = intercept[GoslingException](Accelerators.open("gpu", 0, 2, _ => ()))
      assert(e.getMessage == "--accelerator gpu: " + probe.reason)
    }
  }

  test("an unknown accelerator or device is a one-line error") {
    val e = intercept[GoslingException](Accelerators.open("tpu", 0, 2, _ => ()))
    assert(e.getMessage.contains("--accelerator tpu") && e.getMessage.contains("auto, gpu or cpu"))
    if (probe.available) {
      val d = intercept[GoslingException](Accelerators.open("gpu", probe.devices, 2, _ => ()))
      assert(d.getMessage.contains("does not exist"))
    }
  }
}
