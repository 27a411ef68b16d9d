package dev.gosling.trainer.train

import dev.gosling.trainer.model.{ModelConfig, ParameterLayout, TrainableModel}

/**
 * A small, real, differentiable model for testing the training loop before the RWKV-7 model exists: over the real
 * RWKV-7 [[ParameterLayout]] it uses only `emb.weight` [V,C] and `head.weight` [V,C]: logits(x) = head · emb[x], the
 * mean cross-entropy as the loss and its exact gradient plus the L2Wrap term (1e-4·max/(B·T) at the argmax logit);
 * every other parameter gets a zero gradient. Logits depend only on the input token, so each distinct input token
 * is computed once per batch (cost ∝ distinct tokens · V · C, not B·T · V · C). Deterministic: fixed summation order.
 */
final class BigramModel(cfg: ModelConfig) extends TrainableModel {
  private val lay = new ParameterLayout(cfg)
  private val v = cfg.vocabSize
  private val c = cfg.nEmbd
  private val embAt = lay.get("emb.weight").offset.toInt
  private val headAt = lay.get("head.weight").offset.toInt
  private val emb = new Array[Float](v * c)
  private val head = new Array[Float](v * c)
  private val logits = new Array[Double](v)
  private val dlogit = new Array[Double](v)
  private var closed = false

  override def config(): ModelConfig = cfg
  override def layout(): ParameterLayout = lay

  override def setParameters(master: Array[Float]): Unit = {
    require(master.length == lay.totalElements, s"${master.length} != ${lay.totalElements}")
    System.arraycopy(master, embAt, emb, 0, v * c)
    System.arraycopy(master, headAt, head, 0, v * c)
  }

  override def forwardBackward(inputs: Array[Int], targets: Array[Int], batchSize: Int, grads: Array[Float]): Double = {
    java.util.Arrays.fill(grads, 0f)
    run(inputs, targets, batchSize, grads)
  }

  override def loss(inputs: Array[Int], targets: Array[Int], batchSize: Int): Double = run(inputs, targets, batchSize, null)

  /** Positions grouped by input token (counting sort), then one logit row per distinct token. */
  private def run(inputs: Array[Int], targets: Array[Int], batchSize: Int, grads: Array[Float]): Double = {
    require(!closed, "closed")
    val n = batchSize * cfg.ctxLen
    require(inputs.length >= n && targets.length >= n)
    val count = new Array[Int](v + 1)
    var i = 0
    while (i < n) { count(inputs(i) + 1) += 1; i += 1 }
    var x = 0
    while (x < v) { count(x + 1) += count(x); x += 1 }
    val start = count.clone()
    val order = new Array[Int](n)
    i = 0
    while (i < n) { val t = inputs(i); order(start(t)) = i; start(t) += 1; i += 1 }
    var total = 0.0
    x = 0
    while (x < v) {
      val from = count(x)
      val to = count(x + 1)
      if (to > from) {
        val nx = to - from
        var w = 0
        var max = Double.NegativeInfinity
        var arg = 0
        while (w < v) {
          var s = 0.0
          var k = 0
          while (k < c) { s += emb(x * c + k).toDouble * head(w * c + k); k += 1 }
          logits(w) = s
          if (s > max) { max = s; arg = w }
          w += 1
        }
        var z = 0.0
        w = 0
        while (w < v) { z += math.exp(logits(w) - max); w += 1 }
        val lse = max + math.log(z)
        total += nx * lse
        var p = from
        while (p < to) { total -= logits(targets(order(p))); p += 1 }
        if (grads != null) {
          w = 0
          while (w < v) { dlogit(w) = nx * math.exp(logits(w) - lse) / n; w += 1 }
          p = from
          while (p < to) { dlogit(targets(order(p))) -= 1.0 / n; p += 1 }
          dlogit(arg) += nx * 1e-4 * max / n
          w = 0
          while (w < v) {
            val d = dlogit(w)
            var k = 0
            while (k < c) {
              grads(headAt + w * c + k) += (d * emb(x * c + k)).toFloat
              grads(embAt + x * c + k) += (d * head(w * c + k)).toFloat
              k += 1
            }
            w += 1
          }
        }
      }
      x += 1
    }
    total / n
  }

  override def close(): Unit = closed = true
}

/** Registered for ServiceLoader in the test resources: `--model_impl test-bigram`; never a default. */
final class BigramModelFactory extends ModelFactory {
  override def name(): String = BigramModelFactory.Name
  override def isDefaultFor(accelerator: String): Boolean = false
  override def create(config: ModelConfig, accelerator: String, maxBatchSize: Int, gradCheckpoint: Boolean): TrainableModel = new BigramModel(config)
}

object BigramModelFactory {
  val Name = "test-bigram"
}
