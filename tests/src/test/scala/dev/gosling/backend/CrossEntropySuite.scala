package dev.gosling.backend

import dev.gosling.trainer.GoslingException
import dev.gosling.trainer.backend.{Backend, DType}
import dev.gosling.trainer.backend.cpu.CpuBackend
import org.scalatest.BeforeAndAfterAll
import org.scalatest.funsuite.AnyFunSuite
import scala.util.Random

/** Cross-entropy and its L2Wrap gradient (rwkv7-reference.md §5.5). */
class CrossEntropySuite extends AnyFunSuite with BeforeAndAfterAll {

  private val cpu = new CpuBackend()

  override def afterAll(): Unit = cpu.close()

  private def lossesAndGrad(dtype: DType, logits: Array[Double], targets: Array[Int], rows: Int, vocab: Int,
                            inPlace: Boolean = false): (Array[Double], Array[Double]) =
    Dev.using(cpu, dtype) { d =>
      val l = d.tensor(logits)
      val y = d.ids(targets)
      val losses = d.zeros(rows)
      cpu.crossEntropyForward(l, y, losses, rows, vocab)
      val g = if (inPlace) l else d.zeros(logits.length)
      cpu.crossEntropyBackward(l, y, g, rows, vocab, 1.0 / rows)
      (d.read(losses), d.read(g))
    }

  private def rowMax(logits: Array[Double], vocab: Int, row: Int) = logits.slice(row * vocab, (row + 1) * vocab).max

  private def meanCe(logits: Array[Double], targets: Array[Int], rows: Int, vocab: Int): Double =
    (0 until rows).map { r =>
      val row = logits.slice(r * vocab, (r + 1) * vocab)
      val m = row.max
      m + math.log(row.map(x => math.exp(x - m)).sum) - row(targets(r))
    }.sum / rows

  test("forward: per-row logsumexp − logit[target]; L2Wrap leaves the loss alone") {
    val rng = new Random(1)
    val (rows, vocab) = (6, 13)
    val logits = OpCheck.gaussian(rng, rows * vocab, 3.0)
    val targets = Array.fill(rows)(rng.nextInt(vocab))
    val (losses, _) = lossesAndGrad(DType.F64, logits, targets, rows, vocab)
    assert(math.abs(losses.sum / rows - meanCe(logits, targets, rows, vocab)) < 1e-14)
  }

  test("backward is the gradient of mean CE + 1e-4/(2·B·T)·Σ max², by central differences in fp64") {
    val rng = new Random(2)
    val (rows, vocab) = (5, 11)
    val logits = OpCheck.gaussian(rng, rows * vocab, 3.0)
    val targets = Array.fill(rows)(rng.nextInt(vocab))
    def objective(x: Array[Double]) =
      meanCe(x, targets, rows, vocab) + Backend.L2WRAP_FACTOR / (2.0 * rows) * (0 until rows).map(r => math.pow(rowMax(x, vocab, r), 2)).sum
    val (_, grad) = lossesAndGrad(DType.F64, logits, targets, rows, vocab)
    val h = 1e-5
    val numeric = logits.indices.map { i =>
      val p = logits.clone(); p(i) += h
      val m = logits.clone(); m(i) -= h
      (objective(p) - objective(m)) / (2 * h)
    }.toArray
    assert(OpCheck.relError(grad, numeric) < 1e-6)
  }

  test("the L2Wrap term is 1e-4·max/(B·T) on the argmax only, lowest index on ties") {
    val (rows, vocab) = (2, 4)
    val logits = Array(1.0, 3.0, 3.0, 0.0, /* row 1 */ -2.0, -1.0, -5.0, -1.5)
    val targets = Array(0, 2)
    val (_, grad) = lossesAndGrad(DType.F64, logits, targets, rows, vocab)
    for (r <- 0 until rows) {
      val row = logits.slice(r * vocab, (r + 1) * vocab)
      val sum = row.map(x => math.exp(x - row.max)).sum
      val plain = row.indices.map(v => (math.exp(row(v) - row.max) / sum - (if (v == targets(r)) 1 else 0)) / rows)
      val extra = row.indices.map(v => grad(r * vocab + v) - plain(v))
      val argmax = row.indexOf(row.max)
      assert(argmax == 1, "row 0 ties at 1 and 2: the lowest index wins")
      for (v <- row.indices) {
        val expected = if (v == argmax) 1e-4 * row.max / rows else 0.0
        assert(math.abs(extra(v) - expected) < 1e-16, s"row $r v $v")
      }
    }
  }

  test("dLogits may alias the logits (in place)") {
    val rng = new Random(3)
    val (rows, vocab) = (4, 9)
    val logits = OpCheck.gaussian(rng, rows * vocab)
    val targets = Array.fill(rows)(rng.nextInt(vocab))
    assert(lossesAndGrad(DType.F64, logits, targets, rows, vocab)._2
      .sameElements(lossesAndGrad(DType.F64, logits, targets, rows, vocab, inPlace = true)._2))
  }

  test("fp32 agrees with fp64 to 1e-5 at the real vocabulary size (V = 65536)") {
    val rng = new Random(4)
    val (rows, vocab) = (3, 65536)
    val logits = OpCheck.toFloat(OpCheck.gaussian(rng, rows * vocab, 4.0))
    val targets = Array.fill(rows)(rng.nextInt(vocab))
    val (l64, g64) = lossesAndGrad(DType.F64, logits, targets, rows, vocab)
    val (l32, g32) = lossesAndGrad(DType.F32, logits, targets, rows, vocab)
    assert(OpCheck.relError(l64, l32) < 1e-5)
    assert(OpCheck.relError(g64, g32) < 1e-5)
  }

  test("a target outside the vocabulary is a one-line user error") {
    val e = intercept[GoslingException](lossesAndGrad(DType.F64, Array.fill(8)(0.0), Array(1, 4), 2, 4))
    assert(e.getMessage.contains("target token id 4 at position 1") && !e.getMessage.contains("\n"))
  }
}
