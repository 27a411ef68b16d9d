package dev.gosling.backend

import dev.gosling.backend.OpCheck._
import dev.gosling.trainer.backend.{Activation, Tensor}
import scala.util.Random

/** One [[OpCase]] per Backend op pair, on random inputs of the given sizes (heads are 64 wide: C % 64 == 0). */
object OpCases {

  final class Embedding(rows: Int, vocab: Int, C: Int, seed: Long) extends OpCase(s"embedding rows=$rows V=$vocab C=$C") {
    private val rng = new Random(seed)
    // few distinct tokens, so rows share embedding rows and the scatter-add has to sum
    val tokens: Array[Int] = Array.fill(rows)(rng.nextInt(math.max(1, vocab / 2)))
    val inputs = Seq("weight" -> gaussian(rng, vocab * C))
    def forward(d: Dev, in: Map[String, Tensor]): Forward = {
      val ids = d.ids(tokens)
      val out = d.zeros(rows.toLong * C)
      d.backend.embeddingForward(ids, in("weight"), out, rows, vocab, C)
      Forward(Seq(out), Map("tokens" -> ids))
    }
    def backward(d: Dev, in: Map[String, Tensor], f: Forward, dOuts: Seq[Tensor], g: Map[String, Tensor]): Unit =
      d.backend.embeddingBackward(f.saved("tokens"), dOuts(0), g("weight"), rows, vocab, C)
  }

  /** LayerNorm (group = C) or the per-head GroupNorm (group = 64). */
  final class Norm(rows: Int, C: Int, perHead: Boolean, seed: Long)
    extends OpCase(s"${if (perHead) "groupNorm" else "layerNorm"} rows=$rows C=$C") {
    private val rng = new Random(seed)
    val inputs = Seq(
      "x" -> gaussian(rng, rows * C).map(_ + 0.3),
      "weight" -> gaussian(rng, C, 0.5).map(_ + 1.0),
      "bias" -> gaussian(rng, C, 0.5))
    private val stats = if (perHead) rows.toLong * (C / 64) else rows.toLong
    def forward(d: Dev, in: Map[String, Tensor]): Forward = {
      val out = d.zeros(rows.toLong * C)
      val mean = d.zeros(stats)
      val rstd = d.zeros(stats)
      if (perHead) d.backend.groupNormForward(in("x"), in("weight"), in("bias"), out, mean, rstd, rows, C)
      else d.backend.layerNormForward(in("x"), in("weight"), in("bias"), out, mean, rstd, rows, C)
      Forward(Seq(out), Map("mean" -> mean, "rstd" -> rstd))
    }
    def backward(d: Dev, in: Map[String, Tensor], f: Forward, dOuts: Seq[Tensor], g: Map[String, Tensor]): Unit =
      if (perHead) d.backend.groupNormBackward(dOuts(0), in("x"), in("weight"), f.saved("mean"), f.saved("rstd"),
        g("x"), g("weight"), g("bias"), rows, C)
      else d.backend.layerNormBackward(dOuts(0), in("x"), in("weight"), f.saved("mean"), f.saved("rstd"),
        g("x"), g("weight"), g("bias"), rows, C)
  }

  /** k = 1 … 6 token-shift mixes of one x at once; every dMix wanted (the null ones have their own test). */
  final class TokenShift(B: Int, T: Int, C: Int, k: Int, seed: Long) extends OpCase(s"tokenShiftMixes B=$B T=$T C=$C k=$k") {
    private val rng = new Random(seed)
    val inputs: Seq[(String, Array[Double])] =
      ("x" -> gaussian(rng, B * T * C)) +: (0 until k).map(j => s"mix$j" -> uniform(rng, C, 0, 1))
    private def mixes(in: Map[String, Tensor]): Array[Tensor] = Array.tabulate(k)(j => in(s"mix$j"))
    def forward(d: Dev, in: Map[String, Tensor]): Forward = {
      val outs = Array.fill(k)(d.zeros(B.toLong * T * C))
      d.backend.tokenShiftMixesForward(in("x"), mixes(in), outs, B, T, C)
      Forward(outs.toSeq)
    }
    def backward(d: Dev, in: Map[String, Tensor], f: Forward, dOuts: Seq[Tensor], g: Map[String, Tensor]): Unit =
      d.backend.tokenShiftMixesBackward(dOuts.toArray, in("x"), mixes(in), g("x"), mixes(g), B, T, C)
  }

  final class Linear(rows: Int, in: Int, out: Int, seed: Long) extends OpCase(s"linear rows=$rows in=$in out=$out") {
    private val rng = new Random(seed)
    val inputs = Seq("x" -> gaussian(rng, rows * in), "weight" -> gaussian(rng, out * in, 1 / math.sqrt(in)))
    def forward(d: Dev, t: Map[String, Tensor]): Forward = {
      val y = d.zeros(rows.toLong * out)
      d.backend.linearForward(t("x"), t("weight"), y, rows, in, out)
      Forward(Seq(y))
    }
    def backward(d: Dev, t: Map[String, Tensor], f: Forward, dOuts: Seq[Tensor], g: Map[String, Tensor]): Unit =
      d.backend.linearBackward(dOuts(0), t("x"), t("weight"), g("x"), g("weight"), rows, in, out)
  }

