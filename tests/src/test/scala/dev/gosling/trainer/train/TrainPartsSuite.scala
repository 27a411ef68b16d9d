package dev.gosling.trainer.train

import dev.gosling.testkit.Shared
import dev.gosling.trainer.GoslingException
import dev.gosling.trainer.checkpoint.{DType, NamedTensor, StateDict, TorchCheckpoint}
import dev.gosling.trainer.data.{BinIdxReader, MagicPrime, MagicPrimeSampler}
import dev.gosling.trainer.model.{Bf16, Initializer, ModelConfig, ParameterLayout}
import dev.gosling.trainer.optim.LrSchedule
import dev.gosling.trainer.train.TrainFixture._
import org.scalatest.funsuite.AnyFunSuite

import java.nio.charset.StandardCharsets.UTF_8
import java.nio.file.{Files, Path}
import java.time.LocalDateTime
import scala.jdk.CollectionConverters._

class TrainPartsSuite extends AnyFunSuite {

  private def oneLine(e: Throwable): String = {
    assert(!e.getMessage.contains("\n"), e.getMessage)
    e.getMessage
  }

  test("PyFormat writes what Python writes: correctly rounded fixed point, float repr, datetime, dict/tuple/str repr") {
    assert(PyFormat.fixed(2.5, 0) == "2" && PyFormat.fixed(3.5, 0) == "4" && PyFormat.fixed(0.125, 2) == "0.12")
    assert(PyFormat.fixed(0.375, 2) == "0.38" && PyFormat.fixed(1.005, 2) == "1.00" && PyFormat.fixed(-1e-9, 6) == "-0.000000")
    assert(PyFormat.fixed(Double.NaN, 4) == "nan" && PyFormat.fixed(Double.PositiveInfinity, 4) == "inf")
    val reprs = Seq(6e-4 -> "0.0006", 1e-18 -> "1e-18", 1.5e-5 -> "1.5e-05", 1e16 -> "1e+16", 1234.5 -> "1234.5", 0.1 -> "0.1",
      100.0 -> "100.0", 1e-4 -> "0.0001", 2.0 / 3 -> "0.6666666666666666", -2.5e-7 -> "-2.5e-07", 1.0 -> "1.0", 0.0 -> "0.0")
    for ((x, s) <- reprs) assert(PyFormat.repr(x) == s, x)
    assert(PyFormat.datetime(LocalDateTime.of(2025, 4, 24, 2, 23, 42, 481256000)) == "2025-04-24 02:23:42.481256")
    assert(PyFormat.datetime(LocalDateTime.of(2025, 4, 24, 2, 23, 42, 0)) == "2025-04-24 02:23:42")
    assert(PyFormat.timestamp(LocalDateTime.of(2025, 4, 24, 2, 3, 4)) == "2025-04-24-02-03-04")
    val m = new java.util.LinkedHashMap[String, Object]()
    m.put("s", "it's"); m.put("n", java.lang.Long.valueOf(3)); m.put("t", new PyFormat.Tuple(java.util.List.of(0.9, 0.99)))
    m.put("one", new PyFormat.Tuple(java.util.List.of(1.0))); m.put("b", java.lang.Boolean.TRUE); m.put("l", java.util.List.of("a\\b", "q'\""))
    assert(PyFormat.repr(m) == """{'s': "it's", 'n': 3, 't': (0.9, 0.99), 'one': (1.0,), 'b': True, 'l': ['a\\b', 'q\'"']}""")
  }

  test("train_log.txt's miniepoch line reproduces train_temp's README line") {
    val lr = new LrSchedule(6e-4, 6e-5, 512, 16, 10, 1498226207L, 0, 2520).lr(2519)
    assert(TrainLog.line(0, 4.875856, lr, 0, LocalDateTime.of(2025, 4, 24, 2, 23, 42, 481256000)) ==
      "0 4.875856 131.0863 0.00059975 2025-04-24 02:23:42.481256 0")
  }

