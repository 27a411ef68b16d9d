package dev.gosling.trainer.model

import dev.gosling.trainer.backend.{Activation, DType, Tensor}
import dev.gosling.trainer.backend.cpu.CpuBackend
import dev.gosling.trainer.model.ModelFixtures._
import org.scalatest.BeforeAndAfterAll
import org.scalatest.funsuite.AnyFunSuite

import scala.jdk.CollectionConverters._
import scala.util.Random

/**
 * A step writes most gradients instead of adding them to a zeroed buffer: the weights' GEMMs write theirs
 * (Backend.linearBackwardOverwriting, loraBackwardOverwriting, loraBackwardOverwritingWeights; the head's first chunk
 * of rows), and only what is added to is zeroed first (Backend.zeroRanges). The new ops equal zero + accumulate from
 * NaN-filled outputs; a gradient buffer that starts as NaN gives the gradients of one that starts at zero, bit for
 * bit, for whole gradients (fp32 and fp64, --keep 0 … 4, --grad_cp 1, the head in chunks) and for block gradient
 * slots (ZeRO-2), so every element is written; and on the L24-D2048 layout the zeroed part is the embedding and the
 * small per-channel gradients.
 */
class GradientWritersSuite extends AnyFunSuite with BeforeAndAfterAll {

  private val cpu = new CpuBackend(2)
  override def afterAll(): Unit = cpu.close()

  private def tensor(values: Array[Double]): Tensor = {
    val t = cpu.allocate(DType.F64, values.length)
    cpu.upload(values, t)
    t
  }

  private def read(t: Tensor): Array[Double] = {
    val a = new Array[Double](t.numel.toInt)
    cpu.download(t, a)
    a
  }

  private def gaussian(rng: Random, n: Int): Array[Double] = Array.fill(n)(rng.nextGaussian())
  private def nan(n: Int): Tensor = tensor(Array.fill(n)(Double.NaN))
  private def zeros(n: Int): Tensor = tensor(new Array[Double](n))

  test("linearBackwardOverwriting writes dx and dWeight over NaN: the values of linearBackward into zeros") {
    val (rows, in, out) = (7, 5, 3)
    val rng = new Random(1)
    val (dy, x, w) = (tensor(gaussian(rng, rows * out)), tensor(gaussian(rng, rows * in)), tensor(gaussian(rng, out * in)))
    val (dx0, dw0) = (zeros(rows * in), zeros(out * in))
    cpu.linearBackward(dy, x, w, dx0, dw0, rows, in, out)
    val (dx, dw) = (nan(rows * in), nan(out * in))
    cpu.linearBackwardOverwriting(dy, x, w, dx, dw, rows, in, out)
    assert(read(dx).sameElements(read(dx0)) && read(dw).sameElements(read(dw0)))
    assert(read(dw).exists(_ != 0))
    // a null dWeight (frozen) is allowed, as in linearBackward
    val dx2 = nan(rows * in)
    cpu.linearBackwardOverwriting(dy, x, w, dx2, null, rows, in, out)
    assert(read(dx2).sameElements(read(dx0)))
  }

