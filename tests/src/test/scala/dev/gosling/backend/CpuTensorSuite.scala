package dev.gosling.backend

import dev.gosling.trainer.GoslingException
import dev.gosling.trainer.backend.{DType, Tensor}
import dev.gosling.trainer.backend.cpu.CpuBackend
import org.scalatest.BeforeAndAfterAll
import org.scalatest.funsuite.AnyFunSuite

/** Tensor handles of the CPU backend: allocation, views, host transfers, utility ops and argument checks. */
class CpuTensorSuite extends AnyFunSuite with BeforeAndAfterAll {

  private val cpu = new CpuBackend()

  override def afterAll(): Unit = cpu.close()

  private def read(t: Tensor): Array[Double] = { val a = new Array[Double](t.numel.toInt); cpu.download(t, a); a }

  test("allocate gives a zero-filled tensor with its shape, element count and dtype") {
    val t = cpu.allocate(DType.F32, 3, 4, 5)
    try {
      assert(t.shape.toSeq == Seq(3, 4, 5) && t.numel == 60 && t.dtype == DType.F32 && t.ownsMemory)
      assert(read(t).forall(_ == 0.0))
    } finally t.close()
  }

  test("BF16 (the CUDA backend's GEMM inputs) is refused in one line; models here keep their own dtype") {
    val e = intercept[IllegalArgumentException](cpu.allocate(DType.BF16, 4))
    assert(e.getMessage.contains("BF16") && !e.getMessage.contains("\n"))
    assert(cpu.gemmInputDtype(DType.F32) == DType.F32 && cpu.gemmInputDtype(DType.F64) == DType.F64)
    assert(cpu.gemmGradientDtype(DType.F32) == DType.F32 && cpu.gemmGradientDtype(DType.F64) == DType.F64)
  }

  test("upload/download round-trip in every dtype; F32 storage rounds to float") {
    val f = cpu.allocate(DType.F32, 3)
    val d = cpu.allocate(DType.F64, 3)
    val i = cpu.allocate(DType.I32, 3)
    try {
      cpu.upload(Array(0.1, -2.5, 1e-3), f)
      assert(read(f).toSeq == Seq(0.1f.toDouble, -2.5, 1e-3f.toDouble))
      val back = new Array[Float](3); cpu.download(f, back)
      assert(back.toSeq == Seq(0.1f, -2.5f, 1e-3f))
      cpu.upload(Array(0.1f, 2f, 3f), d)
      assert(read(d).toSeq == Seq(0.1f.toDouble, 2.0, 3.0))
      cpu.upload(Array(0.1, 0.2, 0.3), d)
      assert(read(d).toSeq == Seq(0.1, 0.2, 0.3))
      cpu.upload(Array(7, -1, 65535), i)
      val ids = new Array[Int](3); cpu.download(i, ids)
      assert(ids.toSeq == Seq(7, -1, 65535))
    } finally { f.close(); d.close(); i.close() }
  }

  test("views share the allocation at their offset, compose, and zero only their own range") {
    val base = cpu.allocate(DType.F64, 10)
    try {
      cpu.upload(Array.tabulate(10)(_.toDouble), base)
      val v = cpu.view(base, 2, 2, 3)
      assert(!v.ownsMemory && v.numel == 6 && read(v).toSeq == Seq(2.0, 3, 4, 5, 6, 7))
      val vv = cpu.view(v, 1, 2)
      assert(read(vv).toSeq == Seq(3.0, 4.0))
      cpu.upload(Array(-1.0, -2.0), vv)
      cpu.zero(cpu.view(base, 8, 1))
      v.close() // closing a view frees nothing
      assert(read(base).toSeq == Seq(0.0, 1, 2, -1, -2, 5, 6, 7, 0, 9))
      assertThrows[IllegalArgumentException](cpu.view(base, 8, 3))
      assertThrows[IllegalArgumentException](cpu.view(base, -1, 1))
    } finally base.close()
  }

