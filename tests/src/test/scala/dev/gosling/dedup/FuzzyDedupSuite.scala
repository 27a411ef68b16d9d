package dev.gosling.dedup

import java.nio.file.Files

import dev.gosling.pipeline.dedup.{FuzzyDedup, FuzzyDedupConfig, MinHasher, PlantedCorpus, Shingler}
import dev.gosling.testkit.SparkTestSession
import dev.gosling.trainer.GoslingException
import org.apache.spark.sql.{DataFrame, Row, SparkSession}
import org.apache.spark.sql.types.{IntegerType, LongType, StringType, StructType}
import org.scalatest.funsuite.AnyFunSuite

import scala.collection.mutable
import scala.jdk.CollectionConverters._

class FuzzyDedupSuite extends AnyFunSuite {
  private lazy val spark: SparkSession = SparkTestSession.get()
  private val defaults = FuzzyDedupConfig.defaults()
  private val levels = Array(0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99)

  private def report(line: String): Unit = {
    info(line)
    println("FuzzyDedupSuite: " + line)
  }

  private def docsDf(docs: Seq[(Long, String)], partitions: Int = 3): DataFrame = {
    val schema = new StructType().add("id", LongType, nullable = false).add("text", StringType)
    spark.createDataFrame(docs.map { case (i, t) => Row(i, t) }.asJava, schema).repartition(partitions)
  }

  private def plantedDf(c: PlantedCorpus, partitions: Int = 3): DataFrame =
    c.dataset(spark, partitions).localCheckpoint()

  /** (kept ids, rejects id → duplicate_of, counters) of a run. */
  private def outcome(r: FuzzyDedup.Result): (Seq[Long], Map[Long, Long], Map[String, Long]) = {
    val kept = r.kept.select("id").collect().map(_.getLong(0)).toSeq.sorted
    val rejects = r.rejects.collect().map { row =>
      assert(row.getString(1) == FuzzyDedup.REASON)
      row.getLong(0) -> row.getLong(2)
    }
    assert(rejects.map(_._1).distinct.length == rejects.length)
    (kept, rejects.toMap, r.counters.asScala.map { case (k, v) => k -> v.longValue }.toMap)
  }

  private def words(n: Int, seed: Int): Seq[String] = {
    val r = new java.util.SplittableRandom(seed)
    (0 until n).map(_ => (0 until 3 + r.nextInt(6)).map(_ => ('a' + r.nextInt(26)).toChar).mkString)
  }

  // ------------------------------------------------------------------ configuration

  test("every invalid setting is a one-line error naming its key") {
    def err(f: => Any): String = {
      val e = intercept[GoslingException](f)
      assert(!e.getMessage.contains("\n"), e.getMessage)
      e.getMessage
    }
    val d = defaults
    import d._
    def cfg(sw: Int = shingleWords, cc: Int = cjkShingleChars, b: Int = bands, r: Int = rows, m: Int = maxBucketSize,
            t: Double = threshold, dir: String = checkpointDir, ci: Int = checkpointInterval, mi: Int = maxIterations) =
      new FuzzyDedupConfig(sw, cc, b, r, seed, m, verify, t, dir, ci, mi)
    assert(err(cfg(sw = 0)).startsWith("fuzzy_dedup.shingle_words = 0: must be between 1 and 64"))
    assert(err(cfg(cc = 65)).startsWith("fuzzy_dedup.cjk_shingle_chars = 65"))
    assert(err(cfg(b = 0)).startsWith("fuzzy_dedup.bands = 0"))
    assert(err(cfg(r = -1)).startsWith("fuzzy_dedup.rows = -1"))
    assert(err(cfg(b = 64, r = 32)).startsWith("fuzzy_dedup.bands × fuzzy_dedup.rows = 64 × 32 = 2048 permutations"))
    assert(err(cfg(m = 1)).startsWith("fuzzy_dedup.max_bucket_size = 1"))
    assert(err(cfg(t = 0.0)).startsWith("fuzzy_dedup.threshold = 0.0: must be in (0, 1]"))
    assert(err(cfg(t = 1.5)).startsWith("fuzzy_dedup.threshold = 1.5"))
    assert(err(cfg(t = Double.NaN)).startsWith("fuzzy_dedup.threshold = NaN"))
    assert(err(cfg(dir = " ")).startsWith("fuzzy_dedup.checkpoint_dir is blank"))
    assert(err(cfg(ci = 0)).startsWith("fuzzy_dedup.checkpoint_interval = 0"))
    assert(err(cfg(mi = 0)).startsWith("fuzzy_dedup.max_iterations = 0"))
  }

