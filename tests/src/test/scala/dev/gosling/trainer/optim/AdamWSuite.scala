package dev.gosling.trainer.optim

import dev.gosling.trainer.GoslingException
import dev.gosling.trainer.model.{ModelConfig, OptimizerGroup, ParameterLayout}
import org.scalatest.funsuite.AnyFunSuite

import java.util.SplittableRandom
import scala.jdk.CollectionConverters._

class AdamWSuite extends AnyFunSuite {

  private val layout = new ParameterLayout(ModelConfig.of(2, 64, 64, 16))
  private val n = layout.totalElements.toInt

  private def adam(wd: Double = 0.1, clip: Double = 1.0) = new AdamW(layout, 0.9, 0.99, 1e-18, wd, clip)

  private def randomArray(seed: Long, scale: Float): Array[Float] = {
    val r = new SplittableRandom(seed)
    Array.fill(n)(((r.nextDouble() * 2 - 1) * scale).toFloat)
  }

  /** The update of §5.4 in double, for comparison with the float implementation. */
  private final class DoubleAdam(wd: Double, clip: Double) {
    val m = new Array[Double](n)
    val v = new Array[Double](n)
    var t = 0
    private val scale = new Array[Double](n)
    private val decay = new Array[Double](n)
    for (p <- layout.params.asScala; i <- p.offset.toInt until p.end.toInt) {
      val g = p.group(wd)
      scale(i) = g.lrScale
      decay(i) = if (g.decays) wd else 0.0
    }
    def step(params: Array[Double], grads: Array[Float], lr: Double): Unit = {
      val norm = Math.sqrt(grads.map(g => g.toDouble * g).sum)
      val c = (norm + 1e-6) / clip
      val gs = if (clip > 0 && c > 1) 1 / c else 1.0
      t += 1
      val bc1 = 1 - Math.pow(0.9, t)
      val bc2 = 1 - Math.pow(0.99, t)
      for (i <- 0 until n) {
        val g = grads(i) * gs
        m(i) = 0.9 * m(i) + 0.1 * g
        v(i) = 0.99 * v(i) + 0.01 * g * g
        val u = (m(i) / bc1) / (Math.sqrt(v(i) / bc2) + 1e-18)
        params(i) -= lr * scale(i) * (u + decay(i) * params(i))
      }
    }
  }

  test("three steps by hand: decay (r/k/v), 2x (att.w0) and 1x (a LoRA matrix: 2-D but no decay)") {
    // p0 = 0.5, grads 0.2, -0.1, 0.4, lr 1e-3, wd 0.1; expected values computed in double by the §5.4 formula.
    val opt = adam()
    val params = new Array[Float](n)
    val tracked = Seq(
      layout.get("blocks.0.att.receptance.weight").offset.toInt + 5 -> 0.4979271293817459,
      layout.get("blocks.1.att.w0").offset.toInt + 7 -> 0.496153775444606,
      layout.get("blocks.0.att.w2").offset.toInt + 3 -> 0.498076887722303)
    for ((i, _) <- tracked) params(i) = 0.5f
    for (g <- Seq(0.2f, -0.1f, 0.4f)) {
      val grads = new Array[Float](n)
      for ((i, _) <- tracked) grads(i) = g
      opt.step(params, grads, 1e-3)
    }
    for ((i, expected) <- tracked) assert(Math.abs(params(i) - expected) < 2e-7, s"$i: ${params(i)} vs $expected")
    assert(params.zipWithIndex.forall { case (p, i) => tracked.exists(_._1 == i) || p == 0f })
    assert(opt.stepCount == 3)
  }

  test("many elements, three steps with clipping active on the first: float result matches the double formula") {
    val opt = adam()
    val ref = new DoubleAdam(0.1, 1.0)
    val params = randomArray(1, 0.5f)
    val refParams = params.map(_.toDouble)
    val gradScales = Seq(0.05f, 0.001f, 0.01f) // global norms ~ 10, 0.2, 2: clipped, not clipped, clipped
    for ((s, k) <- gradScales.zipWithIndex) {
      val grads = randomArray(100 + k, s)
      val norm = opt.step(params, grads, 6e-4)
      assert(Math.abs(norm - AdamW.globalNorm(grads)) == 0.0)
      ref.step(refParams, grads, 6e-4)
    }
    for (i <- 0 until n) assert(Math.abs(params(i) - refParams(i)) < 2e-7, s"$i: ${params(i)} vs ${refParams(i)}")
  }

