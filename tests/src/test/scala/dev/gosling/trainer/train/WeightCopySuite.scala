package dev.gosling.trainer.train

import dev.gosling.trainer.backend.{Backend, DType, Tensor}
import dev.gosling.trainer.backend.cpu.CpuBackend
import dev.gosling.trainer.dist.{Collective, InProcessCollective, Shard}
import dev.gosling.trainer.model.{ModelConfig, ParameterLayout, Rwkv7Model}
import dev.gosling.trainer.model.ModelFixtures._
import dev.gosling.trainer.optim.DeviceAdamW
import org.scalatest.BeforeAndAfterAll
import org.scalatest.funsuite.AnyFunSuite

import java.lang.reflect.{InvocationHandler, InvocationTargetException, Method, Proxy}
import java.nio.file.Files
import java.util.concurrent.{Executors, TimeUnit}
import scala.collection.mutable.ArrayBuffer
import scala.util.Random

/**
 * The model's copy of its GEMM weights ([[Backend#gemmWeightCopyDtype]], bf16 under the CUDA backend's bf16 GEMMs) and
 * who may trust it, checked on the CPU through a backend that keeps one (in F32): a pass converts each GEMM weight
 * (every block, the head) once and reads it back, unless the optimizer wrote the copy in the step just before it, when
 * it converts nothing; anything else that changes the weights (parametersUpdated, setParameters, a step without the
 * copy, another pass) leaves it untrusted; sharded optimizers (ZeRO) never write it. The backend compares the copy with
 * the weights at every hold that does not convert: no stale copy is ever read.
 */
class WeightCopySuite extends AnyFunSuite with BeforeAndAfterAll {

  private val cpu = new CpuBackend(2)
  override def afterAll(): Unit = cpu.close()

  // vocab 99: block 0 starts at 6336, not a multiple of 128, so the copy starts before it (at 6272)
  private val config = ModelConfig.of(3, 64, 99, 16)
  private val layout = new ParameterLayout(config)
  private val T = config.ctxLen
  private val rng = new Random(3)
  private val inputs = tokens(rng, 2 * T, config.vocabSize)
  private val targets = tokens(rng, 2 * T, config.vocabSize)

  /** What the copying backend saw: the holds (convert, read, plain) and optimizer steps, and the stale reads. */
  private final class Seen {
    val calls = ArrayBuffer[String]()
    var stale = 0
    @volatile var copyOn = true
  }

  /** The CPU backend `cpu`, offering an F32 copy while `seen.copyOn`; a hold that does not convert checks the copy. */
  private def copying(seen: Seen, cpu: CpuBackend = cpu): Backend = {
    val handler = new InvocationHandler {
      override def invoke(proxy: AnyRef, m: Method, args: Array[AnyRef]): AnyRef = (m.getName, if (args == null) 0 else args.length) match {
        case ("gemmWeightCopyDtype", 1) => if (seen.copyOn) DType.F32 else null
        case ("holdGemmOperand", 3) =>
          val w = args(0).asInstanceOf[Tensor]
          val copy = args(1).asInstanceOf[Tensor]
          assert(copy.dtype == DType.F32 && copy.numel == w.numel, s"copy ${copy.numel} × ${copy.dtype} for ${w.numel} weights")
          if (args(2).asInstanceOf[Boolean]) seen.calls += s"convert ${w.numel}"
          else {
            val a = new Array[Float](w.numel.toInt)
            val b = new Array[Float](w.numel.toInt)
            cpu.download(w, a)
            cpu.download(copy, b)
            if (!a.sameElements(b)) seen.stale += 1
            seen.calls += s"read ${w.numel}"
          }
          cpu.holdGemmOperand(w, copy, args(2).asInstanceOf[Boolean]) // the default: converts (a copy) when asked
          null
        case ("holdGemmOperand", 1) =>
          seen.calls += s"plain ${args(0).asInstanceOf[Tensor].numel}"
          cpu.holdGemmOperand(args(0).asInstanceOf[Tensor])
          null
        case ("adamwStep", n) =>
          seen.calls += (if (n == 15) "adamw writing the copy" else "adamw")
          invokeOn(cpu, m, args)
        case _ => invokeOn(cpu, m, args)
      }
    }
    Proxy.newProxyInstance(getClass.getClassLoader, Array(classOf[Backend]), handler).asInstanceOf[Backend]
  }