  test("a recipe section: defaults for absent keys; unknown keys and wrong types are one-line errors") {
    assert(FuzzyDedupConfig.fromMap(Map.empty[String, AnyRef].asJava, "r.yaml") == defaults)
    val all = Map[String, AnyRef]("shingle_words" -> Int.box(4), "cjk_shingle_chars" -> Int.box(6), "bands" -> Int.box(14),
      "rows" -> Int.box(8), "seed" -> Long.box(7L), "max_bucket_size" -> Int.box(500), "verify" -> Boolean.box(false),
      "threshold" -> Double.box(0.75), "checkpoint_dir" -> "/tmp/cc", "checkpoint_interval" -> Int.box(2),
      "max_iterations" -> Int.box(30))
    assert(FuzzyDedupConfig.fromMap(all.asJava, "r.yaml") ==
      new FuzzyDedupConfig(4, 6, 14, 8, 7L, 500, false, 0.75, "/tmp/cc", 2, 30))
    val unknown = intercept[GoslingException](FuzzyDedupConfig.fromMap(Map[String, AnyRef]("band" -> Int.box(3)).asJava, "r.yaml"))
    assert(unknown.getMessage.startsWith("r.yaml: unknown key fuzzy_dedup.band (known: shingle_words, "))
    val wrong = intercept[GoslingException](FuzzyDedupConfig.fromMap(Map[String, AnyRef]("verify" -> "yes").asJava, "r.yaml"))
    assert(wrong.getMessage == "r.yaml: fuzzy_dedup.verify = yes: must be true or false")
    val frac = intercept[GoslingException](FuzzyDedupConfig.fromMap(Map[String, AnyRef]("rows" -> Double.box(8.5)).asJava, "r.yaml"))
    assert(frac.getMessage == "r.yaml: fuzzy_dedup.rows = 8.5: must be an integer")
    assert(defaults.describe().get("permutations") == 180)
  }

  // ------------------------------------------------------------------ behaviour

  test("near-duplicates collapse to the smallest id; empty and null texts are kept; other columns carried through") {
    val base = words(120, 1)
    val nearDup = base.updated(60, "changed")          // J = 110/130 ≈ 0.85 on word 5-grams
    val rows = Seq[(Long, String)](10L -> base.mkString(" "), 3L -> nearDup.mkString(" "), 5L -> words(120, 2).mkString(" "),
      7L -> "", 8L -> null, 9L -> "!!! ... ???")
    val schema = new StructType().add("id", LongType, nullable = false).add("text", StringType).add("source", IntegerType)
    val df = spark.createDataFrame(rows.map { case (i, t) => Row(i, t, (i * 100).toInt) }.asJava, schema)
    val r = FuzzyDedup.run(spark, df, defaults)
    val (kept, rejects, counters) = outcome(r)
    assert(rejects == Map(10L -> 3L))
    assert(kept == Seq(3L, 5L, 7L, 8L, 9L))
    assert(r.kept.schema == schema)
    assert(r.kept.where("id = 5").first().getInt(2) == 500)
    assert(r.rejects.schema.fields.map(f => f.name -> f.dataType) sameElements
      Array("id" -> LongType, "reason" -> StringType, "duplicate_of" -> LongType))
    assert(counters("fuzzy_input_docs") == 6 && counters("fuzzy_docs_without_shingles") == 3)
    assert(counters("fuzzy_duplicates") == 1 && counters("fuzzy_clusters") == 1 && counters("fuzzy_kept") == 5)
    assert(counters("fuzzy_candidate_pairs") == 1 && counters("fuzzy_pairs_below_threshold") == 0)
    assert(counters.keySet == FuzzyDedup.COUNTER_KEYS.asScala.toSet)
  }

