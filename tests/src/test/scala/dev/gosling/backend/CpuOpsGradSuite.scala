package dev.gosling.backend

import dev.gosling.backend.OpCases._
import dev.gosling.trainer.backend.{Activation, DType}
import dev.gosling.trainer.backend.cpu.CpuBackend
import org.scalatest.BeforeAndAfterAll
import org.scalatest.funsuite.AnyFunSuite
import org.scalatestplus.scalacheck.ScalaCheckPropertyChecks
import org.scalacheck.Gen

/**
 * Every CPU op's backward pass against central finite differences in float64 (relative error < 1e-6 w.r.t. every
 * input and parameter), its accumulate-into-gradients contract, fp32 against fp64, and thread-count independence.
 * WKV7 and the loss have their own suites.
 */
class CpuOpsGradSuite extends AnyFunSuite with BeforeAndAfterAll with ScalaCheckPropertyChecks {

  private val cpu = new CpuBackend()
  private val oneThread = new CpuBackend(1)
  private val threeThreads = new CpuBackend(3)

  override def afterAll(): Unit = { cpu.close(); oneThread.close(); threeThreads.close() }

  private val cases: Seq[OpCase] = Seq(
    new Embedding(rows = 7, vocab = 5, C = 3, seed = 1),
    new Embedding(rows = 12, vocab = 9, C = 64, seed = 2),
    new Norm(rows = 5, C = 7, perHead = false, seed = 3),
    new Norm(rows = 6, C = 128, perHead = false, seed = 4),
    new Norm(rows = 5, C = 64, perHead = true, seed = 5),
    new Norm(rows = 3, C = 192, perHead = true, seed = 6),
    new TokenShift(B = 2, T = 5, C = 3, k = 1, seed = 7),
    new TokenShift(B = 3, T = 17, C = 8, k = 6, seed = 8),
    new TokenShift(B = 1, T = 1, C = 5, k = 3, seed = 24),
    new TokenShift(B = 3, T = 7, C = 6, k = 2, seed = 25),
    new Linear(rows = 5, in = 7, out = 3, seed = 9),
    new Linear(rows = 17, in = 64, out = 96, seed = 10),
    // the four reference chains: w (tanh, +w0), a and v (sigmoid on a0/v0 + lora: the model's LoRA stops at the
    // pre-activation, NONE/NONE +bias, and key preparation / value residual take the sigmoid), g (sigmoid inside, no
    // bias)
    new Lora(rows = 9, in = 64, rank = 8, out = 64, Activation.TANH, Activation.NONE, withBias = true, seed = 11),
    new Lora(rows = 9, in = 64, rank = 8, out = 64, Activation.NONE, Activation.SIGMOID, withBias = true, seed = 12),
    new Lora(rows = 9, in = 64, rank = 8, out = 64, Activation.NONE, Activation.NONE, withBias = true, seed = 40),
    new Lora(rows = 9, in = 64, rank = 8, out = 64, Activation.SIGMOID, Activation.NONE, withBias = false, seed = 13),
    new Lora(rows = 3, in = 5, rank = 2, out = 7, Activation.TANH, Activation.SIGMOID, withBias = false, seed = 14),
    new ValueResidual(rows = 6, C = 64, seed = 15),
    new KeyPrepare(rows = 5, C = 128, seed = 16),
    new KeyPrepare(rows = 17, C = 64, seed = 17),
    new Bonus(rows = 5, C = 128, seed = 18),
    new Bonus(rows = 3, C = 64, seed = 19),
    new Gate(rows = 5, C = 64, seed = 20),
    new ReluSquared(rows = 7, C = 64, seed = 21))

  for (op <- cases) {
    test(s"${op.name}: backward matches central differences in fp64") {
      val errors = OpCheck.gradCheck(op, cpu, seed = 100)
      info(f"max relative error ${errors.map(_.worst).max}%.1e")
      errors.foreach(e => assert(e.worst < 1e-6, e))
    }
  }

