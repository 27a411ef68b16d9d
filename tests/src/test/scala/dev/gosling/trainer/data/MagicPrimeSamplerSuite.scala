package dev.gosling.trainer.data

import dev.gosling.testkit.Shared
import dev.gosling.trainer.GoslingException
import org.scalacheck.Gen
import org.scalatest.funsuite.AnyFunSuite
import org.scalatestplus.scalacheck.ScalaCheckPropertyChecks

import java.math.BigInteger

class MagicPrimeSamplerSuite extends AnyFunSuite with ScalaCheckPropertyChecks {

  /** A sampler over just enough data: p + 1 chunks and one token, as make_data's p <= tokens//ctx - 1 gives. */
  private def sampler(p: Long, ctx: Int, realBsz: Long = 16): MagicPrimeSampler =
    new MagicPrimeSampler(p, ctx, (p + 1) * ctx + 1, 40320 / realBsz, realBsz)

  private def oneLineError(f: => Any): String = {
    val e = intercept[GoslingException](f)
    assert(!e.getMessage.contains("\n"), e.getMessage)
    e.getMessage
  }

  test("every row of sampler-vectors.tsv") {
    val rows = Shared.tsv("sampler-vectors.tsv")
    assert(rows.size == 12)
    for (r <- rows) {
      val w = r("world_size").toInt
      val s = sampler(r("magic_prime").toLong, r("ctx_len").toInt, realBsz = 16L * w)
      val offset = s.offset(r("epoch").toLong, r("idx").toLong, w, r("rank").toInt)
      assert(offset == r("expected_offset").toLong, r.toString)
    }
  }

  test("factor = floor(p·(√5−1)/2) in double: 1 808 479, 50 111 936, 29") {
    assert(sampler(2926181, 512).factor == 1808479L)
    assert(sampler(81082817, 4096).factor == 50111936L)
    assert(sampler(47, 4096).factor == 29L)
  }

  test("mulMod is exact for any modulus below 2^63") {
    val gen = for {
      m <- Gen.choose(2L, Long.MaxValue)
      a <- Gen.choose(0L, m - 1)
      b <- Gen.choose(0L, m - 1)
    } yield (a, b, m)
    forAll(gen, minSuccessful(2000)) { case (a, b, m) =>
      val expected = BigInteger.valueOf(a).multiply(BigInteger.valueOf(b)).mod(BigInteger.valueOf(m)).longValueExact
      assert(MagicPrimeSampler.mulMod(a, b, m) == expected)
    }
  }

  private def assertVisitsEveryChunkOnce(p: Long): Unit = {
    val s = sampler(p, 16)
    val seen = new java.util.BitSet(p.toInt)
    for (ii <- 1L to p) {
      val c = s.chunk(ii)
      assert(c >= 0 && c < p && !seen.get(c.toInt), s"p=$p ii=$ii chunk $c repeated or out of range")
      seen.set(c.toInt)
    }
    assert(seen.cardinality == p)
    for (ii <- Seq(1L, 2L, p - 1, p)) assert(s.chunk(ii + p) == s.chunk(ii))
  }

  test("ii = 1..p visits every chunk exactly once, then repeats (p = 11, 17, 47, 257, 389, 65537)") {
    for (p <- Seq(11L, 17L, 47L, 257L, 389L, 65537L)) assertVisitsEveryChunkOnce(p)
  }

  test("property: the same for random primes = 2 (mod 3)") {
    val primes = Gen.choose(11L, 30000L).map { n =>
      Iterator.iterate(n)(_ + 1).find(k => k % 3 == 2 && BigInteger.valueOf(k).isProbablePrime(60)).get
    }
    forAll(primes, minSuccessful(40))(p => assertVisitsEveryChunkOnce(p))
  }

  test("a prime = 1 (mod 3) would repeat chunks (why the reference demands 2 mod 3)") {
    val p = 43L // prime, 43 % 3 == 1: cubing is 3-to-1 on the units
    val factor = (p * ((Math.sqrt(5.0) - 1) / 2)).toLong
    val chunks = (1L to p).map(ii => factor * ii * ii * ii % p).toSet
    assert(chunks.size < p)
  }

  test("offset: ranks take consecutive ii at each step, epochs advance ii by 40320") {
    val s = sampler(2926181, 512, realBsz = 32)
    forAll(Gen.choose(0L, 200L), Gen.choose(0L, 5039L), Gen.oneOf(1, 2, 4, 8), minSuccessful(200)) { (epoch, idx, w) =>
      for (rank <- 0 until w) {
        val ii = 1 + epoch * 40320 + idx * w + rank
        assert(s.offset(epoch, idx, w, rank) == s.chunk(ii) * 512)
      }
    }
    // One miniepoch on 8 ranks covers exactly ii in [1 + 40320·e, 40320·(e+1)].
    val iis = for (idx <- 0L until 5040L; rank <- 0 until 8) yield 1 + 3 * 40320L + idx * 8 + rank
    assert(iis.sorted == (1 + 3 * 40320L to 4 * 40320L))
  }

  test("p near 2^62: exact arithmetic (BigInteger reference), no overflow") {
    var p = BigInteger.ONE.shiftLeft(62).add(BigInteger.valueOf(12345)).nextProbablePrime()
    while (p.mod(BigInteger.valueOf(3)).intValue != 2) p = p.nextProbablePrime()
    val pl = p.longValueExact
    val s = new MagicPrimeSampler(pl, 1, pl + 2, 2520, 16)
    val factor = BigInteger.valueOf(s.factor)
    assert(s.factor == (pl.toDouble * ((Math.sqrt(5.0) - 1) / 2)).toLong)
    forAll(Gen.choose(0L, 1000000L), Gen.choose(0L, 40319L), minSuccessful(200)) { (epoch, idx) =>
      val ii = BigInteger.valueOf(1 + epoch * 40320 + idx)
      val expected = factor.multiply(ii.pow(3)).mod(p).longValueExact
      assert(s.offset(epoch, idx, 1, 0) == expected)
    }
  }

  test("constructor checks: one-line errors naming magic_prime or the batch") {
    assert(oneLineError(new MagicPrimeSampler(49, 512, 50L * 512, 2520, 16)).contains("--magic_prime 49 is not a prime"))
    assert(oneLineError(new MagicPrimeSampler(43, 512, 45L * 512, 2520, 16)).contains("(mod 3)"))
    // 0.9 < p/slots <= 1: 47 of 100 chunks is too few, 47 of 40 chunks too many.
    assert(oneLineError(new MagicPrimeSampler(47, 512, 100L * 512, 2520, 16)).contains("(0.9, 1]"))
    assert(oneLineError(new MagicPrimeSampler(47, 512, 40L * 512, 2520, 16)).contains("(0.9, 1]"))
    // p = slots passes the reference's ratio check but chunk p-1 would read one token past the end.
    assert(oneLineError(new MagicPrimeSampler(47, 512, 47L * 512, 2520, 16)).contains("reads past the data"))
    assert(oneLineError(new MagicPrimeSampler(47, 512, 48L * 512, 1000, 16)).contains("40320"))
    // The MiniPile numbers pass: 1 498 226 207 tokens, ctx 512, bsz 16.
    assert(new MagicPrimeSampler(2926181, 512, 1498226207L, 2520, 16).magicPrime == 2926181L)
    MagicPrimeSampler.requireUsablePrime(81082817L)
  }
}
