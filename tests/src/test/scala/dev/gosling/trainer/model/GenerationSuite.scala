package dev.gosling.trainer.model

import dev.gosling.trainer.GoslingException
import dev.gosling.trainer.data.WorldTokenizer
import dev.gosling.trainer.model.ModelFixtures._
import org.scalatest.funsuite.AnyFunSuite

import java.nio.charset.StandardCharsets
import scala.collection.mutable.ArrayBuffer

/** TokenSampler (temperature, top-p, seeds), the streaming UTF-8 decoder and Generator. */
class GenerationSuite extends AnyFunSuite {

  private def counts(sampler: TokenSampler, logits: Array[Float], draws: Int): Array[Int] = {
    val c = new Array[Int](logits.length)
    (0 until draws).foreach(_ => c(sampler.sample(logits)) += 1)
    c
  }

  private def logitsOf(probs: Double*): Array[Float] = probs.map(p => math.log(p).toFloat).toArray

  test("temperature 0 is the argmax, lowest id on ties, whatever the seed") {
    val logits = Array(0.1f, 2f, -1f, 2f, 1.9f)
    for (seed <- 0L until 5L) assert(new TokenSampler(0, 0.85, seed).sample(logits) == 1)
  }

  test("temperature 1, top_p 1 draws each token with its softmax probability") {
    val c = counts(new TokenSampler(1, 1, 3), logitsOf(0.5, 0.3, 0.15, 0.05), 40000)
    val expected = Seq(0.5, 0.3, 0.15, 0.05)
    for (i <- expected.indices) assert(math.abs(c(i) / 40000.0 - expected(i)) < 0.01, c.toSeq)
  }

  test("top_p keeps the tokens down to the cutoff where the sorted cumulative sum first reaches top_p") {
    // sorted 0.5, 0.3, 0.15, 0.05: cumulative 0.5, 0.8 >= 0.7, so the cutoff is 0.3 and tokens 0 and 1 remain
    val c = counts(new TokenSampler(1, 0.7, 4), logitsOf(0.15, 0.5, 0.05, 0.3), 20000)
    assert(c(0) == 0 && c(2) == 0)
    assert(math.abs(c(1) / 20000.0 - 0.5 / 0.8) < 0.015, c.toSeq)
  }

  test("temperature T draws with probs^(1/T), renormalised") {
    // T = 0.5: 0.6² : 0.4² = 0.36 : 0.16
    val c = counts(new TokenSampler(0.5, 1, 5), logitsOf(0.6, 0.4), 20000)
    assert(math.abs(c(0) / 20000.0 - 0.36 / 0.52) < 0.015, c.toSeq)
  }

  test("the same seed gives the same draws, another seed other draws; only the first n ids are candidates") {
    val logits = Array.fill(1000)(0f)
    def draws(seed: Long) = { val s = new TokenSampler(1, 1, seed); (0 until 50).map(_ => s.sample(logits, 600)) }
    assert(draws(9) == draws(9))
    assert(draws(9) != draws(10))
    assert(draws(11).forall(_ < 600))
  }

  test("bad settings are one-line errors") {
    assert(intercept[GoslingException](new TokenSampler(-1, 0.5, 0)).getMessage.contains("--temperature"))
    assert(intercept[GoslingException](new TokenSampler(1, 0, 0)).getMessage.contains("--top_p"))
    assert(intercept[GoslingException](new TokenSampler(1, 1.5, 0)).getMessage.contains("--top_p"))
  }

  test("streamed UTF-8: a character split over writes comes out whole; stray bytes become U+FFFD") {
    val out = ArrayBuffer.empty[String]
    val s = new Utf8Stream(piece => out += piece)
    val bytes = "a€中".getBytes(StandardCharsets.UTF_8) // 1 + 3 + 3 bytes
    s.write(bytes.slice(0, 2)) // "a" and the first byte of €
    assert(out.mkString == "a")
    s.write(bytes.slice(2, 5)) // rest of € and the first byte of 中
    assert(out.mkString == "a€")
    s.write(bytes.slice(5, 7))
    s.write(Array(0xff.toByte))
    s.write(Array(0xe4.toByte)) // an unfinished sequence at the end
    s.finish()
    assert(out.mkString == "a€中\uFFFD\uFFFD")
  }

  private val tokenizer = WorldTokenizer.world()
  private val config = worldModel._1
  private val layout = new ParameterLayout(config)

  test("greedy generation is the argmax of the RNN's logits, streamed as the tokenizer decodes it") {
    val params = worldModel._2
    val rnn = new Rwkv7Rnn(layout, params)
    val prompt = tokenizer.encode("The quick brown fox")
    val pieces = ArrayBuffer.empty[String]
    val ids = new Generator(rnn, tokenizer).generate(prompt, 6, new TokenSampler(0, 0.85, 1), p => pieces += p)
    // the same by hand
    val check = new Rwkv7Rnn(layout, params)
    val state = check.newState()
    prompt.init.foreach(t => check.advance(t, state))
    var logits = check.logits(prompt.last, state)
    val expected = ArrayBuffer.empty[Int]
    while (expected.size < 6) {
      val candidates = logits.take(tokenizer.maxTokenId + 1)
      val best = candidates.indices.maxBy(i => (candidates(i), -i))
      if (best != 0) { expected += best; logits = check.logits(best, state) }
      else throw new AssertionError("EOD")
    }
    assert(ids.toSeq == expected)
    assert(pieces.mkString == tokenizer.decode(ids))
  }

  test("generation stops at EOD (token 0) and an empty prompt starts from EOD") {
    val params = worldModel._2.clone()
    // make token 0 win whatever the input: ln_out gives a constant vector, which head row 0 matches
    val C = config.nEmbd
    val w = layout.get("ln_out.weight"); java.util.Arrays.fill(params, w.offset.toInt, w.end.toInt, 0f)
    val b = layout.get("ln_out.bias"); java.util.Arrays.fill(params, b.offset.toInt, b.end.toInt, 1f)
    val head = layout.get("head.weight").offset.toInt
    java.util.Arrays.fill(params, head, head + C, 1f)
    val out = ArrayBuffer.empty[String]
    val ids = new Generator(new Rwkv7Rnn(layout, params), tokenizer).generate(Array.emptyIntArray, 10, new TokenSampler(1, 0.9, 2), out += _)
    assert(ids.isEmpty && out.mkString.isEmpty)
  }

  test("a prompt id outside a small model's vocab is a one-line error") {
    val small = ModelConfig.of(2, 64, 128, 16)
    val l = new ParameterLayout(small)
    val gen = new Generator(new Rwkv7Rnn(l, randomParams(l, 1)), tokenizer)
    val e = intercept[GoslingException](gen.generate(Array(5, 300), 3, new TokenSampler(0, 1, 0), _ => ()))
    assert(e.getMessage.startsWith("prompt token 1 has id 300, outside the model's vocab (0..127)"), e.getMessage)
  }
}
