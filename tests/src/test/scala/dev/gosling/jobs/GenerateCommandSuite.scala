package dev.gosling.jobs

import dev.gosling.trainer.checkpoint.{DType, NamedTensor, StateDict, TorchCheckpoint}
import dev.gosling.trainer.data.WorldTokenizer
import dev.gosling.trainer.model._
import org.scalatest.BeforeAndAfterAll
import org.scalatest.funsuite.AnyFunSuite

import java.io.{ByteArrayOutputStream, PrintStream}
import java.nio.charset.StandardCharsets
import java.nio.file.{Files, Path}
import scala.jdk.CollectionConverters._

/** `gosling generate` end to end on a small random model saved as a bf16 .pth. */
class GenerateCommandSuite extends AnyFunSuite with BeforeAndAfterAll {

  private val dir = Files.createTempDirectory("gosling-generate")
  private val (config, params) = ModelFixtures.worldModel
  private val pth = dir.resolve("tiny.pth")
  TorchCheckpoint.write(pth, new ModelWeights(config, params).toStateDict(DType.BF16))

  override def afterAll(): Unit = Files.walk(dir).iterator.asScala.toSeq.reverse.foreach(Files.delete)

  /** Exit code, stdout, stderr of `gosling args…`. */
  private def gosling(args: String*): (Int, String, String) = {
    val out = new ByteArrayOutputStream()
    val err = new ByteArrayOutputStream()
    val (oldOut, oldErr) = (System.out, System.err)
    System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8))
    System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8))
    try {
      val code = Main.execute(args: _*)
      (code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8))
    } finally { System.setOut(oldOut); System.setErr(oldErr) }
  }

  private def generate(extra: String*): String = {
    val (code, out, err) = gosling(Seq("generate", "--load_model", pth.toString, "--prompt", "Once upon a time") ++ extra: _*)
    assert(code == 0, err)
    out
  }

  test("temperature 0 prints the prompt and then the argmax continuation of the bf16 weights") {
    val out = generate("--temperature", "0", "--max_tokens", "5")
    val tokenizer = WorldTokenizer.world()
    val weights = ModelWeights.read(pth, 16)
    val rnn = new Rwkv7Rnn(new ParameterLayout(weights.config), weights.params)
    val expected = new StringBuilder
    new Generator(rnn, tokenizer).generate(tokenizer.encode("Once upon a time"), 5, new TokenSampler(0, 1, 0), s => expected ++= s)
    assert(out == "Once upon a time" + expected + System.lineSeparator())
    assert(expected.nonEmpty)
  }

  test("sampling is deterministic for a seed and differs across seeds") {
    val a = generate("--seed", "7", "--max_tokens", "8", "--top_p", "1")
    val b = generate("--seed", "7", "--max_tokens", "8", "--top_p", "1")
    val c = generate("--seed", "8", "--max_tokens", "8", "--top_p", "1")
    assert(a == b)
    assert(a != c)
  }

  test("a ZeRO-3 '_forward_module.' prefix is stripped; the weights are the bf16-rounded values") {
    val sd = new ModelWeights(config, params).toStateDict(DType.BF16)
    val prefixed = StateDict.of(sd.tensors.asScala.map(t => t.withName("_forward_module." + t.name)).asJava)
    val file = dir.resolve("zero.pth")
    TorchCheckpoint.write(file, prefixed)
    val loaded = ModelWeights.read(file, 16)
    assert(loaded.config == config)
    assert(loaded.params.sameElements(params.map(Bf16.round)))
  }

  test("a missing file, a wrong model shape and bad flags are one-line errors with exit code 2") {
    val (c1, _, e1) = gosling("generate", "--load_model", dir.resolve("nope.pth").toString)
    assert(c1 == 2 && e1.trim == s"gosling: error: --load_model ${dir.resolve("nope.pth")}: no such file", e1)

    val sd = new ModelWeights(config, params).toStateDict(DType.F32)
    val broken = StateDict.of(sd.tensors.asScala.map { t =>
      if (t.name == "blocks.1.att.k_k") NamedTensor.fromFloats(t.name, DType.F32, Array(1L, 1L, 32L), new Array[Float](32)) else t
    }.asJava)
    val file = dir.resolve("broken.pth")
    TorchCheckpoint.write(file, broken)
    val (c2, _, e2) = gosling("generate", "--load_model", file.toString)
    assert(c2 == 2 && e2.contains("'blocks.1.att.k_k' has shape [1, 1, 32], expected [1, 1, 64]") && e2.trim.linesIterator.size == 1, e2)

    val (c3, _, e3) = gosling("generate", "--load_model", pth.toString, "--top_p", "0")
    assert(c3 == 2 && e3.contains("--top_p 0.0 must be in (0, 1]"), e3)
  }
}
