package dev.gosling.trainer.train

import dev.gosling.trainer.GoslingException
import dev.gosling.trainer.checkpoint.{DType, TorchCheckpoint}
import dev.gosling.trainer.model.{Initializer, ModelConfig, ParameterLayout, TrainableModel}
import dev.gosling.trainer.train.TrainFixture._
import org.scalatest.funsuite.AnyFunSuite

import java.nio.charset.StandardCharsets.UTF_8
import java.nio.file.{Files, Path}
import javax.imageio.ImageIO
import scala.jdk.CollectionConverters._

class TrainerSuite extends AnyFunSuite {

  private def rows(proj: Path): Seq[MetricsLog.Row] = MetricsLog.read(proj).asScala.toSeq

  /** What must be identical between runs: everything but the timings. */
  private def trace(proj: Path): Seq[(Long, Long, Double, Double, Long, Double)] =
    rows(proj).map(r => (r.step, r.epoch, r.loss, r.lr, r.tokens, r.gradNorm))

  private def master(file: Path): Array[Float] = TrainState.read(file).master()

  private def logLines(proj: Path): Seq[String] = Files.readAllLines(proj.resolve(TrainLog.FILE), UTF_8).asScala.toSeq

  /** A run of 40 steps of 8×16 tokens on the demo data (a miniepoch is 5040 steps here, so it ends by my_exit_tokens). */
  private def short(proj: Path, extra: (String, String)*): Map[String, String] =
    flags(proj, 16, 8, (Seq("my_exit_tokens" -> (40 * 8 * 16).toString) ++ extra): _*)

  test("the loss falls from ln(vocab) on the demo data; console output follows train.py") {
    val proj = fresh("falls")
    val m = short(proj, "my_exit_tokens" -> (120 * 8 * 16).toString, "train_stage" -> "0")
    val (result, out) = train(m)
    assert(result.outcome == Trainer.Outcome.FINISHED && result.steps == 120 && result.realStep == 120)
    val losses = rows(proj).map(_.loss)
    assert(losses.size == 120)
    assert(math.abs(losses.head - math.log(Vocab)) < 0.01, losses.head)
    assert(losses.takeRight(10).sum / 10 < losses.head - 1.5, losses.takeRight(10))
    assert(out.contains("Init model weight (slow for large models)... [seed 7]"))
    assert(out.contains("# RWKV-7 BF16 on 1x1 CPU, bsz 1x1x8=8, deepspeed_stage_2 "))
    assert(out.contains("# Each \"epoch\" = 5040 steps, 40320 samples, 645120 tokens"))
    assert(out.contains("# Adam = lr 0.01 to 0.001, warmup 5 steps, beta (0.9, 0.99), eps 1e-18"))
    assert(out.contains("########## Loading " + proj.resolve("rwkv-init.pth") + "... ##########"))
    assert(out.linesIterator.contains("256   64                emb.weight"))
    assert(out.contains("2x ['blocks.0.att.w0', 'blocks.1.att.w0'] "))
    assert(out.contains("Reached my_exit_tokens 15360 at step 120: saved " + proj.resolve("rwkv-final.pth")))
    // train.py without --load_model writes rwkv-init.pth and trains from it.
    assert(Files.exists(proj.resolve("rwkv-init.pth")) && Files.exists(proj.resolve("rwkv-final.pth")))
  }

  test("a run stopped by max_steps and resumed twice equals the uninterrupted run bit for bit") {
    val a = fresh("whole")
    init(short(a))
    val (whole, _) = train(short(a))
    assert(whole.outcome == Trainer.Outcome.FINISHED && whole.steps == 40)

    val b = fresh("sliced")
    init(short(b))
    val (first, out1) = train(short(b), maxSteps = 13)
    assert(first.outcome == Trainer.Outcome.STOPPED && first.steps == 13 && first.realStep == 13)
    assert(out1.contains("Stopped (max_steps 13) before step 13 (miniepoch 0 step 13)"))
    assert(Files.exists(b.resolve("rwkv-last.pth")) && Files.exists(b.resolve("rwkv-last.state")))
    val (second, out2) = train(short(b), maxSteps = 16)
    assert(second.outcome == Trainer.Outcome.STOPPED && second.realStep == 29)
    assert(out2.contains("continuing exactly from rwkv-last.state"), out2)
    val (third, _) = train(short(b))
    assert(third.outcome == Trainer.Outcome.FINISHED && third.steps == 11 && third.realStep == 40)

    assert(trace(b) == trace(a))
    assert(master(b.resolve("rwkv-final.state")).sameElements(master(a.resolve("rwkv-final.state"))))
    assert(Files.readAllBytes(b.resolve("rwkv-final.pth")).sameElements(Files.readAllBytes(a.resolve("rwkv-final.pth"))))
    val sa = TrainState.read(a.resolve("rwkv-final.state"))
    val sb = TrainState.read(b.resolve("rwkv-final.state"))
    assert(sb.state() == sa.state())
    assert(sb.firstMoment().sameElements(sa.firstMoment()) && sb.secondMoment().sameElements(sa.secondMoment()))
    assert(sa.state().position().adamStep() == 40 && sa.state().position().globalStep() == 40)
    assert(logLines(b).count(_.startsWith("NEW RUN ")) == 3)
  }

