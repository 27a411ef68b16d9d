package dev.gosling.trainer.model

import dev.gosling.trainer.GoslingException
import org.scalatest.funsuite.AnyFunSuite

import scala.jdk.CollectionConverters._

class ModelConfigSuite extends AnyFunSuite {

  private def oneLineError(f: => Any): String = {
    val e = intercept[GoslingException](f)
    assert(!e.getMessage.contains("\n"), e.getMessage)
    e.getMessage
  }

  test("LoRA dims: current and legacy formulas reproduce the table of §6.2") {
    val table = Seq(
      512 -> ((64, 64, 32, 128), (32, 32, 32, 96)),
      768 -> ((64, 64, 32, 128), (64, 64, 32, 128)),
      1024 -> ((64, 64, 64, 160), (64, 64, 32, 160)),
      2048 -> ((128, 128, 64, 224), (96, 96, 64, 256)),
      2560 -> ((128, 128, 96, 256), (96, 96, 64, 320)),
      4096 -> ((160, 160, 96, 320), (128, 128, 96, 480)))
    for ((c, (cur, old)) <- table) {
      val d = ModelConfig.LoraDims.current(c)
      assert((d.decay, d.aaa, d.mv, d.gate) == cur, s"current C=$c")
      val l = ModelConfig.LoraDims.legacy(c)
      assert((l.decay, l.aaa, l.mv, l.gate) == old, s"legacy C=$c")
    }
  }

  test("LoRA dims: at least 32; at C=1024, 2.5*sqrt(C)/32 = 2.5 exactly rounds half to even (64, not 96)") {
    val tiny = ModelConfig.LoraDims.current(64)
    assert((tiny.decay, tiny.aaa, tiny.mv, tiny.gate) == ((32, 32, 32, 32)))
    assert(ModelConfig.LoraDims.current(1024).decay == 64)
  }

  test("of(): head 64, FFN 4C, current LoRA dims, H = C/64") {
    val cfg = ModelConfig.of(12, 768, ModelConfig.WORLD_VOCAB_SIZE, 512)
    assert(cfg.headSize == 64 && cfg.dimFfn == 3072 && cfg.nHead == 12 && cfg.vocabSize == 65536)
    assert(cfg.lora == new ModelConfig.LoraDims(64, 64, 32, 128))
    val released = cfg.withLora(new ModelConfig.LoraDims(96, 96, 64, 256))
    assert(released.lora.gate == 256 && released.nEmbd == 768)
  }

  test("validation: one line per error, naming the flag") {
    assert(oneLineError(ModelConfig.of(12, 100, 65536, 512)).contains("--n_embd 100"))
    assert(oneLineError(ModelConfig.of(12, 0, 65536, 512)).contains("--n_embd 0"))
    assert(oneLineError(ModelConfig.of(12, 768, 65536, 500)).contains("--ctx_len 500"))
    assert(oneLineError(ModelConfig.of(12, 768, 65536, 0)).contains("--ctx_len 0"))
    assert(oneLineError(ModelConfig.of(1, 768, 65536, 512)).contains("--n_layer 1"))
    assert(oneLineError(ModelConfig.of(12, 768, 0, 512)).contains("--vocab_size 0"))
    assert(oneLineError(new ModelConfig(12, 768, 65536, 32, 512, 3072, ModelConfig.LoraDims.current(768))).contains("--head_size 32"))
    assert(oneLineError(new ModelConfig.LoraDims(64, 0, 32, 128)).contains("LoRA dims"))
    assert(oneLineError(new ModelConfig(12, 768, 65536, 64, 512, 100, ModelConfig.LoraDims.current(768))).contains("dim_ffn 100"))
  }

  private def shapesOf(cfg: ModelConfig): java.util.Map[String, Array[Long]] = new ParameterLayout(cfg).shapes()

  test("inferFromShapes recovers a released model's dims (0.4B-like gate 128 at C=1024)") {
    val cfg = new ModelConfig(24, 1024, 65536, 64, 4096, 4096, new ModelConfig.LoraDims(64, 64, 32, 128))
    assert(ModelConfig.inferFromShapes(shapesOf(cfg), 4096) == cfg)
    val small = ModelConfig.of(2, 128, 1000, 64)
    assert(ModelConfig.inferFromShapes(shapesOf(small), 64) == small)
  }

  test("inferFromShapes: missing, misshapen and unexpected keys are one-line errors") {
    val cfg = ModelConfig.of(3, 128, 1000, 64)
    val missing = new java.util.LinkedHashMap(shapesOf(cfg))
    missing.remove("blocks.0.att.v1")
    assert(oneLineError(ModelConfig.inferFromShapes(missing, 64)).contains("blocks.0.att.v1"))
    val noEmb = new java.util.LinkedHashMap(shapesOf(cfg))
    noEmb.remove("emb.weight")
    assert(oneLineError(ModelConfig.inferFromShapes(noEmb, 64)).contains("emb.weight"))
    val bad = new java.util.LinkedHashMap(shapesOf(cfg))
    bad.put("blocks.2.att.w1", Array(128L, 96L))
    assert(oneLineError(ModelConfig.inferFromShapes(bad, 64)).contains("blocks.2.att.w1"))
    val extra = new java.util.LinkedHashMap(shapesOf(cfg))
    extra.put("blocks.1.att.time_faaaa", Array(2L, 64L))
    assert(oneLineError(ModelConfig.inferFromShapes(extra, 64)).contains("time_faaaa"))
    val flatRk = new java.util.LinkedHashMap(shapesOf(cfg))
    flatRk.put("blocks.0.att.r_k", Array(128L))
    assert(oneLineError(ModelConfig.inferFromShapes(flatRk, 64)).contains("r_k"))
    assert(shapesOf(cfg).asScala.keySet.contains("blocks.0.att.v2"))
  }
}