  test("BatchSource reads ctx_len+1 tokens at the sampler's offsets; ranks interleave the global sample ids") {
    val (prefix, tokens) = demo
    val p = MagicPrime.magicPrime(tokens, 16)
    val reader = BinIdxReader.open(prefix)
    try {
      val sampler = new MagicPrimeSampler(p, 16, tokens, 5040, 8)
      val source = new BatchSource(reader, sampler, 16, 8, 0, 1, Vocab)
      val in = new Array[Int](128)
      val tg = new Array[Int](128)
      source.fill(1, 3, in, tg)
      for (j <- 0 until 8) {
        val offset = sampler.chunk(1 + 40320L + 3 * 8 + j) * 16
        val window = new Array[Int](17)
        reader.readTokens(offset, window, 0, 17)
        assert(in.slice(j * 16, j * 16 + 16).sameElements(window.take(16)) && tg.slice(j * 16, j * 16 + 16).sameElements(window.drop(1)))
      }
      // 4 ranks of micro_bsz 2: at each step they read the 8 consecutive global ids, rank r slot j = id j·4 + r.
      val ranks = (0 until 4).map(r => new BatchSource(reader, sampler, 16, 2, r, 4, Vocab))
      for (step <- Seq(0L, 7L); rank <- 0 until 4; j <- 0 until 2)
        assert(ranks(rank).offset(2, step, j) == sampler.chunk(1 + 2 * 40320L + (step * 2 + j) * 4 + rank) * 16)
      val small = new BatchSource(reader, sampler, 16, 8, 0, 1, 10)
      val e = intercept[GoslingException](small.fill(0, 0, in, tg))
      assert(oneLine(e).contains("is outside the vocabulary (--vocab_size 10)"))
    } finally reader.close()
  }

  private def yaml(text: String): Path = {
    val f = Files.createTempFile("gosling", ".yaml")
    Files.writeString(f, text, UTF_8)
    f
  }

  test("YAML files: values kept as written, unknown/duplicate/nested/empty values are one line with file:line") {
    val f = yaml("# a run\nlr_init: 6e-4   # comment\ndata_file: \"data/x y\"\nctx_len: 512\nmax_steps: 3\n")
    assert(TrainYaml.read(f, TrainSettings.KEYS).asScala == Map("lr_init" -> "6e-4", "data_file" -> "data/x y", "ctx_len" -> "512", "max_steps" -> "3"))
    assert(TrainYaml.read(yaml(""), TrainSettings.KEYS).isEmpty)
    val cases = Seq(
      "ctx_len: 512\nlr_int: 1e-3\n" -> ":2: unknown key 'lr_int' (did you mean 'lr_init'?)",
      "ctx_len: 512\nctx_len: 1024\n" -> ":2: 'ctx_len' is set twice",
      "ctx_len:\n  a: 1\n" -> ":1: 'ctx_len' must be a single value",
      "ctx_len: [1, 2]\n" -> ":1: 'ctx_len' must be a single value",
      "ctx_len:\n" -> ":1: 'ctx_len' has no value",
      "- 1\n- 2\n" -> ":1: expected a mapping",
      "ctx_len: 512\n  bad: [\n" -> "invalid YAML")
    for ((text, expected) <- cases) {
      val file = yaml(text)
      val e = intercept[GoslingException](TrainYaml.read(file, TrainSettings.KEYS))
      assert(oneLine(e).startsWith(file.toString) && e.getMessage.contains(expected), e.getMessage)
    }
    assert(intercept[GoslingException](TrainYaml.read(Path.of("/nonexistent.yaml"), TrainSettings.KEYS)).getMessage.contains("no such file"))
  }

  test("settings: YAML files in order, then flags; train_temp's keys and Gosling's loop options are split and validated") {
    val model = yaml("n_layer: 4\nn_embd: 128\n")
    val run = yaml("n_layer: 3\nctx_len: 64\ntrain_stage: 1\nmax_steps: 9\nmodel_impl: x\n")
    val s = TrainSettings.load(java.util.List.of(model, run), Map("ctx_len" -> "32", "progress_bar" -> "0").asJava)
    assert(s.config().nLayer() == 3 && s.config().nEmbd() == 128 && s.config().ctxLen() == 32)
    assert(s.loop() == new LoopOptions(9, "x", false))
    assert(oneLine(intercept[GoslingException](TrainSettings.load(java.util.List.of(), Map("lr_int" -> "1").asJava)))
      .contains("unknown option --lr_int (did you mean --lr_init?)"))
    assert(oneLine(intercept[GoslingException](LoopOptions.fromMap(Map("max_steps" -> "-1").asJava))).contains("--max_steps -1"))
    assert(oneLine(intercept[GoslingException](LoopOptions.fromMap(Map("progress_bar" -> "yes").asJava))).contains("--progress_bar 'yes'"))
  }

