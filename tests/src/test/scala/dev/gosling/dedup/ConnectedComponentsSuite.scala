package dev.gosling.dedup

import java.nio.file.Files
import java.util.SplittableRandom

import dev.gosling.pipeline.dedup.{ConnectedComponents, FuzzyDedupConfig}
import dev.gosling.testkit.SparkTestSession
import dev.gosling.trainer.GoslingException
import org.apache.spark.sql.{DataFrame, Row, SparkSession}
import org.apache.spark.sql.types.{LongType, StructType}
import org.scalatest.funsuite.AnyFunSuite

import scala.collection.mutable
import scala.jdk.CollectionConverters._

class ConnectedComponentsSuite extends AnyFunSuite {
  private lazy val spark: SparkSession = SparkTestSession.get()
  private val schema = new StructType().add("src", LongType, nullable = false).add("dst", LongType, nullable = false)

  private def edgesDf(edges: Seq[(Long, Long)], partitions: Int = 3): DataFrame =
    spark.createDataFrame(edges.map { case (a, b) => Row(a, b) }.asJava, schema).repartition(partitions)

  /** Union-find reference: vertex → smallest id of its component, for every vertex that is not that smallest id. */
  private def reference(edges: Seq[(Long, Long)]): Map[Long, Long] = {
    val parent = mutable.HashMap.empty[Long, Long]
    def find(x: Long): Long = {
      var r = parent.getOrElseUpdate(x, x)
      while (parent(r) != r) r = parent(r)
      var y = x
      while (parent(y) != r) { val n = parent(y); parent(y) = r; y = n }
      r
    }
    for ((a, b) <- edges) {
      val ra = find(a)
      val rb = find(b)
      if (ra != rb) { if (ra < rb) parent(rb) = ra else parent(ra) = rb }
    }
    parent.keys.toSeq.map(v => v -> find(v)).filter { case (v, r) => v != r }.toMap
  }

  private def components(edges: Seq[(Long, Long)], cfg: FuzzyDedupConfig = FuzzyDedupConfig.defaults(),
                         partitions: Int = 3): (Map[Long, Long], Int) = {
    val r = ConnectedComponents.run(spark, edgesDf(edges, partitions), cfg)
    val rows = r.components.collect().map(row => row.getLong(0) -> row.getLong(1))
    assert(rows.map(_._1).distinct.length == rows.length, "one row per vertex")
    (rows.toMap, r.rounds)
  }

  private def check(name: String, edges: Seq[(Long, Long)], cfg: FuzzyDedupConfig = FuzzyDedupConfig.defaults()): Int = {
    val (got, rounds) = components(edges, cfg)
    assert(got == reference(edges), name)
    info(s"$name: ${edges.size} edges, $rounds rounds")
    println(s"ConnectedComponentsSuite: $name: ${edges.size} edges, $rounds rounds")
    rounds
  }

  /** Random relabelling of 0..n-1 into scattered 40-bit ids (so id order says nothing about the structure). */
  private def relabel(n: Int, seed: Long): Array[Long] = {
    val r = new SplittableRandom(seed)
    val ids = mutable.LinkedHashSet.empty[Long]
    while (ids.size < n) ids += r.nextLong(1L << 40)
    ids.toArray
  }

  test("hand-made graphs: chain, star, two components, cycle, clique, isolated pairs") {
    check("chain 1-2-...-10", (1L until 10L).map(i => (i, i + 1)))
    check("descending chain", (1L until 10L).map(i => (i + 1, i)))
    check("star around 5", (1L to 9L).filter(_ != 5).map(i => (i, 5L)))
    check("star around the largest id", (1L to 9L).map(i => (i, 100L)))
    check("two components", Seq((1L, 2L), (2L, 3L), (10L, 11L), (11L, 12L), (12L, 10L)))
    check("cycle of 12", (0L until 12L).map(i => (i, (i + 1) % 12)))
    check("clique of 8", for (i <- 0L until 8L; j <- i + 1 until 8L) yield (i, j))
    check("isolated pairs", (0L until 20L).map(i => (2 * i, 2 * i + 1)))
  }

