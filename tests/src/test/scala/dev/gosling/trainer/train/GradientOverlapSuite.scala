package dev.gosling.trainer.train

import dev.gosling.trainer.backend.{Backend, DType, Tensor}
import dev.gosling.trainer.backend.cpu.CpuBackend
import dev.gosling.trainer.dist.{Collective, InProcessCollective}
import dev.gosling.trainer.model.{ModelConfig, ModelFixtures, ParameterLayout, Rwkv7Model}
import org.scalatest.funsuite.AnyFunSuite

import java.lang.reflect.{InvocationHandler, InvocationTargetException, Method, Proxy}
import java.nio.file.Files
import java.util.concurrent.{Executors, TimeUnit}
import scala.collection.mutable.ArrayBuffer
import scala.util.Random

/**
 * The gradient reductions overlapping the backward pass ([[TrainingStep]] with a collective whose started operations
 * run beside the backend's work, as NCCL's do), checked on the CPU: a collective that really defers every started
 * operation until an await orders the caller after it. A read or overwrite of a reduction's memory before that await
 * would see the unreduced (or the next block's) gradients, and the run would leave the synchronous one; the call log
 * shows when the reductions are started and awaited.
 */
class GradientOverlapSuite extends AnyFunSuite {
  private val Layers = 4 // blocks 1 and 0 reuse the slots of blocks 3 and 2 under zero2
  private val Ctx = 16
  private val Batch = 2
  private val Steps = 3
  private val cfg = ModelConfig.of(Layers, 64, 64, Ctx)
  private val layout = new ParameterLayout(cfg)
  private val init = ModelFixtures.randomParams(layout, seed = 5)

  /**
   * Runs the started operations only at an await (all of them, in start order; an awaitOnDevice too, which is what a
   * device-side wait would have to cover). With `honourDeviceWaits` false it ignores awaitOnDevice, as a missing
   * device-side wait would: the deferred reduction then reads what the backend wrote over its memory meanwhile.
   */
  private final class DeferredCollective(inner: Collective, log: ArrayBuffer[String], honourDeviceWaits: Boolean = true) extends Collective {
    private val pending = ArrayBuffer[() => Unit]()

    private def runPending(): Unit = {
      val ops = pending.toList
      pending.clear()
      ops.foreach(_())
    }

    override def rank(): Int = inner.rank()
    override def worldSize(): Int = inner.worldSize()
    override def overlapsCompute(): Boolean = true

    override def allReduceSumAsync(backend: Backend, t: Tensor): Unit = {
      log += s"start allReduceSum(${t.numel})"
      pending += (() => inner.allReduceSum(backend, t))
    }

    override def reduceScatterSumAsync(backend: Backend, t: Tensor, piece: Tensor): Unit = {
      log += s"start reduceScatterSum(${t.numel})"
      pending += (() => inner.reduceScatterSumAsync(backend, t, piece))
    }

    override def awaitOnDevice(backend: Backend, t: Tensor): Unit = {
      log += "awaitOnDevice"
      if (honourDeviceWaits) runPending()
    }

    override def awaitPending(backend: Backend): Unit = {
      log += s"awaitPending(${pending.size})"
      runPending()
    }

    // A synchronous call runs after the operations started before it.
    override def allReduceSum(backend: Backend, t: Tensor): Unit = { runPending(); log += "allReduceSum"; inner.allReduceSum(backend, t) }
    override def reduceScatterSum(backend: Backend, t: Tensor): Unit = { runPending(); inner.reduceScatterSum(backend, t) }
    override def allGather(backend: Backend, t: Tensor): Unit = { runPending(); log += "allGather"; inner.allGather(backend, t) }
    override def allGather(values: Array[Double]): Array[Double] = { runPending(); log += "allGather(values)"; inner.allGather(values) }
    override def name(): String = "deferred " + inner.name()
    override def abort(reason: String): Unit = inner.abort(reason)
    override def close(): Unit = inner.close()
  }

  /** The CPU backend, logging the calls that show where the backward pass and the optimizer are. */
  private def logged(cpu: CpuBackend, log: ArrayBuffer[String]): Backend = {
    // the model calls the WKV7 backward that writes dw, da and db; logged under the plain name
    val watched = Set("wkv7Backward", "wkv7BackwardOverwritingWab", "embeddingBackward", "sumOfSquares", "adamwStep")
    val handler = new InvocationHandler {
      override def invoke(proxy: AnyRef, m: Method, args: Array[AnyRef]): AnyRef = {
        if (watched(m.getName)) log += m.getName.stripSuffix("OverwritingWab")
        try m.invoke(cpu, (if (args == null) Array.empty[AnyRef] else args): _*)
        catch { case e: InvocationTargetException => throw e.getCause }
      }
    }
    Proxy.newProxyInstance(getClass.getClassLoader, Array(classOf[Backend]), handler).asInstanceOf[Backend]
  }