  private def invokeOn(target: AnyRef, m: Method, args: Array[AnyRef]): AnyRef =
    try m.invoke(target, (if (args == null) Array.empty[AnyRef] else args): _*)
    catch { case e: InvocationTargetException => throw e.getCause }

  private def blockLengths: Seq[Long] = (0 until config.nLayer).map(l => layout.blockBucket(l).length)
  private val head = layout.get("head.weight").numel

  /** The holds of one forwardBackward: each block and the head `how` on the way up, the blocks read on the way down. */
  private def pass(how: String): Seq[String] =
    blockLengths.map(n => s"$how $n") ++ Seq(s"$how $head") ++ blockLengths.reverse.map(n => s"read $n")

  private val converting = pass("convert")
  private val reading = pass("read")

  /** The calls since the last one, cleared. */
  private def take(seen: Seen): Seq[String] = { val c = seen.calls.toList; seen.calls.clear(); c }

  private def newAdam(backend: Backend, pieces: java.util.List[Shard] = null) =
    new DeviceAdamW(backend, layout, 0.9, 0.99, 1e-8, 0.01, 1.0, pieces)

  for (gradCp <- Seq(false, true)) {
    test(s"grad_cp $gradCp: a pass converts every GEMM weight once and reads it back; the same loss and gradients as without a copy") {
      val seen = new Seen
      val plain = new Rwkv7Model(config, cpu, DType.F32, 2, gradCp)
      val model = new Rwkv7Model(config, copying(seen), DType.F32, 2, gradCp)
      try {
        assert(plain.weightCopy() == null && plain.weightCopyBytes == 0)
        // the copy runs from block 0's start rounded down to a multiple of 128 to the end (the blocks and the head)
        val from = layout.blockBucket(0).start / 128 * 128
        assert(from < layout.blockBucket(0).start)
        assert(model.weightCopy().from == from && model.weightCopyBytes == (layout.totalElements - from) * 4)
        val p = randomParams(layout, seed = 7)
        plain.setParameters(p)
        model.setParameters(p)
        val g0 = layout.newBuffer()
        val g1 = layout.newBuffer()
        val l0 = plain.forwardBackward(inputs, targets, 2, g0)
        val l1 = model.forwardBackward(inputs, targets, 2, g1)
        assert(l1 == l0 && g1.sameElements(g0))
        assert(take(seen) == converting)
        assert(seen.stale == 0)
      } finally { plain.close(); model.close() }
    }
  }

  test("after an optimizer step that wrote the copy a pass converts nothing; steps train bit for bit as without a copy") {
    val seen = new Seen
    val backend = copying(seen)
    val plain = new Rwkv7Model(config, cpu, DType.F32, 2)
    val model = new Rwkv7Model(config, backend, DType.F32, 2)
    val plainAdam = newAdam(cpu)
    val adam = newAdam(backend)
    try {
      val p = randomParams(layout, seed = 11)
      plain.setParameters(p)
      model.setParameters(p)
      for (s <- 0 until 4) {
        val l0 = plain.forwardBackward(inputs, targets, 2)
        val l1 = model.forwardBackward(inputs, targets, 2)
        assert(l1 == l0, s"step $s")
        assert(take(seen) == (if (s == 0) converting else reading), s"step $s")
        plainAdam.step(plain.masterParameters, plain.gradients, 1e-2, 1)
        plain.parametersUpdated()
        adam.step(model.masterParameters, model.gradients, 1e-2, 1, model.weightCopy())
        assert(take(seen) == Seq("adamw writing the copy"))
      }
      val a = layout.newBuffer()
      val b = layout.newBuffer()
      cpu.download(plain.masterParameters, a)
      cpu.download(model.masterParameters, b)
      assert(a.sameElements(b) && !a.sameElements(p))
      assert(seen.stale == 0)
    } finally { plainAdam.close(); adam.close(); plain.close(); model.close() }
  }