  test("conf/models and conf/train: every YAML file is valid; the model files, minipile.yaml and demo-cpu.yaml hold what their comments say") {
    val conf = Shared.repo.resolve("conf")
    // conf/prepare/ holds prepare recipes, another schema (checked by the prepare suites)
    val files = Seq("models", "train").flatMap(d => Files.walk(conf.resolve(d)).iterator.asScala.filter(_.toString.endsWith(".yaml")).toSeq)
    assert(files.size >= 9)
    files.foreach(f => TrainYaml.read(f, TrainSettings.KEYS))
    val stage1 = Map("train_stage" -> "1").asJava
    for (f <- files if f.getParent.getFileName.toString == "models") {
      val s = TrainSettings.load(java.util.List.of(f), stage1)
      val name = f.getFileName.toString.stripSuffix(".yaml")
      assert(name == s"L${s.config().nLayer()}-D${s.config().nEmbd()}")
      val params = new ParameterLayout(s.config().modelConfig()).totalElements()
      assert(Files.readString(f).contains(f"$params%,d parameters"), f)
    }
    val minipile = TrainSettings.load(java.util.List.of(conf.resolve("models/L12-D768.yaml"), conf.resolve("train/minipile.yaml")), stage1).config()
    assert(minipile.epochSteps() == 2520 && minipile.epochCount() == 72 && minipile.magicPrime() == 2926181 && minipile.lrInit() == 6e-4)
    val demoCpu = TrainSettings.load(java.util.List.of(conf.resolve("models/L2-D128.yaml"), conf.resolve("train/demo-cpu.yaml")), stage1).config()
    assert(demoCpu.magicPrime() == MagicPrime.magicPrime(200499, 128) && demoCpu.myExitTokens() == 200499 && demoCpu.accelerator() == "cpu")
  }

  test("ModelFactory: by name, or the default for the accelerator; none is one line saying the model is not built") {
    val none = java.util.List.of[ModelFactory]()
    assert(oneLine(intercept[GoslingException](ModelFactory.select(none, "cpu", ""))) ==
      "--accelerator cpu: the RWKV-7 CPU model is not built into this version of gosling, so there is nothing to train")
    assert(intercept[GoslingException](ModelFactory.select(none, "gpu", "")).getMessage.contains("RWKV-7 CUDA model is not built"))
    assert(ModelFactory.available().asScala.exists(_.name() == BigramModelFactory.Name)) // the test resources register it
    val onlyTest = java.util.List.of[ModelFactory](new BigramModelFactory)
    assert(intercept[GoslingException](ModelFactory.select(onlyTest, "cpu", "")).getMessage.contains("(model implementations in this build: test-bigram)"))
    assert(ModelFactory.select(onlyTest, "cpu", "test-bigram").name() == "test-bigram")
    assert(oneLine(intercept[GoslingException](ModelFactory.select(onlyTest, "cpu", "rwkv9"))).contains("--model_impl rwkv9: no such model implementation"))
    def claiming(n: String): ModelFactory = new ModelFactory {
      override def name(): String = n
      override def isDefaultFor(accelerator: String): Boolean = accelerator == "cpu"
      override def create(config: ModelConfig, accelerator: String, maxBatchSize: Int, gradCheckpoint: Boolean) = new BigramModel(config)
    }
    assert(ModelFactory.select(java.util.List.of(claiming("a")), "cpu", "").name() == "a")
    assert(intercept[GoslingException](ModelFactory.select(java.util.List.of(claiming("a"), claiming("b")), "cpu", ""))
      .getMessage.contains("several model implementations claim it (a, b); choose one with --model_impl"))
  }

  test("the test model's gradient is the exact gradient of mean CE + the L2Wrap term (central differences in double)") {
    val cfg = ModelConfig.of(2, 64, 16, 16)
    val layout = new ParameterLayout(cfg)
    val w = layout.newBuffer()
    val rnd = new java.util.SplittableRandom(5)
    for (i <- w.indices) w(i) = (rnd.nextDouble() - 0.5).toFloat * 0.6f
    val model = new BigramModel(cfg)
    val inputs = Array.tabulate(32)(i => (i * 7 + 3) % 16)
    val targets = Array.tabulate(32)(i => (i * 5 + 1) % 16)
    model.setParameters(w)
    val grads = layout.newBuffer()
    val loss = model.forwardBackward(inputs, targets, 2, grads)
    val emb = layout.get("emb.weight").offset.toInt
    val head = layout.get("head.weight").offset.toInt
    /** CE + 1e-4/(2N)·Σ max², in double, from the float weights. */
    def objective(p: Array[Double]): Double = {
      var total = 0.0
      for (i <- inputs.indices) {
        val logits = (0 until 16).map(v => (0 until 64).map(c => p(emb + inputs(i) * 64 + c) * p(head + v * 64 + c)).sum)
        val max = logits.max
        total += max + math.log(logits.map(l => math.exp(l - max)).sum) - logits(targets(i)) + 1e-4 / 2 * max * max
      }
      total / inputs.length
    }
    val p = w.map(_.toDouble)
    val ce = objective(p) - inputs.indices.map { i =>
      val logits = (0 until 16).map(v => (0 until 64).map(c => p(emb + inputs(i) * 64 + c) * p(head + v * 64 + c)).sum)
      1e-4 / 2 * logits.max * logits.max
    }.sum / inputs.length
    assert(math.abs(loss - ce) < 1e-9 && math.abs(model.loss(inputs, targets, 2) - loss) < 1e-12)
    for (k <- Seq(emb + 3 * 64 + 5, emb + 10 * 64 + 63, head + 0, head + 7 * 64 + 31, head + 15 * 64 + 2)) {
      val h = 1e-4
      val up = p.clone(); up(k) += h
      val down = p.clone(); down(k) -= h
      val numeric = (objective(up) - objective(down)) / (2 * h)
      assert(math.abs(numeric - grads(k)) < 1e-5 + 1e-4 * math.abs(numeric), s"$k: $numeric vs ${grads(k)}")
    }
    assert(grads.zipWithIndex.forall { case (g, i) => g == 0 || (i >= emb && i < emb + 16 * 64) || (i >= head && i < head + 16 * 64) })
  }