  // the model's four chains: decay (tanh, +w0), α and the v gate (pre-activation, +bias), g (sigmoid inside, no bias)
  for ((hiddenAct, outAct, withBias) <- Seq((Activation.TANH, Activation.NONE, true), (Activation.NONE, Activation.NONE, true),
      (Activation.SIGMOID, Activation.NONE, false), (Activation.NONE, Activation.SIGMOID, true))) {
    test(s"loraBackwardOverwriting(Weights) $hiddenAct/$outAct${if (withBias) " +bias" else ""}: the weights' gradients " +
      "written over NaN, dx written or added to, as loraBackward into zeros") {
      val (rows, in, rank, out) = (9, 16, 4, 16)
      val rng = new Random(2)
      val x = tensor(gaussian(rng, rows * in))
      val down = tensor(gaussian(rng, in * rank))
      val up = tensor(gaussian(rng, rank * out))
      val bias = if (withBias) tensor(gaussian(rng, out)) else null
      val (hidden, y) = (zeros(rows * rank), zeros(rows * out))
      cpu.loraForward(x, down, up, bias, hiddenAct, outAct, hidden, y, rows, in, rank, out)
      val dy = tensor(gaussian(rng, rows * out))
      val dxStart = gaussian(rng, rows * in)
      def scratch() = (if (outAct == Activation.NONE) null else nan(rows * out), nan(rows * rank))
      // the reference: every gradient added to, from zeros
      val ref = Seq(zeros(rows * in), zeros(in * rank), zeros(rank * out), zeros(out))
      val (p0, h0) = scratch()
      cpu.loraBackward(dy, x, down, up, bias, hiddenAct, outAct, hidden, y, p0, h0, ref(0), ref(1), ref(2), ref(3), rows, in,
        rank, out)
      for (writeDx <- Seq(true, false)) {
        // dBias without a bias is ignored: left as it was (0 here), as loraBackward leaves it
        val got = Seq(if (writeDx) nan(rows * in) else tensor(dxStart), nan(in * rank), nan(rank * out),
          if (withBias) nan(out) else zeros(out))
        val (p, h) = scratch()
        if (writeDx) cpu.loraBackwardOverwriting(dy, x, down, up, bias, hiddenAct, outAct, hidden, y, p, h, got(0), got(1), got(2),
          got(3), rows, in, rank, out)
        else cpu.loraBackwardOverwritingWeights(dy, x, down, up, bias, hiddenAct, outAct, hidden, y, p, h, got(0), got(1), got(2),
          got(3), rows, in, rank, out)
        for (k <- 1 to 3) assert(read(got(k)).sameElements(read(ref(k))), s"gradient $k, dx written: $writeDx")
        // written: the reference's values; added to: the start plus them (the op may add term by term: not to the bit)
        val want = read(ref(0)).zip(if (writeDx) Array.fill(rows * in)(0.0) else dxStart).map { case (g, s) => s + g }
        assert(relError(read(got(0)), want) < 1e-12, s"dx written: $writeDx")
      }
    }
  }

  test("zeroRanges zeroes exactly its ranges (empty ones too) and refuses bad ranges in one line") {
    val values = Array.tabulate(40)(i => i + 1.0)
    val t = tensor(values)
    cpu.zeroRanges(t, Array(0L, 3L, 3L, 3L, 10L, 17L, 39L, 40L))
    val got = read(t)
    for (i <- values.indices) {
      val zeroed = i < 3 || (i >= 10 && i < 17) || i == 39
      assert(got(i) == (if (zeroed) 0.0 else values(i)), s"element $i")
    }
    cpu.zeroRanges(t, Array.emptyLongArray) // nothing
    assert(read(t).sameElements(got))
    for (bad <- Seq(Array(0L), Array(5L, 3L), Array(0L, 41L), Array(10L, 20L, 15L, 30L), Array(-1L, 2L))) {
      val e = intercept[IllegalArgumentException](cpu.zeroRanges(t, bad))
      assert(e.getMessage.startsWith("zeroRanges: ") && !e.getMessage.contains("\n"), e.getMessage)
    }
  }

  // L3 (slots reused: block 0 writes into the slot block 2 was handed over in), C128, V128, T16, up to two samples
  private val config = ModelConfig.of(3, 128, 128, 16)
  private val layout = new ParameterLayout(config)
  private val MaxB = 2
  private val T = config.ctxLen
  private val rng = new Random(7)
  private val inputs = tokens(rng, MaxB * T, config.vocabSize)
  private val targets = tokens(rng, MaxB * T, config.vocabSize)
  private val params = randomParams(layout, seed = 43)

  /** One step on the first b samples with the gradient buffers filled with `start` first; the gradients as doubles. */
  private def step(model: Rwkv7Model, start: Double, b: Int): (Double, Array[Double]) = {
    val (in, tg) = (inputs.take(b * T), targets.take(b * T))
    model.fillGradientsForTests(start)
    if (model.blockGradientSlots) {
      val got = Array.fill(layout.totalElements.toInt)(Double.NaN)
      val loss = model.forwardBackward(in, tg, b, (bucket: ParameterLayout.Bucket, grads: Tensor) => {
        val host = new Array[Float](bucket.length.toInt)
        cpu.download(grads, host)
        for (i <- host.indices) got(bucket.start.toInt + i) = host(i)
      })
      (loss, got)
    } else if (model.dtype == DType.F64) {
      val g = new Array[Double](layout.totalElements.toInt)
      (model.forwardBackward(in, tg, b, g), g)
    } else {
      val g = layout.newBuffer()
      (model.forwardBackward(in, tg, b, g), g.map(_.toDouble))
    }
  }