  test("anything else after such a step leaves the copy untrusted: parametersUpdated, setParameters, a step without the copy, a second pass") {
    val seen = new Seen
    val backend = copying(seen)
    val model = new Rwkv7Model(config, backend, DType.F32, 2)
    val adam = newAdam(backend)
    try {
      model.setParameters(randomParams(layout, seed = 13))
      model.forwardBackward(inputs, targets, 2)
      def writeCopy(): Unit = adam.step(model.masterParameters, model.gradients, 1e-2, 1, model.weightCopy())
      val changes: Seq[(String, () => Unit)] = Seq(
        "parametersUpdated" -> (() => { writeCopy(); model.parametersUpdated() }),
        "setParameters" -> (() => { writeCopy(); model.setParameters(randomParams(layout, seed = 17)) }),
        // a caller that forgets parametersUpdated after a step without the copy: the copy was not marked
        "a step without the copy" -> (() => { writeCopy(); model.forwardBackward(inputs, targets, 2);
          adam.step(model.masterParameters, model.gradients, 1e-2, 1) }),
        "a forward-only pass between" -> (() => { writeCopy(); model.loss(inputs, targets, 2) }))
      for ((what, change) <- changes) {
        change()
        take(seen)
        model.forwardBackward(inputs, targets, 2)
        assert(take(seen) == converting, what)
      }
      // the forward-only pass after the step read the copy the optimizer wrote; the pass after it converted again
      writeCopy()
      take(seen)
      model.loss(inputs, targets, 2)
      assert(take(seen) == blockLengths.map(n => s"read $n") :+ s"read $head")
      assert(seen.stale == 0)
    } finally { adam.close(); model.close() }
  }

  test("only a whole optimizer writes the copy, and only its own model's: a sharded one and a copy of other weights are refused") {
    val seen = new Seen
    val backend = copying(seen)
    val model = new Rwkv7Model(config, backend, DType.F32, 2)
    val other = new Rwkv7Model(config, backend, DType.F32, 2)
    val n = layout.totalElements
    val sharded = newAdam(backend, java.util.List.of(new Shard(0, n / 2)))
    val adam = newAdam(backend)
    try {
      model.setParameters(randomParams(layout, seed = 19))
      model.forwardBackward(inputs, targets, 2)
      val e = intercept[IllegalStateException](sharded.step(model.masterParameters, model.gradients, 1e-2, 1, model.weightCopy()))
      assert(e.getMessage.contains("sharded optimizer"))
      val e2 = intercept[IllegalArgumentException](adam.step(model.masterParameters, model.gradients, 1e-2, 1, other.weightCopy()))
      assert(e2.getMessage.contains("not of these params"))
      intercept[IllegalArgumentException](model.weightCopy().writtenWith(other.masterParameters))
      assert(sharded.stepCount == 0 && adam.stepCount == 0)
      take(seen)
      model.forwardBackward(inputs, targets, 2)
      assert(take(seen) == converting)
      assert(seen.stale == 0)
    } finally { sharded.close(); adam.close(); other.close(); model.close() }
  }

  test("a backend that stops offering the copy (another GEMM precision) gets plain holds; offering it again converts first") {
    val seen = new Seen
    val backend = copying(seen)
    val model = new Rwkv7Model(config, backend, DType.F32, 2)
    val adam = newAdam(backend)
    try {
      model.setParameters(randomParams(layout, seed = 23))
      model.forwardBackward(inputs, targets, 2)
      seen.copyOn = false
      take(seen)
      model.forwardBackward(inputs, targets, 2)
      assert(take(seen) == blockLengths.map(n => s"plain $n") ++ Seq(s"plain $head") ++ blockLengths.reverse.map(n => s"plain $n"))
      // the weights change while the copy is off: the next pass with it must not read the copies of before
      model.setParameters(randomParams(layout, seed = 29))
      seen.copyOn = true
      model.forwardBackward(inputs, targets, 2)
      assert(take(seen) == converting)
      // an optimizer step while the copy is off still writes it (the copy is the model's): trusted once back on
      seen.copyOn = false
      adam.step(model.masterParameters, model.gradients, 1e-2, 1, model.weightCopy())
      seen.copyOn = true
      take(seen)
      model.forwardBackward(inputs, targets, 2)
      assert(take(seen) == reading)
      assert(seen.stale == 0)
    } finally { adam.close(); model.close() }
  }

