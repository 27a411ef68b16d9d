package dev.gosling.jobs

import dev.gosling.testkit.Shared
import dev.gosling.trainer.train.{MetricsLog, TrainFixture, TrainState}
import org.scalatest.funsuite.AnyFunSuite

import java.io.{PrintWriter, StringWriter}
import java.nio.file.{Files, Path}
import scala.jdk.CollectionConverters._

/** `gosling init`, `train`, `eval` and `inspect` through Main, as the launcher runs them (in this JVM). */
class TrainCliSuite extends AnyFunSuite {

  private def run(args: String*): (Int, String, String) = {
    val out = new StringWriter()
    val err = new StringWriter()
    val code = Main.execute(new PrintWriter(out, true), new PrintWriter(err, true), args: _*)
    (code, out.toString, err.toString)
  }

  /** The flags of TrainFixture's small run, as command-line arguments. */
  private def args(proj: Path, extra: (String, String)*): Seq[String] =
    TrainFixture.flags(proj, 16, 8, extra: _*).toSeq.sortBy(_._1).flatMap { case (k, v) => Seq("--" + k, v) }

  private def userError(args: String*): String = {
    val (code, _, err) = run(args: _*)
    assert(code == 2, err)
    val lines = err.linesIterator.toSeq
    assert(lines.size == 1 && lines.head.startsWith("gosling: error: "), err)
    lines.head
  }

  test("train and init list every train_temp flag and Gosling's loop options in --help") {
    val (code, out, _) = run("train", "--help")
    assert(code == 0)
    for (flag <- Seq("--config", "--load_model", "--proj_dir", "--data_file", "--data_type", "--vocab_size", "--ctx_len", "--epoch_save",
      "--micro_bsz", "--n_layer", "--n_embd", "--lr_init", "--lr_final", "--warmup_steps", "--beta1", "--beta2", "--adam_eps",
      "--weight_decay", "--grad_clip", "--grad_cp", "--keep", "--magic_prime", "--my_exit_tokens", "--random_seed", "--train_stage",
      "--max_steps", "--model_impl", "--progress_bar"))
      assert(out.contains(flag + "="), flag)
    assert(out.contains("train_temp's --adam_eps (default: 1e-18)"))
    val flat = out.replaceAll("\\s+", " ") // picocli wraps long descriptions
    assert(flat.contains("Gosling: with grad_cp 0, 1..4 keep more of each layer's activations") && !flat.contains("train_temp's --keep"))
    assert(run("init", "--help")._2.contains("--n_embd"))
  }

  test("an unknown --model_impl fails at once with one line listing the implementations in this build") {
    val proj = TrainFixture.fresh("nomodel")
    val line = userError(("train" +: args(proj)) ++ Seq("--model_impl", "rwkv9"): _*)
    assert(line.startsWith("gosling: error: --model_impl rwkv9: no such model implementation in this build (model implementations in this build: "))
    assert(line.contains("rwkv7") && line.contains("test-bigram"))
    assert(!Files.exists(proj.resolve("train_log.txt")))
  }

  test("invalid combinations fail at start with one clear line") {
    val proj = TrainFixture.fresh("invalid")
    def bad(extra: (String, String)*): String = userError(("train" +: args(proj, extra: _*)) ++ Seq("--model_impl", "test-bigram"): _*)
    assert(bad("n_embd" -> "100").contains("--n_embd 100 is not a positive multiple of 64"))
    assert(bad("ctx_len" -> "100").contains("--ctx_len 100 is not a positive multiple of 16"))
    assert(bad("micro_bsz" -> "11").contains("does not divide 40320"))
    assert(bad("magic_prime" -> "4").contains("--magic_prime 4 is not a prime"))
    assert(bad("data_file" -> "/nonexistent/data").contains("/nonexistent/data.bin not found"))
    assert(bad("my_exit_tokens" -> "0").contains("--my_exit_tokens 0 must be positive"))
    assert(bad("lr_init" -> "fast").contains("--lr_init 'fast' is not a number"))
    assert(bad("magic_prime" -> "5").contains("does not fit the data"))
    assert(userError("train", "--n_layer").contains("Missing required parameter for option '--n_layer'"))
  }

