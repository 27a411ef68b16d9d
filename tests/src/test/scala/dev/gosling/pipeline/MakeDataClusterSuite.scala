package dev.gosling.pipeline

import java.io.{ByteArrayOutputStream, PrintStream}
import java.nio.file.Files

import dev.gosling.jobs.MakeDataJob
import dev.gosling.testkit.{Shared, SparkTestSession}
import org.scalatest.funsuite.AnyFunSuite

/** The real thing: executors in separate JVMs (`local-cluster`), compared byte for byte with one local partition. */
class MakeDataClusterSuite extends AnyFunSuite {
  test("make-data output is byte-identical on 1 local partition and on 2 executors with 4 partitions") {
    val demo = Shared.path("fixtures/demo.jsonl").toString
    val dir = Files.createTempDirectory("gosling-cluster")
    def run(master: String, partitions: Int, name: String): Unit = {
      val cfg = new MakeDataConfig(demo, 2, 512, dir.resolve(name).toString, 42L, partitions, 0, true, false,
        MakeDataConfig.DEFAULT_MAX_LINE_BYTES, null)
      MakeDataJob.run(SparkTestSession.get(master), cfg, new PrintStream(new ByteArrayOutputStream()))
    }
    run(SparkTestSession.LocalMaster, 1, "local")
    try {
      val spark = SparkTestSession.get("local-cluster[2,1,1024]")
      assert(spark.sparkContext.getExecutorMemoryStatus.size >= 1)
      // Executors read the demo file as ~19 byte ranges of 16 KiB: the same bytes as one local task.
      spark.conf.set(dev.gosling.pipeline.ingest.JsonlIngest.SPLIT_BYTES_CONF, "16384")
      try run("local-cluster[2,1,1024]", 4, "cluster") finally spark.conf.unset(dev.gosling.pipeline.ingest.JsonlIngest.SPLIT_BYTES_CONF)
      val executors = spark.sparkContext.statusTracker.getExecutorInfos.length - 1 // minus the driver
      assert(executors == 2, s"expected 2 executors, saw $executors")
    } finally SparkTestSession.get(SparkTestSession.LocalMaster)
    for (ext <- Seq(".bin", ".idx"))
      assert(Files.readAllBytes(dir.resolve("local" + ext)).sameElements(Files.readAllBytes(dir.resolve("cluster" + ext))), ext)
  }
}