  test("planted families, verification on: pair precision ≥ 0.995, recall ≥ 0.95 at J ≥ threshold + 0.05, ARI ≥ 0.95") {
    val c = new PlantedCorpus(new PlantedCorpus.Spec(21, 400, 4, levels, 1000, 60, 700, 0.2, 5, 5))
    val df = plantedDf(c)
    val t = defaults.threshold
    // ground truth: exact Jaccard of every within-family pair; clusters = components of the pairs at J ≥ t
    val pairs = (0 until c.spec.families).flatMap(f => c.familyPairs(f).asScala)
    val allIds = (0L until c.size).map(c.id)
    val truth = clusters(allIds, pairs.filter(_.jaccard >= t).map(p => (p.idA, p.idB)))
    for ((verify, label) <- Seq((true, "verify on"), (false, "verify off"))) {
      val (kept, rejects, counters) = outcome(FuzzyDedup.run(spark, df, defaults.withVerify(verify, t)))
      assert(kept.size + rejects.size == c.size)
      val predicted = allIds.map(id => id -> rejects.getOrElse(id, id)).toMap
      // the representative is the smallest id of its cluster, and is kept
      for ((id, root) <- rejects) assert(root < id && !rejects.contains(root))
      val (precision, ari) = pairPrecisionAndAri(predicted, truth)
      val strong = pairs.filter(_.jaccard >= t + 0.05)
      val recall = strong.count(p => predicted(p.idA) == predicted(p.idB)).toDouble / strong.size
      report(f"planted $label: ${c.size} docs, ${strong.size} pairs at J ≥ ${t + 0.05}%.2f: pair precision $precision%.4f, " +
        f"recall $recall%.4f, ARI $ari%.4f; candidates ${counters("fuzzy_candidate_pairs")}, below threshold " +
        f"${counters("fuzzy_pairs_below_threshold")}, duplicates ${counters("fuzzy_duplicates")}, rounds ${counters("fuzzy_cc_rounds")}")
      if (verify) {
        assert(precision >= 0.995, s"precision $precision")
        assert(recall >= 0.95, s"recall $recall")
        assert(ari >= 0.95, s"ARI $ari")
        assert(counters("fuzzy_pairs_below_threshold") > 0)
        assert(counters("fuzzy_docs_char_shingled") > 0)
      } else {
        assert(counters("fuzzy_pairs_below_threshold") == 0)
      }
    }
  }

  test("the Spark stage equals a plain reference: band keys → star edges to the bucket minimum (capped) → union-find") {
    val c = new PlantedCorpus(new PlantedCorpus.Spec(33, 150, 5, levels, 300, 40, 400, 0.3, 5, 5))
    val planted = (0L until c.size).map(i => c.doc(i)).map(d => d.id -> d.text)
    // plus exact copies, so that some buckets exceed the cap
    val copies = (0 until 12).map(k => (c.size + k) -> planted.head._2) ++ (0 until 6).map(k => (c.size + 100 + k) -> planted(7)._2)
    val docs = planted ++ copies
    val cfg = defaults.withVerify(false, 0.8).withMaxBucketSize(5)
    val (kept, rejects, counters) = outcome(FuzzyDedup.run(spark, docsDf(docs), cfg))

    val mh = new MinHasher(cfg.bands, cfg.rows, cfg.seed)
    val sh = new Shingler(cfg.shingleWords, cfg.cjkShingleChars)
    val sig = new Array[Long](cfg.permutations)
    val buckets = mutable.HashMap.empty[(Int, Long), mutable.ArrayBuffer[Long]]
    for ((id, text) <- docs) {
      sh.shingle(text)
      mh.signature(sh.hashes(), sh.size(), sig)
      for (b <- 0 until cfg.bands) buckets.getOrElseUpdate((b, mh.bandHash(sig, b)), mutable.ArrayBuffer.empty) += id
    }
    val edges = buckets.values.toSeq.flatMap { m =>
      val sorted = m.sorted.take(cfg.maxBucketSize)
      sorted.tail.map(id => (id, sorted.head))
    }.distinct
    val expected = clusters(docs.map(_._1), edges).filter { case (id, root) => id != root }
    assert(rejects == expected)
    assert(kept == docs.map(_._1).filterNot(expected.contains).sorted)
    assert(counters("fuzzy_candidate_pairs") == edges.size)
    assert(counters("fuzzy_shared_buckets") == buckets.values.count(_.size >= 2))
    assert(counters("fuzzy_largest_bucket") == buckets.values.map(_.size).max)
    assert(counters("fuzzy_buckets_capped") == buckets.values.count(_.size > 5))
    assert(counters("fuzzy_bucket_members_capped") == buckets.values.map(b => math.max(0, b.size - 5)).sum)
    assert(counters("fuzzy_buckets_capped") > 0)
    report(s"reference check: ${docs.size} docs, ${edges.size} candidate pairs, ${expected.size} duplicates, " +
      s"${counters("fuzzy_buckets_capped")} capped buckets")
  }