  private def sameBits(a: Array[Double], b: Array[Double]): Boolean =
    a.length == b.length && a.indices.forall(i => java.lang.Double.doubleToRawLongBits(a(i)) == java.lang.Double.doubleToRawLongBits(b(i)))

  private case class Setup(name: String, dtype: DType, gradCp: Boolean, slots: Boolean, keep: Int, headChunkRows: Int = 0)

  private val setups =
    (0 to Rwkv7Model.MAX_KEEP).map(k => Setup(s"fp32 keep $k", DType.F32, gradCp = false, slots = false, k)) ++
      Seq(Setup("fp64 keep 0", DType.F64, gradCp = false, slots = false, 0),
        Setup("fp32 grad_cp", DType.F32, gradCp = true, slots = false, 0),
        Setup("fp32 head in chunks of 5 rows", DType.F32, gradCp = false, slots = false, 0, headChunkRows = 5)) ++
      (0 to Rwkv7Model.MAX_KEEP).map(k => Setup(s"block slots keep $k", DType.F32, gradCp = false, slots = true, k)) ++
      Seq(Setup("block slots grad_cp", DType.F32, gradCp = true, slots = true, 0),
        Setup("block slots, head in chunks of 5 rows", DType.F32, gradCp = false, slots = true, 0, headChunkRows = 5))

  for (s <- setups) {
    test(s"${s.name}: gradient buffers starting as NaN give the gradients of zeroed ones bit for bit, step after step") {
      def model(): Rwkv7Model = {
        val m = new Rwkv7Model(config, cpu, s.dtype, MaxB, s.gradCp, s.slots, s.keep)
        if (s.headChunkRows > 0) m.headChunkElementsForTests(s.headChunkRows * config.vocabSize)
        if (s.dtype == DType.F64) m.setParameters(params.map(_.toDouble)) else m.setParameters(params)
        m
      }
      val zeroed = model()
      val poisoned = model()
      try {
        for (b <- Seq(2, 1, 2)) {
          val (l0, g0) = step(zeroed, 0.0, b)
          val (l1, g1) = step(poisoned, Double.NaN, b)
          assert(!g0.exists(_.isNaN) && g0.exists(_ != 0), s"batch $b")
          val nans = g1.count(_.isNaN)
          assert(nans == 0, s"batch $b: $nans gradients left unwritten, the first in " +
            layout.params.asScala.find(p => (p.offset until p.end).exists(i => g1(i.toInt).isNaN)).map(_.name).orNull)
          assert(l1 == l0, s"batch $b")
          assert(sameBits(g1, g0), s"batch $b: ${g1.indices.count(i => g1(i) != g0(i))} gradients differ")
        }
        // layer 0's v LoRA (unused: its v is v_first) is zeroed, not written
        for (name <- Seq("att.v0", "att.v1", "att.v2")) {
          val spec = layout.get("blocks.0." + name)
          assert(!Rwkv7Model.gradientWritten(spec))
          assert(Rwkv7Model.gradientWritten(layout.get("blocks.1." + name)))
        }
      } finally { zeroed.close(); poisoned.close() }
    }
  }

  test("on the L24-D2048 layout (V 65536) a step zeroes the embedding and the per-channel gradients: under 10% of them") {
    val big = new ParameterLayout(ModelConfig.of(24, 2048, 65536, 4096))
    val specs = big.params.asScala
    val added = specs.filterNot(Rwkv7Model.gradientWritten).map(_.numel).sum
    val emb = big.get("emb.weight").numel
    info(f"zeroed: $added of ${big.totalElements} elements (${100.0 * added / big.totalElements}%.2f%%), the embedding $emb")
    assert(added.toDouble / big.totalElements < 0.10)
    // besides it: 16 vectors of C a block (ln1, ln2, the six mixes, k_k, k_a, r_k, ln_x, ffn.x_k), ln0, ln_out and
    // layer 0's unused v LoRA
    val unusedV = Seq("att.v0", "att.v1", "att.v2").map(n => big.get("blocks.0." + n).numel).sum
    assert(added == emb + 24L * 16 * 2048 + 2 * 2048 + 2 * 2048 + unusedV)
    assert(Rwkv7Model.gradientWritten(big.get("head.weight")) && !Rwkv7Model.gradientWritten(big.get("emb.weight")))
  }
}