  test("clipping: (norm + 1e-6)/grad_clip > 1 scales by its inverse; it changes the trajectory; 0 turns it off") {
    assert(AdamW.clipScale(10.0, 1.0) == (1.0 / (10.0 + 1e-6)).toFloat)
    assert(AdamW.clipScale(0.5, 1.0) == 1f)
    assert(AdamW.clipScale(1.0, 1.0) < 1f) // ZeRO's +1e-6 clips a norm of exactly 1
    assert(AdamW.clipScale(3.0, 2.0) == (2.0 / (3.0 + 1e-6)).toFloat)
    assert(AdamW.clipScale(100.0, 0.0) == 1f)
    // Adam is invariant to a constant gradient scale, so clipping shows only when norms change between steps.
    val big = randomArray(7, 0.05f)
    val small = randomArray(8, 0.0005f)
    def run(clip: Double) = {
      val p = randomArray(9, 0.5f)
      val o = adam(clip = clip)
      o.step(p, big, 1e-3)
      o.step(p, small, 1e-3)
      p
    }
    val clipped = run(1.0)
    val unclipped = run(0.0)
    assert(!clipped.sameElements(unclipped))
    val ref = new DoubleAdam(0.1, 1.0)
    val refParams = randomArray(9, 0.5f).map(_.toDouble)
    ref.step(refParams, big, 1e-3)
    ref.step(refParams, small, 1e-3)
    for (i <- 0 until n) assert(Math.abs(clipped(i) - refParams(i)) < 2e-7)
  }

  test("the gradients are not modified by the step") {
    val grads = randomArray(3, 0.05f)
    val copy = grads.clone()
    adam().step(randomArray(4, 0.5f), grads, 1e-3)
    assert(grads.sameElements(copy))
  }

  test("weight decay hits exactly the decay group: p <- p - lr*wd*p with zero gradients") {
    val params = Array.fill(n)(1f)
    adam(wd = 0.1).step(params, new Array[Float](n), 0.01)
    for (p <- layout.params.asScala) {
      val expected = if (p.group(0.1) == OptimizerGroup.LR_DECAY) 1f - 0.01f * (0.1f * 1f) else 1f
      for (i <- p.offset.toInt until p.end.toInt) assert(params(i) == expected, p.name)
    }
    val untouched = Array.fill(n)(1f)
    adam(wd = 0.0).step(untouched, new Array[Float](n), 0.01)
    assert(untouched.forall(_ == 1f))
  }

  test("att.w0 moves twice as far as everything else on the first step") {
    val params = new Array[Float](n)
    val grads = Array.fill(n)(1e-4f) // first step: u = 1 for every element
    adam(wd = 0.0).step(params, grads, 1e-3)
    for (p <- layout.params.asScala) {
      val expected = if (p.name.contains("att.w0")) -2e-3f else -1e-3f
      for (i <- p.offset.toInt until p.end.toInt) assert(Math.abs(params(i) - expected) <= 1e-9f, p.name)
    }
  }

  test("deterministic: two optimizers, same inputs, same bits") {
    def run() = {
      val p = randomArray(11, 0.5f)
      val o = adam()
      for (k <- 0 until 4) o.step(p, randomArray(20 + k, 0.01f), 6e-4)
      (p, o.firstMoment.clone(), o.secondMoment.clone())
    }
    val (p1, m1, v1) = run()
    val (p2, m2, v2) = run()
    assert(p1.sameElements(p2) && m1.sameElements(m2) && v1.sameElements(v2))
  }

  test("resume: restoring m, v and the step count continues bit for bit") {
    val straight = randomArray(12, 0.5f)
    val o1 = adam()
    for (k <- 0 until 5) o1.step(straight, randomArray(30 + k, 0.02f), 6e-4 * (k + 1))

    val resumed = randomArray(12, 0.5f)
    val o2 = adam()
    for (k <- 0 until 2) o2.step(resumed, randomArray(30 + k, 0.02f), 6e-4 * (k + 1))
    val (m, v, t, saved) = (o2.firstMoment.clone(), o2.secondMoment.clone(), o2.stepCount, resumed.clone())
    val o3 = adam()
    o3.restore(m, v, t)
    for (k <- 2 until 5) o3.step(saved, randomArray(30 + k, 0.02f), 6e-4 * (k + 1))
    assert(saved.sameElements(straight))
    assert(o3.stepCount == 5 && o3.firstMoment.sameElements(o1.firstMoment) && o3.secondMoment.sameElements(o1.secondMoment))
  }

  test("restore and settings errors are one line") {
    val e = intercept[GoslingException](adam().restore(new Array[Float](3), new Array[Float](3), 1))
    assert(e.getMessage.contains("moments") && !e.getMessage.contains("\n"))
    assert(intercept[GoslingException](adam().restore(new Array[Float](n), new Array[Float](n), -1)).getMessage.contains("step count"))
    assert(intercept[GoslingException](new AdamW(layout, 1.0, 0.99, 1e-18, 0, 1)).getMessage.contains("--beta1"))
    assert(intercept[GoslingException](new AdamW(layout, 0.9, 0.99, 0, 0, 1)).getMessage.contains("--adam_eps"))
    assert(intercept[GoslingException](new AdamW(layout, 0.9, 0.99, 1e-18, -1, 1)).getMessage.contains("--weight_decay"))
    intercept[IllegalArgumentException](adam().step(new Array[Float](n), new Array[Float](n - 1), 1e-3))
  }

