package dev.gosling.trainer.model

import dev.gosling.trainer.GoslingException
import dev.gosling.trainer.backend.{Backend, DType}
import dev.gosling.trainer.backend.cpu.CpuBackend
import dev.gosling.trainer.model.ModelFixtures._
import org.scalatest.BeforeAndAfterAll
import org.scalatest.funsuite.AnyFunSuite

import scala.jdk.CollectionConverters._
import scala.util.Random

/**
 * The whole RWKV-7 model on the CPU backend: its gradient against central finite differences in float64 on every
 * parameter tensor, fp32 against fp64, gradient checkpointing, batching, and the training-step contract.
 */
class Rwkv7ModelSuite extends AnyFunSuite with BeforeAndAfterAll {

  private val cpu = new CpuBackend(2)
  override def afterAll(): Unit = cpu.close()

  // L2, C128 (two heads), V128, T16, two samples
  private val config = ModelConfig.of(2, 128, 128, 16)
  private val layout = new ParameterLayout(config)
  private val B = 2
  private val T = config.ctxLen
  private val rng = new Random(5)
  private val inputs = tokens(rng, B * T, config.vocabSize)
  private val targets = tokens(rng, B * T, config.vocabSize)
  private val params = randomParams(layout, seed = 11)
  /** Created in every layer, used from layer 1 on (§6.3): layer 0's have no gradient. */
  private val unused = Set("blocks.0.att.v0", "blocks.0.att.v1", "blocks.0.att.v2")

  /** The function whose gradient forwardBackward returns: mean CE plus the L2Wrap term (1e-4/2N)·Σ_rows max². */
  private def objective(model: Rwkv7Model, p: Array[Double]): Double = {
    val V = config.vocabSize
    val n = B * T
    val logits = new Array[Double](n * V)
    model.setParameters(p)
    model.logits(inputs, B, logits)
    var ce = 0.0
    var wrap = 0.0
    for (row <- 0 until n) {
      var max = Double.NegativeInfinity
      for (v <- 0 until V) max = math.max(max, logits(row * V + v))
      var sum = 0.0
      for (v <- 0 until V) sum += math.exp(logits(row * V + v) - max)
      ce += max + math.log(sum) - logits(row * V + targets(row))
      wrap += max * max
    }
    ce / n + Backend.L2WRAP_FACTOR / (2.0 * n) * wrap
  }

  private def gradients64(model: Rwkv7Model, p: Array[Double]): (Double, Array[Double]) = {
    model.setParameters(p)
    val g = new Array[Double](p.length)
    val loss = model.forwardBackward(inputs, targets, B, g)
    (loss, g)
  }

  test("the gradient of every parameter tensor matches central differences in fp64 (relative error < 1e-6)") {
    val oneThread = new CpuBackend(1) // tiny ops: thread hand-offs would cost more than they save
    val model = new Rwkv7Model(config, oneThread, DType.F64, B)
    try {
      val p = params.map(_.toDouble)
      val (_, grad) = gradients64(model, p)
      val pick = new Random(21)
      val h = 1e-5
      // central difference of the objective along `dir` (over the tensor's elements `idx`): O(h²) truncation error,
      // ~1e-10 here, and a step small enough that relu² and the max in L2Wrap are rarely straddled
      def derivative(spec: ParamSpec, idx: Seq[Int], dir: Seq[Double]): Double = {
        def at(sign: Double): Double = {
          val q = p.clone()
          for ((i, d) <- idx.zip(dir)) q(spec.offset.toInt + i) += sign * h * d
          objective(model, q)
        }
        (at(1) - at(-1)) / (2 * h)
      }
      val results = layout.params.asScala.toSeq.map { spec =>
        val g = slice(grad, spec)
        // two random directions, each over a random subset of up to 16 elements (elements with a gradient where
        // there are any: most embedding rows are not in the batch)
        val live = g.indices.filter(g(_) != 0)
        val pool = if (live.nonEmpty) live else g.indices
        val (numeric, analytic) = (0 until 2).map { _ =>
          val idx = pick.shuffle(pool).take(16)
          val dir = idx.map(_ => pick.nextGaussian())
          (derivative(spec, idx, dir), idx.zip(dir).map { case (i, d) => g(i) * d }.sum)
        }.unzip
        (spec.name, relError(analytic.toArray, numeric.toArray), math.sqrt(g.map(x => x * x).sum))
      }
      val worst = results.maxBy(_._2)
      info(f"${results.size} tensors, worst relative error ${worst._2}%.1e (${worst._1}), median ${results.map(_._2).sorted.apply(results.size / 2)}%.1e")
      for ((name, err, norm) <- results) {
        if (unused(name)) assert(norm == 0.0, s"$name: layer 0's v0/v1/v2 are unused, gradient must be 0")
        else assert(norm > 0, s"$name has no gradient")
        assert(err < 1e-6, s"$name: relative error $err")
      }
    } finally { model.close(); oneThread.close() }
  }