  final class Lora(rows: Int, in: Int, rank: Int, out: Int, hiddenAct: Activation, outAct: Activation,
                   withBias: Boolean, seed: Long)
    extends OpCase(s"lora rows=$rows $in→$rank→$out $hiddenAct/$outAct${if (withBias) " +bias" else ""}") {
    private val rng = new Random(seed)
    val inputs: Seq[(String, Array[Double])] = Seq(
      "x" -> gaussian(rng, rows * in),
      "down" -> gaussian(rng, in * rank, 1 / math.sqrt(in)),
      "up" -> gaussian(rng, rank * out, 1 / math.sqrt(rank))) ++
      (if (withBias) Seq("bias" -> gaussian(rng, out, 0.5)) else Nil)
    def forward(d: Dev, t: Map[String, Tensor]): Forward = {
      val hidden = d.zeros(rows.toLong * rank)
      val y = d.zeros(rows.toLong * out)
      d.backend.loraForward(t("x"), t("down"), t("up"), t.getOrElse("bias", null), hiddenAct, outAct, hidden, y,
        rows, in, rank, out)
      Forward(Seq(y), Map("hidden" -> hidden, "out" -> y))
    }
    def backward(d: Dev, t: Map[String, Tensor], f: Forward, dOuts: Seq[Tensor], g: Map[String, Tensor]): Unit = {
      // the dPre scratch may be null when there is no output activation; check that path
      val dPre = if (outAct == Activation.NONE) null else d.zeros(rows.toLong * out)
      d.backend.loraBackward(dOuts(0), t("x"), t("down"), t("up"), t.getOrElse("bias", null), hiddenAct, outAct,
        f.saved("hidden"), f.saved("out"), dPre, d.zeros(rows.toLong * rank), g("x"), g("down"), g("up"),
        g.getOrElse("bias", null), rows, in, rank, out)
    }
  }

  /** gatePre: the v gate's pre-activation (the op takes its sigmoid; σ(±3) ≈ 0.05, 0.95). */
  final class ValueResidual(rows: Int, C: Int, seed: Long) extends OpCase(s"valueResidual rows=$rows C=$C") {
    private val rng = new Random(seed)
    val inputs = Seq("v" -> gaussian(rng, rows * C), "vFirst" -> gaussian(rng, rows * C),
      "gatePre" -> uniform(rng, rows * C, -3, 3))
    def forward(d: Dev, t: Map[String, Tensor]): Forward = {
      val out = d.zeros(rows.toLong * C)
      d.backend.valueResidualForward(t("v"), t("vFirst"), t("gatePre"), out, rows, C)
      Forward(Seq(out))
    }
    def backward(d: Dev, t: Map[String, Tensor], f: Forward, dOuts: Seq[Tensor], g: Map[String, Tensor]): Unit =
      d.backend.valueResidualBackward(dOuts(0), t("v"), t("vFirst"), t("gatePre"), g("v"), g("vFirst"), g("gatePre"),
        rows, C)
  }

  /** alphaPre: α's pre-activation (the op takes its sigmoid; σ(±3) ≈ 0.05, 0.95). */
  final class KeyPrepare(rows: Int, C: Int, seed: Long) extends OpCase(s"keyPrepare rows=$rows C=$C") {
    private val rng = new Random(seed)
    val inputs = Seq(
      "k" -> gaussian(rng, rows * C),
      "alphaPre" -> uniform(rng, rows * C, -3, 3),
      "kK" -> uniform(rng, C, 0.6, 0.8),
      "kA" -> uniform(rng, C, 0.9, 1.1))
    def forward(d: Dev, t: Map[String, Tensor]): Forward = {
      val n = rows.toLong * C
      val (kTilde, a, b) = (d.zeros(n), d.zeros(n), d.zeros(n))
      d.backend.keyPrepareForward(t("k"), t("alphaPre"), t("kK"), t("kA"), kTilde, a, b, rows, C)
      Forward(Seq(kTilde, a, b))
    }
    def backward(d: Dev, t: Map[String, Tensor], f: Forward, dOuts: Seq[Tensor], g: Map[String, Tensor]): Unit =
      d.backend.keyPrepareBackward(dOuts(0), dOuts(1), dOuts(2), t("k"), t("alphaPre"), t("kK"), t("kA"),
        g("k"), g("alphaPre"), g("kK"), g("kA"), rows, C)
  }