  test("every backward op accumulates into its gradients (two calls give twice one call)") {
    for (op <- cases) assert(OpCheck.accumulationGap(op, cpu, seed = 101) < 1e-14, op.name)
  }

  test("fp32 agrees with fp64 to 1e-5 relative, outputs and gradients") {
    val gaps = cases.map(op => op.name -> OpCheck.precisionGap(op, cpu, seed = 102))
    info(f"largest gap ${gaps.map(_._2).max}%.1e (${gaps.maxBy(_._2)._1})")
    for ((name, gap) <- gaps) assert(gap < 1e-5, s"$name: $gap")
  }

  test("results do not depend on the thread count (1 vs 3 threads, bit for bit)") {
    for (op <- cases :+ new TokenShift(B = 4, T = 33, C = 64, k = 6, seed = 22) :+ new Norm(rows = 40, C = 128, perHead = true, seed = 23))
      assert(OpCheck.sameBits(op, oneThread, threeThreads, seed = 103), op.name)
  }

  test("token shift and layer norm gradients hold for arbitrary small shapes (ScalaCheck)") {
    val shapes = for { b <- Gen.choose(1, 3); t <- Gen.choose(1, 9); c <- Gen.choose(1, 6); k <- Gen.choose(1, 6) } yield (b, t, c, k)
    forAll(shapes, minSuccessful(6)) { case (b, t, c, k) =>
      val ops = Seq(new TokenShift(b, t, c, k, seed = b * 100 + t * 10 + c), new Norm(b * t, c + 1, perHead = false, seed = t + c))
      for (op <- ops; e <- OpCheck.gradCheck(op, cpu, seed = 104, coordinates = 8)) assert(e.worst < 1e-6, s"${op.name} $e")
    }
  }

  test("token shift forward: x_{-1} = 0 at the start of each sample, then x + (x_prev - x)*mix, for each of k mixes") {
    val B = 2
    val T = 3
    val C = 2
    val x = Array.tabulate(B * T * C)(i => i + 1.0)
    val mixes = Array(Array(0.25, 0.5), Array(1.0, 0.0))
    val outs = Dev.using(cpu, DType.F64) { d =>
      val o = Array.fill(2)(d.zeros(x.length.toLong))
      cpu.tokenShiftMixesForward(d.tensor(x), mixes.map(d.tensor), o, B, T, C)
      o.map(d.read)
    }
    for (j <- 0 until 2; b <- 0 until B; t <- 0 until T; c <- 0 until C) {
      val i = (b * T + t) * C + c
      val prev = if (t == 0) 0.0 else x(i - C)
      assert(outs(j)(i) == x(i) + (prev - x(i)) * mixes(j)(c), s"mix $j b=$b t=$t c=$c")
    }
  }

  test("k token-shift mixes at once: the outputs and dMix of k one-mix calls bit for bit, their dx sum within 1e-15") {
    val (b, t, c, k) = (3, 11, 7, 6)
    val op = new TokenShift(b, t, c, k, seed = 26)
    val n = b * t * c
    val rng = new scala.util.Random(27)
    val dOuts = Seq.fill(k)(OpCheck.gaussian(rng, n))
    val (outs, grads) = OpCheck.run(op, cpu, DType.F64, op.inputs.toMap, Some(dOuts))
    Dev.using(cpu, DType.F64) { d =>
      val x = d.tensor(op.inputs.toMap.apply("x"))
      val dx = d.zeros(n)
      for (j <- 0 until k) {
        val mix = Array(d.tensor(op.inputs.toMap.apply(s"mix$j")))
        val out = Array(d.zeros(n))
        cpu.tokenShiftMixesForward(x, mix, out, b, t, c)
        assert(d.read(out(0)).sameElements(outs(j)), s"out $j")
        val dMix = Array(d.zeros(c))
        cpu.tokenShiftMixesBackward(Array(d.tensor(dOuts(j))), x, mix, dx, dMix, b, t, c)
        assert(d.read(dMix(0)).sameElements(grads(s"mix$j")), s"dMix $j")
      }
      assert(OpCheck.relError(d.read(dx), grads("x")) < 1e-15)
    }
  }

