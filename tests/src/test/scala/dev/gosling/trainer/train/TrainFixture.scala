package dev.gosling.trainer.train

import com.fasterxml.jackson.databind.ObjectMapper
import dev.gosling.testkit.Shared
import dev.gosling.trainer.data.{BinIdxWriter, MagicPrime, WorldTokenizer}

import java.io.{ByteArrayOutputStream, PrintStream, PrintWriter, StringWriter}
import java.nio.charset.StandardCharsets.UTF_8
import java.nio.file.{Files, Path}
import scala.jdk.CollectionConverters._

/**
 * Tiny training data and runs for the loop's tests: demo.jsonl tokenized with the world tokenizer (EOD 0 after each
 * document), its token ids renumbered by frequency into a small vocabulary (the most frequent V−1 world tokens keep
 * their own id, the rest share id V−1) so that the test model is cheap, written with BinIdxWriter.
 */
object TrainFixture {
  val Vocab = 256

  /** The demo corpus as one binidx: (prefix, token count). Built once per JVM. */
  lazy val demo: (Path, Long) = {
    val json = new ObjectMapper()
    val tok = WorldTokenizer.world()
    val docs = Files.readAllLines(Shared.path("fixtures/demo.jsonl"), UTF_8).asScala.map(_.strip).filter(_.nonEmpty)
      .map(line => tok.encode(json.readTree(line).get("text").asText()) :+ WorldTokenizer.EOD)
    val freq = docs.flatten.groupBy(identity).view.mapValues(_.size).toSeq.sortBy { case (id, n) => (-n, id) }
    val dense = new java.util.HashMap[Int, Int]()
    dense.put(WorldTokenizer.EOD, 0)
    freq.iterator.map(_._1).filter(_ != WorldTokenizer.EOD).take(Vocab - 2).zipWithIndex.foreach { case (id, i) => dense.put(id, i + 1) }
    val dir = Files.createTempDirectory("gosling-train-data")
    val prefix = dir.resolve("demo")
    val out = new BinIdxWriter(prefix)
    try {
      docs.foreach(d => out.addDocument(d.map(t => dense.getOrDefault(t, Vocab - 1)).toArray))
      out.commit()
    } finally out.close()
    (prefix, out.tokenCount())
  }

  /** The flags of a small run on [[demo]]: L2-D64, vocab 256, with a fresh proj_dir. */
  def flags(proj: Path, ctx: Int, microBsz: Int, extra: (String, String)*): Map[String, String] = {
    val (prefix, tokens) = demo
    Map(
      "proj_dir" -> proj.toString, "data_file" -> prefix.toString, "vocab_size" -> Vocab.toString, "n_layer" -> "2", "n_embd" -> "64",
      "ctx_len" -> ctx.toString, "micro_bsz" -> microBsz.toString, "magic_prime" -> MagicPrime.magicPrime(tokens, ctx).toString,
      "my_exit_tokens" -> tokens.toString, "lr_init" -> "1e-2", "lr_final" -> "1e-3", "warmup_steps" -> "5", "accelerator" -> "cpu",
      "weight_decay" -> "0.001", "random_seed" -> "7", "train_stage" -> "3") ++ extra
  }

  def config(m: Map[String, String]): TrainConfig = TrainConfig.fromMap(m.asJava)

  /** Runs the trainer with the bigram model; returns the result and what it printed. */
  def train(m: Map[String, String], maxSteps: Long = 0, stop: StopFlag = new StopFlag): (Trainer.Result, String) = {
    val text = new StringWriter()
    val err = new ByteArrayOutputStream()
    val out = new PrintWriter(text)
    val result = new Trainer(config(m), new LoopOptions(maxSteps, "", false),
      new BigramModelFactory, out, new PrintStream(err, true, UTF_8)).run(stop)
    out.flush()
    (result, text.toString)
  }

  /** `gosling init` for the same flags. */
  def init(m: Map[String, String]): String = {
    val text = new StringWriter()
    Trainer.init(config(m + ("train_stage" -> "1")), new PrintWriter(text, true))
    text.toString
  }

  def fresh(name: String): Path = Files.createTempDirectory("gosling-" + name)
}
