package dev.gosling.pipeline

import java.io.{ByteArrayOutputStream, PrintStream}
import java.nio.charset.StandardCharsets.UTF_8
import java.nio.file.{Files, Path}
import java.util.zip.GZIPOutputStream

import dev.gosling.jobs.MakeDataJob
import dev.gosling.pipeline.ingest.{FileRange, JsonlIngest, JsonlLineReader}
import dev.gosling.prepare.PrepareTestKit._
import dev.gosling.testkit.{Shared, SparkTestSession}
import org.scalacheck.Gen
import org.scalatest.funsuite.AnyFunSuite
import org.scalatestplus.scalacheck.ScalaCheckPropertyChecks

import scala.jdk.CollectionConverters._

/**
 * Large plain files are read as several byte ranges (FileRange): every line must keep its number and its bytes, and
 * every output must stay byte-identical to reading each file in one task, whatever the split size.
 */
class SplitIngestSuite extends AnyFunSuite with ScalaCheckPropertyChecks {
  private def spark = SparkTestSession.get()
  private val demo = Shared.path("fixtures/demo.jsonl")
  private val dir = Files.createTempDirectory("gosling-split")

  /** (line number, bytes held, stripped length, too long) of every line the reader hands out. */
  private type Line = (Long, Seq[Byte], Long, Boolean)

  private def whole(p: Path, max: Int): Seq[Line] = read(new JsonlLineReader(p, 0, max))

  /** Pass 1 done locally (no Spark), then each range read on its own and the results concatenated. */
  private def split(p: Path, max: Int, splitBytes: Long): Seq[Line] = {
    val ranges = FileRange.plan(java.util.List.of(p), splitBytes,
      rs => rs.asScala.map(r => java.lang.Long.valueOf(FileRange.countLineStarts(p, r.start, r.end))).asJava).asScala
    ranges.flatMap(r => read(new JsonlLineReader(p, 0, max, r.start, r.firstLine, r.lineCount))).toSeq
  }

  private def read(r: JsonlLineReader): Seq[Line] =
    try r.asScala.map(l => (l.lineNumber, l.bytes.toSeq, l.length, l.tooLong)).toSeq finally r.close()

  private def file(name: String, bytes: Array[Byte]): Path = Files.write(dir.resolve(name), bytes)

  private val bom = Array(0xEF, 0xBB, 0xBF).map(_.toByte)

  test("crafted files: every split size from 1 byte to past the end reads the same lines as the whole file") {
    val cases = Seq(
      "a\r\nb\r\nc",         // CRLF, with boundaries between CR and LF
      "a\rb\r\r\nc\n\r\n",   // lone CR, CR then CRLF, a range starting right after CR
      "\n\r\n\r\r\n",        // only line ends: empty lines are counted, never returned
      "x" * 40 + "\ny\r" + "z" * 30, // lines longer than the range; no trailing newline
      "  {\"text\": \"é\"}\t\r\n\u3000\r\n{}",
      "")
    for ((c, i) <- cases.zipWithIndex; withBom <- Seq(false, true); max <- Seq(1 << 20, 5)) {
      val p = file(s"c$i.jsonl", (if (withBom) bom else Array.emptyByteArray) ++ c.getBytes(UTF_8))
      val expected = whole(p, max)
      for (s <- 1L to Files.size(p) + 1)
        assert(split(p, max, s) == expected, s"case $i bom=$withBom max=$max split=$s")
    }
    assert(whole(file("bom.jsonl", bom ++ "{}\n".getBytes(UTF_8)), 100).head._2 == "{}".getBytes(UTF_8).toSeq)
  }