  test("DeviceAdamW on the CPU backend: the same bits as AdamW over several clipped and unclipped steps; 2 summed ranks = their mean") {
    val cpu = new dev.gosling.trainer.backend.cpu.CpuBackend(2)
    try {
      val host = adam(clip = 0.5)
      val device = new DeviceAdamW(cpu, layout, 0.9, 0.99, 1e-18, 0.1, 0.5)
      val twoRanks = new DeviceAdamW(cpu, layout, 0.9, 0.99, 1e-18, 0.1, 0.5)
      val f32 = dev.gosling.trainer.backend.DType.F32
      val params = randomArray(1, 0.5f)
      val p1 = cpu.allocate(f32, n)
      val p2 = cpu.allocate(f32, n)
      val g = cpu.allocate(f32, n)
      cpu.upload(params, p1)
      cpu.upload(params, p2)
      for (step <- 1 to 4) {
        val grads = randomArray(10 + step, if (step % 2 == 0) 1e-4f else 2f) // even steps are not clipped
        val hostNorm = host.step(params, grads, 1e-3)
        cpu.upload(grads, g)
        assert(device.step(p1, g, 1e-3, 1) == hostNorm)
        cpu.upload(grads.map(_ * 2), g) // what an all-reduce of two equal ranks leaves
        assert(Math.abs(twoRanks.step(p2, g, 1e-3, 2) - hostNorm) <= 1e-12 * hostNorm)
      }
      val out1 = new Array[Float](n)
      val out2 = new Array[Float](n)
      cpu.download(p1, out1)
      cpu.download(p2, out2)
      assert(out1.sameElements(params))
      assert(out2.sameElements(params))
      val m = new Array[Float](n)
      val v = new Array[Float](n)
      device.downloadMoments(m, v)
      assert(m.sameElements(host.firstMoment) && v.sameElements(host.secondMoment) && device.stepCount == 4)
      Seq(p1, p2, g).foreach(_.close())
      device.close()
      twoRanks.close()
    } finally cpu.close()
  }

  test("DeviceAdamW over pieces (ZeRO-2: piece r of every bucket): the pieces of two ranks update as one whole instance, bit for bit") {
    val cpu = new dev.gosling.trainer.backend.cpu.CpuBackend(2)
    try {
      val f32 = dev.gosling.trainer.backend.DType.F32
      def piecesOf(rank: Int) = layout.buckets.asScala.map { b =>
        val s = dev.gosling.trainer.dist.Shard.of(b.length, 2, rank)
        new dev.gosling.trainer.dist.Shard(b.start + s.start, b.start + s.end)
      }.asJava
      val whole = new DeviceAdamW(cpu, layout, 0.9, 0.99, 1e-18, 0.1, 0.5)
      val ranks = (0 until 2).map(r => new DeviceAdamW(cpu, layout, 0.9, 0.99, 1e-18, 0.1, 0.5, piecesOf(r)))
      assert(ranks.map(_.ownedLength).sum == n)
      val params = randomArray(3, 0.5f)
      val pw = cpu.allocate(f32, n)
      val pr = cpu.allocate(f32, n) // both ranks update their own pieces of one buffer
      cpu.upload(params, pw)
      cpu.upload(params, pr)
      val g = cpu.allocate(f32, n)
      for (step <- 1 to 3) {
        val grads = randomArray(20 + step, if (step == 2) 1e-4f else 2f)
        cpu.upload(grads, g)
        val sum = cpu.sumOfSquares(g)
        val norm = whole.step(pw, g, 1e-3, 1, sum)
        for ((a, r) <- ranks.zipWithIndex) {
          val pieces = piecesOf(r).asScala
          val owned = pieces.flatMap(p => grads.slice(p.start.toInt, p.end.toInt)).toArray
          val o = cpu.allocate(f32, owned.length)
          cpu.upload(owned, o)
          assert(a.stepOwned(pr, o, 1e-3, 1, sum) == norm)
          o.close()
        }
      }
      val (outW, outR) = (new Array[Float](n), new Array[Float](n))
      cpu.download(pw, outW)
      cpu.download(pr, outR)
      assert(outW.sameElements(outR) && !outW.sameElements(params))
      // Restoring whole moments gives each rank its pieces, in the order of its moments.
      val m = randomArray(5, 1f)
      ranks(1).restore(m, m, 3)
      val got = new Array[Float](ranks(1).ownedLength.toInt)
      cpu.download(ranks(1).firstMoment, got)
      assert(got.sameElements(piecesOf(1).asScala.flatMap(p => m.slice(p.start.toInt, p.end.toInt))))
      Seq(pw, pr, g).foreach(_.close())
      (whole +: ranks).foreach(_.close())
    } finally cpu.close()
  }
}
