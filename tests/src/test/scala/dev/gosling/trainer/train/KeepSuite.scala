package dev.gosling.trainer.train

import dev.gosling.trainer.GoslingException
import dev.gosling.trainer.backend.{DType, Tensor}
import dev.gosling.trainer.backend.cpu.CpuBackend
import dev.gosling.trainer.model.ModelFixtures._
import dev.gosling.trainer.model.{ModelConfig, ParameterLayout, Rwkv7Model}
import dev.gosling.trainer.train.DistTrainFixture._
import org.scalatest.BeforeAndAfterAll
import org.scalatest.funsuite.AnyFunSuite

import java.io.{ByteArrayOutputStream, PrintStream}
import java.nio.charset.StandardCharsets
import java.nio.file.Files
import scala.jdk.CollectionConverters._
import scala.util.Random

/**
 * --keep 1 … 4: more of each layer's activations kept instead of recomputed in the backward pass. The model with it
 * gives the loss and gradients of the model without it to the bit (F32 and F64, batches of 1 and 2, whole gradients
 * and block gradient slots), grows its activations by what it keeps, and is refused with --grad_cp 1; the benchmark
 * and the training loop pass it through.
 */
class KeepSuite extends AnyFunSuite with BeforeAndAfterAll {

  private val cpu = new CpuBackend(2)
  override def afterAll(): Unit = cpu.close()

  // L3 (so that "every layer but one" is not "one"), C128 (two heads), V128, T16, up to two samples
  private val config = ModelConfig.of(3, 128, 128, 16)
  private val layout = new ParameterLayout(config)
  private val MaxB = 2
  private val T = config.ctxLen
  private val N = MaxB * T
  private val C = config.nEmbd
  private val F = config.dimFfn
  private val L = config.nLayer
  private val rng = new Random(17)
  private val inputs = tokens(rng, MaxB * T, config.vocabSize)
  private val targets = tokens(rng, MaxB * T, config.vocabSize)
  private val params = Seq(randomParams(layout, seed = 23), randomParams(layout, seed = 29))

  /** Loss and gradients of one step on the first `b` samples, as doubles (exact for F32 too). */
  private def step(model: Rwkv7Model, dtype: DType, p: Array[Float], b: Int): (Double, Array[Double]) = {
    val in = inputs.take(b * T)
    val tg = targets.take(b * T)
    if (dtype == DType.F64) {
      model.setParameters(p.map(_.toDouble))
      val g = new Array[Double](p.length)
      (model.forwardBackward(in, tg, b, g), g)
    } else {
      model.setParameters(p)
      val g = layout.newBuffer()
      (model.forwardBackward(in, tg, b, g), g.map(_.toDouble))
    }
  }

  for (dtype <- Seq(DType.F32, DType.F64); keep <- 1 to Rwkv7Model.MAX_KEEP) {
    test(s"$dtype: keep $keep gives the loss and gradients of keep 0 bit for bit, batches of 2 and 1, step after step") {
      val plain = new Rwkv7Model(config, cpu, dtype, MaxB, false, false, 0)
      val kept = new Rwkv7Model(config, cpu, dtype, MaxB, false, false, keep)
      try {
        assert(plain.keep == 0 && kept.keep == keep)
        // new weights between steps, and the batch size back and forth: nothing kept from an earlier step is read
        for ((p, b) <- Seq((params(0), 2), (params(1), 1), (params(1), 2), (params(0), 1))) {
          val (l0, g0) = step(plain, dtype, p, b)
          val (l1, g1) = step(kept, dtype, p, b)
          assert(l1 == l0, s"batch $b")
          assert(g1.sameElements(g0), s"batch $b: ${g1.indices.count(i => g1(i) != g0(i))} gradients differ")
          assert(g0.exists(_ != 0))
        }
        // On the CPU every tensor is in the compute dtype. Level 1: each layer but one keeps an [N, 4C] relu² output
        // (the shared one, which the key output is squared in, is gone); 2: a gate product per layer and v mixed per
        // layer but the first; 3: κ̃, a, b and the channel mix's mix per layer (LN2's output is never kept); 4: the six
        // time-mix mixes per layer, and the six shared [N, C] slots go.
        val NC = N.toLong * C
        val expected = (L - 1).toLong * N * F + (if (keep >= 2) (2 * L - 1) * NC else 0L) +
          (if (keep >= 3) 4 * L * NC else 0L) + (if (keep >= 4) (6 * L - 6) * NC else 0L)
        assert(kept.activationElements - plain.activationElements == expected)
        assert(kept.keptBytes == expected * dtype.bytes && plain.keptBytes == 0)
        info(s"activations: ${plain.activationElements} elements with keep 0, ${kept.activationElements} with keep $keep")
      } finally { plain.close(); kept.close() }
    }
  }

