package dev.gosling.prepare

import java.io.{ByteArrayOutputStream, PrintStream}
import java.nio.charset.StandardCharsets.UTF_8
import java.nio.file.{Files, Path}
import java.util.zip.GZIPOutputStream
import java.security.MessageDigest
import java.util.HexFormat

import dev.gosling.pipeline.prepare.{PrepareConfigLoader, PreparePlan}
import dev.gosling.pipeline.prepare.PrepareConfigLoader.Override
import org.apache.spark.sql.{Row, SparkSession}

import scala.jdk.CollectionConverters._

/** Running prepare from tests: a recipe from text, the printed lines, and the SHA-256 of every file a run wrote. */
object PrepareTestKit {
  def tmp(prefix: String): Path = Files.createTempDirectory(prefix)

  def recipe(dir: Path, yaml: String): Path = {
    val p = dir.resolve("recipe.yaml")
    Files.write(p, yaml.getBytes(UTF_8))
    p
  }

  def prepare(spark: SparkSession, recipePath: Path, overrides: Seq[Override] = Nil, from: String = null): (PreparePlan.Result, Seq[String]) = {
    val bytes = new ByteArrayOutputStream()
    val ps = new PrintStream(bytes, true, UTF_8)
    val cfg = PrepareConfigLoader.load(recipePath, overrides.asJava)
    val r = PreparePlan.run(spark, cfg, from, ps)
    (r, new String(bytes.toByteArray, UTF_8).split("\n").toSeq)
  }

  /** Relative path -> SHA-256 of every file under dir (the lock file aside: it is empty and only held while running). */
  def hashes(dir: Path): Map[String, String] = {
    val walk = Files.walk(dir)
    try walk.iterator.asScala.filter(Files.isRegularFile(_)).filter(_.getFileName.toString != ".lock").map { p =>
      dir.relativize(p).toString -> HexFormat.of.formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p)))
    }.toMap finally walk.close()
  }

  def parquet(spark: SparkSession, dir: Path): Seq[Row] =
    if (!Files.isDirectory(dir) || Files.list(dir).count() == 0) Seq.empty
    else spark.read.parquet(dir.toUri.toString).collect().toSeq

  def jsonl(texts: Seq[String]): String = {
    val m = new com.fasterxml.jackson.databind.ObjectMapper()
    texts.map(t => m.writeValueAsString(java.util.Map.of("text", t))).mkString("\n") + "\n"
  }

  /** A paragraph that passes the web test recipe's filters, and the same with one word changed (Jaccard ≈ 0.9 on word 5-grams). */
  val nearDuplicates: Seq[String] = {
    val text = "The old mill by the river was built of grey stone in the spring of 1841, when the town still had no railway " +
      "and every sack of flour left on a cart pulled by two horses. For nearly a century the wheel turned day and night, and " +
      "the miller's family lived in the narrow rooms above the grinding floor. After the great flood of 1927 the lower walls " +
      "cracked, the wheel was never repaired, and the building stood empty for decades. Today volunteers from the village open " +
      "it on Sundays, show visitors the worn millstones, and explain how grain was cleaned, ground and sifted before it " +
      "reached the bakers in the market square."
    Seq(text, text.replace("two horses", "four horses"))
  }

  /**
   * Two input files (one gzipped): demo.jsonl's documents, exact duplicates, messy text, bad lines, and at the end of
   * the second file a near-duplicate pair ({@link #nearDuplicates}) for fuzzy dedup.
   */
  def corpus(dir: Path, demo: Path): Path = {
    val in = Files.createDirectories(dir.resolve("in"))
    val demoLines = Files.readAllLines(demo, UTF_8).asScala.filter(_.trim.nonEmpty).toSeq
    val extra = jsonl(Seq(
      "Copy one.\r\nThe same text\tafter normalization, with a bell\u0007 and CRLF.",
      "Copy one.\nThe same text\tafter normalization, with a bell and CRLF.",
      "Café au lait is written with e\u0301 or \u00E9 and both become the same text after NFC normalization here.",
      "Café au lait is written with \u00E9 or \u00E9 and both become the same text after NFC normalization here.")) +
      "{\"text\": 42}\nnot json\n{\"text\": \"\"}\n"
    Files.write(in.resolve("a.jsonl"), (demoLines.take(100).mkString("\n") + "\n" + extra).getBytes(UTF_8))
    val gz = new GZIPOutputStream(Files.newOutputStream(in.resolve("b.jsonl.gz")))
    gz.write((demoLines.drop(100).mkString("\n") + "\n" + demoLines.take(5).mkString("\n") + "\n" + jsonl(nearDuplicates)).getBytes(UTF_8))
    gz.close()
    in
  }

  def webRecipe(in: Path, work: Path, extra: String = ""): String =
    s"""input: $in
       |work_dir: $work
       |shards: 3
       |ingest: {max_doc_bytes: 100000, oversize: truncate}
       |normalize: {form: NFC}
       |filter:
       |  length: {min_chars: 20}
       |  gopher_repetition: {}
       |  c4: {min_num_sentences: 1, filter_curly_bracket: false, min_words_per_line: 3}
       |exact_dedup: {}
       |fuzzy_dedup: {}
       |shuffle: {copies: 2}
       |tokenize: {}
       |binidx: {ctx_len: 512}
       |$extra""".stripMargin

}