  /** The bigram model that raises the stop flag (as the SIGTERM handler does) while step `at` is computing. */
  private final class SignalDuring(at: Int, flag: StopFlag) extends ModelFactory {
    override def name(): String = "test-bigram"
    override def isDefaultFor(accelerator: String): Boolean = false
    override def create(shape: ModelConfig, accelerator: String, maxBatchSize: Int, gradCheckpoint: Boolean): TrainableModel = new TrainableModel {
      private val inner = new BigramModel(shape)
      private var calls = 0
      override def config(): ModelConfig = inner.config()
      override def layout(): ParameterLayout = inner.layout()
      override def setParameters(master: Array[Float]): Unit = inner.setParameters(master)
      override def forwardBackward(inputs: Array[Int], targets: Array[Int], batchSize: Int, grads: Array[Float]): Double = {
        if (calls == at) flag.request("SIGTERM")
        calls += 1
        inner.forwardBackward(inputs, targets, batchSize, grads)
      }
      override def loss(inputs: Array[Int], targets: Array[Int], batchSize: Int): Double = inner.loss(inputs, targets, batchSize)
      override def close(): Unit = inner.close()
    }
  }

  test("a stop request during a step (the signal path) finishes that step, saves rwkv-last, and the resumed run is exact") {
    val a = fresh("whole2")
    init(short(a))
    train(short(a))
    val b = fresh("signal")
    init(short(b))
    val flag = new StopFlag
    val text = new java.io.StringWriter()
    val result = new Trainer(config(short(b)), new LoopOptions(0, "", false), new SignalDuring(21, flag), new java.io.PrintWriter(text),
      System.err).run(flag)
    assert(result.outcome == Trainer.Outcome.STOPPED && result.steps == 22 && flag.reason == "SIGTERM")
    assert(text.toString.contains("Stopped (SIGTERM) before step 22"))
    assert(TrainState.read(b.resolve("rwkv-last.state")).state().position().stepInEpoch() == 22)
    train(short(b))
    assert(trace(b) == trace(a))
    assert(master(b.resolve("rwkv-final.state")).sameElements(master(a.resolve("rwkv-final.state"))))
  }

  test("rwkv-N.pth every epoch_save miniepochs, rwkv-final.pth at my_exit_tokens, one train_log line per miniepoch, the plot") {
    val proj = fresh("epochs")
    // real_bsz 4032: a miniepoch is 10 steps of 4032×16 tokens; the run ends before step 35.
    val m = flags(proj, 16, 4032, "epoch_save" -> "2", "my_exit_tokens" -> (35L * 4032 * 16).toString)
    init(m)
    val (result, _) = train(m)
    assert(result.outcome == Trainer.Outcome.FINISHED && result.steps == 35)
    val names = Files.list(proj).iterator.asScala.map(_.getFileName.toString).toSet
    assert(names == Set("rwkv-init.pth", "rwkv-0.pth", "rwkv-0.state", "rwkv-2.pth", "rwkv-2.state", "rwkv-final.pth", "rwkv-final.state",
      TrainLog.FILE, MetricsLog.FILE, LossPlot.FILE), names)
    assert(TrainState.read(proj.resolve("rwkv-0.state")).state().position() ==
      new TrainState.Position(1, 0, 10, 0, 5, 10, 0.0, 0))
    assert(TrainState.read(proj.resolve("rwkv-final.state")).state().position().epoch() == 3)
    assert(TrainState.read(proj.resolve("rwkv-final.state")).state().position().stepInEpoch() == 5)

    val all = rows(proj)
    assert(all.map(_.step) == (0L until 35L) && all.map(_.epoch) == (0L until 35L).map(_ / 10))
    assert(all.last.tokens == 35L * 4032 * 16 && all.forall(r => r.gradNorm > 0 && r.stepSeconds > 0 && r.tokensPerSecond > 0))
    val log = logLines(proj)
    assert(log.head.startsWith("NEW RUN ") && log(1).startsWith("{'load_model': '") && log(1).contains("'betas': (0.9, 0.99)"))
    assert(log(2).startsWith("{'train_micro_batch_size_per_gpu': 4032, 'gradient_clipping': 1.0"))
    val epochLines = log.drop(3)
    assert(epochLines.size == 3)
    val pattern = """(\d+) (\d+\.\d{6}) (\d+\.\d{4}) (\d+\.\d{8}) \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})? (\d+)""".r
    for ((line, e) <- epochLines.zipWithIndex) {
      line match {
        case pattern(epoch, loss, ppl, lr, _, current) =>
          val mine = all.filter(_.epoch == e)
          val mean = mine.map(_.loss).sum / mine.size
          assert(epoch.toInt == e && current.toInt == e)
          assert(loss == PyFormat.fixed(mean, 6) && ppl == PyFormat.fixed(math.exp(mean), 4) && lr == PyFormat.fixed(mine.last.lr, 8), line)
        case other => fail(s"train_log line not in train_temp's format: $other")
      }
    }
    val png = ImageIO.read(proj.resolve(LossPlot.FILE).toFile)
    assert(png.getWidth == 1000 && png.getHeight == 600)
  }

