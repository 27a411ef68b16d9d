package dev.gosling.backend

import dev.gosling.backend.OpCases.Wkv7
import dev.gosling.trainer.backend.DType
import dev.gosling.trainer.backend.cpu.CpuBackend
import org.scalatest.BeforeAndAfterAll
import org.scalatest.funsuite.AnyFunSuite

/**
 * The WKV7 op against a naive per-step reference written here directly from rwkv7-reference.md §6.4 (matrix form,
 * with the older kernels' decay exp(−exp(−softplus(−w) − 0.5))), and its backward pass against central differences.
 */
class Wkv7Suite extends AnyFunSuite with BeforeAndAfterAll {

  private val cpu = new CpuBackend()
  private val oneThread = new CpuBackend(1)
  private val threeThreads = new CpuBackend(3)

  override def afterAll(): Unit = { cpu.close(); oneThread.close(); threeThreads.close() }

  private def softplus(x: Double): Double = if (x > 30) x else math.log1p(math.exp(x))

  /**
   * S_t = S_{t−1}·(diag ω_t + a_t b_tᵀ) + v_t k_tᵀ, o_t = S_t r_t, S_{−1} = 0, per (batch, head); with a = −κ̂ and
   * b = κ̂⊙α this is S_{t−1}(diag ω − κ̂(κ̂⊙α)ᵀ) + v k̃ᵀ. Returns the outputs and the states after every step.
   */
  private def naive(B: Int, T: Int, H: Int, in: Map[String, Array[Double]]): (Array[Double], Array[Array[Array[Double]]]) = {
    val C = H * 64
    val out = new Array[Double](B * T * C)
    val states = Array.ofDim[Array[Double]](B * H, T)
    for (b <- 0 until B; h <- 0 until H) {
      var s = Array.ofDim[Double](64, 64)
      for (t <- 0 until T) {
        def at(name: String, j: Int) = in(name)((b * T + t) * C + h * 64 + j)
        val omega = Array.tabulate(64)(j => math.exp(-math.exp(-softplus(-at("wRaw", j)) - 0.5)))
        val m = Array.tabulate(64, 64)((j, l) => (if (j == l) omega(j) else 0.0) + at("a", j) * at("b", l))
        s = Array.tabulate(64, 64)((i, l) => (0 until 64).map(j => s(i)(j) * m(j)(l)).sum + at("v", i) * at("k", l))
        for (i <- 0 until 64) out((b * T + t) * C + h * 64 + i) = (0 until 64).map(l => s(i)(l) * at("r", l)).sum
        states(b * H + h)(t) = s.flatten
      }
    }
    (out, states)
  }

  for ((b, t, h) <- Seq((1, 1, 1), (2, 16, 1), (1, 20, 2), (2, 64, 1))) {
    test(s"forward matches the naive per-step reference (B=$b T=$t H=$h), and saves the state every 16 steps") {
      val op = new Wkv7(b, t, h, seed = 40 + t)
      val in = op.inputs.toMap
      val (expected, states) = naive(b, t, h, in)
      val chunks = (t + 15) / 16
      Dev.using(cpu, DType.F64) { d =>
        val ins = op.inputs.map { case (n, v) => n -> d.tensor(v) }.toMap
        val f = op.forward(d, ins)
        val error = OpCheck.relError(d.read(f.outputs.head), expected)
        info(f"relative error against the reference $error%.1e")
        assert(error < 1e-12)
        val saved = d.read(f.saved("saved"))
        assert(saved.length == b * h * chunks * 4096)
        for (u <- 0 until b * h; c <- 0 until chunks) {
          val step = math.min(16 * c + 15, t - 1)
          val got = saved.slice((u * chunks + c) * 4096, (u * chunks + c + 1) * 4096)
          assert(OpCheck.relError(got, states(u)(step)) < 1e-12, s"unit $u chunk $c")
        }
      }
    }
  }

  test("the decay is the soft clamp: ω = exp(−e^{−1/2}·σ(w)) ∈ (0.5452, 1), finite for extreme w") {
    val w = Array(-1e4, -60.0, -5.0, 0.0, 5.0, 60.0, 1e4)
    for (x <- w) {
      val clampw = math.exp(-math.exp(-0.5) / (1 + math.exp(-x)))
      val older = math.exp(-math.exp(-softplus(-x) - 0.5))
      assert(math.abs(clampw - older) < 1e-15, s"w=$x")
      assert(clampw > 0.5452 && clampw <= 1.0)
    }
    // one step from a zero state with a = b = 0 and one-hot k, v, r isolates ω: out = v·k·r for T = 1, and the
    // second step sees S·ω
    val T = 2
    val n = T * 64
    Dev.using(cpu, DType.F64) { d =>
      val wRaw = Array.fill(n)(0.0); wRaw(64 + 3) = -60.0
      val k = Array.fill(n)(0.0); k(3) = 1.0
      val v = Array.fill(n)(0.0); v(5) = 1.0
      val r = Array.fill(n)(0.0); r(3) = 1.0; r(64 + 3) = 1.0
      val zero = Array.fill(n)(0.0)
      val out = d.zeros(n)
      cpu.wkv7Forward(d.tensor(r), d.tensor(wRaw), d.tensor(k), d.tensor(v), d.tensor(zero), d.tensor(zero), out,
        d.zeros(cpu.wkv7SavedElements(1, T, 1)), 1, T, 1)
      val o = d.read(out)
      assert(o(5) == 1.0)
      assert(math.abs(o(64 + 5) - math.exp(-math.exp(-0.5) / (1 + math.exp(60.0)))) < 1e-15)
    }
  }

  private val gradCases = Seq(new Wkv7(1, 1, 1, seed = 50), new Wkv7(1, 20, 2, seed = 51), new Wkv7(2, 33, 1, seed = 52),
    new Wkv7(1, 64, 1, seed = 53))

  for (op <- gradCases) {
    test(s"${op.name}: backward matches central differences in fp64 for r, wRaw, k, v, a, b") {
      val errors = OpCheck.gradCheck(op, cpu, seed = 60)
      info(errors.map(e => f"${e.input} ${e.coordinates}%.1e/${e.directions}%.1e").mkString("max relative error per input (coordinates/directions): ", ", ", ""))
      errors.foreach(e => assert(e.worst < 1e-6, e))
    }
  }

  test("backward accumulates, fp32 agrees with fp64 to 1e-5, and the thread count changes no bit") {
    for (op <- gradCases) {
      assert(OpCheck.accumulationGap(op, cpu, seed = 61) < 1e-14, op.name)
      val gap = OpCheck.precisionGap(op, cpu, seed = 62)
      info(f"${op.name}: fp32/fp64 gap $gap%.1e")
      assert(gap < 1e-5, s"${op.name}: $gap")
    }
    val wide = new Wkv7(2, 40, 3, seed = 54)
    assert(OpCheck.sameBits(wide, oneThread, threeThreads, seed = 63))
  }

  test("saved-state size is B·H·⌈T/16⌉·64·64") {
    assert(cpu.wkv7SavedElements(2, 512, 8) == 2L * 8 * 32 * 4096)
    assert(cpu.wkv7SavedElements(1, 17, 1) == 2L * 4096)
  }
}
