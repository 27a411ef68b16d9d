package dev.gosling.data

import dev.gosling.testkit.Shared
import dev.gosling.trainer.GoslingException
import dev.gosling.trainer.data.MagicPrime
import java.math.BigInteger
import org.scalacheck.Gen
import org.scalatest.funsuite.AnyFunSuite
import org.scalatestplus.scalacheck.ScalaCheckPropertyChecks

class MagicPrimeSuite extends AnyFunSuite with ScalaCheckPropertyChecks {

  /** make_data's is_prime (rwkv7-reference.md §1.1): trial division by 2, 3 and 6k ± 1. */
  private def trialDivisionIsPrime(n: Long): Boolean =
    if (n <= 1) false
    else if (n <= 3) true
    else if (n % 2 == 0 || n % 3 == 0) false
    else {
      var i = 5L
      var prime = true
      while (prime && i * i <= n) {
        if (n % i == 0 || n % (i + 2) == 0) prime = false
        i += 6
      }
      prime
    }

  /** make_data's search, literally: from ⌊size/ctx⌋ − 1 down, the first i with i % 3 == 2 and is_prime(i). */
  private def trialDivisionMagicPrime(dataSize: Long, ctxLen: Int): Long = {
    var i = dataSize / ctxLen - 1
    while (!(i % 3 == 2 && trialDivisionIsPrime(i))) i -= 1
    i
  }

  private def bigIntegerIsPrime(n: Long): Boolean = BigInteger.valueOf(n).isProbablePrime(100)

  test("every row of magic-prime-vectors.tsv") {
    val rows = Shared.tsv("magic-prime-vectors.tsv")
    assert(rows.size == 5)
    for (row <- rows) {
      val total = row("total_tokens").toLong
      val ctx = row("ctx_len").toInt
      assert(MagicPrime.magicPrime(total, ctx) == row("expected_magic_prime").toLong, row)
    }
  }

  test("isPrime agrees with trial division for every n below 10^6") {
    var n = -5L
    while (n < 1000000L) {
      assert(MagicPrime.isPrime(n) == trialDivisionIsPrime(n), s"n = $n")
      n += 1
    }
  }

  test("isPrime agrees with trial division on ranges around 2^31, 2^32 and 10^12") {
    for (centre <- Seq(1L << 31, 1L << 32, 3037000499L, 1000000000000L); n <- centre - 1500 to centre + 1500)
      assert(MagicPrime.isPrime(n) == trialDivisionIsPrime(n), s"n = $n")
  }

  test("known large primes are prime, up to the largest below 2^63") {
    val primes = Seq(
      2147483647L,          // 2^31 − 1
      4294967291L,          // largest below 2^32
      3037000493L,          // largest below √(2^63)
      999999999989L,        // largest with 12 digits
      2305843009213693951L, // 2^61 − 1
      4611686018427387847L, // 2^62 − 57, largest below 2^62
      9223372036854775783L) // 2^63 − 25, largest below 2^63
    for (p <- primes) {
      assert(MagicPrime.isPrime(p), p)
      assert(bigIntegerIsPrime(p), p)
    }
  }

  test("Carmichael numbers, strong pseudoprimes to small bases and large semiprimes are composite") {
    val carmichael = Seq(561L, 41041L, 825265L, 321197185L, 5394826801L, 232250619601L, 9746347772161L)
    // Each fools Miller–Rabin for the first few prime bases; the last passes bases 2..31 and only 37 exposes it.
    val strongPseudoprimes = Seq(2047L, 1373653L, 25326001L, 3215031751L, 2152302898747L, 3474749660383L,
      341550071728321L, 3825123056546413051L)
    val semiprimes = Seq(
      2147483647L * 4294967291L, // (2^31 − 1)(2^32 − 5), just below 2^63
      3037000493L * 3037000493L, // a prime squared, just below 2^63
      2305843009213693951L * 3L,
      Long.MaxValue)             // 2^63 − 1 = 7² · 73 · 127 · 337 · 92737 · 649657
    for (n <- carmichael ++ strongPseudoprimes ++ semiprimes) {
      assert(!MagicPrime.isPrime(n), n)
      assert(!bigIntegerIsPrime(n), n)
    }
  }