  test("init from YAML files plus flags (flags win); a YAML key that does not exist is named with file:line") {
    val proj = TrainFixture.fresh("cli-init")
    val model = Shared.repo.resolve("conf/models/L2-D128.yaml")
    val (code, out, err) = run("init", "--config", model.toString, "--n_layer", "3", "--proj_dir", proj.toString, "--random_seed", "5")
    assert(code == 0, err)
    assert(out.linesIterator.toSeq.last == "Done. Now go for stage 2.")
    val (_, table, _) = run("inspect", proj.resolve("rwkv-init.pth").toString)
    assert(table.contains("blocks.2.ffn.value.weight") && !table.contains("blocks.3.") && table.contains("[65536, 128]"))
    assert(userError("init", "--train_stage", "3").contains("`gosling init` is train_stage 1"))
    val typo = Files.createTempFile("typo", ".yaml")
    Files.writeString(typo, "n_layer: 2\nn_emdb: 128\n")
    assert(userError("init", "--config", typo.toString) ==
      s"gosling: error: $typo:2: unknown key 'n_emdb' (did you mean 'n_embd'?); keys are train_temp's flag names without dashes")
  }

  test("train through the CLI with a named model: max_steps stops with rwkv-last + state, the next call resumes; eval and inspect") {
    val proj = TrainFixture.fresh("cli-train")
    assert(run(("init" +: args(proj, "train_stage" -> "1")): _*)._1 == 0)
    val common = args(proj, "warmup_steps" -> "-1", "my_exit_tokens" -> "5120") ++ Seq("--model_impl", "test-bigram", "--progress_bar", "0")
    val (code, out, err) = run((Seq("train", "--max_steps", "7") ++ common): _*)
    assert(code == 0, err)
    assert(out.linesIterator.toSeq.last.startsWith("Stopped after 7 steps of this process (next step 7), last loss "), out)
    val (code2, out2, err2) = run(("train" +: common): _*)
    assert(code2 == 0, err2)
    assert(out2.contains("continuing exactly from rwkv-last.state") && out2.linesIterator.toSeq.last.startsWith("Finished after 33 steps"))
    assert(MetricsLog.read(proj).asScala.map(_.step) == (0L until 40L))

    val (c3, inspected, e3) = run("inspect", proj.resolve("rwkv-final.pth").toString, proj.resolve("rwkv-final.state").toString,
      TrainFixture.demo._1.toString + ".idx")
    assert(c3 == 0, e3)
    assert(inspected.contains(proj.resolve("rwkv-final.pth") + "  (torch zip, ") && inspected.contains("model: RWKV-7 x070: n_layer 2, n_embd 64"), inspected)
    assert(inspected.contains("Gosling training state") && inspected.contains("position: miniepoch 0 step 40, schedule step 40"))
    assert(inspected.contains("dtype: 8 (uint16, 2 bytes per token)") && inspected.contains(s"tokens: ${TrainFixture.demo._2} "))
    assert(inspected.contains("magic_prime: ctx_len 512 -> "))
    assert(userError("inspect", proj.resolve("train_log.txt").toString).contains("unknown kind of file"))

    val (c4, evaluated, e4) = run("eval", "--load_model", proj.resolve("rwkv-final.pth").toString, "--data_file", TrainFixture.demo._1.toString,
      "--ctx_len", "16", "--micro_bsz", "64", "--max_windows", "200", "--model_impl", "test-bigram")
    assert(c4 == 0, e4)
    assert(evaluated.matches("(?s).*200 windows of 16 tokens \\(3200 tokens predicted\\): loss \\d+\\.\\d{6}, perplexity \\d+\\.\\d{4}\\s*"), evaluated)
    assert(TrainState.validate(proj.resolve("rwkv-final.state")).position().globalStep() == 40)
  }
}
