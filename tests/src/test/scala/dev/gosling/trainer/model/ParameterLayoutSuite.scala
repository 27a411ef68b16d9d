package dev.gosling.trainer.model

import dev.gosling.trainer.GoslingException
import org.scalacheck.Gen
import org.scalatest.funsuite.AnyFunSuite
import org.scalatestplus.scalacheck.ScalaCheckPropertyChecks

import scala.jdk.CollectionConverters._

class ParameterLayoutSuite extends AnyFunSuite with ScalaCheckPropertyChecks {

  private val blockOrder = Seq(
    "ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias",
    "att.x_r", "att.x_w", "att.x_k", "att.x_v", "att.x_a", "att.x_g",
    "att.w1", "att.w2", "att.w0", "att.a1", "att.a2", "att.a0", "att.v1", "att.v2", "att.v0", "att.g1", "att.g2",
    "att.k_k", "att.k_a", "att.r_k",
    "att.receptance.weight", "att.key.weight", "att.value.weight", "att.output.weight", "att.ln_x.weight", "att.ln_x.bias",
    "ffn.x_k", "ffn.key.weight", "ffn.value.weight")

  /** The README's count: 2VC + 4C + L(19C + 12C² + 2C(D_DECAY + D_MV + D_AAA + D_GATE)). */
  private def readmeCount(cfg: ModelConfig): Long = {
    val c = cfg.nEmbd.toLong
    val d = cfg.lora
    2L * cfg.vocabSize * c + 4 * c + cfg.nLayer * (19 * c + 12 * c * c + 2 * c * (d.decay + d.mv + d.aaa + d.gate))
  }

  test("L12-D768 with V 65536 has 191 084 544 parameters (RWKV-LM README)") {
    val layout = new ParameterLayout(ModelConfig.of(12, 768, 65536, 512))
    assert(layout.totalElements == 191084544L)
  }

  test("L24-D1024 with dims 64/64/32/128 has 450 834 432, layer 0's unused v0/v1/v2 being 66 560 of them") {
    val layout = new ParameterLayout(new ModelConfig(24, 1024, 65536, 64, 512, 4096, new ModelConfig.LoraDims(64, 64, 32, 128)))
    assert(layout.totalElements == 450834432L)
    val unused = Seq("att.v0", "att.v1", "att.v2").map(n => layout.get("blocks.0." + n).numel).sum
    assert(unused == 66560L)
  }

  test("state-dict order: emb, then each block (ln0 after ln2 in block 0), then ln_out and head") {
    val layout = new ParameterLayout(ModelConfig.of(3, 128, 1000, 64))
    val expected = Seq("emb.weight") ++
      (0 until 3).flatMap { l =>
        val names = if (l == 0) blockOrder.take(4) ++ Seq("ln0.weight", "ln0.bias") ++ blockOrder.drop(4) else blockOrder
        names.map(n => s"blocks.$l.$n")
      } ++ Seq("ln_out.weight", "ln_out.bias", "head.weight")
    assert(layout.params.asScala.map(_.name) == expected)
    assert(layout.params.asScala.map(_.index) == expected.indices)
  }

  test("gradient buckets: emb, one contiguous range per block (block 0's holds ln0), then ln_out and head") {
    val layout = new ParameterLayout(ModelConfig.of(3, 128, 1000, 64))
    val buckets = layout.buckets.asScala
    assert(buckets.map(_.layer) == Seq(-1, 0, 1, 2, -1))
    assert(buckets.map(_.index) == buckets.indices)
    assert(buckets.head.start == 0 && buckets.last.end == layout.totalElements)
    for ((a, b) <- buckets.zip(buckets.tail)) assert(a.end == b.start)
    for (p <- layout.params.asScala) {
      val b = buckets.find(b => p.offset >= b.start && p.end <= b.end).get
      assert(b.layer == p.layer, p.name)
    }
    assert(buckets(0).length == layout.get("emb.weight").numel)
    assert(buckets(4).start == layout.get("ln_out.weight").offset)
    assert(layout.blockBucket(0).length == layout.blockBucket(1).length + 2 * 128)
    assert(layout.blockBucket(2) == buckets(3))
  }