  test("property: random lines with mixed LF/CRLF/CR, BOM and no trailing newline; random split sizes and line bound") {
    val piece = Gen.oneOf("", " ", "a", "xyz", "{\"text\": \"hi\"}", "é", "\u3000", "\t", "\u00a0", "y" * 37)
    val line = Gen.listOf(piece).map(_.mkString)
    val end = Gen.oneOf("\n", "\r\n", "\r")
    val content = for {
      lines <- Gen.listOf(Gen.zip(line, end))
      withBom <- Gen.oneOf(false, true)
      trailing <- Gen.oneOf(false, true)
    } yield {
      val text = lines.map { case (l, e) => l + e }.mkString
      val cut = if (!trailing && lines.nonEmpty) text.dropRight(lines.last._2.length) else text
      (if (withBom) bom else Array.emptyByteArray) ++ cut.getBytes(UTF_8)
    }
    forAll(content, Gen.choose(1L, 80L), Gen.choose(1, 60), minSuccessful(300)) { (bytes, s, max) =>
      val p = file("prop.jsonl", bytes)
      assert(split(p, max, s) == whole(p, max))
    }
  }

  test("a .gz file is never split; small files are one range") {
    val gz = dir.resolve("g.jsonl.gz")
    val z = new GZIPOutputStream(Files.newOutputStream(gz))
    z.write(("{}\n" * 100).getBytes(UTF_8))
    z.close()
    val small = file("s.jsonl", "{}\n{}\n".getBytes(UTF_8))
    val big = file("b.jsonl", ("{}\n" * 10).getBytes(UTF_8))
    val ranges = FileRange.plan(java.util.List.of(gz, small, big), 7,
      rs => rs.asScala.map(r => java.lang.Long.valueOf(FileRange.countLineStarts(Path.of(r.path), r.start, r.end))).asJava).asScala
    assert(ranges.count(_.fileOrdinal == 0) == 1 && ranges.count(_.fileOrdinal == 1) == 1)
    assert(ranges.filter(_.fileOrdinal == 2).map(r => (r.start, r.firstLine, r.lineCount)) ==
      Seq((0L, 0L, 3L), (7L, 3L, 2L), (14L, 5L, 2L), (21L, 7L, 3L), (28L, 10L, 0L)).filter(_._3 > 0))
  }

  private def withSplit[T](bytes: Long)(f: => T): T = {
    spark.conf.set(JsonlIngest.SPLIT_BYTES_CONF, bytes.toString)
    try {
      assert(JsonlIngest.splitBytes(spark) == bytes, "the jobs read the setting")
      f
    } finally spark.conf.unset(JsonlIngest.SPLIT_BYTES_CONF)
  }

  test("the setting reaches the ingest RDD: a 7-byte split gives many tasks, the default one task per small file") {
    val in = crafted(dir.resolve("parts-in"))
    val files = dev.gosling.pipeline.ingest.InputFiles.resolve(in.toString)
    val sc = org.apache.spark.api.java.JavaSparkContext.fromSparkContext(spark.sparkContext)
    assert(JsonlIngest.run(sc, files, 1024, false, FileRange.DEFAULT_SPLIT_BYTES).getNumPartitions == 3)
    assert(JsonlIngest.run(sc, files, 1024, false, 7).getNumPartitions > 30, "ranges holding a line start (empty ones are dropped)")
  }

  private def makeData(input: Path, out: Path, maxLineBytes: Int = MakeDataConfig.DEFAULT_MAX_LINE_BYTES): MakeDataJob.Result = {
    val cfg = new MakeDataConfig(input.toString, 2, 64, out.toString, 42L, 3, 0, true, false, maxLineBytes, null)
    MakeDataJob.run(spark, cfg, new PrintStream(new ByteArrayOutputStream()))
  }

  private def outputs(prefix: Path): Seq[Seq[Byte]] =
    Seq(".bin", ".idx", ".quarantine.jsonl").map(e => Path.of(prefix.toString + e))
      .map(p => if (Files.exists(p)) Files.readAllBytes(p).toSeq else Seq.empty)