  test("isPrime agrees with BigInteger on random longs and on random products of two primes") {
    forAll(Gen.choose(0L, Long.MaxValue), minSuccessful(2000)) { n =>
      assert(MagicPrime.isPrime(n) == bigIntegerIsPrime(n))
    }
    val prime31 = Gen.choose(1L << 30, 1L << 31).map(n => BigInteger.valueOf(n).nextProbablePrime.longValueExact)
    forAll(prime31, prime31, minSuccessful(300)) { (p, q) =>
      assert(!MagicPrime.isPrime(p * q))
      assert(MagicPrime.isPrime(p))
    }
  }

  test("isPrime is false below 2") {
    for (n <- Seq(Long.MinValue, -7L, -2L, -1L, 0L, 1L)) assert(!MagicPrime.isPrime(n), n)
  }

  test("magicPrime agrees with make_data's trial-division search on random sizes, including above 2^32") {
    val sizes = Gen.oneOf(Gen.choose(3L, 10000000L), Gen.choose(1L << 32, 1L << 40))
    forAll(sizes, Gen.oneOf(1, 2, 7, 512, 1024, 4096), minSuccessful(300)) { (size, ctx) =>
      whenever(size >= 3L * ctx) {
        assert(MagicPrime.magicPrime(size, ctx) == trialDivisionMagicPrime(size, ctx), s"size $size ctx $ctx")
      }
    }
  }

  test("magicPrime for 64-bit token counts: 2^40, near 2^62 and Long.MaxValue") {
    for ((size, ctx) <- Seq((1L << 40, 4096), (1L << 62, 1), (1L << 62, 4096), (Long.MaxValue, 1), (Long.MaxValue, 512))) {
      val p = MagicPrime.magicPrime(size, ctx)
      val chunks = size / ctx - 1
      assert(p % 3 == 2 && p <= chunks && bigIntegerIsPrime(p), s"size $size ctx $ctx: $p")
      // Nothing larger qualifies: every i ≡ 2 (mod 3) in (p, chunks] is composite.
      var i = p + 3
      while (i <= chunks && i > 0) {
        assert(!bigIntegerIsPrime(i), s"size $size ctx $ctx: $i is a larger candidate")
        i += 3
      }
    }
    assert(MagicPrime.magicPrime(1L << 62, 1) == 4611686018427387761L)
    assert(MagicPrime.magicPrime(Long.MaxValue, 1) == 9223372036854775643L)
  }

  test("the smallest data size, exactly 3 × ctx_len, gives 2") {
    assert(MagicPrime.magicPrime(3L * 4096, 4096) == 2)
    assert(MagicPrime.magicPrime(3L * 4096 + 4095, 4096) == 2)
    assert(MagicPrime.magicPrime(4L * 4096, 4096) == 2)
    assert(MagicPrime.magicPrime(6L * 4096, 4096) == 5)
  }

  test("data smaller than 3 × ctx_len is a one-line error with both numbers") {
    val e = intercept[GoslingException](MagicPrime.magicPrime(12287, 4096))
    assert(e.getMessage.startsWith("data has 12287 tokens, fewer than 3 × ctx_len = 12288; "), e.getMessage)
    assert(!e.getMessage.contains("\n"))
    val empty = intercept[GoslingException](MagicPrime.magicPrime(0, 512))
    assert(empty.getMessage.startsWith("data has 0 tokens, fewer than 3 × ctx_len = 1536"), empty.getMessage)
  }

  test("3 × ctx_len is computed in 64 bits for the largest ctx_len") {
    val e = intercept[GoslingException](MagicPrime.magicPrime(6000000000L, Int.MaxValue))
    assert(e.getMessage.contains("= 6442450941"), e.getMessage)
    assert(MagicPrime.magicPrime(6442450941L, Int.MaxValue) == 2)
  }

  test("a non-positive ctx_len is a one-line error") {
    for (ctx <- Seq(0, -4096)) {
      val e = intercept[GoslingException](MagicPrime.magicPrime(200499, ctx))
      assert(e.getMessage.startsWith(s"ctx_len is $ctx; "), e.getMessage)
    }
  }
}
