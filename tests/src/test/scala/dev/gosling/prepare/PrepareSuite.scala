package dev.gosling.prepare

import java.io.{ByteArrayOutputStream, PrintStream}
import java.nio.charset.StandardCharsets.UTF_8
import java.nio.file.{Files, Path}
import java.util.zip.GZIPOutputStream

import dev.gosling.jobs.{Main, MakeDataJob}
import dev.gosling.pipeline.MakeDataConfig
import dev.gosling.pipeline.dedup.PlantedCorpus
import dev.gosling.pipeline.ingest.DocIds
import dev.gosling.pipeline.prepare.{Json, StageName}
import dev.gosling.pipeline.prepare.PrepareConfigLoader.Override
import dev.gosling.prepare.PrepareTestKit._
import dev.gosling.testkit.{Shared, SparkTestSession}
import dev.gosling.trainer.GoslingException
import dev.gosling.trainer.data.{BinIdxReader, WorldTokenizer}
import org.scalatest.funsuite.AnyFunSuite

import scala.jdk.CollectionConverters._

class PrepareSuite extends AnyFunSuite {
  private def spark = SparkTestSession.get()
  private val demo = Shared.path("fixtures/demo.jsonl")

  test("the make-data recipe writes make-data's .bin/.idx byte for byte (same seed)") {
    val dir = tmp("gosling-prep-md")
    val (r, lines) = prepare(spark, Shared.repo.resolve("conf/prepare/make-data.yaml"), Seq(Override.of("--input", "input", demo.toString),
      Override.of("--work-dir", "work_dir", dir.resolve("work").toString), Override.of("--copies", "shuffle.copies", 2),
      Override.of("--ctx-len", "binidx.ctx_len", 512)))
    MakeDataJob.run(spark, new MakeDataConfig(demo.toString, 2, 512, dir.resolve("md").toString, 42L, 0, 0, true, false,
      MakeDataConfig.DEFAULT_MAX_LINE_BYTES, null), new PrintStream(new ByteArrayOutputStream()))
    assert(Files.readAllBytes(r.bin).sameElements(Files.readAllBytes(dir.resolve("md.bin"))))
    assert(Files.readAllBytes(r.idx).sameElements(Files.readAllBytes(dir.resolve("md.idx"))))
    assert(lines.contains("### Final data.bin/idx has 133666 tokens, 364 items. Dtype <class 'numpy.uint16'>"))
    assert(lines.exists(_.startsWith("--my_exit_tokens 133666 --magic_prime ")))
  }

  /** One web-recipe run on 1 partition, with progress lines every 50 ms, shared by the tests that only read it. */
  private lazy val (webDir, webIn, webRun, webLines) = {
    val dir = tmp("gosling-prep-web")
    val in = corpus(dir, demo)
    val (r, lines) = prepare(spark, recipe(dir, webRecipe(in, dir.resolve("w1"), "progress_seconds: 0.05\n")),
      Seq(Override.of("--partitions", "partitions", 1)))
    (dir, in, r, lines)
  }