  test("repeated edges, both orientations and self-loops do not matter") {
    val edges = Seq((1L, 2L), (2L, 1L), (1L, 2L), (3L, 3L), (2L, 4L), (4L, 4L), (7L, 8L), (8L, 7L))
    val (got, _) = components(edges)
    assert(got == Map(2L -> 1L, 4L -> 1L, 8L -> 7L))
  }

  test("long paths needing many rounds: 4096 vertices in order, reversed and with scattered ids") {
    val n = 4096
    val inOrder = check("path in id order", (0L until n - 1L).map(i => (i, i + 1)))
    val ids = relabel(n, 7)
    val scattered = check("path with scattered ids", (0 until n - 1).map(i => (ids(i), ids(i + 1))))
    // a zig-zag path: the minimum is in the middle and ids alternate around it
    val zig = (0 until n).map(i => if (i % 2 == 0) i.toLong else (2 * n - i).toLong)
    check("zig-zag path", (0 until n - 1).map(i => (zig(i), zig(i + 1))))
    assert(inOrder >= 2 && scattered >= 2)
  }

  test("random graphs against union-find: many small components and one giant component") {
    val r = new SplittableRandom(11)
    val ids = relabel(3000, 3)
    val sparse = (0 until 2000).map(_ => (ids(r.nextInt(3000)), ids(r.nextInt(3000))))
    check("random sparse (3000 vertices, 2000 edges)", sparse)
    val dense = (0 until 6000).map(_ => (ids(r.nextInt(3000)), ids(r.nextInt(3000))))
    check("random dense (3000 vertices, 6000 edges)", dense)
    // stars chained through their centres, as LSH buckets produce
    val stars = (0 until 50).flatMap(s => (1 until 20).map(k => (ids(s * 20 + k), ids(s * 20)))) ++
      (0 until 49).map(s => (ids(s * 20 + 1), ids((s + 1) * 20 + 2)))
    check("chained stars", stars)
  }

  test("the result does not depend on the partitioning of the edges") {
    val r = new SplittableRandom(5)
    val edges = (0 until 3000).map(_ => (r.nextLong(2000), r.nextLong(2000)))
    val (one, rounds1) = components(edges, partitions = 1)
    val (seven, rounds7) = components(edges.reverse, partitions = 7)
    assert(one == seven && rounds1 == rounds7)
    assert(one == reference(edges))
  }

  test("reliable checkpoints: Parquet every k rounds under checkpoint_dir, only the latest kept; same result") {
    val dir = Files.createTempDirectory("gosling-cc")
    val n = 2048
    val ids = relabel(n, 9)
    val edges = (0 until n - 1).map(i => (ids(i), ids(i + 1)))
    val cfg = FuzzyDedupConfig.defaults().withCheckpoints(dir.toString, 2, 100)
    val (got, rounds) = components(edges, cfg)
    assert(got == reference(edges))
    val left = Files.list(dir).iterator().asScala.map(_.getFileName.toString).toSeq
    assert(left == Seq(ConnectedComponentsSuite.roundName(rounds)), s"checkpoints left: $left")
    // the local-checkpoint path takes the same rounds
    assert(components(edges)._2 == rounds)
  }

  test("not converging within max_iterations is a one-line error naming the key") {
    val edges = (0L until 1000L).map(i => (i, i + 1))
    val cfg = FuzzyDedupConfig.defaults().withCheckpoints(null, 4, 2)
    val e = intercept[GoslingException](components(edges, cfg))
    assert(e.getMessage.startsWith("fuzzy_dedup.max_iterations = 2: connected components did not converge"))
    assert(!e.getMessage.contains("\n"))
  }

  test("no edges: no components") {
    assert(components(Seq.empty)._1.isEmpty)
    assert(components(Seq((5L, 5L)))._1.isEmpty)
  }
}

object ConnectedComponentsSuite {
  def roundName(round: Int): String = f"cc-round-$round%05d"
}