  test("eval: mean loss over consecutive ctx_len windows through TrainableModel.loss, micro_bsz at a time; perplexity") {
    val proj = fresh("eval")
    val cfg = ModelConfig.of(2, 64, Vocab, 32)
    val layout = new ParameterLayout(cfg)
    val w = layout.newBuffer()
    new Initializer(layout, 11).initialize(w)
    Checkpoints.save(proj.resolve("m.pth"), layout, w)
    val (prefix, tokens) = demo
    val r = Evaluator.evaluate(proj.resolve("m.pth"), prefix, 32, 7, "cpu", new BigramModelFactory, 0)
    assert(r.windows() == (tokens - 1) / 32 && r.tokens() == r.windows() * 32)
    val model = new BigramModel(cfg)
    model.setParameters(w)
    val reader = BinIdxReader.open(prefix)
    try {
      val window = new Array[Int](33)
      val each = (0L until r.windows()).map { k =>
        reader.readTokens(k * 32, window, 0, 33)
        model.loss(window.take(32), window.drop(1), 1)
      }
      assert(math.abs(r.meanLoss() - each.sum / each.size) < 1e-9)
      assert(r.perplexity() == math.exp(r.meanLoss()))
      val first = Evaluator.evaluate(proj.resolve("m.pth"), prefix, 32, 4, "cpu", new BigramModelFactory, 10)
      assert(first.windows() == 10 && math.abs(first.meanLoss() - each.take(10).sum / 10) < 1e-9)
    } finally reader.close()
    val tiny = new ParameterLayout(ModelConfig.of(2, 64, 10, 32))
    val tw = tiny.newBuffer()
    new Initializer(tiny, 1).initialize(tw)
    Checkpoints.save(proj.resolve("tiny.pth"), tiny, tw)
    val e = intercept[GoslingException](Evaluator.evaluate(proj.resolve("tiny.pth"), prefix, 32, 4, "cpu", new BigramModelFactory, 1))
    assert(oneLine(e).contains("outside the model's vocabulary of 10"))
  }

  test("init (train_stage 1): the Initializer's bf16 weights in rwkv-init.pth, printed as generate_init_weight prints") {
    val proj = fresh("init")
    val m = flags(proj, 16, 8, "random_seed" -> "-1")
    val out = init(m)
    val layout = new ParameterLayout(config(m).modelConfig())
    val expected = layout.newBuffer()
    new Initializer(layout, 0).initialize(expected)
    val dict = TorchCheckpoint.read(proj.resolve("rwkv-init.pth"))
    assert(Checkpoints.sameBf16(dict, layout, expected))
    val lines = out.linesIterator.toSeq
    assert(lines.contains("# Init model weight (slow for large models)... [seed 0]"))
    assert(lines.contains("256   64                emb.weight [scale -0.0001]"))
    assert(lines.contains("256   64                head.weight [scale 1.0]")) // 0.5·sqrt(256/64)
    assert(lines.contains("64    64                blocks.0.att.key.weight [scale 0.1]"))
    assert(lines.contains("64    64                blocks.1.att.output.weight [scale 0]"))
    assert(lines.contains("256   64                blocks.0.ffn.key.weight [scale 1.0]"))
    assert(lines.contains("1     1     64          blocks.0.att.x_r"))
    assert(lines.contains("model params " + layout.totalElements()))
    assert(lines.takeRight(2) == Seq("Save to " + proj.resolve("rwkv-init.pth") + "...", "Done. Now go for stage 2."))
  }

