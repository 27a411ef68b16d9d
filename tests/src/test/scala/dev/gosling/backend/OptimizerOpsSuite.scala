package dev.gosling.backend

import dev.gosling.trainer.backend.DType
import dev.gosling.trainer.backend.cpu.CpuBackend
import dev.gosling.trainer.model.{ModelConfig, ParameterLayout}
import dev.gosling.trainer.optim.AdamW
import org.scalatest.BeforeAndAfterAll
import org.scalatest.funsuite.AnyFunSuite

import java.util.SplittableRandom
import scala.jdk.CollectionConverters._

/** The Backend's optimizer ops on the CPU: exactly AdamW.globalNorm and AdamW.step, bit for bit. */
class OptimizerOpsSuite extends AnyFunSuite with BeforeAndAfterAll {

  private val cpu = new CpuBackend(3)
  override def afterAll(): Unit = cpu.close()

  private val layout = new ParameterLayout(ModelConfig.of(2, 64, 64, 16))
  private val n = layout.totalElements.toInt

  private def randomArray(seed: Long, scale: Float): Array[Float] = {
    val r = new SplittableRandom(seed)
    Array.fill(n)(((r.nextDouble() * 2 - 1) * scale).toFloat)
  }

  private def f32(a: Array[Float]) = { val t = cpu.allocate(DType.F32, a.length); cpu.upload(a, t); t }
  private def read(t: dev.gosling.trainer.backend.Tensor) = { val a = new Array[Float](t.numel.toInt); cpu.download(t, a); a }

  test("sumOfSquares is AdamW.globalNorm squared, exactly") {
    val g = randomArray(1, 3f)
    val t = f32(g)
    try assert(math.sqrt(cpu.sumOfSquares(t)) == AdamW.globalNorm(g)) finally t.close()
  }

  test("adamwStep over the layout's segments reproduces AdamW.step bit for bit (decay, 2x lr group, clipping)") {
    val wd = 0.1
    val adam = new AdamW(layout, 0.9, 0.99, 1e-18, wd, 1.0)
    val specs = layout.params.asScala.toSeq
    val ends = specs.map(_.end).toArray
    val params = randomArray(2, 0.5f)
    val p = f32(params)
    val m = f32(new Array[Float](n))
    val v = f32(new Array[Float](n))
    try {
      for (step <- 1 to 4) {
        val lr = 1e-3 * step
        val grads = randomArray(10 + step, if (step == 3) 50f else 1e-3f)
        val g = f32(grads)
        val norm = math.sqrt(cpu.sumOfSquares(g))
        val scale = AdamW.clipScale(norm, 1.0)
        if (step == 3) assert(scale < 1f)
        val lrs = specs.map(s => (lr * s.group(wd).lrScale).toFloat).toArray
        val decays = specs.map(s => if (s.group(wd).decays) wd.toFloat else 0f).toArray
        cpu.adamwStep(p, g, m, v, ends, lrs, decays, 0.9f, 0.99f, 1e-18f, scale,
          // AdamW keeps β as float, so its bias corrections are 1 − (double) β_f^t
          (1 - math.pow(0.9f.toDouble, step)).toFloat, (1 - math.pow(0.99f.toDouble, step)).toFloat)
        g.close()
        assert(adam.step(params, grads, lr) == norm)
        assert(read(p).sameElements(params), s"params differ after step $step")
        assert(read(m).sameElements(adam.firstMoment()), s"m differs after step $step")
        assert(read(v).sameElements(adam.secondMoment()), s"v differs after step $step")
      }
      assert(specs.exists(_.group(wd).lrScale == 2.0) && specs.exists(s => !s.group(wd).decays))
    } finally { p.close(); m.close(); v.close() }
  }

  test("adamwStep rejects segments that do not tile the buffer") {
    val t = f32(new Array[Float](10))
    try {
      val e = intercept[IllegalArgumentException](
        cpu.adamwStep(t, t, t, t, Array(4L, 9L), Array(1f, 1f), Array(0f, 0f), 0.9f, 0.99f, 1e-8f, 1f, 1f, 1f))
      assert(e.getMessage.contains("end at 9") && e.getMessage.contains("10 elements"))
      intercept[IllegalArgumentException](
        cpu.adamwStep(t, t, t, t, Array(6L, 4L, 10L), Array(1f, 1f, 1f), Array(0f, 0f, 0f), 0.9f, 0.99f, 1e-8f, 1f, 1f, 1f))
    } finally t.close()
  }
}