  /** Valid and invalid lines under every kind of line end, a BOM, a line over the bound, no trailing newline. */
  private def crafted(in: Path): Path = {
    Files.createDirectories(in)
    val doc = (t: String) => s"""{"text": "$t"}"""
    val body = Seq(doc("first after BOM") + "\r\n", "\r\n", doc("cr") + "\r", "not json\r", "\r", doc("lf") + "\n",
      "{\"text\": 42}\r\n", "  " + doc("padded") + " \t\r", doc("long " + "w" * 1100) + "\n", "[1]\n",
      doc("crlf split") + "\r\n", doc("a\\r\\nb") + "\r\n", doc("last, no newline")).mkString
    Files.write(in.resolve("a.jsonl"), bom ++ body.getBytes(UTF_8))
    Files.write(in.resolve("b.jsonl"), (Seq.tabulate(30)(i => doc(s"b$i")).mkString("\r") + "\n{oops\n").getBytes(UTF_8))
    val z = new GZIPOutputStream(Files.newOutputStream(in.resolve("c.jsonl.gz")))
    z.write((doc("gz one") + "\r\n" + "bad\n" + doc("gz two")).getBytes(UTF_8))
    z.close()
    in
  }

  test("make-data: binidx and quarantine are byte-identical with 7-byte, 64-byte and 1 KiB splits (crafted files and demo)") {
    val in = crafted(dir.resolve("md-in"))
    val base = makeData(in, dir.resolve("md-whole"), maxLineBytes = 1024)
    assert(base.quarantine != null && base.items > 0)
    val expected = outputs(dir.resolve("md-whole"))
    for (s <- Seq(7L, 64L, 1024L)) {
      withSplit(s)(makeData(in, dir.resolve(s"md-$s"), maxLineBytes = 1024))
      assert(outputs(dir.resolve(s"md-$s")) == expected, s"split $s")
    }
    val q = Files.readAllLines(base.quarantine, UTF_8).asScala.map(new com.fasterxml.jackson.databind.ObjectMapper().readTree)
    assert(q.map(r => Path.of(r.get("file").asText).getFileName.toString + ":" + r.get("line").asLong) ==
      Seq("a.jsonl:4", "a.jsonl:7", "a.jsonl:9", "a.jsonl:10", "b.jsonl:31", "c.jsonl.gz:2"))

    makeData(demo, dir.resolve("demo-whole"))
    for (s <- Seq(1024L, 65536L)) {
      withSplit(s)(makeData(demo, dir.resolve(s"demo-$s")))
      assert(outputs(dir.resolve(s"demo-$s")) == outputs(dir.resolve("demo-whole")), s"demo split $s")
    }
  }

  test("prepare: every Parquet shard, stats, quarantine and manifest are byte-identical with 7-byte and 1 KiB splits") {
    val in = crafted(dir.resolve("prep-in"))
    def run(work: String) = prepare(spark, recipe(dir, s"input: $in\nwork_dir: ${dir.resolve(work)}\nshards: 2\n"))
    run("p-whole")
    withSplit(7)(run("p-7"))
    assert(hashes(dir.resolve("p-7")) == hashes(dir.resolve("p-whole")))

    val web = corpus(dir.resolve("web"), demo)
    def runWeb(work: String) = prepare(spark, recipe(dir, webRecipe(web, dir.resolve(work))))
    runWeb("w-whole")
    withSplit(1024)(runWeb("w-1k"))
    val h = hashes(dir.resolve("w-whole"))
    assert(h.keySet.exists(_.startsWith("ingest/data/part-")) && h.contains("binidx/data.bin"))
    assert(hashes(dir.resolve("w-1k")) == h)
  }

  test("the split size takes bytes or Spark size strings; bad values are one-line errors naming the key") {
    try {
      spark.conf.set(JsonlIngest.SPLIT_BYTES_CONF, "64m")
      assert(JsonlIngest.splitBytes(spark) == 64L * 1024 * 1024)
      spark.conf.set(JsonlIngest.SPLIT_BYTES_CONF, "4096")
      assert(JsonlIngest.splitBytes(spark) == 4096)
      for (bad <- Seq("lots", "0")) {
        spark.conf.set(JsonlIngest.SPLIT_BYTES_CONF, bad)
        val e = intercept[dev.gosling.trainer.GoslingException](JsonlIngest.splitBytes(spark))
        assert(e.getMessage.startsWith(JsonlIngest.SPLIT_BYTES_CONF + "=" + bad), e.getMessage)
      }
    } finally spark.conf.unset(JsonlIngest.SPLIT_BYTES_CONF)
    assert(JsonlIngest.splitBytes(spark) == FileRange.DEFAULT_SPLIT_BYTES)
  }
}