  test("token-shift backward with null dMix entries (or none) leaves those to the caller and changes nothing else") {
    val (b, t, c, k) = (2, 9, 5, 4)
    val op = new TokenShift(b, t, c, k, seed = 28)
    val n = b * t * c
    val rng = new scala.util.Random(29)
    val dOutValues = Seq.fill(k)(OpCheck.gaussian(rng, n))
    val all = OpCheck.run(op, cpu, DType.F64, op.inputs.toMap, Some(dOutValues))._2
    for (wanted <- Seq(Set(0, 2), Set.empty[Int])) Dev.using(cpu, DType.F64) { d =>
      val in = op.inputs.map { case (name, v) => name -> d.tensor(v) }.toMap
      val dx = d.zeros(n)
      val dMix = Array.tabulate(k)(j => if (wanted(j)) d.zeros(c) else null)
      cpu.tokenShiftMixesBackward(dOutValues.map(d.tensor).toArray, in("x"), Array.tabulate(k)(j => in(s"mix$j")), dx,
        if (wanted.isEmpty) null else dMix, b, t, c)
      assert(d.read(dx).sameElements(all("x")))
      for (j <- wanted) assert(d.read(dMix(j)).sameElements(all(s"mix$j")), s"dMix $j")
    }
  }

  test("token-shift mix calls check their arrays: 1 to 6 mixes, as many outputs, dMixes null or as many") {
    Dev.using(cpu, DType.F64) { d =>
      val x = d.zeros(6)
      def mixes(k: Int) = Array.fill(k)(d.zeros(3))
      def outs(k: Int) = Array.fill(k)(d.zeros(6))
      for (k <- Seq(0, 7)) {
        val e = intercept[IllegalArgumentException](cpu.tokenShiftMixesForward(x, mixes(k), outs(k), 1, 2, 3))
        assert(e.getMessage.contains(s"$k mixes, expected 1..6"), e.getMessage)
      }
      assertThrows[IllegalArgumentException](cpu.tokenShiftMixesForward(x, mixes(2), outs(3), 1, 2, 3))
      assertThrows[IllegalArgumentException](cpu.tokenShiftMixesBackward(outs(2), x, mixes(2), d.zeros(6), mixes(1), 1, 2, 3))
      assertThrows[IllegalArgumentException](cpu.tokenShiftMixesBackward(outs(2), x, mixes(2), d.zeros(6), Array(d.zeros(3), d.zeros(2)), 1, 2, 3))
      cpu.tokenShiftMixesBackward(outs(2), x, mixes(2), d.zeros(6), Array(null, d.zeros(3)), 1, 2, 3)
    }
  }

  test("layer norm and group norm forward: normalised rows/heads with eps 1e-5 and 64e-5") {
    val rng = new scala.util.Random(5)
    val rows = 3
    val C = 128
    val x = OpCheck.gaussian(rng, rows * C)
    val w = OpCheck.gaussian(rng, C)
    val b = OpCheck.gaussian(rng, C)
    def reference(group: Int, eps: Double): Array[Double] = {
      val out = new Array[Double](rows * C)
      for (u <- 0 until rows * C / group) {
        val xs = (0 until group).map(i => x(u * group + i))
        val mean = xs.sum / group
        val variance = xs.map(v => (v - mean) * (v - mean)).sum / group
        for (i <- 0 until group) {
          val c = (u * group + i) % C
          out(u * group + i) = (xs(i) - mean) / math.sqrt(variance + eps) * w(c) + b(c)
        }
      }
      out
    }
    Dev.using(cpu, DType.F64) { d =>
      val (o, mean, rstd) = (d.zeros(rows * C), d.zeros(rows * 2), d.zeros(rows * 2))
      cpu.groupNormForward(d.tensor(x), d.tensor(w), d.tensor(b), o, mean, rstd, rows, C)
      assert(OpCheck.relError(d.read(o), reference(64, 64e-5)) < 1e-14)
      val (o2, mean2, rstd2) = (d.zeros(rows * C), d.zeros(rows), d.zeros(rows))
      cpu.layerNormForward(d.tensor(x), d.tensor(w), d.tensor(b), o2, mean2, rstd2, rows, C)
      assert(OpCheck.relError(d.read(o2), reference(C, 1e-5)) < 1e-14)
    }
  }

