package dev.gosling.dedup

import java.math.BigInteger
import java.util.SplittableRandom

import dev.gosling.pipeline.dedup.{FuzzyDedupConfig, MinHasher, PlantedCorpus, Shingler}
import org.scalatest.funsuite.AnyFunSuite

import scala.collection.parallel.CollectionConverters._

class MinHashSuite extends AnyFunSuite {
  /** A line of a results table: in the ScalaTest report and on stdout (Surefire's console). */
  private def report(line: String): Unit = {
    info(line)
    println(line)
  }

  private val P = MinHasher.P

  private def reference(a: Long, x: Long, b: Long): Long =
    BigInteger.valueOf(a).multiply(BigInteger.valueOf(x)).add(BigInteger.valueOf(b)).mod(BigInteger.valueOf(P)).longValue

  test("(a·x + b) mod 2^61−1 is exact (no 64-bit wrap-around), against BigInteger") {
    val edges = Seq(0L, 1L, 2L, P - 2, P - 1, P, (1L << 61) - 2, 1L << 60, (1L << 61) - 1)
    for (a <- edges.filter(a => a >= 1 && a < P); x <- edges.filter(_ < (1L << 61)); b <- edges.filter(_ < P))
      assert(MinHasher.permute(a, x, b) == reference(a, x, b), s"a=$a x=$x b=$b")
    val r = new SplittableRandom(1)
    for (_ <- 0 until 200000) {
      val a = 1 + r.nextLong(P - 1)
      val x = r.nextLong() >>> 3
      val b = r.nextLong(P)
      assert(MinHasher.permute(a, x, b) == reference(a, x, b))
    }
  }

  test("a signature depends on the shingle set only: order and repeats do not matter; the seed does") {
    val mh = new MinHasher(4, 3, 7)
    val set = Array.tabulate(50)(i => Shingler.fmix64(i + 1000L))
    val shuffled = set.reverse ++ set.take(10)
    val s1 = new Array[Long](12)
    val s2 = new Array[Long](12)
    mh.signature(set, set.length, s1)
    mh.signature(shuffled, shuffled.length, s2)
    assert(s1.toSeq == s2.toSeq)
    assert(s1.forall(v => v >= 0 && v < P))
    val other = new Array[Long](12)
    new MinHasher(4, 3, 8).signature(set, set.length, other)
    assert(other.toSeq != s1.toSeq)
    assert((0 until 4).map(b => mh.bandHash(s1, b)).distinct.size == 4)
  }

  test("each MinHash value collides with probability J (one signature of 1024 values per pair)") {
    val mh = new MinHasher(1024, 1, 3)
    val sa = new Array[Long](1024)
    val sb = new Array[Long](1024)
    for ((inter, union) <- Seq((100, 400), (200, 400), (300, 400), (380, 400))) {
      var agree = 0L
      val pairs = 20
      for (p <- 0 until pairs) {
        val common = Array.tabulate(inter)(i => Shingler.fmix64(p * 1000003L + i))
        val onlyA = Array.tabulate((union - inter) / 2)(i => Shingler.fmix64(-1 - p * 1000003L - i))
        val onlyB = Array.tabulate(union - inter - onlyA.length)(i => Shingler.fmix64(Long.MinValue / 2 + p * 1000003L + i))
        val a = common ++ onlyA
        val b = common ++ onlyB
        mh.signature(a, a.length, sa)
        mh.signature(b, b.length, sb)
        agree += (0 until 1024).count(i => sa(i) == sb(i))
      }
      val j = inter.toDouble / union
      val rate = agree.toDouble / (pairs * 1024)
      val sd = math.sqrt(j * (1 - j) / (pairs * 1024))
      report(f"J=$j%.3f collision rate $rate%.4f (sd $sd%.4f)")
      assert(math.abs(rate - j) <= 4 * sd + 1e-9, s"J=$j rate=$rate")
    }
  }

  test("LSH candidate recall is within ±2 pp of 1 − (1 − s^r)^b at every similarity (default 20 × 9, planted pairs)") {
    val cfg = FuzzyDedupConfig.defaults()
    val (bands, rows) = (cfg.bands, cfg.rows)
    val levels = Seq(0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99)
    report(f"${"target s"}%9s ${"pairs"}%6s ${"mean J"}%8s ${"theory"}%8s ${"observed"}%9s ${"diff pp"}%8s ${"4 sd pp"}%8s")
    for ((s, li) <- levels.zipWithIndex) {
      val p = MinHasher.candidateProbability(s, bands, rows)
      // enough pairs that 2 pp is at least four binomial standard deviations (and at least 2000)
      val pairs = math.max(2000, math.ceil(40000 * p * (1 - p)).toInt)
      val corpus = new PlantedCorpus(new PlantedCorpus.Spec(1000L + li, pairs, 2, Array(s), 0, 220, 320, 0.0, 5, 5))
      val results = (0 until pairs).par.map { f =>
        val shingler = new Shingler(cfg.shingleWords, cfg.cjkShingleChars)
        val mh = new MinHasher(bands, rows, cfg.seed)
        val a = corpus.doc(2L * f)
        val b = corpus.doc(2L * f + 1)
        val setA = shingler.shingleSet(a.text)
        val setB = shingler.shingleSet(b.text)
        val j = Shingler.jaccard(setA, setB)
        assert(j == b.planned, s"family $f: measured $j, planned ${b.planned}")
        val sa = new Array[Long](bands * rows)
        val sb = new Array[Long](bands * rows)
        mh.signature(setA, setA.length, sa)
        mh.signature(setB, setB.length, sb)
        val candidate = (0 until bands).exists(band => mh.bandHash(sa, band) == mh.bandHash(sb, band))
        (j, MinHasher.candidateProbability(j, bands, rows), candidate)
      }.seq
      val meanJ = results.map(_._1).sum / pairs
      val theory = results.map(_._2).sum / pairs
      val observed = results.count(_._3).toDouble / pairs
      val sd = math.sqrt(results.map(r => r._2 * (1 - r._2)).sum) / pairs
      report(f"$s%9.2f $pairs%6d $meanJ%8.4f $theory%8.4f $observed%9.4f ${100 * (observed - theory)}%8.2f ${400 * sd}%8.2f")
      assert(math.abs(observed - theory) <= 0.02, f"s=$s: observed $observed%.4f, theory $theory%.4f")
    }
  }

  test("the default S-curve: threshold ≈ 0.72, and pairs at 0.85 are candidates with probability ≥ 0.99") {
    val cfg = FuzzyDedupConfig.defaults()
    assert(cfg.permutations == 180)
    assert(math.abs(cfg.lshThreshold - 0.717) < 0.001)
    assert(MinHasher.candidateProbability(0.85, cfg.bands, cfg.rows) >= 0.99)
    assert(MinHasher.candidateProbability(0.5, cfg.bands, cfg.rows) < 0.04)
    // better than datatrove's 14 × 8 on both sides of the threshold
    for (s <- Seq(0.8, 0.85, 0.9))
      assert(MinHasher.candidateProbability(s, 20, 9) > MinHasher.candidateProbability(s, 14, 8))
    for (s <- Seq(0.3, 0.5, 0.6, 0.7))
      assert(MinHasher.candidateProbability(s, 20, 9) < MinHasher.candidateProbability(s, 14, 8))
  }
}