  /**
   * `steps` training steps of [[TrainingStep]] on 2 ranks (threads) under `strategy`, each rank's backend copying
   * (or not); returns each rank's final weights and the calls of its copying backend, "pass" before each pass.
   */
  private def trainTwoRanks(strategy: String, copyOn: Boolean, steps: Int = 3): Seq[(Array[Float], Seq[String], Int)] = {
    val flags = TrainFixture.flags(Files.createTempDirectory("gosling-weight-copy"), T, 2, "strategy" -> strategy, "devices" -> "2")
    val trainConfig = TrainFixture.config(flags)
    val group = new InProcessCollective.Group(2, 30)
    val pool = Executors.newFixedThreadPool(2)
    val init = randomParams(layout, seed = 31)
    try {
      val futures = (0 until 2).map(r => pool.submit(() => {
        val seen = new Seen
        seen.copyOn = copyOn
        val rankCpu = new CpuBackend(1)
        val model = new Rwkv7Model(config, copying(seen, rankCpu), DType.F32, 2, false, strategy == "zero2")
        val collective: Collective = group.rank(r)
        try {
          val step = TrainingStep.of(model, trainConfig, layout, collective)
          try {
            step.load(init, null)
            val data = new Random(100 + r)
            for (_ <- 0 until steps) {
              seen.calls += "pass"
              step.forwardBackward(tokens(data, 2 * T, config.vocabSize), tokens(data, 2 * T, config.vocabSize), 2)
              step.update(1e-2)
            }
            val master = layout.newBuffer()
            step.snapshot(master, layout.newBuffer(), layout.newBuffer())
            (master, seen.calls.toList, seen.stale)
          } finally step.close()
        } finally { model.close(); rankCpu.close() }
      }))
      futures.map(_.get(120, TimeUnit.SECONDS))
    } finally pool.shutdownNow()
  }

  /** The holds of each pass (the calls from one "pass" to the next, less the optimizer's). */
  private def holdsPerPass(calls: Seq[String]): Seq[Seq[String]] = {
    val starts = calls.indices.filter(calls(_) == "pass")
    starts.zip(starts.drop(1) :+ calls.size).map { case (a, b) => calls.slice(a + 1, b).filterNot(_.startsWith("adamw")) }
  }

  for (strategy <- Seq("ddp", "zero1", "zero2")) {
    test(s"$strategy over 2 ranks: ${if (strategy == "ddp") "the optimizer writes the copy, the passes after the first convert nothing" else "the optimizer never writes the copy, every pass converts"}; the same weights as without a copy") {
      val withCopy = trainTwoRanks(strategy, copyOn = true)
      val without = trainTwoRanks(strategy, copyOn = false)
      for (r <- 0 until 2) {
        val (master, calls, stale) = withCopy(r)
        assert(master.sameElements(without(r)._1), s"rank $r")
        assert(stale == 0)
        val holds = holdsPerPass(calls)
        assert(holds.size == 3)
        assert(holds.head == converting)
        for (p <- holds.tail) assert(p == (if (strategy == "ddp") reading else converting), s"rank $r")
        val optimizer = calls.filter(_.startsWith("adamw"))
        assert(optimizer.nonEmpty && optimizer.forall(_ == (if (strategy == "ddp") "adamw writing the copy" else "adamw")))
      }
      assert(withCopy(0)._1.sameElements(withCopy(1)._1))
    }
  }
}
