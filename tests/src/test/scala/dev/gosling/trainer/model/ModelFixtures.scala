package dev.gosling.trainer.model

import scala.util.Random

/** Small RWKV-7 models with every parameter away from its init, so that every path carries signal. */
object ModelFixtures {

  /**
   * The reference init plus N(0, noise²) on every element: the init zeroes output, ffn.value and the LoRA down
   * matrices, which would leave whole blocks without effect (and without gradient for half their weights).
   */
  def randomParams(layout: ParameterLayout, seed: Long, noise: Double = 0.1): Array[Float] = {
    val p = layout.newBuffer()
    new Initializer(layout, seed).initialize(p)
    val rng = new Random(seed + 1)
    for (i <- p.indices) p(i) = (p(i) + noise * rng.nextGaussian()).toFloat
    p
  }

  /** L2-D64 with the world vocab (65536), for generation tests: made once per JVM (the orthogonal head init is slow). */
  lazy val worldModel: (ModelConfig, Array[Float]) = {
    val config = ModelConfig.of(2, 64, 65536, 16)
    (config, randomParams(new ParameterLayout(config), seed = 41))
  }

  def tokens(rng: Random, n: Int, vocab: Int): Array[Int] = Array.fill(n)(rng.nextInt(vocab))

  /** ‖a − b‖ / max(‖a‖, ‖b‖); 0 when both are 0. */
  def relError(a: Array[Double], b: Array[Double]): Double = {
    require(a.length == b.length)
    var d = 0.0; var na = 0.0; var nb = 0.0
    for (i <- a.indices) { d += (a(i) - b(i)) * (a(i) - b(i)); na += a(i) * a(i); nb += b(i) * b(i) }
    val scale = math.sqrt(math.max(na, nb))
    if (scale == 0) 0.0 else math.sqrt(d) / scale
  }

  def slice(a: Array[Double], spec: ParamSpec): Array[Double] = a.slice(spec.offset.toInt, spec.end.toInt)
}
