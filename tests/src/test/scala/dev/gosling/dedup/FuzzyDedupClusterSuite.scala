package dev.gosling.dedup

import dev.gosling.pipeline.dedup.{FuzzyDedup, FuzzyDedupConfig, PlantedCorpus}
import dev.gosling.testkit.SparkTestSession
import org.scalatest.funsuite.AnyFunSuite

import scala.jdk.CollectionConverters._

/** Executors in separate JVMs (`local-cluster`): the same kept ids, rejects and counters as one local partition. */
class FuzzyDedupClusterSuite extends AnyFunSuite {
  test("fuzzy dedup gives identical output on 1 local partition and on 2 executors with 4 partitions") {
    val corpus = new PlantedCorpus(new PlantedCorpus.Spec(77, 100, 4, Array(0.6, 0.8, 0.9, 0.99), 200, 40, 400, 0.2, 5, 5))
    def run(master: String, partitions: Int) = {
      val spark = SparkTestSession.get(master)
      val r = FuzzyDedup.run(spark, corpus.dataset(spark, partitions), FuzzyDedupConfig.defaults())
      (r.kept.select("id").collect().map(_.getLong(0)).sorted.toSeq,
        r.rejects.collect().map(row => (row.getLong(0), row.getString(1), row.getLong(2))).sorted.toSeq,
        r.counters.asScala.toMap)
    }
    val local = run(SparkTestSession.LocalMaster, 1)
    val cluster = try {
      val out = run("local-cluster[2,1,1024]", 4)
      val executors = SparkTestSession.get("local-cluster[2,1,1024]").sparkContext.statusTracker.getExecutorInfos.length - 1
      assert(executors == 2, s"expected 2 executors, saw $executors")
      out
    } finally SparkTestSession.get(SparkTestSession.LocalMaster)
    assert(local._2.nonEmpty)
    assert(local == cluster)
  }
}