  test("block gradient slots (ZeRO-2) with keep 1 … 4: the buckets a sink gets are keep 0's whole gradients bit for bit") {
    val cfg = ModelConfig.of(4, 128, 128, 16)
    val lay = new ParameterLayout(cfg)
    val p = randomParams(lay, seed = 31)
    val whole = new Rwkv7Model(cfg, cpu, DType.F32, MaxB, false, false, 0)
    try {
      whole.setParameters(p)
      for (b <- Seq(2, 1)) {
        val expected = lay.newBuffer()
        val loss = whole.forwardBackward(inputs.take(b * T), targets.take(b * T), b, expected)
        for (keep <- 1 to Rwkv7Model.MAX_KEEP) {
          val slots = new Rwkv7Model(cfg, cpu, DType.F32, MaxB, false, true, keep)
          try {
            assert(slots.blockGradientSlots)
            slots.setParameters(p)
            val got = Array.fill(lay.totalElements.toInt)(Float.NaN)
            val l = slots.forwardBackward(inputs.take(b * T), targets.take(b * T), b, (bucket: ParameterLayout.Bucket, grads: Tensor) => {
              val host = new Array[Float](bucket.length.toInt)
              cpu.download(grads, host)
              System.arraycopy(host, 0, got, bucket.start.toInt, host.length)
            })
            assert(l == loss, s"keep $keep, batch $b")
            assert(got.sameElements(expected), s"keep $keep, batch $b")
          } finally slots.close()
        }
      }
    } finally whole.close()
  }

  test("keep with grad_cp, or outside 0..4, is a one-line error naming the flags") {
    val both = intercept[GoslingException](new Rwkv7Model(config, cpu, DType.F32, MaxB, true, false, 1))
    assert(both.getMessage.startsWith("--keep 1 with --grad_cp 1") && !both.getMessage.contains("\n"), both.getMessage)
    val high = intercept[GoslingException](new Rwkv7Model(config, cpu, DType.F32, MaxB, false, false, 5))
    assert(high.getMessage.startsWith("--keep 5 must be 0") && !high.getMessage.contains("\n"), high.getMessage)
    assertThrows[GoslingException](new Rwkv7Model(config, cpu, DType.F32, MaxB, false, false, -1))
    // grad_cp without keep is still the plain checkpointing model
    val cp = new Rwkv7Model(config, cpu, DType.F32, MaxB, true, false, 0)
    try assert(cp.gradCheckpoint && cp.keep == 0) finally cp.close()
  }

  test("the training benchmark takes --keep and prints it in its header; with grad_cp it is refused") {
    val bytes = new ByteArrayOutputStream()
    val out = new PrintStream(bytes, true, StandardCharsets.UTF_8)
    val cases = Seq("L2-D64:16:2").map(TrainBenchmark.parse).asJava
    val rows = TrainBenchmark.run(out, cases, "cpu", "fp32", false, 2, 1, false).asScala
    val text = bytes.toString(StandardCharsets.UTF_8)
    assert(text.linesIterator.next().startsWith("training throughput: --accelerator cpu --precision fp32 --grad_cp 0 --keep 2,"), text)
    assert(rows.forall(r => r.failure == null && r.tokensPerSecond > 0), text)
    val e = intercept[GoslingException](TrainBenchmark.run(out, cases, "cpu", "fp32", true, 1, 1, false))
    assert(e.getMessage.startsWith("--keep 1 with --grad_cp 1"))
  }

  test("gosling train --keep 1 … 4 (zero2 on two ranks): the losses and weights of --keep 0 bit for bit") {
    val steps = 4
    def run(keep: Int): (Seq[Double], Array[Float], String) = {
      val proj = Files.createTempDirectory(s"gosling-keep-$keep")
      val (_, out) = inProcess(flags(proj, 2, 2, steps, "strategy" -> "zero2", "keep" -> keep.toString))
      (losses(proj), master(proj.resolve("rwkv-final.state")), out)
    }
    val (l0, m0, out0) = run(0)
    assert(!out0.contains("with keep"))
    for (keep <- 1 to Rwkv7Model.MAX_KEEP) {
      val (l, m, out) = run(keep)
      assert(out.contains(s"with keep $keep"), out)
      assert(l == l0 && l.size == steps)
      assert(m.sameElements(m0))
    }
  }

  test("an out-of-memory error after the model is built names --keep when it is on, in one line") {
    val oom = new GoslingException("GPU out of memory allocating a F32[1530814464] tensor (5839.6 MiB) on H100: 73.83 GiB in use of 79.18 GiB;"
      + " lower micro_bsz or ctx_len, or train with --grad_cp 1")
    val one = Trainer.keepAdvice(oom, 1, 6174015488L).getMessage
    assert(one.startsWith(oom.getMessage + "; --keep 1 keeps 5.8 GiB of activations: turn off --keep first"), one)
    assert(!one.contains("\n"))
    assert(Trainer.keepAdvice(oom, 2, 1L << 33).getMessage.endsWith("--keep 2 keeps 8.0 GiB of activations: lower or turn off --keep first"))
    assert(Trainer.keepAdvice(oom, 0, 0) eq oom)
    val other = new GoslingException("the loss is NaN at benchmark step 3")
    assert(Trainer.keepAdvice(other, 1, 1) eq other)
    val named = new GoslingException("RWKV-7 … with keep 1 does not fit: …; turn off --keep (it keeps 5.8 GiB) (GPU out of memory …)")
    assert(Trainer.keepAdvice(named, 1, 1) eq named)
  }

  test("a model implementation that cannot keep activations refuses a nonzero --keep in one line") {
    val proj = Files.createTempDirectory("gosling-keep-bigram")
    val e = intercept[GoslingException](TrainFixture.train(TrainFixture.flags(proj, 16, 8, "keep" -> "1", "train_stage" -> "0")))
    assert(e.getMessage.startsWith("--keep 1: model implementation test-bigram does not keep activations per layer"), e.getMessage)
  }
}
