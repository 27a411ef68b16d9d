package dev.gosling.dedup

import java.util.SplittableRandom

import dev.gosling.pipeline.dedup.{PlantedCorpus, Shingler}
import dev.gosling.pipeline.dedup.Shingler.Mode
import org.scalatest.funsuite.AnyFunSuite

import scala.jdk.CollectionConverters._

class PlantedCorpusSuite extends AnyFunSuite {
  private val levels = Array(0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99)

  private def corpus(cjk: Double, seed: Long = 11, families: Int = 60, unrelated: Int = 40, size: Int = 5) =
    new PlantedCorpus(new PlantedCorpus.Spec(seed, families, size, levels, unrelated, 60, 900, cjk, 5, 5))

  test("every base–variant pair has exactly the planned Jaccard (n−d)/(n+d), close to the target, English and Chinese") {
    for (cjk <- Seq(0.0, 1.0)) {
      val c = corpus(cjk)
      for (f <- 0 until c.spec.families) {
        val pairs = c.familyPairs(f).asScala
        val base = c.doc(f.toLong * 5)
        for (j <- 1 until 5) {
          val v = c.doc(f.toLong * 5 + j)
          val measured = pairs.find(p => p.idA == base.id && p.idB == v.id).get.jaccard
          assert(measured == v.planned, s"family $f member $j")
          // the granularity of the construction: one window more or less, of n >= 56 windows
          assert(math.abs(v.planned - v.target) < 0.02, s"family $f member $j: planned ${v.planned}, target ${v.target}")
          assert(v.planned < 1.0 && v.text != base.text)
        }
      }
    }
  }

  test("documents are shingled in the intended mode; variants differ from their base in formatting the shingler ignores") {
    val sh = new Shingler(5, 5)
    val en = corpus(0.0).doc(1)
    val zh = corpus(1.0).doc(1)
    assert(sh.shingle(en.text) == Mode.WORDS && !en.cjk)
    assert(sh.shingle(zh.text) == Mode.CHARS && zh.cjk)
    assert(en.text.exists(_.isUpper) && en.text.contains(". "))
    assert(zh.text.contains("。"))
  }

  test("ids are a permutation of [0, size), so a family's smallest id is often not its base") {
    val c = corpus(0.3)
    val ids = (0L until c.size).map(c.id)
    assert(ids.sorted == (0L until c.size))
    val baseIsMin = (0 until c.spec.families).count { f => c.id(f * 5L) == (0 until 5).map(j => c.id(f * 5L + j)).min }
    assert(baseIsMin < c.spec.families / 2)
  }

  test("generation is deterministic per (seed, index) and differs across seeds") {
    val a = corpus(0.5)
    val b = corpus(0.5)
    for (i <- Seq(0L, 7L, 123L, a.size - 1)) assert(a.doc(i) == b.doc(i))
    assert(corpus(0.5, seed = 12).doc(0).text != a.doc(0).text)
  }

  test("unrelated documents and different families share (almost) no shingle") {
    val c = corpus(0.0)
    val sh = new Shingler(5, 5)
    val r = new SplittableRandom(5)
    val sims = (0 until 400).map { _ =>
      val i = r.nextLong(c.size)
      var k = r.nextLong(c.size)
      while (k / 5 == i / 5 && k < c.spec.families * 5L) k = r.nextLong(c.size)
      Shingler.jaccard(sh.shingleSet(c.doc(i).text), sh.shingleSet(c.doc(k).text))
    }
    assert(sims.max < 0.02, s"max cross-family Jaccard ${sims.max}")
  }

  test("the substitution layout destroys exactly d windows in disjoint intervals (interior ones at least k long)") {
    val r = new SplittableRandom(3)
    val method = classOf[PlantedCorpus].getDeclaredMethod("intervals", classOf[Int], classOf[Int], classOf[Int], classOf[SplittableRandom])
    method.setAccessible(true)
    for (_ <- 0 until 5000) {
      val k = 1 + r.nextInt(8)
      val n = 1 + r.nextInt(400)
      val d = r.nextInt(n + 1)
      val ivs = method.invoke(null, Int.box(n), Int.box(d), Int.box(k), r).asInstanceOf[java.util.List[Array[Int]]].asScala.toSeq
      val covered = ivs.flatMap(iv => iv(0) to iv(1))
      assert(covered.size == d && covered.distinct.size == d, s"n=$n d=$d k=$k")
      assert(covered.forall(w => w >= 0 && w < n))
      for (iv <- ivs if iv(0) > 0 && iv(1) < n - 1) assert(iv(1) - iv(0) + 1 >= k, s"n=$n d=$d k=$k $iv")
    }
  }
}
