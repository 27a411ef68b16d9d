package dev.gosling.trainer.dist

import dev.gosling.trainer.GoslingException
import dev.gosling.trainer.backend.DType
import dev.gosling.trainer.backend.cpu.CpuBackend
import dev.gosling.trainer.data.BinIdxReader
import dev.gosling.trainer.train.DistTrainFixture._
import dev.gosling.trainer.train.TrainFixture.config
import dev.gosling.trainer.train.{BatchSource, LoopOptions, StopFlag, TrainFixture, Trainer}
import org.scalatest.funsuite.AnyFunSuite

import java.nio.file.Files
import java.util.concurrent.{Executors, TimeUnit}
import scala.jdk.CollectionConverters._

/** Data parallelism inside one JVM: the collectives, the sample order, and `--devices N` against one rank. */
class DataParallelSuite extends AnyFunSuite {

  /** Runs body(rank) on `n` threads; returns the results in rank order (rethrowing the first failure). */
  private def onThreads[T](n: Int)(body: Int => T): Seq[T] = {
    val pool = Executors.newFixedThreadPool(n)
    try {
      val futures = (0 until n).map(r => pool.submit(() => body(r)))
      futures.map(_.get(60, TimeUnit.SECONDS))
    } finally pool.shutdownNow()
  }

  test("the in-process collective: all-reduce sums in rank order, reduce-scatter and all-gather work on uneven shards") {
    val n = 11 // 3 ranks: shards [0,3) [3,6) [6,11)
    val group = new InProcessCollective.Group(3, 10)
    val out = onThreads(3) { r =>
      val c = group.rank(r)
      val cpu = new CpuBackend(1)
      try {
        val t = cpu.allocate(DType.F32, n)
        cpu.upload(Array.tabulate(n)(i => (r + 1) * 0.1f + i), t)
        c.allReduceSum(cpu, t)
        val reduced = new Array[Float](n); cpu.download(t, reduced)
        cpu.upload(Array.tabulate(n)(i => (r + 1) * 1f * i), t)
        c.reduceScatterSum(cpu, t)
        val scattered = new Array[Float](n); cpu.download(t, scattered)
        val s = c.shard(n)
        // Started and awaited (the host collectives run it at once): the shard lands in a piece of its own.
        cpu.upload(Array.tabulate(n)(i => (r + 1) * 1f * i), t)
        val piece = cpu.allocate(DType.F32, s.length.toInt)
        c.reduceScatterSumAsync(cpu, t, piece)
        c.awaitPending(cpu)
        val pieceSums = new Array[Float](s.length.toInt); cpu.download(piece, pieceSums)
        assert(!c.overlapsCompute && pieceSums.toSeq == scattered.slice(s.start.toInt, s.end.toInt).toSeq)
        cpu.upload(Array.tabulate(n)(i => if (i >= s.start && i < s.end) 100f * r + i else -1f), t)
        c.allGather(cpu, t)
        val gathered = new Array[Float](n); cpu.download(t, gathered)
        val values = c.allGather(Array(r.toDouble, -r.toDouble))
        (reduced, scattered, s, gathered, values)
      } finally cpu.close()
    }
    for ((reduced, scattered, s, gathered, values) <- out) {
      assert(reduced.toSeq == (0 until n).map(i => ((0.1f + i) + (0.2f + i)) + (0.3f + i)))
      for (i <- s.start until s.end) assert(scattered(i.toInt) == 6f * i)
      assert(gathered.toSeq == (0 until n).map(i => 100f * (if (i < 3) 0 else if (i < 6) 1 else 2) + i))
      assert(values.toSeq == Seq(0.0, -0.0, 1.0, -1.0, 2.0, -2.0))
    }
    assert(out.map(_._3) == Seq(new Shard(0, 3), new Shard(3, 6), new Shard(6, 11)))
  }

  test("a rank that does not arrive: the others fail within the timeout naming it; a failed rank aborts the rest at once") {
    val group = new InProcessCollective.Group(2, 1)
    val t0 = System.nanoTime()
    val e = intercept[GoslingException](group.rank(0).allGather(Array(1.0)))
    assert((System.nanoTime() - t0) / 1e9 < 5)
    assert(e.getMessage.contains("rank(s) [1] of 2 did not reach allGather(values of 1) within 1 s") && !e.getMessage.contains("\n"), e.getMessage)
    val g2 = new InProcessCollective.Group(2, 60)
    val waiting = Executors.newSingleThreadExecutor()
    try {
      val f = waiting.submit(() => g2.rank(0).allGather(Array(1.0)))
      Thread.sleep(200)
      g2.abort("rank 1 failed: boom")
      val e2 = intercept[java.util.concurrent.ExecutionException](f.get(5, TimeUnit.SECONDS))
      assert(e2.getCause.getMessage.contains("rank 1 failed: boom"))
    } finally waiting.shutdownNow()
  }