  test("rwkv-final.pth is also saved after one pass over the data (real_step == magic_prime // real_bsz - 1)") {
    val proj = fresh("onepass")
    val m = flags(proj, 16, 336)
    val p = m("magic_prime").toLong
    val onePass = p / 336 - 1 // Lightning's global_step already counts the step at on_train_batch_end
    init(m)
    train(m, maxSteps = onePass - 1)
    assert(!Files.exists(proj.resolve("rwkv-final.pth")))
    train(m, maxSteps = 1)
    val finalState = TrainState.read(proj.resolve("rwkv-final.state"))
    assert(finalState.state().position().stepInEpoch() == onePass)
    assert(finalState.state().checkpoint() == "rwkv-final.pth")
    assert(TorchCheckpoint.read(proj.resolve("rwkv-final.pth")).tensors().asScala.map(_.data()) ==
      TorchCheckpoint.read(proj.resolve("rwkv-last.pth")).tensors().asScala.map(_.data()))
  }

  test("§5.2 auto-resume without .state: weights of the highest rwkv-N.pth, epoch_begin N+1, a 10-step warmup, save points shifted") {
    val proj = fresh("reference")
    val m = flags(proj, 16, 4032, "epoch_save" -> "2", "warmup_steps" -> "-1", "my_exit_tokens" -> (45L * 4032 * 16).toString)
    init(m)
    train(m, maxSteps = 33)
    Files.list(proj).iterator.asScala.filter(_.toString.endsWith(".state")).foreach(Files.delete)
    Files.delete(proj.resolve("rwkv-last.pth"))
    val before = rows(proj).size
    val (result, out) = train(m, maxSteps = 12)
    assert(out.contains("########## Loading " + proj.resolve("rwkv-2.pth") + "... ##########"))
    assert(out.contains("# Epoch = 3 to ") && out.contains("warmup 10 steps") && out.contains("weights only (fresh AdamW state)"))
    val resumed = rows(proj).drop(before)
    assert(resumed.head.step == 30 && resumed.head.epoch == 3)
    val schedule = config(m).resumedFrom(proj.resolve("rwkv-2.pth").toString, 2).lrSchedule()
    assert(resumed.map(_.lr) == (0 until 12).map(g => schedule.lr(g.toLong)))
    assert(resumed.head.lr == schedule.lr(0) && resumed.head.lr < resumed(9).lr)
    // current_epoch restarts at 0 in the new process: rwkv-3 (3 = epoch_begin + 0) is saved, as in train_temp.
    assert(Files.exists(proj.resolve("rwkv-3.pth")) && result.realStep == 42)
    assert(logLines(proj).filter(l => l.startsWith("3 ")).exists(_.endsWith(" 0")))
  }

  test("a damaged highest checkpoint falls back to the one before (\"Bad checkpoint\"), as train.py does") {
    val proj = fresh("bad")
    val m = flags(proj, 16, 4032, "epoch_save" -> "1", "my_exit_tokens" -> (45L * 4032 * 16).toString)
    init(m)
    train(m, maxSteps = 20)
    Files.delete(proj.resolve("rwkv-last.pth"))
    Files.write(proj.resolve("rwkv-1.pth"), "not a zip".getBytes(UTF_8))
    val (result, out) = train(m, maxSteps = 1)
    assert(out.contains("Bad checkpoint " + proj.resolve("rwkv-1.pth")) && out.contains("Trying " + proj.resolve("rwkv-0.pth")))
    assert(result.realStep == 11 && out.contains("continuing exactly from rwkv-0.state"))
  }