  test("shapes: [1,1,C] vectors, r_k as [H,64], linear [out,in], LoRA [in,out], FFN 4C") {
    val layout = new ParameterLayout(new ModelConfig(2, 768, 65536, 64, 512, 3072, new ModelConfig.LoraDims(64, 96, 32, 128)))
    def shape(n: String) = layout.get(n).shape.toSeq
    assert(shape("emb.weight") == Seq(65536L, 768L))
    assert(shape("head.weight") == Seq(65536L, 768L))
    assert(shape("blocks.1.att.x_r") == Seq(1L, 1L, 768L))
    assert(shape("blocks.1.att.w0") == Seq(1L, 1L, 768L))
    assert(shape("blocks.1.att.r_k") == Seq(12L, 64L))
    assert(shape("blocks.1.att.w1") == Seq(768L, 64L))
    assert(shape("blocks.1.att.w2") == Seq(64L, 768L))
    assert(shape("blocks.1.att.a1") == Seq(768L, 96L))
    assert(shape("blocks.1.att.v2") == Seq(32L, 768L))
    assert(shape("blocks.1.att.g1") == Seq(768L, 128L))
    assert(shape("blocks.1.att.receptance.weight") == Seq(768L, 768L))
    assert(shape("blocks.1.ffn.key.weight") == Seq(3072L, 768L))
    assert(shape("blocks.1.ffn.value.weight") == Seq(768L, 3072L))
    assert(shape("blocks.0.ln0.weight") == Seq(768L))
    assert(layout.find("blocks.1.ln0.weight").isEmpty)
    val e = intercept[GoslingException](layout.get("blocks.9.att.w0"))
    assert(e.getMessage.contains("blocks.9.att.w0") && !e.getMessage.contains("\n"))
  }

  test("offsets are contiguous, in order, and sum to the total") {
    forAll(Gen.choose(2, 5), Gen.choose(1, 8), Gen.choose(1, 5000), minSuccessful(30)) { (l: Int, h: Int, v: Int) =>
      val cfg = ModelConfig.of(l, 64 * h, v, 16)
      val layout = new ParameterLayout(cfg)
      var next = 0L
      for (p <- layout.params.asScala) {
        assert(p.offset == next && p.numel == p.shape.product && p.end == next + p.numel)
        next = p.end
      }
      assert(next == layout.totalElements)
      assert(layout.totalElements == readmeCount(cfg))
    }
  }

  test("optimizer groups (weight_decay > 0): decay = emb, r/k/v/o, ffn key/value, head; 2x = att.w0; LoRA and r_k are 1x") {
    val layout = new ParameterLayout(ModelConfig.of(2, 128, 1000, 64))
    val decay = layout.groupNames(OptimizerGroup.LR_DECAY, 0.1).asScala.toSet
    val expectedDecay = Set("emb.weight", "head.weight") ++ (0 until 2).flatMap { l =>
      Seq("att.receptance.weight", "att.key.weight", "att.value.weight", "att.output.weight", "ffn.key.weight", "ffn.value.weight")
        .map(n => s"blocks.$l.$n")
    }
    assert(decay == expectedDecay)
    assert(layout.groupNames(OptimizerGroup.LR_2X, 0.1).asScala == Seq("blocks.0.att.w0", "blocks.1.att.w0"))
    for (n <- Seq("att.w1", "att.w2", "att.a2", "att.g1", "att.v2", "att.r_k", "att.ln_x.weight", "ln1.weight", "att.x_r"))
      assert(layout.get(s"blocks.1.$n").group(0.1) == OptimizerGroup.LR_1X, n)
    assert(layout.get("ln_out.weight").group(0.1) == OptimizerGroup.LR_1X)
    val names = layout.groupNames(OptimizerGroup.LR_1X, 0.1).asScala
    assert(names == names.sorted)
    assert(decay.size + names.size + 2 == layout.params.size)
  }

  test("optimizer groups (weight_decay = 0): no decay group, the matrices fall into 1x, w0 stays 2x") {
    val layout = new ParameterLayout(ModelConfig.of(2, 128, 1000, 64))
    assert(layout.groupNames(OptimizerGroup.LR_DECAY, 0.0).isEmpty)
    assert(layout.get("head.weight").group(0.0) == OptimizerGroup.LR_1X)
    assert(layout.get("blocks.0.att.w0").group(0.0) == OptimizerGroup.LR_2X)
    assert(OptimizerGroup.LR_2X.lrScale == 2.0 && OptimizerGroup.LR_DECAY.decays && !OptimizerGroup.LR_1X.decays)
  }

  test("a .weight whose squeezed shape is 1-D gets no decay (torch's p.squeeze())") {
    val spec = new ParamSpec(0, "emb.weight", Array(1L, 768L), 0L, 768L, -1)
    assert(spec.group(0.1) == OptimizerGroup.LR_1X)
  }

  test("newBuffer refuses models beyond one Java array, with a one-line error") {
    val e = intercept[GoslingException](ParameterLayout.checkedLength(3000000000L, "the model's parameters"))
    assert(e.getMessage.contains("3000000000") && !e.getMessage.contains("\n"))
    assert(new ParameterLayout(ModelConfig.of(2, 64, 100, 16)).newBuffer().length.toLong ==
      new ParameterLayout(ModelConfig.of(2, 64, 100, 16)).totalElements)
  }
}