  test("an oversized bucket links only its max_bucket_size smallest ids, and the cap is counted") {
    val text = words(200, 9).mkString(" ")
    val docs = (0L until 12L).map(i => (i * 10) -> text)
    val (kept, rejects, counters) = outcome(FuzzyDedup.run(spark, docsDf(docs), defaults.withMaxBucketSize(5)))
    assert(rejects == Map(10L -> 0L, 20L -> 0L, 30L -> 0L, 40L -> 0L))
    assert(kept == Seq(0L, 50L, 60L, 70L, 80L, 90L, 100L, 110L))
    assert(counters("fuzzy_largest_bucket") == 12)
    assert(counters("fuzzy_buckets_capped") == defaults.bands)
    assert(counters("fuzzy_bucket_members_capped") == defaults.bands * 7L)
    // with the default cap all twelve collapse into one
    val (kept2, rejects2, counters2) = outcome(FuzzyDedup.run(spark, docsDf(docs), defaults))
    assert(kept2 == Seq(0L) && rejects2.size == 11 && counters2("fuzzy_buckets_capped") == 0)
  }

  test("Chinese near-duplicates are found by character shingles") {
    val c = new PlantedCorpus(new PlantedCorpus.Spec(44, 60, 3, Array(0.85, 0.9, 0.95), 40, 150, 600, 1.0, 5, 5))
    val (kept, rejects, counters) = outcome(FuzzyDedup.run(spark, plantedDf(c), defaults))
    assert(counters("fuzzy_docs_char_shingled") == c.size)
    val pairs = (0 until c.spec.families).flatMap(f => c.familyPairs(f).asScala).filter(_.jaccard >= 0.85)
    val root = (id: Long) => rejects.getOrElse(id, id)
    val found = pairs.count(p => root(p.idA) == root(p.idB)).toDouble / pairs.size
    report(f"Chinese: ${pairs.size} pairs at J ≥ 0.85, recall $found%.4f, ${rejects.size} duplicates of ${c.size} docs")
    assert(found >= 0.95)
    // unrelated Chinese documents (Zipf text over 3500 characters) are never merged
    val unrelated = ((c.spec.families * 3L) until c.size).map(c.id)
    assert(unrelated.forall(id => !rejects.contains(id) && !rejects.values.exists(_ == id)))
    // the same texts shingled by "words" would be a handful of sentence-long tokens: char mode is what finds them
    val sh = new Shingler(5, 5)
    sh.tokenize(c.doc(0).text)
    assert(sh.tokenCount() >= 150)
  }

  test("identical output for 1 vs 4 input partitions, other shuffle partitions, joins without broadcast, and reruns") {
    val c = new PlantedCorpus(new PlantedCorpus.Spec(55, 120, 4, levels, 300, 40, 500, 0.2, 5, 5))
    val docs = plantedDf(c, 4)
    val one = outcome(FuzzyDedup.run(spark, docs.repartition(1), defaults))
    val four = outcome(FuzzyDedup.run(spark, docs.repartition(4), defaults))
    val settings = Seq("spark.sql.shuffle.partitions" -> "7", "spark.sql.autoBroadcastJoinThreshold" -> "-1")
    val previous = settings.map { case (k, _) => k -> spark.conf.getOption(k) }
    // 7 shuffle partitions, and sort-merge joins with the documents instead of broadcasts
    val seven = try {
      settings.foreach { case (k, v) => spark.conf.set(k, v) }
      outcome(FuzzyDedup.run(spark, docs.repartition(5), defaults))
    } finally previous.foreach {
      case (k, Some(v)) => spark.conf.set(k, v)
      case (k, None) => spark.conf.unset(k)
    }
    val again = outcome(FuzzyDedup.run(spark, docs.repartition(1), defaults))
    assert(one._2.nonEmpty)
    assert(one == four)
    assert(one == seven)
    assert(one == again)
  }

