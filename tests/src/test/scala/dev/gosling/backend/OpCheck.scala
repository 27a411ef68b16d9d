package dev.gosling.backend

import dev.gosling.trainer.backend.{Backend, DType, Tensor}
import scala.collection.mutable.ArrayBuffer
import scala.util.Random

/** Tensors made on one backend in one precision and closed together. */
final class Dev(val backend: Backend, val dtype: DType) extends AutoCloseable {
  private val live = ArrayBuffer.empty[Tensor]

  private def keep(t: Tensor): Tensor = { live += t; t }

  def tensor(data: Array[Double]): Tensor = {
    val t = keep(backend.allocate(dtype, data.length))
    backend.upload(data, t)
    t
  }

  def zeros(n: Long): Tensor = keep(backend.allocate(dtype, n.toInt))

  def ids(data: Array[Int]): Tensor = {
    val t = keep(backend.allocate(DType.I32, data.length))
    backend.upload(data, t)
    t
  }

  def read(t: Tensor): Array[Double] = {
    val a = new Array[Double](t.numel.toInt)
    backend.download(t, a)
    a
  }

  override def close(): Unit = { live.foreach(_.close()); live.clear() }
}

object Dev {
  def using[A](backend: Backend, dtype: DType)(f: Dev => A): A = {
    val d = new Dev(backend, dtype)
    try f(d) finally d.close()
  }
}

/** What a forward call produced: the outputs the test loss is taken over, and anything the backward call needs. */
final case class Forward(outputs: Seq[Tensor], saved: Map[String, Tensor] = Map.empty)

/**
 * One op under test: named differentiable inputs with values, a forward call and a backward call that accumulates into
 * one gradient tensor per input. The loss used for checking is L = Σ_k ⟨output_k, R_k⟩ with fixed random R_k, so the
 * backward call gets dOut_k = R_k.
 */
abstract class OpCase(val name: String) {
  def inputs: Seq[(String, Array[Double])]
  def forward(d: Dev, in: Map[String, Tensor]): Forward
  def backward(d: Dev, in: Map[String, Tensor], fwd: Forward, dOuts: Seq[Tensor], grads: Map[String, Tensor]): Unit
  /** The larger of the two central-difference steps; must not cross a kink of this op. */
  def fdStep: Double = 1e-4
}

object OpCheck {
  def gaussian(rng: Random, n: Int, scale: Double = 1.0): Array[Double] = Array.fill(n)(rng.nextGaussian() * scale)
  def uniform(rng: Random, n: Int, lo: Double, hi: Double): Array[Double] = Array.fill(n)(lo + (hi - lo) * rng.nextDouble())
  def toFloat(a: Array[Double]): Array[Double] = a.map(x => x.toFloat.toDouble)

  def norm(a: Array[Double]): Double = math.sqrt(a.foldLeft(0.0)((s, x) => s + x * x))

  /** ‖a − b‖ / max(‖a‖, ‖b‖); 0 when both are 0. */
  def relError(a: Array[Double], b: Array[Double]): Double = {
    require(a.length == b.length, s"lengths ${a.length} and ${b.length}")
    val scale = math.max(norm(a), norm(b))
    if (scale == 0) 0.0 else norm(a.indices.map(i => a(i) - b(i)).toArray) / scale
  }

  /** Forward, then (if dOuts are given) `backwardCalls` backward calls into the same zeroed gradients. */
  def run(op: OpCase, backend: Backend, dtype: DType, values: Map[String, Array[Double]],
          dOuts: Option[Seq[Array[Double]]], backwardCalls: Int = 1): (Seq[Array[Double]], Map[String, Array[Double]]) =
    Dev.using(backend, dtype) { d =>
      val in = op.inputs.map { case (n, _) => n -> d.tensor(values(n)) }.toMap
      val fwd = op.forward(d, in)
      val outs = fwd.outputs.map(d.read)
      val grads = dOuts match {
        case None => Map.empty[String, Array[Double]]
        case Some(r) =>
          val g = op.inputs.map { case (n, v) => n -> d.zeros(v.length.toLong) }.toMap
          val dOutTensors = r.map(d.tensor)
          (1 to backwardCalls).foreach(_ => op.backward(d, in, fwd, dOutTensors, g))
          g.map { case (n, t) => n -> d.read(t) }
      }
      (outs, grads)
    }

  private def loss(outs: Seq[Array[Double]], r: Seq[Array[Double]]): Double =
    outs.zip(r).map { case (o, w) => o.indices.map(i => o(i) * w(i)).sum }.sum