  test("outputs are byte-identical across 1 vs 4 partitions (and a fresh rerun); the manifest records inputs, seed and counts") {
    val a = webRun
    val in = webIn
    prepare(spark, recipe(webDir, webRecipe(in, webDir.resolve("w2"))), Seq(Override.of("--partitions", "partitions", 4)))
    val h1 = hashes(webDir.resolve("w1"))
    assert(h1.keySet.count(_.endsWith(".parquet")) >= 10 && h1.contains("manifest.json") && h1.contains("binidx/data.bin"))
    assert(h1.keySet.exists(_.startsWith("filter/data/part-00002")), "3 shards")
    assert(h1.keySet.exists(_.startsWith("fuzzy_dedup/rejects/part-")) && h1.contains("fuzzy_dedup/stats.json"), "fuzzy dedup ran and removed some")
    assert(hashes(webDir.resolve("w2")) == h1)

    val m = Json.read(a.manifest)
    assert(m.path("settings").path("seed").asLong == 42 && m.path("settings").path("shuffle").path("copies").asInt == 2)
    val inputs = m.path("inputs").elements.asScala.toSeq
    assert(inputs.map(_.path("path").asText) == Seq(in.resolve("a.jsonl").toString, in.resolve("b.jsonl.gz").toString))
    val sha = java.util.HexFormat.of.formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(in.resolve("a.jsonl"))))
    assert(inputs.head.path("sha256").asText == sha)
    val stages = m.path("stages").elements.asScala.map(s => s.path("stage").asText -> s).toMap
    assert(stages("ingest").path("rejected").path("by_reason").toString == """{"empty_text":1,"invalid_json":1,"text_not_string":1}""")
    assert(stages("ingest").path("output").path("rows").asLong == 182 + 4 + 5 + 2)
    val filtered = parquet(spark, a.workDir.resolve("filter/data")).map(_.getAs[String]("text"))
    assert(stages("exact_dedup").path("rejected").path("by_reason").path("exact_duplicate").asLong == filtered.size - filtered.distinct.size)
    assert(filtered.size - filtered.distinct.size >= 5 + 2, "the planted copies: 5 demo documents again, 2 equal after normalization")
    val fuzzy = stages("fuzzy_dedup")
    assert(fuzzy.path("input_rows").asLong == stages("exact_dedup").path("output").path("rows").asLong)
    assert(fuzzy.path("rejected").path("by_reason").path("fuzzy_duplicate").asLong == fuzzy.path("counters").path("fuzzy_duplicates").asLong)
    assert(fuzzy.path("counters").path("fuzzy_duplicates").asLong >= 1, "the planted near-duplicate pair")
    assert(fuzzy.path("counters").path("fuzzy_candidate_pairs").asLong >= 1 && fuzzy.path("parameters").path("permutations").asInt == 180)
    assert(m.path("settings").path("fuzzy_dedup").path("bands").asInt == 20 && m.path("settings").path("fuzzy_dedup").path("threshold").asDouble == 0.8)
    assert(m.path("settings").path("stages").toString.contains("\"exact_dedup\",\"fuzzy_dedup\",\"shuffle\""))
    assert(stages("binidx").path("output").path("rows").asLong == 2 * fuzzy.path("output").path("rows").asLong)
    for (s <- stages.values; f <- s.path("files").elements.asScala)
      assert(h1(s.path("stage").asText + "/" + f.path("path").asText) == f.path("sha256").asText)
  }

  test("every removed document is in its stage's rejects with the reason; the smallest id survives exact dedup") {
    val r = webRun
    val in = webIn
    var prevIds = parquet(spark, r.workDir.resolve("ingest/data")).map(_.getAs[Long]("id")).toSet ++
      parquet(spark, r.workDir.resolve("ingest/rejects")).map(_.getAs[Long]("id"))
    for (s <- Seq("ingest", "normalize", "filter", "exact_dedup", "fuzzy_dedup")) {
      val kept = parquet(spark, r.workDir.resolve(s + "/data"))
      val rejects = parquet(spark, r.workDir.resolve(s + "/rejects"))
      assert((kept.map(_.getAs[Long]("id")) ++ rejects.map(_.getAs[Long]("id"))).toSet == prevIds, s)
      assert(rejects.forall(_.getAs[String]("reason") != null))
      val st = Json.read(r.workDir.resolve(s + "/stats.json"))
      assert(st.path("rejected").path("rows").asLong == rejects.size && st.path("output").path("rows").asLong == kept.size, s)
      prevIds = kept.map(_.getAs[Long]("id")).toSet
    }
    val normalized = parquet(spark, r.workDir.resolve("normalize/data")).map(row => row.getAs[Long]("id") -> row.getAs[String]("text")).toMap
    val dups = parquet(spark, r.workDir.resolve("exact_dedup/rejects"))
    assert(dups.nonEmpty && dups.forall(_.getAs[String]("reason") == "exact_duplicate"))
    val filtered = parquet(spark, r.workDir.resolve("filter/data")).map(row => row.getAs[Long]("id") -> row.getAs[String]("text")).toMap
    val byText = filtered.groupBy(_._2).map { case (t, ids) => t -> ids.keys.min }
    for (d <- dups) {
      val id = d.getAs[Long]("id")
      assert(d.getAs[Long]("duplicate_of") == byText(filtered(id)) && d.getAs[Long]("duplicate_of") < id)
    }
    // Fuzzy dedup: the planted pair (last two lines of b.jsonl.gz, 87 lines before them) collapses to its first document.
    val fuzzyRejects = parquet(spark, r.workDir.resolve("fuzzy_dedup/rejects"))
    val fuzzyKept = parquet(spark, r.workDir.resolve("fuzzy_dedup/data")).map(_.getAs[Long]("id")).toSet
    assert(fuzzyRejects.forall(d => d.getAs[String]("reason") == "fuzzy_duplicate" && d.getAs[Long]("duplicate_of") < d.getAs[Long]("id")
      && fuzzyKept.contains(d.getAs[Long]("duplicate_of")) && d.getAs[String]("detail").startsWith("near-duplicate cluster of id ")))
    val planted = fuzzyRejects.find(_.getAs[Long]("id") == DocIds.of(1, 89)).getOrElse(fail("the planted near-duplicate was kept"))
    assert(planted.getAs[Long]("duplicate_of") == DocIds.of(1, 88) && planted.getAs[String]("text") == nearDuplicates(1))
    // The CRLF/bell copy and the decomposed é copy are duplicates only after normalization.
    val texts = normalized.values.toSeq
    assert(texts.count(_.startsWith("Copy one.\nThe same text\tafter normalization, with a bell and CRLF.")) == 2)
    assert(Files.readAllLines(r.workDir.resolve("ingest/quarantine.jsonl")).size == 3)
    val q = Files.readAllLines(r.workDir.resolve("ingest/quarantine.jsonl")).asScala.map(Json.MAPPER.readTree)
    assert(q.map(_.path("reason").asText) == Seq("text_not_string", "invalid_json", "empty_text"))
    assert(q.head.path("file").asText == in.resolve("a.jsonl").toString && q.head.path("line").asLong == 105)
  }

  test("a rerun skips every stage; --from-stage rebuilds from there; a changed threshold rebuilds from its stage on") {
    val dir = tmp("gosling-prep-resume")
    val in = corpus(dir, demo)
    val rec = recipe(dir, webRecipe(in, dir.resolve("w")).replace("shuffle: {copies: 2}\ntokenize: {}\nbinidx: {ctx_len: 512}\n", ""))
    val (first, _) = prepare(spark, rec)
    val before = hashes(first.workDir)
    val (again, lines) = prepare(spark, rec)
    assert(again.ran.isEmpty && again.skipped.size == 5)
    assert(lines.exists(_.startsWith("prepare [filter] up to date (key ")))
    assert(lines.exists(_.startsWith("prepare [fuzzy_dedup] up to date (key ")))
    assert(hashes(first.workDir) == before)
    val (from, _) = prepare(spark, rec, from = "filter")
    assert(from.ran.asScala == Seq(StageName.FILTER, StageName.EXACT_DEDUP, StageName.FUZZY_DEDUP))
    assert(hashes(first.workDir) == before, "a rerun writes the same bytes")
    val (fromFuzzy, _) = prepare(spark, rec, from = "fuzzy_dedup")
    assert(fromFuzzy.ran.asScala == Seq(StageName.FUZZY_DEDUP))
    assert(fromFuzzy.skipped.asScala == Seq(StageName.INGEST, StageName.NORMALIZE, StageName.FILTER, StageName.EXACT_DEDUP))
    assert(hashes(first.workDir) == before)
    val (stricter, _) = prepare(spark, rec, Seq(Override.parse("fuzzy_dedup.threshold=0.99")))
    assert(stricter.ran.asScala == Seq(StageName.FUZZY_DEDUP), "a fuzzy setting rebuilds only fuzzy_dedup")
    val (changed, _) = prepare(spark, rec, Seq(Override.parse("filter.length.min_chars=400")))
    assert(changed.skipped.asScala == Seq(StageName.INGEST, StageName.NORMALIZE))
    assert(changed.ran.asScala.head == StageName.FILTER)
    assert(Json.read(first.workDir.resolve("filter/stats.json")).path("rejected").path("by_reason").path("length.min_chars").asLong > 0)
    val (partitionsOnly, _) = prepare(spark, rec, Seq(Override.of("--partitions", "partitions", 3), Override.parse("filter.length.min_chars=400")))
    assert(partitionsOnly.ran.isEmpty, "partitions say how wide to run, not what to compute")
    Files.delete(first.workDir.resolve("normalize/data/part-00001.parquet"))
    val (repaired, _) = prepare(spark, rec, Seq(Override.parse("filter.length.min_chars=400")))
    assert(repaired.ran.asScala == Seq(StageName.NORMALIZE), "a stage with a missing file is rebuilt (the next stays: same input key)")
    assert(!Files.exists(first.workDir.resolve(".tmp-normalize")))
    val e = intercept[GoslingException](prepare(spark, rec, from = "fuzzy"))
    assert(e.getMessage.startsWith("--from-stage fuzzy: not a stage of "))
  }

  test("fuzzy_dedup on a planted corpus: every near-duplicate family collapses to its smallest id; same bytes on 1 and 4 partitions") {
    // Families at Jaccard 0.9-0.99 to their base (every pair of a family well above the 0.8 threshold), English and
    // Chinese-like, plus unrelated documents. Written in planted-id order, so prepare's ids (file 0, line) keep that order.
    val c = new PlantedCorpus(new PlantedCorpus.Spec(5, 30, 4, Array(0.9, 0.95, 0.99), 60, 60, 300, 0.3, 5, 5))
    val docs = (0L until c.size).map(c.doc).sortBy(_.id)
    val prepId = docs.zipWithIndex.map { case (d, i) => d.id -> DocIds.of(0, i + 1L) }.toMap
    val pairs = (0 until c.spec.families).flatMap(f => c.familyPairs(f).asScala)
    assert(pairs.forall(_.jaccard >= 0.8), "the fixture: every family is one cluster at the default threshold")
    val families = docs.filter(_.family >= 0).groupBy(_.family).values.map(_.map(d => prepId(d.id)))
    val expected = families.flatMap(ids => ids.filter(_ != ids.min).map(_ -> ids.min)).toMap

    val dir = tmp("gosling-prep-fuzzy")
    val in = Files.createDirectories(dir.resolve("in"))
    Files.write(in.resolve("planted.jsonl"), jsonl(docs.map(_.text)).getBytes(UTF_8))
    def run(work: String, partitions: Int) = prepare(spark, recipe(dir, s"input: $in\nwork_dir: ${dir.resolve(work)}\nshards: 2\n" +
      "normalize: {}\nexact_dedup: {}\nfuzzy_dedup: {}\n"), Seq(Override.of("--partitions", "partitions", partitions)))._1
    val r = run("p1", 1)
    val rejects = parquet(spark, r.workDir.resolve("fuzzy_dedup/rejects"))
    assert(rejects.map(d => d.getAs[Long]("id") -> d.getAs[Long]("duplicate_of")).toMap == expected)
    assert(rejects.forall(_.getAs[String]("reason") == "fuzzy_duplicate") && rejects.size == c.spec.families * 3)
    val byId = docs.map(d => prepId(d.id) -> d.text).toMap
    assert(rejects.forall(d => d.getAs[String]("text") == byId(d.getAs[Long]("id"))), "rejects carry their text")
    val kept = parquet(spark, r.workDir.resolve("fuzzy_dedup/data")).map(_.getAs[Long]("id"))
    assert(kept.sorted == (byId.keySet -- expected.keySet).toSeq.sorted)
    val st = r.stats.get(StageName.FUZZY_DEDUP)
    assert(st.path("counters").path("fuzzy_duplicates").asLong == expected.size && st.path("counters").path("fuzzy_clusters").asLong == c.spec.families)
    assert(st.path("counters").path("fuzzy_docs_char_shingled").asLong > 0 && st.path("parameters").path("lsh_threshold").asDouble > 0.7)
    val m = Json.read(r.manifest)
    assert(m.path("stages").elements.asScala.exists(e => e.path("stage").asText == "fuzzy_dedup"
      && e.path("counters").path("fuzzy_candidate_pairs").asLong == st.path("counters").path("fuzzy_candidate_pairs").asLong))
    run("p4", 4)
    assert(hashes(dir.resolve("p4")) == hashes(dir.resolve("p1")))
  }

  test("bad lines are quarantined with reasons; --strict stops at the first with FILE:LINE: reason") {
    val dir = tmp("gosling-prep-strict")
    val in = corpus(dir, demo)
    val e = intercept[GoslingException](prepare(spark, recipe(dir, webRecipe(in, dir.resolve("w"))), Seq(Override.of("--strict", "ingest.strict", true))))
    assert(e.getMessage.startsWith(in.resolve("a.jsonl").toString + ":105: text_not_string"), e.getMessage)
    assert(!Files.exists(dir.resolve("w/ingest/_COMPLETE.json")))
  }

  test("a 100 MB document is truncated (and counted) without exhausting memory; with oversize: quarantine a long one is quarantined") {
    val dir = tmp("gosling-prep-big")
    val unit = "The quick brown fox jumps over the lazy dog. 你好世界。\\n"
    val big = unit * (100 * 1024 * 1024 / unit.length)
    val in = dir.resolve("big.jsonl")
    Files.write(in, ("{\"text\": \"" + big + "\"}\n{\"text\": \"A small document that stays as it is.\"}\n").getBytes(UTF_8))
    assert(Files.size(in) > 100L * 1000 * 1000)
    def yaml(oversize: String) = s"input: $in\nwork_dir: ${dir.resolve(oversize)}\ningest: {max_doc_bytes: 1000000, oversize: $oversize}\n"
    val (t, _) = prepare(spark, recipe(dir, yaml("truncate")))
    val ts = t.stats.get(StageName.INGEST)
    assert(ts.path("counters").path("truncated").asLong == 1 && ts.path("output").path("rows").asLong == 2)
    val texts = parquet(spark, t.workDir.resolve("ingest/data")).map(_.getAs[String]("text"))
    val cut = texts.maxBy(_.length)
    assert(cut.getBytes(UTF_8).length <= 1000000 && cut.getBytes(UTF_8).length > 999990 && big.replace("\\n", "\n").startsWith(cut))
    Files.write(in, ("{\"text\": \"" + unit * 40000 + "\"}\n{\"text\": \"A small document that stays as it is.\"}\n").getBytes(UTF_8))
    val (q, _) = prepare(spark, recipe(dir, yaml("quarantine")))
    val qs = q.stats.get(StageName.INGEST)
    assert(qs.path("rejected").path("by_reason").path("doc_too_long").asLong == 1 && qs.path("output").path("rows").asLong == 1)
    assert(parquet(spark, q.workDir.resolve("ingest/rejects")).head.getAs[String]("text").length <= 1024)
    Files.delete(in)
  }

  test("an empty input is an error naming the path; so is an input of blank lines") {
    val dir = tmp("gosling-prep-empty")
    val empty = Files.createFile(dir.resolve("empty.jsonl"))
    val e = intercept[GoslingException](prepare(spark, recipe(dir, s"input: $empty\nwork_dir: ${dir.resolve("w")}\n")))
    assert(e.getMessage == s"$empty: the input is empty (1 file(s), 0 bytes); nothing to prepare")
    val blank = Files.write(dir.resolve("blank.jsonl"), "\n  \n\r\n".getBytes(UTF_8))
    val b = intercept[GoslingException](prepare(spark, recipe(dir, s"input: $blank\nwork_dir: ${dir.resolve("w2")}\n")))
    assert(b.getMessage.startsWith(s"$blank: the input holds no document"))
    val none = intercept[GoslingException](prepare(spark, recipe(dir, s"input: ${dir.resolve("nope")}/*.jsonl\nwork_dir: ${dir.resolve("w3")}\n")))
    assert(none.getMessage.contains("nope"))
  }

  test("progress: a line per running stage with documents, bytes, drops by reason and an ETA") {
    val lines = webLines
    val progress = lines.filter(l => l.matches("prepare \\[\\w+\\] [\\d,]+ (of [\\d,]+ docs|docs) .*, dropped [\\d,]+.*, ETA .*"))
    assert(progress.map(_.split("[\\[\\]]")(1)).distinct.size >= 3, lines.mkString("\n"))
    assert(progress.exists(_.matches(".*dropped [1-9][\\d,]* \\(.*(exact_duplicate|c4\\.|length\\.|invalid_json).*")), progress.mkString("\n"))
  }

  test("CLI: prepare errors are one line with exit code 2") {
    val dir = tmp("gosling-prep-cli")
    val bad = recipe(dir, "input: x.jsonl\nfilter:\n  c4: {min_num_sentences: 1.5}\n")
    val err = new ByteArrayOutputStream()
    val saved = System.err
    System.setErr(new PrintStream(err, true, UTF_8))
    val code = try Main.execute("prepare", "--config", bad.toString) finally System.setErr(saved)
    assert(code == 2)
    assert(new String(err.toByteArray, UTF_8).trim == s"gosling: error: $bad:3: filter.c4.min_num_sentences: expected a whole number, got number 1.5")
  }

  test("stable ids: (file ordinal in the sorted listing, line number)") {
    val dir = tmp("gosling-prep-ids")
    val in = corpus(dir, demo)
    val (r, _) = prepare(spark, recipe(dir, s"input: $in\nwork_dir: ${dir.resolve("w")}\n"))
    val ids = parquet(spark, r.workDir.resolve("ingest/data")).map(_.getAs[Long]("id"))
    assert(ids.count(DocIds.fileOrdinal(_) == 0) == 104 && ids.count(DocIds.fileOrdinal(_) == 1) == 89)
    assert(ids.filter(DocIds.fileOrdinal(_) == 0).map(DocIds.lineNumber).sorted == (1L to 104L))
  }

  test("Parquet footers are canonical: a footer listing encodings in another order is rewritten to the same bytes") {
    val p = webRun.workDir.resolve("ingest/data/part-00000.parquet")
    val canonical = Files.readAllBytes(p)
    val copy = Files.write(tmp("gosling-footer").resolve("x.parquet"), canonical)
    val len = java.nio.ByteBuffer.wrap(canonical, canonical.length - 8, 4).order(java.nio.ByteOrder.LITTLE_ENDIAN).getInt
    val md = org.apache.parquet.format.Util.readFileMetaData(new java.io.ByteArrayInputStream(canonical, canonical.length - 8 - len, len))
    var reordered = 0
    for (rg <- md.getRow_groups.asScala; cc <- rg.getColumns.asScala if cc.getMeta_data.getEncodings.size > 1) {
      java.util.Collections.reverse(cc.getMeta_data.getEncodings); reordered += 1
    }
    assert(reordered > 0)
    val out = new java.io.ByteArrayOutputStream()
    org.apache.parquet.format.Util.writeFileMetaData(md, out)
    val shuffled = canonical.clone()
    System.arraycopy(out.toByteArray, 0, shuffled, canonical.length - 8 - len, len)
    Files.write(copy, shuffled)
    assert(!Files.readAllBytes(copy).sameElements(canonical))
    dev.gosling.pipeline.prepare.ParquetFooters.canonicalize(copy)
    assert(Files.readAllBytes(copy).sameElements(canonical))
  }

  test("the same bytes on 2 executors (local-cluster) with 4 partitions as on 1 local partition: every shard, stats, marker, manifest, .bin/.idx") {
    val local = hashes(webDir.resolve("w1"))
    val cluster = "local-cluster[2,1,1024]"
    try {
      val s = SparkTestSession.get(cluster)
      prepare(s, recipe(webDir, webRecipe(webIn, webDir.resolve("cluster"))), Seq(Override.of("--partitions", "partitions", 4)))
      val executors = s.sparkContext.statusTracker.getExecutorInfos.length - 1 // minus the driver
      assert(executors == 2, s"expected 2 executors, saw $executors")
    } finally SparkTestSession.get(SparkTestSession.LocalMaster)
    assert(local.size >= 40 && local.contains("binidx/data.bin"))
    assert(hashes(webDir.resolve("cluster")) == local)
  }
}