  test("reliable checkpoints under checkpoint_dir give the same output") {
    val c = new PlantedCorpus(new PlantedCorpus.Spec(66, 80, 4, levels, 100, 40, 400, 0.0, 5, 5))
    val docs = plantedDf(c)
    val dir = Files.createTempDirectory("gosling-fuzzy")
    val local = outcome(FuzzyDedup.run(spark, docs, defaults))
    val reliable = outcome(FuzzyDedup.run(spark, docs, defaults.withCheckpoints(dir.toString, 1, 100)))
    assert(local == reliable)
    val names = Files.list(dir).iterator().asScala.map(_.getFileName.toString).toSet
    assert(names.contains("lsh-buckets") && names.contains("verified-pairs") && names.exists(_.startsWith("cc-round-")))
  }

  test("bad input: missing or mistyped columns and repeated ids are one-line errors") {
    val noText = spark.range(3).toDF("id")
    val e1 = intercept[GoslingException](FuzzyDedup.run(spark, noText, defaults))
    assert(e1.getMessage == "fuzzy dedup: the input has no column `text` (string); its columns: id")
    val intId = spark.range(3).selectExpr("cast(id as int) as id", "'x' as text")
    val e2 = intercept[GoslingException](FuzzyDedup.run(spark, intId, defaults))
    assert(e2.getMessage == "fuzzy dedup: input column `id` is int, expected bigint")
    val repeated = docsDf(Seq(1L -> "the same words in both of these rows", 1L -> "the same words in both of these rows"))
    val e3 = intercept[GoslingException](FuzzyDedup.run(spark, repeated, defaults))
    assert(e3.getMessage == "fuzzy dedup: document id 1 occurs more than once in the input; ids must be unique")
  }

  test("an empty input gives empty outputs and zero counters") {
    val (kept, rejects, counters) = outcome(FuzzyDedup.run(spark, docsDf(Seq.empty), defaults))
    assert(kept.isEmpty && rejects.isEmpty)
    assert(counters.filter(_._2 != 0L) == Map("fuzzy_cc_rounds" -> 1L))
  }

  // ------------------------------------------------------------------ helpers

  /** Union-find: every id → the smallest id of its component. */
  private def clusters(ids: Seq[Long], edges: Seq[(Long, Long)]): Map[Long, Long] = {
    val parent = mutable.HashMap.empty[Long, Long]
    ids.foreach(i => parent(i) = i)
    def find(x: Long): Long = {
      var r = x
      while (parent(r) != r) r = parent(r)
      var y = x
      while (parent(y) != r) { val n = parent(y); parent(y) = r; y = n }
      r
    }
    for ((a, b) <- edges) {
      val ra = find(a)
      val rb = find(b)
      if (ra < rb) parent(rb) = ra else if (rb < ra) parent(ra) = rb
    }
    ids.map(i => i -> find(i)).toMap
  }

  private def choose2(n: Long): Double = n * (n - 1) / 2.0

  /** Pair precision of the predicted clustering against the truth, and the adjusted Rand index. */
  private def pairPrecisionAndAri(predicted: Map[Long, Long], truth: Map[Long, Long]): (Double, Double) = {
    val cells = predicted.keys.groupBy(id => (predicted(id), truth(id))).values.map(_.size.toLong)
    val predSizes = predicted.values.groupBy(identity).values.map(_.size.toLong)
    val truthSizes = truth.values.groupBy(identity).values.map(_.size.toLong)
    val both = cells.map(choose2).sum
    val predPairs = predSizes.map(choose2).sum
    val truthPairs = truthSizes.map(choose2).sum
    val total = choose2(predicted.size)
    val expected = predPairs * truthPairs / total
    val ari = (both - expected) / ((predPairs + truthPairs) / 2 - expected)
    (if (predPairs == 0) 1.0 else both / predPairs, ari)
  }
}
