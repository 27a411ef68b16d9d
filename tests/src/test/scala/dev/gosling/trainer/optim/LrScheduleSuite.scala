package dev.gosling.trainer.optim

import dev.gosling.testkit.Shared
import dev.gosling.trainer.GoslingException
import org.scalacheck.Gen
import org.scalatest.funsuite.AnyFunSuite
import org.scalatestplus.scalacheck.ScalaCheckPropertyChecks

class LrScheduleSuite extends AnyFunSuite with ScalaCheckPropertyChecks {

  /** The MiniPile demo: 6e-4 → 6e-5, ctx 512, bsz 16, warmup 10, 1 498 226 207 tokens. */
  private def demo(epochBegin: Long = 0, warmup: Long = 10) =
    new LrSchedule(6e-4, 6e-5, 512, 16, warmup, 1498226207L, epochBegin, 2520)

  test("every row of lr-vectors.tsv within 5e-9") {
    val rows = Shared.tsv("lr-vectors.tsv")
    assert(rows.size == 8)
    for (r <- rows) {
      val s = new LrSchedule(r("lr_init").toDouble, r("lr_final").toDouble, r("ctx_len").toLong, r("real_bsz").toLong,
        r("warmup_steps").toLong, r("my_exit_tokens").toLong, 0, 40320 / r("real_bsz").toLong)
      val lr = s.lr(r("global_step").toLong)
      assert(Math.abs(lr - r("expected_lr").toDouble) <= 5e-9, s"$r: $lr")
    }
  }

  test("warmup ramps 1% -> 100% over the process-local step; cosine starts after the warmup tokens") {
    val s = demo()
    // Progress is still 0 during the warmup, so the lr is lr_init times the ramp alone.
    for (step <- 0 until 10) assert(Math.abs(s.lr(step) - 6e-4 * (0.01 + 0.99 * step / 10)) < 1e-18, step)
    assert(s.progress(10) == 0.0 && s.progress(9) == 0.0 && s.progress(11) > 0.0)
    assert(Math.abs(s.lr(10) - 6e-4) < 1e-15)
  }

  test("after a resume the warmup restarts (process-local step) while the cosine continues (real step)") {
    val resumed = demo(epochBegin = 3)
    val straight = demo()
    assert(resumed.realStep(0) == 3 * 2520L)
    assert(resumed.progress(0) == straight.progress(3 * 2520L))
    assert(Math.abs(resumed.lr(0) - straight.lr(3 * 2520L) * 0.01) < 1e-18)
    assert(Math.abs(resumed.lr(10) - straight.lr(3 * 2520L + 10)) < 1e-18)
  }

  test("the run ends at the first step whose tokens reach my_exit_tokens (MiniPile: real_step 182 889); lr is lr_final there") {
    val s = demo()
    assert(!s.finished(182888) && s.finished(182889))
    assert(Math.abs(s.lr(182889) - 6e-5) < 1e-18)
    assert(Math.abs(s.lr(10000000) - 6e-5) < 1e-18)
    assert(s.progress(10000000) == 1.0)
  }

  test("warmup_steps -1 (train_temp's default): no ramp, and the cosine starts one step of tokens early") {
    val s = demo(warmup = -1)
    assert(s.progress(0) == 8192.0 / (1498226207L + 8192))
    assert(s.lr(0) < 6e-4 && Math.abs(s.lr(0) - 6e-4) < 1e-12)
  }

  test("property: after the warmup the lr never increases and stays in [lr_final, lr_init]") {
    val s = demo()
    forAll(Gen.choose(10L, 200000L), Gen.choose(1L, 5000L), minSuccessful(300)) { (step, delta) =>
      val a = s.lr(step)
      val b = s.lr(step + delta)
      assert(b <= a && a <= 6e-4 + 1e-18 && b >= 6e-5 - 1e-18)
    }
  }

  test("my_exit_tokens must be positive and lr_init > 0: one-line errors") {
    for (bad <- Seq(0L, -5L)) {
      val e = intercept[GoslingException](new LrSchedule(6e-4, 6e-5, 512, 16, 10, bad, 0, 2520))
      assert(e.getMessage.contains("--my_exit_tokens") && !e.getMessage.contains("\n"))
    }
    val e = intercept[GoslingException](new LrSchedule(0, 6e-5, 512, 16, 10, 1000, 0, 2520))
    assert(e.getMessage.contains("--lr_init"))
  }
}