  test("init with --load_model merges a checkpoint: same size copied, other first dimension interpolated (train_temp's rule)") {
    val proj = fresh("merge")
    val small = ModelConfig.of(2, 64, 128, 16)
    val sl = new ParameterLayout(small)
    val src = sl.newBuffer()
    new Initializer(sl, 1).initialize(src)
    val emb = sl.get("emb.weight")
    for (i <- 0 until emb.numel.toInt) src(emb.offset.toInt + i) = Bf16.round(i * 0.01f)
    val dict = new StateDict()
    for (spec <- sl.params().asScala if spec.name() != "head.weight")
      dict.add(NamedTensor.fromFloats(spec.name(), DType.BF16, spec.shape(), src.slice(spec.offset.toInt, spec.end.toInt)))
    TorchCheckpoint.write(proj.resolve("small.pth"), dict)
    val out = init(flags(proj, 16, 8, "load_model" -> proj.resolve("small.pth").toString))
    assert(out.contains("Combine weights from " + proj.resolve("small.pth") + "..."))
    assert(out.contains("emb.weight torch.Size([128, 64]) --> torch.Size([256, 64])"))
    val big = new ParameterLayout(ModelConfig.of(2, 64, Vocab, 16))
    val merged = Checkpoints.toMaster(TorchCheckpoint.read(proj.resolve("rwkv-init.pth")), big, new Initializer(big, 0))
    val be = big.get("emb.weight").offset.toInt
    def bf(x: Float) = Bf16.round(x)
    // Row i of 256 reads position i/256·128: row 3 → 1.5 → 0.5·row 1 + 0.5·row 2, each product and the sum in bf16.
    for (c <- 0 until 64) {
      val a = src(emb.offset.toInt + 64 + c)
      val b = src(emb.offset.toInt + 128 + c)
      assert(merged(be + 3 * 64 + c) == bf(bf(bf(a * 0.5f) + bf(b * 0.5f))))
      assert(merged(be + 254 * 64 + c) == src(emb.offset.toInt + 127 * 64 + c)) // 254/256·128 = 127 ≥ ss−1: the last row
    }
    val rk = big.get("blocks.1.att.r_k")
    assert(merged.slice(rk.offset.toInt, rk.end.toInt).sameElements(src.slice(sl.get("blocks.1.att.r_k").offset.toInt, sl.get("blocks.1.att.r_k").end.toInt)))
    val fresh2 = big.newBuffer()
    new Initializer(big, 7).initialize(fresh2)
    val head = big.get("head.weight")
    assert(merged.slice(head.offset.toInt, head.end.toInt).sameElements(fresh2.slice(head.offset.toInt, head.end.toInt))) // not in the source: fresh
    // A tensor whose rows differ in size cannot be resized: one line.
    val wide = new StateDict().add(NamedTensor.fromFloats("blocks.0.att.w1", DType.BF16, Array(64L, 16L), new Array[Float](64 * 16)))
    TorchCheckpoint.write(proj.resolve("wide.pth"), wide)
    val e = intercept[GoslingException](init(flags(proj, 16, 8, "load_model" -> proj.resolve("wide.pth").toString)))
    assert(oneLine(e).contains("only the first dimension may differ"))
    val alien = new StateDict().add(NamedTensor.fromFloats("blocks.9.att.w1", DType.BF16, Array(64L, 32L), new Array[Float](64 * 32)))
    TorchCheckpoint.write(proj.resolve("alien.pth"), alien)
    assert(oneLine(intercept[GoslingException](init(flags(proj, 16, 8, "load_model" -> proj.resolve("alien.pth").toString))))
      .contains("has 'blocks.9.att.w1', which the new model lacks"))
  }

  test("SignalStop turns SIGTERM into a stop request and restores the previous handler on close") {
    val flag = new StopFlag
    val stop = SignalStop.install(flag, new java.io.PrintStream(new java.io.ByteArrayOutputStream()))
    try {
      sun.misc.Signal.raise(new sun.misc.Signal("TERM"))
      val deadline = System.nanoTime() + 5_000_000_000L
      while (!flag.requested() && System.nanoTime() < deadline) Thread.sleep(10)
      assert(flag.reason() == "SIGTERM")
    } finally stop.close()
    val again = new StopFlag
    val second = SignalStop.install(again, System.err)
    second.close()
    assert(!again.requested())
  }
}