  test("the sample order: 2 ranks × micro_bsz b at step s read exactly the samples of 1 rank × 2b, rank r's slot j being slot 2j+r") {
    val (prefix, tokens) = TrainFixture.demo
    val data = BinIdxReader.open(prefix)
    try {
      val b = 4
      val two = config(flags(Files.createTempDirectory("x"), 2, b, 10))
      val one = config(flags(Files.createTempDirectory("y"), 1, 2 * b, 10))
      val sampler = two.sampler(tokens)
      assert(one.sampler(tokens).magicPrime == sampler.magicPrime)
      val ranks = (0 until 2).map(r => new BatchSource(data, sampler, Ctx, b, r, 2, 256))
      val whole = new BatchSource(data, one.sampler(tokens), Ctx, 2 * b, 0, 1, 256)
      for (epoch <- Seq(0L, 3L); step <- Seq(0L, 1L, 7L); r <- 0 until 2; j <- 0 until b)
        assert(ranks(r).offset(epoch, step, j) == whole.offset(epoch, step, 2 * j + r))
    } finally data.close()
  }

  test("--devices 2 with micro_bsz 4 trains as --devices 1 with micro_bsz 8 (losses and weights within float tolerance)") {
    val steps = 8
    val one = Files.createTempDirectory("gosling-dp1")
    inProcess(flags(one, 1, 8, steps))
    val two = Files.createTempDirectory("gosling-dp2")
    val (result, out) = inProcess(flags(two, 2, 4, steps, "strategy" -> "ddp"))
    assert(result.outcome == Trainer.Outcome.FINISHED && result.realStep == steps)
    assert(out.contains("# RWKV-7 BF16 on 1x2 CPU, bsz 1x2x4=8, ddp"), out)
    assert(out.contains("# Optimizer: ddp over 2 rank(s) (in-process(2 ranks))"), out)
    val (l1, l2) = (losses(one), losses(two))
    assert(l1.size == steps && l2.size == steps)
    for ((a, b) <- l1.zip(l2)) assert(math.abs(a - b) < 1e-5 * math.abs(a), s"$l1 vs $l2")
    val diff = maxRelDiff(master(two.resolve("rwkv-final.state")), master(one.resolve("rwkv-final.state")))
    assert(diff < 1e-2, diff)
    // Only rank 0 wrote: one NEW RUN header, one metrics row per step.
    val log = Files.readAllLines(two.resolve("train_log.txt")).asScala
    assert(log.count(_.startsWith("NEW RUN")) == 1)
  }

  test("zero1 and zero2 shard the AdamW state and train as ddp; checkpoints hold the whole moments; resume is exact") {
    val steps = 6
    def run(strategy: String, options: LoopOptions = new LoopOptions(0, "", false)) = {
      val proj = Files.createTempDirectory("gosling-" + strategy)
      val (_, out) = inProcess(flags(proj, 2, 4, steps, "strategy" -> strategy), options)
      (proj, out)
    }
    val (ddp, _) = run("ddp")
    val (z1, out1) = run("deepspeed_stage_1")
    val (z2, out2) = run("zero2")
    assert(out1.contains("# Optimizer: zero1 over 2 rank(s)") && out1.contains("shard [0, "), out1)
    assert(out2.contains("# Optimizer: zero2 over 2 rank(s)") && out2.contains("two block slots"), out2)
    val reference = dev.gosling.trainer.train.TrainState.read(ddp.resolve("rwkv-final.state"))
    for (p <- Seq(z1, z2)) {
      val s = dev.gosling.trainer.train.TrainState.read(p.resolve("rwkv-final.state"))
      assert(maxRelDiff(s.master(), reference.master()) < 1e-4, p)
      assert(maxRelDiff(s.firstMoment(), reference.firstMoment(), 1e-6) < 1e-3, p)
      assert(maxRelDiff(s.secondMoment(), reference.secondMoment(), 1e-9) < 1e-3, p)
      assert(losses(p).zip(losses(ddp)).forall { case (a, b) => math.abs(a - b) < 1e-6 })
    }
    // zero2 stopped after 3 steps and resumed (sharded moments restored from the whole ones) ends where zero2 ended.
    val sliced = Files.createTempDirectory("gosling-zero2-sliced")
    val m = flags(sliced, 2, 4, steps, "strategy" -> "zero2")
    inProcess(m, new LoopOptions(3, "", false))
    inProcess(m + ("train_stage" -> "3"))
    assert(master(sliced.resolve("rwkv-final.state")).sameElements(master(z2.resolve("rwkv-final.state"))))
  }

