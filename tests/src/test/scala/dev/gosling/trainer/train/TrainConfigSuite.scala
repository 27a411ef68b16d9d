package dev.gosling.trainer.train

import dev.gosling.testkit.Shared
import dev.gosling.trainer.GoslingException
import dev.gosling.trainer.model.ModelConfig
import org.scalacheck.Gen
import org.scalatest.funsuite.AnyFunSuite
import org.scalatestplus.scalacheck.ScalaCheckPropertyChecks

import java.nio.file.{Files, Path}
import scala.jdk.CollectionConverters._

class TrainConfigSuite extends AnyFunSuite with ScalaCheckPropertyChecks {

  /** An empty binidx pair, enough for the existence check. */
  private lazy val dataPrefix: String = {
    val dir = Files.createTempDirectory("trainconfig")
    Files.write(dir.resolve("minipile.bin"), Array[Byte](0, 0))
    Files.write(dir.resolve("minipile.idx"), Array[Byte](0))
    dir.toFile.deleteOnExit()
    dir.resolve("minipile").toString
  }

  /** The MiniPile demo run of demo-training-run.sh. */
  private def demo: Map[String, String] = Map(
    "load_model" -> "0", "proj_dir" -> "out/L12-D768-x070", "data_file" -> dataPrefix, "data_type" -> "binidx",
    "vocab_size" -> "65536", "ctx_len" -> "512", "epoch_steps" -> "1000", "epoch_count" -> "999999", "epoch_begin" -> "0",
    "epoch_save" -> "10", "micro_bsz" -> "16", "n_layer" -> "12", "n_embd" -> "768", "lr_init" -> "6e-4", "lr_final" -> "6e-5",
    "warmup_steps" -> "10", "beta1" -> "0.9", "beta2" -> "0.99", "adam_eps" -> "1e-18", "weight_decay" -> "0.001",
    "grad_cp" -> "1", "train_stage" -> "3", "head_size" -> "64", "my_testing" -> "x070", "magic_prime" -> "2926181",
    "my_exit_tokens" -> "1498226207", "accelerator" -> "gpu", "devices" -> "1", "num_nodes" -> "1", "precision" -> "bf16",
    "strategy" -> "deepspeed_stage_2", "kernel" -> "@rwkv3")

  private def build(m: Map[String, String]): TrainConfig = TrainConfig.fromMap(m.asJava)

  private def error(m: Map[String, String]): String = {
    val e = intercept[GoslingException](build(m))
    assert(!e.getMessage.contains("\n"), e.getMessage)
    e.getMessage
  }

  test("defaults are train.py's (§5.1), with the derived values applied") {
    val c = TrainConfig.defaults()
    assert(c.loadModel == "" && c.projDir == "out" && c.randomSeed == -1L && c.dataFile == "")
    assert(c.ctxLen == 1024 && c.microBsz == 12 && c.nLayer == 6 && c.nEmbd == 512 && c.headSize == 64)
    assert(c.lrInit == 6e-4 && c.lrFinal == 1e-5 && c.warmupSteps == -1 && c.beta1 == 0.9 && c.beta2 == 0.99)
    assert(c.adamEps == 1e-18 && c.weightDecay == 0.0 && c.gradClip == 1.0 && c.gradCp == 0 && c.epochSave == 5)
    assert(c.dsBucketMb == 200 && c.headChunk == 0 && c.myTesting == "x070" && c.magicPrime == 0L && c.myExitTokens == 0L)
    assert(c.dimAtt == 512 && c.dimFfn == 2048)
    assert(c.epochSteps == 40320 / 12 && c.epochCount == 0L && c.realBsz == 12L)
    assert(TrainConfig.DEFAULTS.size == c.asFlags().size)
  }

  test("the MiniPile demo: epoch_steps 2520 and epoch_count 72 override the flags; model, schedule and sampler follow") {
    val c = build(demo)
    assert(c.realBsz == 16L && c.epochSteps == 2520 && c.epochCount == 72L)
    assert(c.modelConfig == ModelConfig.of(12, 768, 65536, 512))
    val lr = c.lrSchedule()
    for (r <- Shared.tsv("lr-vectors.tsv"))
      assert(Math.abs(lr.lr(r("global_step").toLong) - r("expected_lr").toDouble) <= 5e-9)
    assert(c.sampler(1498226207L).offset(0, 0, 1, 0) == 925941248L)
    assert(c.adamW(new dev.gosling.trainer.model.ParameterLayout(ModelConfig.of(2, 64, 64, 16))).stepCount == 0L)
  }