  test("the auto-resume scan reads names as train.py does; a name it cannot read is one line") {
    val proj = fresh("scan")
    for (n <- Seq("rwkv-init.pth", "rwkv-0.pth", "rwkv-10.pth", "rwkv-2.pth", "rwkv-final.pth", "rwkv-last.pth", "rwkv-3.state", "notes.txt"))
      Files.write(proj.resolve(n), Array[Byte]())
    val scan = Checkpoints.scan(proj)
    assert(scan.numbers().asScala == Seq(-1L, 0L, 2L, 10L) && scan.hasLast)
    assert(scan.max().get == 10L && scan.previous().get == 2L)
    Files.write(proj.resolve("rwkv-best.pth"), Array[Byte]())
    val e = intercept[GoslingException](Checkpoints.scan(proj))
    assert(e.getMessage.contains("rwkv-best.pth: auto-resume") && !e.getMessage.contains("\n"))
    val empty = fresh("scan-empty")
    val e2 = intercept[GoslingException](train(flags(empty, 16, 8)))
    assert(e2.getMessage.contains("there is none; write rwkv-init.pth first with `gosling init`"))
  }

  test("a .state is validated: damage, truncation, a foreign model or batch are one-line errors; other weights fall back") {
    val proj = fresh("state")
    val m = short(proj)
    init(m)
    train(m, maxSteps = 5)
    val state = proj.resolve("rwkv-last.state")
    val good = Files.readAllBytes(state)
    def error(bytes: Array[Byte]): String = {
      val f = fresh("damaged").resolve("x.state")
      Files.write(f, bytes)
      val e = intercept[GoslingException](TrainState.read(f))
      assert(!e.getMessage.contains("\n") && e.getMessage.startsWith(f.toString), e.getMessage)
      e.getMessage
    }
    val flipped = good.clone(); flipped(good.length - 100) = (flipped(good.length - 100) ^ 1).toByte
    assert(error(flipped).contains("CRC-32C"))
    assert(error(good.take(good.length - 4)).contains("truncated or damaged"))
    val magic = good.clone(); magic(0) = 'X'.toByte
    assert(error(magic).contains("no GOSSTATE magic"))
    assert(error(good.take(10)).contains("too short"))
    val loaded = TrainState.read(state).state()
    val e = intercept[GoslingException](loaded.requireFits(state, loaded.model(), 16, loaded.magicPrime(), loaded.dataTokens()))
    assert(e.getMessage.contains("real_bsz 8") && e.getMessage.contains("real_bsz 16"))
    val other = ModelConfig.of(2, 128, Vocab, 16)
    assert(intercept[GoslingException](loaded.requireFits(state, other, 8, loaded.magicPrime(), loaded.dataTokens()))
      .getMessage.contains("was saved for L2-D64"))
    // A resume with another micro_bsz is refused with the state's file name.
    val e3 = intercept[GoslingException](train(short(proj, "micro_bsz" -> "16")))
    assert(e3.getMessage.startsWith(state.toString))
    // rwkv-last.pth replaced by other weights: the pair does not belong together; rwkv-last is ignored.
    val layout = new ParameterLayout(loaded.model())
    val w = layout.newBuffer()
    new Initializer(layout, 99).initialize(w)
    Checkpoints.save(proj.resolve("rwkv-last.pth"), layout, w)
    val (_, out) = train(m, maxSteps = 1)
    assert(out.contains("Note: ignoring " + proj.resolve("rwkv-last.pth")) && out.contains("Loading " + proj.resolve("rwkv-init.pth")))
  }

  test("checkpoints are bf16 in ParameterLayout order and load back into the fp32 masters (prefix stripped)") {
    val proj = fresh("ckpt")
    val cfg = ModelConfig.of(2, 64, Vocab, 16)
    val layout = new ParameterLayout(cfg)
    val w = layout.newBuffer()
    new Initializer(layout, 3).initialize(w)
    w(0) = 1.2345678f // not a bf16 value: written rounded
    Checkpoints.save(proj.resolve("a.pth"), layout, w)
    val dict = TorchCheckpoint.read(proj.resolve("a.pth"))
    assert(dict.names().asScala == layout.params().asScala.map(_.name()))
    assert(dict.tensors().asScala.forall(_.dtype() == DType.BF16))
    assert(Checkpoints.sameBf16(dict, layout, w))
    val back = Checkpoints.toMaster(dict, layout, new Initializer(layout, 0))
    assert(back(0) == dev.gosling.trainer.model.Bf16.round(1.2345678f) && back.drop(1).sameElements(w.drop(1)))
    val prefixed = new dev.gosling.trainer.checkpoint.StateDict()
    dict.tensors().asScala.foreach(t => prefixed.add(t.withName(Checkpoints.ZERO3_PREFIX + t.name())))
    TorchCheckpoint.write(proj.resolve("zero3.pth"), prefixed)
    assert(Checkpoints.read(proj.resolve("zero3.pth")).names() == dict.names())
    // A checkpoint of another size than the flags: one line naming the flags to pass.
    val e = intercept[GoslingException](Checkpoints.modelOf(dict, proj.resolve("a.pth"), config(flags(proj, 16, 8, "n_embd" -> "128"))))
    assert(e.getMessage.contains("pass --n_layer 2 --n_embd 64 --vocab_size 256"))
  }
}