  test("linear uses nn.Linear's [out, in] layout and LoRA the [in, out] layout") {
    Dev.using(cpu, DType.F64) { d =>
      // x = [1, 2]; W = [[1, 0], [0, 1], [1, 1]] as [out=3, in=2] → y = [1, 2, 3]
      val y = d.zeros(3)
      cpu.linearForward(d.tensor(Array(1.0, 2.0)), d.tensor(Array(1.0, 0, 0, 1, 1, 1)), y, 1, 2, 3)
      assert(d.read(y).toSeq == Seq(1.0, 2.0, 3.0))
      // LoRA x·A·B with A [2, 1] = [[1], [1]] and B [1, 3] = [[1, 2, 3]], bias [0.5, 0, 0], no activations
      val (hidden, out) = (d.zeros(1), d.zeros(3))
      cpu.loraForward(d.tensor(Array(1.0, 2.0)), d.tensor(Array(1.0, 1.0)), d.tensor(Array(1.0, 2.0, 3.0)),
        d.tensor(Array(0.5, 0, 0)), Activation.NONE, Activation.NONE, hidden, out, 1, 2, 1, 3)
      assert(d.read(out).toSeq == Seq(3.5, 6.0, 9.0))
    }
  }

  test("key preparation: alpha = sigmoid(alphaPre), a = -normalize(k*k_k) per head, b = -a*alpha, " +
    "k~ = k*(1+(alpha-1)*k_a); zero k stays finite") {
    Dev.using(cpu, DType.F64) { d =>
      val C = 64
      val k = Array.tabulate(2 * C)(i => if (i < C) 0.0 else (i % 7) - 3.0)
      // α = σ(−ln 3) = 1/(1 + 3) = 0.25 (to rounding)
      val alphaPre = Array.fill(2 * C)(-math.log(3))
      val alpha = 1.0 / (1.0 + math.exp(math.log(3)))
      assert(math.abs(alpha - 0.25) < 1e-15)
      val kK = Array.fill(C)(2.0)
      val kA = Array.fill(C)(0.5)
      val (kt, a, b) = (d.zeros(2 * C), d.zeros(2 * C), d.zeros(2 * C))
      cpu.keyPrepareForward(d.tensor(k), d.tensor(alphaPre), d.tensor(kK), d.tensor(kA), kt, a, b, 2, C)
      val (ktv, av, bv) = (d.read(kt), d.read(a), d.read(b))
      assert(av.take(C).forall(_ == 0.0) && bv.take(C).forall(_ == 0.0), "zero key: the 1e-12 floor keeps κ̂ at 0")
      val norm = math.sqrt((C until 2 * C).map(i => 4 * k(i) * k(i)).sum)
      for (i <- C until 2 * C) {
        assert(math.abs(av(i) + 2 * k(i) / norm) < 1e-15)
        assert(math.abs(bv(i) + av(i) * 0.25) < 1e-15)
        assert(math.abs(ktv(i) - k(i) * (1 + (0.25 - 1) * 0.5)) < 1e-14)
      }
    }
  }

  test("value residual: gate = sigmoid(gatePre), out = v + (vFirst - v)*gate") {
    Dev.using(cpu, DType.F64) { d =>
      val v = Array(1.0, -2.0, 0.5)
      val vFirst = Array(3.0, 4.0, 0.5)
      val gatePre = Array(0.0, -math.log(3), 40.0) // σ = 0.5, 0.25, 1 (to rounding)
      val out = d.zeros(3)
      cpu.valueResidualForward(d.tensor(v), d.tensor(vFirst), d.tensor(gatePre), out, 1, 3)
      val got = d.read(out)
      val want = Seq(2.0, -2.0 + 6.0 * 0.25, 0.5)
      for (i <- 0 until 3) assert(math.abs(got(i) - want(i)) < 1e-14, s"$i: ${got(i)} vs ${want(i)}")
    }
  }