  /**
   * `Steps` steps of 2 ranks (threads) under `strategy`, each rank's collective made by `wrap`; returns each rank's
   * final weights and call log, with "forwardBackward {" and "}" around each pass.
   */
  private def run(strategy: String, wrap: (Collective, ArrayBuffer[String]) => Collective): Seq[(Array[Float], Seq[String])] = {
    val config = TrainFixture.config(TrainFixture.flags(Files.createTempDirectory("gosling-overlap"), Ctx, Batch,
      "strategy" -> strategy, "devices" -> "2"))
    val group = new InProcessCollective.Group(2, 30)
    val pool = Executors.newFixedThreadPool(2)
    try {
      val futures = (0 until 2).map(r => pool.submit(() => {
        val log = ArrayBuffer[String]()
        val cpu = new CpuBackend(1)
        val backend = logged(cpu, log)
        val model = new Rwkv7Model(cfg, backend, DType.F32, Batch, false, strategy == "zero2")
        val collective = wrap(group.rank(r), log)
        try {
          val step = TrainingStep.of(model, config, layout, collective)
          try {
            step.load(init, null)
            val rng = new Random(100 + r)
            for (_ <- 0 until Steps) {
              val tokens = ModelFixtures.tokens(rng, Batch * (Ctx + 1), cfg.vocabSize)
              val inputs = (0 until Batch).flatMap(b => tokens.slice(b * (Ctx + 1), b * (Ctx + 1) + Ctx)).toArray
              val targets = (0 until Batch).flatMap(b => tokens.slice(b * (Ctx + 1) + 1, (b + 1) * (Ctx + 1))).toArray
              log += "forwardBackward {"
              step.forwardBackward(inputs, targets, Batch)
              log += "}"
              step.update(1e-2)
            }
            val master = layout.newBuffer()
            step.snapshot(master, layout.newBuffer(), layout.newBuffer())
            (master, log.toList)
          } finally step.close()
        } finally { model.close(); cpu.close() }
      }))
      futures.map(_.get(120, TimeUnit.SECONDS))
    } finally pool.shutdownNow()
  }

  private val plain: (Collective, ArrayBuffer[String]) => Collective = (c, _) => c

  /** The log of each pass: the entries from "forwardBackward {" to the next pass. */
  private def passes(log: Seq[String]): Seq[Seq[String]] = {
    val starts = log.indices.filter(log(_) == "forwardBackward {")
    starts.zip(starts.drop(1) :+ log.size).map { case (a, b) => log.slice(a, b) }
  }

  for (strategy <- Seq("ddp", "zero1", "zero2")) {
    test(s"$strategy: deferred reductions, started as the backward pass finishes each bucket and awaited before the optimizer, train bit for bit as the synchronous ones") {
      val reference = run(strategy, plain)
      val deferred = run(strategy, (c, log) => new DeferredCollective(c, log))
      for (r <- 0 until 2) assert(deferred(r)._1.sameElements(reference(r)._1), s"rank $r")
      assert(reference(0)._1.sameElements(reference(1)._1))
      assert(!reference(0)._1.sameElements(init))
      val buckets = layout.buckets.size
      for ((_, log) <- deferred; pass <- passes(log)) {
        val end = pass.indexOf("}")
        val backward = pass.take(end)
        val started = backward.filter(_.startsWith("start "))
        // Every bucket started inside the pass, the first (ln_out + head) before any block's backward ran.
        assert(started.size == buckets, pass)
        assert(started.forall(_.startsWith(if (strategy == "zero2") "start reduceScatterSum" else "start allReduceSum")), pass)
        assert(backward.indexWhere(_.startsWith("start ")) < backward.indexOf("wkv7Backward"), pass)
        assert(backward.lastIndexWhere(_.startsWith("start ")) > backward.indexOf("embeddingBackward"), pass)
        // Nothing waits on the host during the pass; zero2 orders each slot's reuse after its earlier reduction.
        assert(!backward.exists(_.startsWith("awaitPending")), pass)
        assert(backward.count(_ == "awaitOnDevice") == (if (strategy == "zero2") Layers - 2 else 0), pass)
        // After it: the wait for all of them comes before the optimizer (or the norm) reads a gradient.
        val after = pass.drop(end + 1)
        val firstRead = after.indexWhere(e => e == "sumOfSquares" || e == "adamwStep")
        assert(after.headOption.exists(_.startsWith("awaitPending(")) && firstRead > 0, pass)
        assert(!after.contains("allReduceSum"), pass) // no second, whole-buffer reduction
      }
    }
  }

  test("the hazard the device-side waits guard: zero2 without them reduces a block slot after the next block overwrote it, and trains differently") {
    val reference = run("zero2", plain)
    val unguarded = run("zero2", (c, log) => new DeferredCollective(c, log, honourDeviceWaits = false))
    assert(!unguarded(0)._1.sameElements(reference(0)._1))
  }

  test("host collectives: ddp and zero1 make one all-reduce after the backward pass (every call is a meeting of the ranks)") {
    for (strategy <- Seq("ddp", "zero1")) {
      val counted = run(strategy, (c, log) => new Collective {
        override def rank(): Int = c.rank()
        override def worldSize(): Int = c.worldSize()
        override def allReduceSum(backend: Backend, t: Tensor): Unit = { log += "allReduceSum"; c.allReduceSum(backend, t) }
        override def reduceScatterSum(backend: Backend, t: Tensor): Unit = c.reduceScatterSum(backend, t)
        override def allGather(backend: Backend, t: Tensor): Unit = c.allGather(backend, t)
        override def allGather(values: Array[Double]): Array[Double] = c.allGather(values)
        override def name(): String = c.name()
        override def close(): Unit = c.close()
      })
      for ((_, log) <- counted; pass <- passes(log)) {
        assert(pass.count(_ == "allReduceSum") == 1 && pass.indexOf("allReduceSum") > pass.indexOf("}"), pass)
      }
    }
  }
}