  test("explicit LoRA dims shape the model like a release; 0 keeps the formula per dim") {
    val c = build(demo ++ Map("d_decay_lora" -> "96", "d_aaa_lora" -> "96", "d_gate_lora" -> "256"))
    assert(c.modelConfig.lora == new ModelConfig.LoraDims(96, 96, 32, 256))
  }

  test("asFlags round-trips through fromMap") {
    val c = build(demo)
    assert(TrainConfig.fromMap(c.asFlags()) == c)
    val kept = build(demo ++ Map("grad_cp" -> "0", "keep" -> "2"))
    assert(TrainConfig.fromMap(kept.asFlags()) == kept && kept.asFlags().get("keep") == "2")
  }

  test("keep: 0 by default, 1 to 4 with grad_cp 0; outside 0..4 or with grad_cp 1 a one-line error naming both flags") {
    assert(TrainConfig.defaults().keep == 0 && build(demo).keep == 0)
    assert(TrainConfig.DEFAULTS.get("keep") == "0")
    for (k <- 1 to 4) {
      val c = build(demo ++ Map("grad_cp" -> "0", "keep" -> k.toString))
      assert(c.keep == k && c.gradCp == 0)
    }
    assert(build(demo ++ Map("grad_cp" -> "1", "keep" -> "0")).gradCp == 1)
    assert(error(demo ++ Map("grad_cp" -> "0", "keep" -> "5")).startsWith("--keep 5 must be 0 (recompute"))
    assert(error(demo ++ Map("grad_cp" -> "0", "keep" -> "-1")).startsWith("--keep -1 must be 0"))
    assert(error(demo ++ Map("grad_cp" -> "0", "keep" -> "yes")) == "--keep 'yes' is not an integer")
    val both = error(demo ++ Map("grad_cp" -> "1", "keep" -> "1"))
    assert(both.startsWith("--keep 1 with --grad_cp 1:") && both.contains("--keep 0 with --grad_cp 1"), both)
    assert(error(demo + ("kep" -> "1")).contains("did you mean 'keep'?"))
  }

  test("resumedFrom: epoch_begin after the checkpoint, a 10-step warmup when warmup_steps was negative") {
    val c = build(demo + ("warmup_steps" -> "-1"))
    val r = c.resumedFrom("out/rwkv-11.pth", 11)
    assert(r.epochBegin == 12 && r.warmupSteps == 10 && r.loadModel == "out/rwkv-11.pth")
    val fromInit = c.resumedFrom("out/rwkv-init.pth", -1)
    assert(fromInit.epochBegin == 0 && fromInit.warmupSteps == -1)
    assert(build(demo).resumedFrom("x", 3).warmupSteps == 10)
  }

  test("errors: n_embd, ctx_len, head_size, n_layer, dim_att, dim_ffn") {
    assert(error(demo + ("n_embd" -> "100")).startsWith("--n_embd 100 is not a positive multiple of 64"))
    assert(error(demo + ("ctx_len" -> "500")).startsWith("--ctx_len 500 is not a positive multiple of 16"))
    assert(error(demo + ("head_size" -> "32")).startsWith("--head_size 32"))
    assert(error(demo + ("n_layer" -> "1")).startsWith("--n_layer 1"))
    assert(error(demo + ("dim_att" -> "512")).startsWith("--dim_att 512"))
    assert(error(demo + ("dim_ffn" -> "2688")).startsWith("--dim_ffn 2688"))
    assert(error(demo + ("vocab_size" -> "0")).startsWith("--vocab_size 0"))
  }