  test("fp32 agrees with fp64 within 1e-5 relative on the loss and on every gradient tensor") {
    val m64 = new Rwkv7Model(config, cpu, DType.F64, B)
    val m32 = new Rwkv7Model(config, cpu, DType.F32, B)
    try {
      val (loss64, g64) = gradients64(m64, params.map(_.toDouble))
      m32.setParameters(params)
      val g32f = layout.newBuffer()
      val loss32 = m32.forwardBackward(inputs, targets, B, g32f)
      val g32 = g32f.map(_.toDouble)
      val lossGap = math.abs(loss32 - loss64) / loss64
      val gaps = layout.params.asScala.toSeq.filterNot(s => unused(s.name))
        .map(s => s.name -> relError(slice(g32, s), slice(g64, s)))
      val worst = gaps.maxBy(_._2)
      info(f"loss $loss64%.6f, gap $lossGap%.1e; all gradients ${relError(g32, g64)}%.1e; worst tensor ${worst._2}%.1e (${worst._1})")
      assert(lossGap < 1e-5)
      assert(relError(g32, g64) < 1e-5)
      for ((name, gap) <- gaps) assert(gap < 1e-5, s"$name: $gap")
    } finally { m64.close(); m32.close() }
  }

  test("gradient checkpointing (--grad_cp 1) gives the same loss and bit-identical gradients") {
    val plain = new Rwkv7Model(config, cpu, DType.F32, B, false)
    val cp = new Rwkv7Model(config, cpu, DType.F32, B, true)
    try {
      plain.setParameters(params)
      cp.setParameters(params)
      val g1 = layout.newBuffer()
      val g2 = layout.newBuffer()
      val l1 = plain.forwardBackward(inputs, targets, B, g1)
      val l2 = cp.forwardBackward(inputs, targets, B, g2)
      assert(l1 == l2)
      assert(g1.sameElements(g2))
      assert(cp.activationElements < plain.activationElements)
      info(s"activations: ${plain.activationElements} elements without, ${cp.activationElements} with checkpointing")
    } finally { plain.close(); cp.close() }
  }

  test("the head and loss in chunks of rows (5, not dividing B·T) give the loss, gradients and logits of one chunk") {
    val whole = new Rwkv7Model(config, cpu, DType.F64, B, false)
    val chunked = new Rwkv7Model(config, cpu, DType.F64, B, false)
    chunked.headChunkElementsForTests(5 * config.vocabSize)
    try {
      val p = params.map(_.toDouble)
      val (l1, g1) = gradients64(whole, p)
      val (l2, g2) = gradients64(chunked, p)
      assert(math.abs(l1 - l2) <= 1e-12 * math.abs(l1))
      val worst = g1.indices.map(i => math.abs(g1(i) - g2(i))).max
      assert(worst <= 1e-12 * g1.map(math.abs).max, s"largest gradient difference $worst")
      val lg1 = new Array[Double](B * T * config.vocabSize)
      val lg2 = new Array[Double](B * T * config.vocabSize)
      whole.logits(inputs, B, lg1)
      chunked.logits(inputs, B, lg2)
      assert(lg1.indices.forall(i => math.abs(lg1(i) - lg2(i)) <= 1e-12 * (1 + math.abs(lg1(i))))) // BLAS blocks by row count
      assert(math.abs(chunked.loss(inputs, targets, B) - l1) <= 1e-12 * math.abs(l1))
    } finally { whole.close(); chunked.close() }
  }