  test("zero2 partitions the gradients: same losses and weights as ddp bit for bit; a zero2 checkpoint resumes under ddp") {
    val steps = 6
    val ddp = Files.createTempDirectory("gosling-ddp")
    inProcess(flags(ddp, 2, 4, steps, "strategy" -> "ddp"))
    val z2 = Files.createTempDirectory("gosling-z2")
    val (_, out) = inProcess(flags(z2, 2, 4, steps, "strategy" -> "zero2"))
    info(out.linesIterator.find(_.startsWith("# Optimizer")).get)
    val reference = dev.gosling.trainer.train.TrainState.read(ddp.resolve("rwkv-final.state"))
    val zero2 = dev.gosling.trainer.train.TrainState.read(z2.resolve("rwkv-final.state"))
    // Bit for bit on the in-process collective: reduce-scatter sums each element in rank order as all-reduce does, and
    // AdamW is element-wise, so pieces update as the whole buffer. The one difference is the order the global Σ g² is
    // added in (per piece, then over ranks); it reaches the weights only through the clip scale's float rounding
    // when clipping engages, a change of a last bit in rare steps (NCCL's own summation order differs anyway).
    assert(losses(z2) == losses(ddp))
    assert(zero2.master().sameElements(reference.master()))
    assert(zero2.firstMoment().sameElements(reference.firstMoment()) && zero2.secondMoment().sameElements(reference.secondMoment()))
    // 3 steps under zero2, then the rest under ddp from its checkpoint: the same run.
    val mixed = Files.createTempDirectory("gosling-z2-ddp")
    inProcess(flags(mixed, 2, 4, steps, "strategy" -> "zero2"), new LoopOptions(3, "", false))
    inProcess(flags(mixed, 2, 4, steps, "strategy" -> "ddp", "train_stage" -> "3"))
    assert(master(mixed.resolve("rwkv-final.state")).sameElements(reference.master()))
    assert(losses(mixed) == losses(ddp))
  }

  test("bad input: an unknown or unimplemented --strategy, --num_nodes without Spark, a host-only model on 2 ranks") {
    val proj = Files.createTempDirectory("gosling-bad")
    val e1 = intercept[GoslingException](config(flags(proj, 2, 4, 2, "strategy" -> "deepspeed_stage_3")))
    assert(e1.getMessage.startsWith("--strategy deepspeed_stage_3: CPU offload and ZeRO-3 are not implemented"))
    assert(intercept[GoslingException](config(flags(proj, 2, 4, 2, "strategy" -> "fsdp"))).getMessage.startsWith("--strategy fsdp is not supported"))
    val e2 = intercept[GoslingException](inProcess(flags(proj, 2, 4, 2, "num_nodes" -> "2")))
    assert(e2.getMessage.contains("--num_nodes 2: several hosts need a cluster; use `gosling train --spark`"))
    val e3 = intercept[GoslingException](new Trainer(config(flags(proj, 2, 4, 2)), LoopOptions.defaults(), new dev.gosling.trainer.train.BigramModelFactory,
      new java.io.PrintWriter(new java.io.StringWriter()), System.err))
    assert(e3.getMessage.contains("is 2 rank(s), but this trainer was started as one of 1"))
    val e4 = intercept[GoslingException](dev.gosling.trainer.train.DataParallel.run(config(flags(proj, 2, 4, 2)), LoopOptions.defaults(),
      new dev.gosling.trainer.train.BigramModelFactory, new java.io.PrintWriter(new java.io.StringWriter()), System.err, new StopFlag, 10))
    assert(e4.getMessage.contains("trains on the host only and cannot join 2 data-parallel ranks"), e4.getMessage)
  }
}