  final class Bonus(rows: Int, C: Int, seed: Long) extends OpCase(s"bonus rows=$rows C=$C") {
    private val rng = new Random(seed)
    val inputs = Seq("x" -> gaussian(rng, rows * C), "r" -> gaussian(rng, rows * C), "k" -> gaussian(rng, rows * C),
      "v" -> gaussian(rng, rows * C), "rK" -> gaussian(rng, C, 0.3))
    def forward(d: Dev, t: Map[String, Tensor]): Forward = {
      val out = d.zeros(rows.toLong * C)
      d.backend.bonusForward(t("x"), t("r"), t("k"), t("v"), t("rK"), out, rows, C)
      Forward(Seq(out))
    }
    def backward(d: Dev, t: Map[String, Tensor], f: Forward, dOuts: Seq[Tensor], g: Map[String, Tensor]): Unit =
      d.backend.bonusBackward(dOuts(0), t("r"), t("k"), t("v"), t("rK"), g("x"), g("r"), g("k"), g("v"), g("rK"), rows, C)
  }

  final class Gate(rows: Int, C: Int, seed: Long) extends OpCase(s"gate rows=$rows C=$C") {
    private val rng = new Random(seed)
    val inputs = Seq("x" -> gaussian(rng, rows * C), "gate" -> gaussian(rng, rows * C))
    def forward(d: Dev, t: Map[String, Tensor]): Forward = {
      val out = d.zeros(rows.toLong * C)
      d.backend.gateForward(t("x"), t("gate"), out, rows, C)
      Forward(Seq(out))
    }
    def backward(d: Dev, t: Map[String, Tensor], f: Forward, dOuts: Seq[Tensor], g: Map[String, Tensor]): Unit =
      d.backend.gateBackward(dOuts(0), t("x"), t("gate"), g("x"), g("gate"), rows, C)
  }

  /** relu²'s backward reads the forward's output (dPre = dAct·2·√act), written into scratch, then added to dx. */
  final class ReluSquared(rows: Int, C: Int, seed: Long) extends OpCase(s"reluSquared rows=$rows C=$C") {
    private val rng = new Random(seed)
    // keep every x at least 0.01 from the kink so central differences never straddle it
    val inputs = Seq("x" -> gaussian(rng, rows * C).map(x => if (math.abs(x) < 0.01) x + 0.02 * math.signum(x + 1e-9) else x))
    def forward(d: Dev, t: Map[String, Tensor]): Forward = {
      val out = d.zeros(rows.toLong * C)
      d.backend.reluSquaredForward(t("x"), out, rows, C)
      Forward(Seq(out))
    }
    def backward(d: Dev, t: Map[String, Tensor], f: Forward, dOuts: Seq[Tensor], g: Map[String, Tensor]): Unit = {
      val dPre = d.zeros(rows.toLong * C)
      d.backend.reluSquaredBackwardOverwriting(dOuts(0), f.outputs(0), dPre, rows, C)
      d.backend.accumulate(dPre, g("x"))
    }
  }

  /**
   * Realistic WKV7 inputs: a = −κ̂ with κ̂ a unit vector per head, b = κ̂⊙α with α ∈ (0, 1), as the time mix
   * produces them; central differences then move a and b independently.
   */
  final class Wkv7(B: Int, T: Int, H: Int, seed: Long) extends OpCase(s"wkv7 B=$B T=$T H=$H") {
    private val rng = new Random(seed)
    private val n = B * T * H * 64
    private val kappaHat: Array[Double] = {
      val g = gaussian(rng, n)
      for (u <- 0 until n / 64) {
        val s = math.sqrt((0 until 64).map(i => g(u * 64 + i) * g(u * 64 + i)).sum)
        (0 until 64).foreach(i => g(u * 64 + i) /= s)
      }
      g
    }
    private val alpha = uniform(rng, n, 0.05, 0.95)
    val inputs = Seq(
      "r" -> gaussian(rng, n, 0.5),
      "wRaw" -> gaussian(rng, n, 2.0),
      "k" -> gaussian(rng, n, 0.5),
      "v" -> gaussian(rng, n, 0.5),
      "a" -> kappaHat.map(-_),
      "b" -> kappaHat.indices.map(i => kappaHat(i) * alpha(i)).toArray)
    def forward(d: Dev, t: Map[String, Tensor]): Forward = {
      val out = d.zeros(n.toLong)
      val saved = d.zeros(d.backend.wkv7SavedElements(B, T, H))
      d.backend.wkv7Forward(t("r"), t("wRaw"), t("k"), t("v"), t("a"), t("b"), out, saved, B, T, H)
      Forward(Seq(out), Map("saved" -> saved))
    }
    def backward(d: Dev, t: Map[String, Tensor], f: Forward, dOuts: Seq[Tensor], g: Map[String, Tensor]): Unit =
      d.backend.wkv7Backward(dOuts(0), t("r"), t("wRaw"), t("k"), t("v"), t("a"), t("b"), f.saved("saved"),
        g("r"), g("wRaw"), g("k"), g("v"), g("a"), g("b"), B, T, H)
  }
}