  test("forwardBackward overwrites the gradients, repeats exactly, and its loss is loss()") {
    val model = new Rwkv7Model(config, cpu, DType.F32, B)
    try {
      model.setParameters(params)
      val g1 = layout.newBuffer()
      val g2 = Array.fill(layout.totalElements.toInt)(123f)
      val l1 = model.forwardBackward(inputs, targets, B, g1)
      val l2 = model.forwardBackward(inputs, targets, B, g2)
      assert(l1 == l2)
      assert(g1.sameElements(g2))
      assert(model.loss(inputs, targets, B) == l1)
    } finally model.close()
  }

  test("block gradient slots (ZeRO-2): L4 keeps non-block grads and two block slots, and the buckets a sink gets are the whole gradients bit for bit") {
    val cfg = ModelConfig.of(4, 128, 128, 16)
    val lay = new ParameterLayout(cfg)
    val p = randomParams(lay, seed = 13)
    val whole = new Rwkv7Model(cfg, cpu, DType.F32, B)
    val slots = new Rwkv7Model(cfg, cpu, DType.F32, B, false, true)
    try {
      val buckets = lay.buckets.asScala
      val nonBlock = buckets.filterNot(_.isBlock).map(_.length).sum
      assert(whole.gradientElements == lay.totalElements)
      assert(slots.gradientElements == nonBlock + 2 * lay.blockBucket(0).length)
      assert(slots.gradientElements < lay.totalElements - lay.blockBucket(1).length) // two of the four blocks saved
      whole.setParameters(p)
      slots.setParameters(p)
      val expected = lay.newBuffer()
      val loss = whole.forwardBackward(inputs, targets, B, expected)
      // The sink copies each bucket out when it is handed over: later blocks reuse the slots.
      def collect(model: Rwkv7Model): (Double, Array[Float], Seq[Int]) = {
        val got = Array.fill(lay.totalElements.toInt)(Float.NaN)
        val order = Seq.newBuilder[Int]
        val l = model.forwardBackward(inputs, targets, B, (bucket: ParameterLayout.Bucket, grads: dev.gosling.trainer.backend.Tensor) => {
          val host = new Array[Float](bucket.length.toInt)
          cpu.download(grads, host)
          System.arraycopy(host, 0, got, bucket.start.toInt, host.length)
          order += bucket.index
        })
        (l, got, order.result())
      }
      for (model <- Seq(slots, whole)) {
        val (l, got, order) = collect(model)
        assert(l == loss)
        assert(got.sameElements(expected))
        assert(order == Seq(5, 4, 3, 2, 1, 0)) // ln_out+head first, then blocks 3..0, emb last
      }
      val (_, again, _) = collect(slots) // slots are zeroed each step: a second step gives the same
      assert(again.sameElements(expected))
      assert(intercept[IllegalStateException](slots.gradients()).getMessage.contains("two slots"))
      assertThrows[IllegalStateException](slots.forwardBackward(inputs, targets, B))
      assertThrows[IllegalStateException](slots.forwardBackward(inputs, targets, B, lay.newBuffer()))
    } finally { whole.close(); slots.close() }
  }