  test("bonus backward with dx = null leaves the x gradient to the caller (dOut itself)") {
    val op = new Bonus(rows = 4, C = 64, seed = 30)
    val withDx = OpCheck.run(op, cpu, DType.F64, op.inputs.toMap, Some(Seq(Array.tabulate(256)(i => math.sin(i.toDouble)))))._2
    Dev.using(cpu, DType.F64) { d =>
      val in = op.inputs.map { case (n, v) => n -> d.tensor(v) }.toMap
      val f = op.forward(d, in)
      val dOut = d.tensor(Array.tabulate(256)(i => math.sin(i.toDouble)))
      val g = op.inputs.map { case (n, v) => n -> d.zeros(v.length) }.toMap
      cpu.bonusBackward(dOut, in("r"), in("k"), in("v"), in("rK"), null, g("r"), g("k"), g("v"), null, 4, 64)
      assert(d.read(g("x")).forall(_ == 0.0))
      assert(d.read(g("r")).sameElements(withDx("r")))
      assert(withDx("x").sameElements(d.read(dOut)))
    }
  }

  test("the overwriting variants write dx (over garbage) and equal zero-then-accumulate; relu²'s backward in place") {
    for (dt <- Seq(DType.F64, DType.F32)) Dev.using(cpu, dt) { d =>
      val rng = new scala.util.Random(31)
      def rand(n: Int) = Array.fill(n)(rng.nextGaussian())
      val (rows, in, out) = (7, 5, 3)
      val (x, w, dy) = (d.tensor(rand(rows * in)), d.tensor(rand(out * in)), d.tensor(rand(rows * out)))
      val (dxA, dwA, dxB, dwB) = (d.zeros(rows * in), d.tensor(rand(out * in)), d.tensor(Array.fill(rows * in)(Double.NaN)), d.zeros(out * in))
      cpu.copy(dwA, dwB)
      cpu.linearBackward(dy, x, w, dxA, dwA, rows, in, out)
      cpu.linearBackwardOverwritingDx(dy, x, w, dxB, dwB, rows, in, out)
      assert(d.read(dxA).sameElements(d.read(dxB)) && d.read(dwA).sameElements(d.read(dwB)))

      // relu²'s backward from its output: over garbage, over dAct and over act, the same values; and 2·relu(pre)·dAct
      val pre = rand(40)
      val act = d.zeros(40)
      cpu.reluSquaredForward(d.tensor(pre), act, 5, 8)
      val dAct = rand(40)
      val want = d.tensor(Array.fill(40)(Double.NaN))
      cpu.reluSquaredBackwardOverwriting(d.tensor(dAct), act, want, 5, 8)
      val overDAct = d.tensor(dAct)
      cpu.reluSquaredBackwardOverwriting(overDAct, act, overDAct, 5, 8)
      val overAct = d.tensor(d.read(act))
      cpu.reluSquaredBackwardOverwriting(d.tensor(dAct), overAct, overAct, 5, 8)
      assert(d.read(overDAct).sameElements(d.read(want)) && d.read(overAct).sameElements(d.read(want)), s"in place, $dt")
      def stored(x: Double) = if (dt == DType.F64) x else x.toFloat.toDouble
      val exact = pre.indices.map(i => stored(dAct(i)) * 2 * math.max(stored(pre(i)), 0))
      val gap = d.read(want).zip(exact).map { case (a, b) => math.abs(a - b) / math.max(math.abs(b), 1e-300) }.max
      assert(if (dt == DType.F64) gap == 0 else gap < 1e-6, s"$dt: relative gap $gap")
    }
  }
}