  test("errors: a global batch that does not divide 40320") {
    val msg = error(demo + ("micro_bsz" -> "11"))
    assert(msg.contains("= 11 does not divide 40320") && msg.contains("--micro_bsz"))
    assert(error(demo + ("micro_bsz" -> "16", "devices" -> "8", "num_nodes" -> "11")).contains("1408 does not divide 40320"))
    assert(error(demo + ("micro_bsz" -> "0")).startsWith("--micro_bsz 0"))
  }

  test("property: every global batch that divides 40320 gives epoch_steps * real_bsz = 40320; others fail") {
    forAll(Gen.choose(1, 64), Gen.oneOf(1, 2, 4, 8), Gen.oneOf(1, 2, 3), minSuccessful(100)) { (micro, devices, nodes) =>
      val m = demo ++ Map("micro_bsz" -> micro.toString, "devices" -> devices.toString, "num_nodes" -> nodes.toString)
      val real = micro * devices * nodes
      if (40320 % real == 0) {
        val c = build(m)
        assert(c.epochSteps.toLong * c.realBsz == 40320L)
      } else assert(error(m).contains("does not divide 40320"))
    }
  }

  test("errors: magic_prime that is not a prime, or not 2 mod 3; my_exit_tokens; all only when training") {
    assert(error(demo + ("magic_prime" -> "2926183")).startsWith("--magic_prime 2926183 is not a prime"))
    assert(error(demo + ("magic_prime" -> "0")).startsWith("--magic_prime 0 is not a prime"))
    assert(error(demo + ("magic_prime" -> "2926201")).contains("(mod 3)")) // 2926201 is prime, = 1 (mod 3)
    assert(error(demo + ("my_exit_tokens" -> "0")).startsWith("--my_exit_tokens 0"))
    val prepare = build(demo ++ Map("train_stage" -> "1", "magic_prime" -> "0", "my_exit_tokens" -> "0", "data_file" -> ""))
    assert(prepare.preparesInitOnly)
  }

  test("errors: a missing data file names --data_file; the sampler checks magic_prime against the data size") {
    val missing = error(demo + ("data_file" -> "/nonexistent/minipile"))
    assert(missing.startsWith("--data_file /nonexistent/minipile") && missing.contains("minipile.bin not found"))
    val idxGone = Files.createTempDirectory("noidx")
    Files.write(idxGone.resolve("d.bin"), Array[Byte](0, 0))
    assert(error(demo + ("data_file" -> idxGone.resolve("d").toString)).contains("d.idx not found"))
    assert(error(demo + ("data_file" -> "")).startsWith("--data_file is empty"))
    val tooSmall = intercept[GoslingException](build(demo).sampler(1000000L))
    assert(tooSmall.getMessage.contains("does not fit the data"))
  }

  test("errors: unknown keys by name (with a suggestion), malformed values, unsupported choices") {
    assert(error(demo + ("ctx_lne" -> "512")) == "unknown training option 'ctx_lne' (did you mean 'ctx_len'?); the options are train_temp's flag names")
    assert(error(demo + ("frobnicate" -> "1")).startsWith("unknown training option 'frobnicate';"))
    assert(error(demo + ("ctx_len" -> "512.0")) == "--ctx_len '512.0' is not an integer")
    assert(error(demo + ("lr_init" -> "fast")) == "--lr_init 'fast' is not a number")
    assert(error(demo + ("magic_prime" -> "99999999999999999999")).contains("out of range"))
    assert(error(demo + ("data_type" -> "utf-8")).startsWith("--data_type utf-8"))
    assert(error(demo + ("precision" -> "fp16")).startsWith("--precision fp16"))
    assert(error(demo + ("my_testing" -> "x060")).startsWith("--my_testing x060"))
    assert(error(demo + ("epoch_save" -> "0")).startsWith("--epoch_save 0"))
    assert(error(demo + ("grad_cp" -> "2")).startsWith("--grad_cp 2"))
    assert(error(demo + ("beta2" -> "1")).startsWith("--beta2 1.0"))
    assert(error(demo + ("adam_eps" -> "0")).startsWith("--adam_eps 0.0"))
    assert(error(demo + ("random_seed" -> "-2")).startsWith("--random_seed -2"))
    assert(build(demo + ("lr_init" -> " 8e-4 ")).lrInit == 8e-4)
  }
}
