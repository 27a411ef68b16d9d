package dev.gosling.prepare

import java.nio.ByteBuffer
import java.nio.charset.{CharacterCodingException, CodingErrorAction}
import java.nio.charset.StandardCharsets.UTF_8
import java.nio.file.{Files, Path, Paths}

import dev.gosling.pipeline.clean.Words
import dev.gosling.pipeline.prepare.StageName
import dev.gosling.pipeline.prepare.PrepareConfigLoader.Override
import dev.gosling.prepare.PrepareTestKit._
import dev.gosling.testkit.{Shared, SparkTestSession}
import org.scalatest.funsuite.AnyFunSuite

import scala.jdk.CollectionConverters._
import scala.sys.process._

/**
 * Corpora no one here wrote, from Debian packages (.ci/run installs them): every /usr/share/doc/STAR/copyright file,
 * the reStructuredText sources shipped by linux-doc, and fortunes-zh.
 */
class DebianCorporaSuite extends AnyFunSuite {
  private def spark = SparkTestSession.get()

  private def utf8(p: Path): Option[String] =
    try Some(UTF_8.newDecoder.onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT)
      .decode(ByteBuffer.wrap(Files.readAllBytes(p))).toString)
    catch { case _: CharacterCodingException => None }

  private def require(p: Path, pkg: String): Path = {
    assert(Files.exists(p), s"$p is missing: apt-get install $pkg (.ci/run installs it)")
    p
  }


  private def prepareWith(recipeName: String, in: Path, work: Path, sets: Seq[String]) = {
    val o = Seq(Override.of("--input", "input", in.toString), Override.of("--work-dir", "work_dir", work.toString)) ++ sets.map(Override.parse)
    prepare(spark, Shared.repo.resolve("conf/prepare/" + recipeName), o)._1
  }

  private def table(title: String, byReason: Map[String, Long], kept: Long, total: Long): Unit = {
    println(f"$title: $total%,d documents, kept $kept%,d, removed ${total - kept}%,d")
    byReason.toSeq.sortBy(-_._2).foreach { case (r, n) => println(f"  $n%7d  $r") }
  }

  private def byReason(r: dev.gosling.pipeline.prepare.PreparePlan.Result, s: StageName): Map[String, Long] =
    r.stats.get(s).path("rejected").path("by_reason").fields.asScala.map(e => e.getKey -> e.getValue.asLong).toMap

  private val notLater = Seq("exact_dedup=false", "fuzzy_dedup=false", "shuffle=false", "tokenize=false", "binidx=false")

  test("exact dedup over /usr/share/doc/*/copyright removes as many as sha256sum | sort | uniq says after normalization") {
    val docs = require(Paths.get("/usr/share/doc"), "(a Debian system)")
    val files = Files.list(docs).iterator.asScala.map(_.resolve("copyright")).filter(Files.isRegularFile(_)).toSeq.sortBy(_.toString)
    val texts = files.flatMap(f => utf8(f).map(f -> _)).filter(_._2.nonEmpty)
    assert(texts.size > 100, s"only ${texts.size} copyright files")
    val dir = tmp("gosling-copyright")
    val in = dir.resolve("copyright.jsonl")
    Files.write(in, jsonl(texts.map(_._2)).getBytes(UTF_8))

    // Independent path: Python's unicodedata normalizes copies of the files, coreutils count the distinct ones.
    val norm = Files.createDirectories(dir.resolve("normalized"))
    val list = dir.resolve("files.txt")
    Files.write(list, texts.map(_._1.toString).mkString("\n").getBytes(UTF_8))
    val py =
      """import re, sys, unicodedata
        |out = sys.argv[2]
        |for i, f in enumerate(open(sys.argv[1], encoding='utf-8').read().split('\n')):
        |    t = open(f, encoding='utf-8', newline='').read()
        |    t = t.replace('\r\n', '\n').replace('\r', '\n')
        |    t = re.sub('[\x85\u2028\u2029]', '\n', t)
        |    t = re.sub(r'\x1b\[[0-?]*[ -/]*[@-~]', '', t)
        |    t = ''.join(c for c in t if not (unicodedata.category(c) == 'Cc' and c not in '\t\n'))
        |    t = unicodedata.normalize('NFC', t)
        |    if t.strip() != '':
        |        open('%s/%05d' % (out, i), 'w', encoding='utf-8', newline='').write(t)
        |""".stripMargin
    val script = Files.write(dir.resolve("normalize.py"), py.getBytes(UTF_8))
    assert(Seq("python3", script.toString, list.toString, norm.toString).! == 0)
    val count = Seq("bash", "-c", s"ls '$norm' | wc -l").!!.trim.toLong
    val unique = Seq("bash", "-c", s"cd '$norm' && sha256sum * | cut -d' ' -f1 | sort | uniq | wc -l").!!.trim.toLong
    val expected = count - unique

    val recipe = PrepareTestKit.recipe(dir, s"input: $in\nwork_dir: ${dir.resolve("w")}\nnormalize: {form: NFC}\nexact_dedup: {}\n")
    val (r, _) = prepare(spark, recipe)
    val kept = r.stats.get(StageName.NORMALIZE).path("output").path("rows").asLong
    val removed = byReason(r, StageName.EXACT_DEDUP).getOrElse("exact_duplicate", 0L)
    println(f"copyright files: ${files.size}, valid UTF-8 and non-empty ${texts.size}, after normalization $kept; " +
      f"sha256sum|sort|uniq: $unique distinct of $count -> $expected duplicates; exact_dedup removed $removed")
    assert(count == kept)
    assert(expected > 10, "Debian's copyright files hold many identical licences")
    assert(removed == expected)
    assert(r.stats.get(StageName.EXACT_DEDUP).path("counters").path("hash_collisions").asLong == 0)
  }

  test("linux-doc reStructuredText sources: filter counts by reason (web-corpus recipe)") {
    val root = Files.list(require(Paths.get("/usr/share/doc"), "linux-doc")).iterator.asScala
      .filter(_.getFileName.toString.matches("linux-doc-\\d.*")).toSeq.sorted.headOption
      .getOrElse(fail("no /usr/share/doc/linux-doc-*: apt-get install linux-doc (.ci/run installs it)"))
    val walk = Files.walk(root.resolve("html/_sources"))
    val files = try walk.iterator.asScala.filter(_.toString.endsWith(".rst.txt")).toSeq.sortBy(_.toString) finally walk.close()
    assert(files.size > 1000, s"${files.size} .rst.txt files under $root")
    val texts = files.flatMap(utf8)
    val dir = tmp("gosling-linuxdoc")
    val in = Files.write(dir.resolve("linux-doc.jsonl"), jsonl(texts).getBytes(UTF_8))
    val r = prepareWith("web-corpus.yaml", in, dir.resolve("w"), notLater)
    val reasons = byReason(r, StageName.FILTER)
    val total = r.stats.get(StageName.FILTER).path("input_rows").asLong
    val kept = r.stats.get(StageName.FILTER).path("output").path("rows").asLong
    table(s"linux-doc ${root.getFileName} .rst.txt (${"%.1f".format(texts.map(_.length).sum / 1e6)} M chars)", reasons, kept, total)
    assert(total == texts.size && kept + reasons.values.sum == total)
    assert(reasons.keys.forall(_.matches("(length|gopher_repetition|gopher_quality|c4|fineweb)\\.[a-z_0-9.]+")), reasons.keys)
    assert(reasons.size >= 5, "markup, tables and code trip several different rules")
    assert(kept > total / 20 && kept < total * 9 / 10, s"kept $kept of $total")
    val zh = files.zip(texts).filter(_._1.toString.contains("/zh_CN/"))
    println(s"  (of which zh_CN translations: ${zh.size})")
  }

  test("fortunes-zh: entries are counted per character; filter counts by reason (cjk-web recipe vs web-corpus)") {
    val dir = tmp("gosling-fortunes-zh")
    val base = Paths.get("/usr/share/games/fortunes")
    val entries = Seq("chinese", "tang300", "song100").flatMap { n =>
      val f = require(base.resolve(n), "fortunes-zh")
      new String(Files.readAllBytes(f), UTF_8).split("\n%\n").toSeq.map(_.stripSuffix("\n%").trim).filter(_.nonEmpty)
    }
    assert(entries.size > 5000 && entries.exists(_.contains("\u001B[")), "fortunes-zh entries carry ANSI colours")
    val in = Files.write(dir.resolve("fortunes-zh.jsonl"), jsonl(entries).getBytes(UTF_8))
    val cjk = prepareWith("cjk-web.yaml", in, dir.resolve("cjk"), notLater)
    val en = prepareWith("web-corpus.yaml", in, dir.resolve("en"), notLater)
    val total = cjk.stats.get(StageName.FILTER).path("input_rows").asLong
    val keptCjk = cjk.stats.get(StageName.FILTER).path("output").path("rows").asLong
    val keptEn = en.stats.get(StageName.FILTER).path("output").path("rows").asLong
    table("fortunes-zh, cjk-web recipe", byReason(cjk, StageName.FILTER), keptCjk, total)
    table("fortunes-zh, web-corpus recipe (English thresholds)", byReason(en, StageName.FILTER), keptEn, total)
    assert(total == entries.size)
    val kept = parquet(spark, cjk.workDir.resolve("filter/data")).map(_.getAs[String]("text"))
    assert(kept.nonEmpty && kept.forall(t => !t.contains("\u001B") && !t.contains("[m")), "normalize removed the colour codes whole")
    assert(keptCjk > 10 * math.max(1, keptEn), "CJK-aware counting keeps text that English word rules drop")
    val tang = entries.find(_.contains("床前明月光")).getOrElse(fail("tang300 has 静夜思"))
    val w = new Words().scan(tang)
    val hanzi = tang.count(c => c >= '\u4E00' && c <= '\u9FFF')
    assert((0 until w.count).count(i => w.isCjk(i)) == hanzi, "one word per character")
  }
}
