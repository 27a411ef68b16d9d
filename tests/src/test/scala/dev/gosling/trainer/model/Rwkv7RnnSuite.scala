package dev.gosling.trainer.model

import dev.gosling.trainer.GoslingException
import dev.gosling.trainer.backend.DType
import dev.gosling.trainer.backend.cpu.CpuBackend
import dev.gosling.trainer.model.ModelFixtures._
import org.scalatest.funsuite.AnyFunSuite

import scala.util.Random

/** RNN mode (one token at a time with a carried state) against the parallel forward pass. */
class Rwkv7RnnSuite extends AnyFunSuite {

  private val config = ModelConfig.of(2, 128, 256, 32)
  private val layout = new ParameterLayout(config)
  private val params = randomParams(layout, seed = 31)
  private val B = 2
  private val T = config.ctxLen
  private val V = config.vocabSize
  private val inputs = tokens(new Random(8), B * T, V)

  private lazy val parallel: Array[Float] = {
    val cpu = new CpuBackend(2)
    try {
      val model = new Rwkv7Model(config, cpu, DType.F32, B)
      try {
        model.setParameters(params)
        val out = new Array[Float](B * T * V)
        model.logits(inputs, B, out)
        out
      } finally model.close()
    } finally cpu.close()
  }

  test("RNN logits equal the parallel fp32 forward's at every position of every sample (1e-5 relative)") {
    val rnn = new Rwkv7Rnn(layout, params)
    var worst = 0.0
    for (b <- 0 until B) {
      val state = rnn.newState()
      for (t <- 0 until T) {
        val row = b * T + t
        val got = rnn.logits(inputs(row), state).map(_.toDouble)
        val expected = parallel.slice(row * V, (row + 1) * V).map(_.toDouble)
        val err = relError(got, expected)
        worst = math.max(worst, err)
        assert(err < 1e-5, s"sample $b position $t: $err")
      }
    }
    info(f"worst relative error over ${B * T} positions: $worst%.1e")
  }

  test("advance without logits, state copies and reset carry exactly the same state") {
    val rnn = new Rwkv7Rnn(layout, params)
    val s1 = rnn.newState()
    (0 until 10).foreach(t => rnn.advance(inputs(t), s1))
    val forked = s1.copy()
    val a = rnn.logits(inputs(10), s1)
    val b = rnn.logits(inputs(10), forked)
    assert(a.sameElements(b))
    assert(a.map(_.toDouble).zip(parallel.slice(10 * V, 11 * V)).forall { case (x, y) => math.abs(x - y) < 1e-4 })
    s1.reset()
    val fresh = rnn.logits(inputs(0), s1)
    assert(relError(fresh.map(_.toDouble), parallel.slice(0, V).map(_.toDouble)) < 1e-5)
    assert((0 until config.nLayer).exists(l => forked.wkv(l).exists(_ != 0f)))
  }

  test("the RNN reads the weights in place: changing the array changes the next token's logits") {
    val p = params.clone()
    val rnn = new Rwkv7Rnn(layout, p)
    val before = rnn.logits(3, rnn.newState())
    val head = layout.get("head.weight")
    p(head.offset.toInt) += 1f
    val after = rnn.logits(3, rnn.newState())
    assert(before(0) != after(0))
    assert(before.drop(1).sameElements(after.drop(1)))
  }

  test("a token outside the vocab is a one-line error") {
    val rnn = new Rwkv7Rnn(layout, params)
    val e = intercept[GoslingException](rnn.logits(V, rnn.newState()))
    assert(e.getMessage.contains("outside the model's vocab (0..255)"))
  }
}