  test("copy, accumulate and add (add may write over an input)") {
    val a = cpu.allocate(DType.F64, 4)
    val b = cpu.allocate(DType.F64, 4)
    val c = cpu.allocate(DType.F64, 4)
    try {
      cpu.upload(Array(1.0, 2, 3, 4), a)
      cpu.upload(Array(10.0, 20, 30, 40), b)
      cpu.copy(a, c)
      assert(read(c).toSeq == Seq(1.0, 2, 3, 4))
      cpu.accumulate(b, c)
      assert(read(c).toSeq == Seq(11.0, 22, 33, 44))
      cpu.add(a, b, a)
      assert(read(a).toSeq == Seq(11.0, 22, 33, 44))
    } finally { a.close(); b.close(); c.close() }
  }

  test("ops run on views of one contiguous buffer (the model's layout)") {
    val buffer = cpu.allocate(DType.F64, 2 + 6 + 3)
    try {
      val x = cpu.view(buffer, 0, 1, 2)
      val w = cpu.view(buffer, 2, 3, 2)
      val y = cpu.view(buffer, 8, 1, 3)
      cpu.upload(Array(1.0, 2.0), x)
      cpu.upload(Array(1.0, 0, 0, 1, 1, 1), w)
      cpu.linearForward(x, w, y, 1, 2, 3)
      assert(read(buffer).drop(8).toSeq == Seq(1.0, 2.0, 3.0))
    } finally buffer.close()
  }

  test("wrong sizes, mixed precisions, closed or foreign tensors are rejected with the op and argument named") {
    val other = new CpuBackend(1)
    val x = cpu.allocate(DType.F64, 6)
    val y = cpu.allocate(DType.F64, 5)
    val y32 = cpu.allocate(DType.F32, 6)
    val foreign = other.allocate(DType.F64, 6)
    try {
      val size = intercept[IllegalArgumentException](cpu.gateForward(x, x, y, 2, 3))
      assert(size.getMessage.contains("gateForward") && size.getMessage.contains("out"))
      assert(intercept[IllegalArgumentException](cpu.gateForward(x, x, y32, 2, 3)).getMessage.contains("F32"))
      assert(intercept[IllegalArgumentException](cpu.gateForward(x, foreign, x, 2, 3)).getMessage.contains("another backend"))
      assertThrows[IllegalArgumentException](cpu.groupNormForward(x, x, x, x, x, x, 1, 6))
      assertThrows[IllegalArgumentException](cpu.upload(Array(1.0), x))
      val dead = cpu.allocate(DType.F64, 6)
      val deadView = cpu.view(dead, 0, 3)
      dead.close()
      assert(intercept[IllegalArgumentException](cpu.zero(dead)).getMessage.contains("closed"))
      assert(intercept[IllegalArgumentException](cpu.zero(deadView)).getMessage.contains("closed"))
    } finally { x.close(); y.close(); y32.close(); foreign.close(); other.close() }
  }

  test("running out of off-heap memory is a one-line user error that names the fix") {
    val cap = org.bytedeco.javacpp.Pointer.maxBytes()
    assume(cap > 0, "JavaCPP memory cap disabled")
    val mebiDoubles = 1 << 17 // 1 MiB of doubles per row
    val e = intercept[GoslingException](cpu.allocate(DType.F64, (cap / (1L << 20) + 1).toInt, mebiDoubles))
    assert(e.getMessage.contains("-Xmx") && !e.getMessage.contains("\n"))
  }

  test("a token id outside the vocabulary is a one-line user error") {
    val ids = cpu.allocate(DType.I32, 3)
    val w = cpu.allocate(DType.F32, 4, 2)
    val out = cpu.allocate(DType.F32, 3, 2)
    try {
      cpu.upload(Array(0, 3, 4), ids)
      val e = intercept[GoslingException](cpu.embeddingForward(ids, w, out, 3, 4, 2))
      assert(e.getMessage.contains("token id 4 at position 2") && !e.getMessage.contains("\n"))
    } finally { ids.close(); w.close(); out.close() }
  }
}