  /** Result of a gradient check of one input: relative errors over sampled coordinates and along random directions. */
  final case class GradError(input: String, coordinates: Double, directions: Double) {
    def worst: Double = math.max(coordinates, directions)
  }

  /**
   * The backward pass in float64 against central differences of L: for each input, up to `coordinates` sampled
   * elements (all of them for small inputs) and `directions` random directions (which cover every element at once).
   */
  def gradCheck(op: OpCase, backend: Backend, seed: Long, coordinates: Int = 24, directions: Int = 2): Seq[GradError] = {
    val rng = new Random(seed)
    val values = op.inputs.toMap
    val (outs0, _) = run(op, backend, DType.F64, values, None)
    val r = outs0.map(o => gaussian(rng, o.length))
    val (_, grads) = run(op, backend, DType.F64, values, Some(r))
    val h = op.fdStep
    // Richardson-extrapolated central difference: (4·D(h/2) − D(h))/3 has O(h⁴) truncation error, so sharply curved
    // spots (a LayerNorm row with two nearly equal values) do not need a per-op step.
    def derivative(name: String, delta: Array[Double]): Double = {
      def central(step: Double): Double = {
        def at(sign: Double): Double = {
          val v = values(name).clone()
          v.indices.foreach(i => v(i) += sign * step * delta(i))
          loss(run(op, backend, DType.F64, values.updated(name, v), None)._1, r)
        }
        (at(1) - at(-1)) / (2 * step)
      }
      (4 * central(h / 2) - central(h)) / 3
    }
    op.inputs.map { case (name, v) =>
      val picks = if (v.length <= coordinates) v.indices else rng.shuffle(v.indices.toVector).take(coordinates)
      val numeric = picks.map { i =>
        val e = new Array[Double](v.length); e(i) = 1.0
        derivative(name, e)
      }.toArray
      val analytic = picks.map(i => grads(name)(i)).toArray
      val dirNumeric = new Array[Double](directions)
      val dirAnalytic = new Array[Double](directions)
      for (k <- 0 until directions) {
        val u = gaussian(rng, v.length)
        dirNumeric(k) = derivative(name, u)
        dirAnalytic(k) = u.indices.map(i => u(i) * grads(name)(i)).sum
      }
      GradError(name, relError(analytic, numeric), relError(dirAnalytic, dirNumeric))
    }
  }

  /** Max relative gap between two backward calls and twice one call (backward ops must accumulate). */
  def accumulationGap(op: OpCase, backend: Backend, seed: Long): Double = {
    val rng = new Random(seed)
    val values = op.inputs.toMap
    val (outs, _) = run(op, backend, DType.F64, values, None)
    val r = outs.map(o => gaussian(rng, o.length))
    val (_, once) = run(op, backend, DType.F64, values, Some(r))
    val (_, twice) = run(op, backend, DType.F64, values, Some(r), backwardCalls = 2)
    op.inputs.map { case (n, _) => relError(twice(n), once(n).map(_ * 2)) }.max
  }

  /**
   * fp32 against fp64 on the same float-representable inputs and output gradients: the largest relative error over
   * every output and every gradient.
   */
  def precisionGap(op: OpCase, backend: Backend, seed: Long): Double = {
    val rng = new Random(seed)
    val values = op.inputs.map { case (n, v) => n -> toFloat(v) }.toMap
    val (outs, _) = run(op, backend, DType.F64, values, None)
    val r = outs.map(o => toFloat(gaussian(rng, o.length)))
    val (o64, g64) = run(op, backend, DType.F64, values, Some(r))
    val (o32, g32) = run(op, backend, DType.F32, values, Some(r))
    val outGaps = o64.zip(o32).map { case (a, b) => relError(a, b) }
    val gradGaps = op.inputs.map { case (n, _) => relError(g64(n), g32(n)) }
    (outGaps ++ gradGaps).max
  }

  /** Outputs and gradients of two backends (e.g. 1 and 3 threads) in fp32, which must match bit for bit. */
  def sameBits(op: OpCase, a: Backend, b: Backend, seed: Long): Boolean = {
    val rng = new Random(seed)
    val values = op.inputs.map { case (n, v) => n -> toFloat(v) }.toMap
    val (outs, _) = run(op, a, DType.F32, values, None)
    val r = outs.map(o => toFloat(gaussian(rng, o.length)))
    val (oa, ga) = run(op, a, DType.F32, values, Some(r))
    val (ob, gb) = run(op, b, DType.F32, values, Some(r))
    oa.zip(ob).forall { case (x, y) => x.sameElements(y) } && op.inputs.forall { case (n, _) => ga(n).sameElements(gb(n)) }
  }
}