  test("a batch of two is the mean of its samples run one at a time (samples never see each other)") {
    val model = new Rwkv7Model(config, cpu, DType.F64, B)
    try {
      val p = params.map(_.toDouble)
      model.setParameters(p)
      val both = new Array[Double](p.length)
      val lossBoth = model.forwardBackward(inputs, targets, B, both)
      val parts = (0 until B).map { b =>
        val g = new Array[Double](p.length)
        val l = model.forwardBackward(inputs.slice(b * T, (b + 1) * T), targets.slice(b * T, (b + 1) * T), 1, g)
        (l, g)
      }
      assert(math.abs(lossBoth - parts.map(_._1).sum / B) < 1e-12)
      val mean = both.indices.map(i => parts.map(_._2(i)).sum / B).toArray
      assert(relError(both, mean) < 1e-12)
    } finally model.close()
  }

  test("at init the blocks add nothing (att.output and ffn.value are 0): logits = head·LN_out(LN0(emb[token]))") {
    val p = layout.newBuffer()
    new Initializer(layout, 3).initialize(p)
    val model = new Rwkv7Model(config, cpu, DType.F32, B)
    try {
      model.setParameters(p)
      val logits = new Array[Float](B * T * config.vocabSize)
      model.logits(inputs, B, logits)
      val C = config.nEmbd
      val V = config.vocabSize
      def param(name: String) = { val s = layout.get(name); p.slice(s.offset.toInt, s.end.toInt).map(_.toDouble) }
      def layerNorm(x: Array[Double], w: Array[Double], b: Array[Double]) = {
        val mean = x.sum / C
        val rstd = 1 / math.sqrt(x.map(v => (v - mean) * (v - mean)).sum / C + 1e-5)
        x.indices.map(i => (x(i) - mean) * rstd * w(i) + b(i)).toArray
      }
      val emb = param("emb.weight")
      val head = param("head.weight")
      for (row <- Seq(0, 7, T, B * T - 1)) {
        val x = emb.slice(inputs(row) * C, (inputs(row) + 1) * C)
        val h = layerNorm(layerNorm(x, param("blocks.0.ln0.weight"), param("blocks.0.ln0.bias")),
          param("ln_out.weight"), param("ln_out.bias"))
        val expected = (0 until V).map(v => (0 until C).map(c => head(v * C + c) * h(c)).sum).toArray
        val got = logits.slice(row * V, (row + 1) * V).map(_.toDouble)
        assert(relError(got, expected) < 1e-5, s"row $row")
      }
    } finally model.close()
  }

  test("one training step allocates (almost) nothing on the heap once warm") {
    val model = new Rwkv7Model(config, cpu, DType.F32, B)
    try {
      model.setParameters(params)
      val g = layout.newBuffer()
      for (_ <- 0 until 3) model.forwardBackward(inputs, targets, B, g)
      val bean = java.lang.management.ManagementFactory.getThreadMXBean.asInstanceOf[com.sun.management.ThreadMXBean]
      val id = Thread.currentThread.getId
      val before = bean.getThreadAllocatedBytes(id)
      model.setParameters(params)
      model.forwardBackward(inputs, targets, B, g)
      val bytes = bean.getThreadAllocatedBytes(id) - before
      val activationBytes = model.activationElements * 4
      info(s"$bytes bytes allocated by the step's thread; activations are $activationBytes bytes off-heap")
      assert(bytes < activationBytes / 20, s"$bytes bytes allocated in one step")
    } finally model.close()
  }

  test("smaller batches than the maximum use the same buffers; wrong sizes and ids are errors") {
    val model = new Rwkv7Model(config, cpu, DType.F32, 3)
    try {
      model.setParameters(params)
      val g = layout.newBuffer()
      val one = model.forwardBackward(inputs.take(T), targets.take(T), 1, g)
      assert(one.isFinite)
      assertThrows[IllegalArgumentException](model.forwardBackward(inputs, targets, 4, g))
      assertThrows[IllegalArgumentException](model.forwardBackward(inputs, targets, 1, g))
      val bad = inputs.clone(); bad(5) = config.vocabSize
      val e = intercept[GoslingException](model.forwardBackward(bad, targets, B, g))
      assert(e.getMessage.contains("token id 128 at position 5") && !e.getMessage.contains("\n"), e.getMessage)
    } finally model.close()
  }
}
