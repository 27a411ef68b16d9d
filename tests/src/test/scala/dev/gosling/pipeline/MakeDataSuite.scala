package dev.gosling.pipeline

import java.io.{ByteArrayOutputStream, PrintStream}
import java.nio.charset.StandardCharsets.UTF_8
import java.nio.file.{Files, Path}
import java.util.zip.GZIPOutputStream

import dev.gosling.jobs.{Main, MakeDataJob}
import dev.gosling.pipeline.ingest.RejectReason
import dev.gosling.testkit.{Shared, SparkTestSession}
import dev.gosling.trainer.GoslingException
import dev.gosling.trainer.data.{BinIdxReader, MagicPrime, WorldTokenizer}
import org.scalatest.funsuite.AnyFunSuite

import scala.jdk.CollectionConverters._

class MakeDataSuite extends AnyFunSuite {
  private val demo = Shared.path("fixtures/demo.jsonl")

  private def tmp(): Path = Files.createTempDirectory("gosling-makedata")

  /** Runs make-data and returns the result and what it printed. */
  private def makeData(input: String, copies: Int, ctx: Int, out: Path, seed: Long = MakeDataConfig.DEFAULT_SEED,
                       partitions: Int = 0, maxTokens: Int = 0, eod: Boolean = true, strict: Boolean = false,
                       maxLineBytes: Int = MakeDataConfig.DEFAULT_MAX_LINE_BYTES): (MakeDataJob.Result, Seq[String]) = {
    val bytes = new ByteArrayOutputStream()
    val ps = new PrintStream(bytes, true, UTF_8)
    val cfg = new MakeDataConfig(input, copies, ctx, out.toString, seed, partitions, maxTokens, eod, strict, maxLineBytes, null)
    val r = MakeDataJob.run(SparkTestSession.get(), cfg, ps)
    (r, new String(bytes.toByteArray, UTF_8).split("\n").toSeq)
  }

  private def items(prefix: Path): Seq[Seq[Int]] = {
    val r = BinIdxReader.open(prefix)
    try (0 until r.itemCount().toInt).map(i => r.item(i).toSeq) finally r.close()
  }

  private def write(dir: Path, name: String, lines: Seq[String]): Path = {
    val p = dir.resolve(name)
    Files.write(p, lines.mkString("\n").getBytes(UTF_8))
    p
  }

  test("demo.jsonl with N=3 gives make_data's numbers: 200499 tokens, 546 items, magic_prime 47 @4096, 389 @512") {
    val dir = tmp()
    val (r, lines) = makeData(demo.toString, 3, 4096, dir.resolve("demo"))
    assert(r.tokens == 200499 && r.items == 546 && r.nonEmptyLines == 182)
    assert(r.magicPrime == 47L)
    assert(MagicPrime.magicPrime(r.tokens, 512) == 389)
    assert(Files.size(dir.resolve("demo.bin")) == 400998)
    assert(Files.size(dir.resolve("demo.idx")) == 10962)
    assert(lines.contains("### Found 182 non-empty lines in " + demo))
    assert(lines.contains("### Final demo.bin/idx has 200499 tokens, 546 items. Dtype <class 'numpy.uint16'>"))
    assert(lines.contains("### magic_prime = 47 (for ctxlen 4096)"))
    assert(lines.filter(_.nonEmpty).last == "--my_exit_tokens 200499 --magic_prime 47 --ctx_len 4096")
    assert(lines.contains("### data_line_count = 546"))
    assert(lines.exists(_.startsWith("546  MICRO_BSZ = [2, 3, 6, 7, 13, 14, 21, 26, 39, 42, 78, 91, 182, 273]")))
    assert(r.quarantine == null && r.rejects.isEmpty)
  }

  test("each copy is a full permutation of the documents, every item ends with EOD, copies differ in order") {
    val dir = tmp()
    makeData(demo.toString, 3, 512, dir.resolve("d"))
    val all = items(dir.resolve("d"))
    val one = makeData(demo.toString, 1, 512, dir.resolve("one"))._1
    assert(one.tokens == 66833 && one.items == 182)
    val docs = items(dir.resolve("one"))
    val blocks = all.grouped(182).toSeq
    assert(blocks.size == 3)
    blocks.foreach(b => assert(b.sortBy(_.mkString(",")) == docs.sortBy(_.mkString(","))))
    assert(blocks.map(_.map(_.hashCode)).distinct.size == 3)
    assert(all.forall(_.last == WorldTokenizer.EOD))
  }

  test("the output bytes depend only on the input and the seed: 1 vs 8 partitions are identical, another seed differs") {
    val dir = tmp()
    makeData(demo.toString, 2, 512, dir.resolve("p1"), partitions = 1)
    makeData(demo.toString, 2, 512, dir.resolve("p8"), partitions = 8)
    makeData(demo.toString, 2, 512, dir.resolve("s7"), seed = 7, partitions = 8)
    def bytes(n: String) = Files.readAllBytes(dir.resolve(n))
    assert(bytes("p1.bin").sameElements(bytes("p8.bin")) && bytes("p1.idx").sameElements(bytes("p8.idx")))
    assert(!bytes("p1.bin").sameElements(bytes("s7.bin")))
    assert(bytes("p1.bin").length == bytes("s7.bin").length)
  }

  test("bad lines are counted by reason and quarantined with file, line and reason; good lines survive") {
    val dir = tmp()
    val in = write(dir, "mixed.jsonl", Seq(
      """{"text": "good one"}""",
      """{"text": "unterminated""",
      "",
      """{"title": "no text"}""",
      """{"text": 42}""",
      """{"text": ""}""",
      "{\"text\": \"lone \\ud800 surrogate\"}",
      """[1, 2]""",
      """   {"text": "good two"}   """))
    val withBadUtf8 = Files.readAllBytes(in) ++ "\n{\"text\": \"bad ".getBytes(UTF_8) ++ Array(0xFF.toByte) ++ "\"}\n".getBytes(UTF_8)
    Files.write(in, withBadUtf8)
    val (r, lines) = makeData(in.toString, 1, 16, dir.resolve("mixed"))
    assert(r.items == 2 && r.nonEmptyLines == 9)
    val c = r.rejects.asScala.map { case (k, v) => k -> v.longValue }.toMap
    assert(c == Map(RejectReason.INVALID_JSON -> 1L, RejectReason.MISSING_TEXT -> 1L, RejectReason.TEXT_NOT_STRING -> 1L,
      RejectReason.EMPTY_TEXT -> 1L, RejectReason.LONE_SURROGATE -> 1L, RejectReason.NOT_AN_OBJECT -> 1L, RejectReason.INVALID_UTF8 -> 1L))
    assert(lines.exists(l => l.startsWith("### Quarantined 7 line(s)") && l.contains("invalid_json 1")))
    val q = Files.readAllLines(r.quarantine, UTF_8).asScala.toSeq
    assert(q.size == 7)
    val mapper = new com.fasterxml.jackson.databind.ObjectMapper()
    val rows = q.map(mapper.readTree)
    assert(rows.map(_.get("line").asLong) == Seq(2L, 4L, 5L, 6L, 7L, 8L, 10L))
    assert(rows.map(_.get("reason").asText) == Seq("invalid_json", "missing_text", "text_not_string", "empty_text", "lone_surrogate", "not_an_object", "invalid_utf8"))
    assert(rows.forall(_.get("file").asText == in.toAbsolutePath.toString))
    assert(rows.head.get("raw").asText == """{"text": "unterminated""")
    val texts = items(dir.resolve("mixed")).map(i => WorldTokenizer.world().decode(i.dropRight(1).toArray)).toSet
    assert(texts == Set("good one", "good two"))
  }

  test("--strict stops at the first bad line with file:line: reason") {
    val dir = tmp()
    val in = write(dir, "s.jsonl", Seq("""{"text": "a"}""", """{"text": 1}""", """{"oops": 1}"""))
    val e = intercept[Exception](makeData(in.toString, 1, 16, dir.resolve("s"), strict = true))
    val msg = Iterator.iterate[Throwable](e)(_.getCause).takeWhile(_ != null).collectFirst { case g: GoslingException => g.getMessage }
    assert(msg.exists(m => m.startsWith(in.toAbsolutePath.toString + ":2: text_not_string")), msg)
    assert(!Files.exists(dir.resolve("s.bin")) && !Files.exists(dir.resolve("s.idx")))
  }

  test("--max-tokens drops longer documents (EOD counted) and counts them; --no-eod writes no EOD") {
    val dir = tmp()
    val tok = WorldTokenizer.world()
    val docs = Seq("short", "a somewhat longer document with more tokens in it", "mid sized text")
    val in = write(dir, "m.jsonl", docs.map(t => s"""{"text": "$t"}"""))
    val lens = docs.map(t => tok.encode(t).length + 1)
    val limit = lens.sorted.apply(1)
    val (r, _) = makeData(in.toString, 1, 16, dir.resolve("m"), maxTokens = limit)
    assert(r.items == 2 && r.rejects.get(RejectReason.TOO_MANY_TOKENS) == 1L)
    assert(r.tokens == lens.filter(_ <= limit).sum)
    val (n, _) = makeData(in.toString, 1, 16, dir.resolve("n"), eod = false)
    assert(n.tokens == lens.map(_ - 1).sum && items(dir.resolve("n")).forall(_.last != 0))
  }

  test("inputs: .jsonl.gz, a directory and a glob give the same documents as the plain file") {
    val dir = tmp()
    val src = Files.readAllBytes(demo)
    val sub = Files.createDirectories(dir.resolve("in"))
    val half = new String(src, UTF_8).split("\n", -1)
    Files.write(sub.resolve("a.jsonl"), half.take(100).mkString("\n").getBytes(UTF_8))
    val gz = new GZIPOutputStream(Files.newOutputStream(sub.resolve("b.jsonl.gz")))
    gz.write(half.drop(100).mkString("\n").getBytes(UTF_8)); gz.close()
    val (plain, _) = makeData(demo.toString, 1, 512, dir.resolve("plain"))
    val (fromDir, _) = makeData(sub.toString, 1, 512, dir.resolve("dir"))
    val (fromGlob, _) = makeData(sub.toString + "/*.jsonl*", 1, 512, dir.resolve("glob"))
    assert(fromDir.tokens == plain.tokens && fromDir.items == plain.items)
    assert(Files.readAllBytes(dir.resolve("dir.bin")).sameElements(Files.readAllBytes(dir.resolve("glob.bin"))))
    assert(items(dir.resolve("dir")).map(_.mkString(",")).sorted == items(dir.resolve("plain")).map(_.mkString(",")).sorted)
  }

  test("a 100 MB line is tokenized without exhausting memory; over --max-line-bytes it is quarantined instead") {
    val dir = tmp()
    val unit = "The quick brown fox jumps over the lazy dog. 你好世界。\\n"
    val text = unit * (100 * 1024 * 1024 / unit.length)
    val in = dir.resolve("big.jsonl")
    Files.write(in, ("{\"text\": \"" + text + "\"}\n{\"text\": \"tail\"}\n").getBytes(UTF_8))
    assert(Files.size(in) > 100L * 1000 * 1000)
    val (r, _) = makeData(in.toString, 1, 4096, dir.resolve("big"))
    val decoded = text.replace("\\n", "\n")
    assert(r.items == 2 && r.tokens == WorldTokenizer.world().encode(decoded).length + 1 + WorldTokenizer.world().encode("tail").length + 1)
    val (small, _) = makeData(in.toString, 1, 16, dir.resolve("cut"), maxLineBytes = 1 << 20)
    assert(small.items == 1 && small.rejects.get(RejectReason.LINE_TOO_LONG) == 1L)
    Files.delete(in)
  }

  test("CLI: errors are one line with exit code 2; a missing input names the path") {
    val err = new ByteArrayOutputStream()
    val saved = System.err
    System.setErr(new PrintStream(err, true, UTF_8))
    val code = try Main.execute("make-data", "/nonexistent/x.jsonl", "1", "512") finally System.setErr(saved)
    assert(code == 2)
    val printed = new String(err.toByteArray, UTF_8).trim
    assert(printed == "gosling: error: /nonexistent/x.jsonl: no such file or directory", printed)
  }

  test("all lines rejected is an error, and nothing that looks finished is written") {
    val dir = tmp()
    val in = write(dir, "bad.jsonl", Seq("nope", "{}"))
    val e = intercept[GoslingException](makeData(in.toString, 1, 16, dir.resolve("bad")))
    assert(e.getMessage.contains("no document left"))
    assert(!Files.exists(dir.resolve("bad.bin")) && !Files.exists(dir.resolve("bad.idx")))
  }

  test("data shorter than 3 x ctx_len: files are written, magic_prime is reported as not computable") {
    val dir = tmp()
    val in = write(dir, "tiny.jsonl", Seq("""{"text": "hi"}"""))
    val (r, lines) = makeData(in.toString, 1, 4096, dir.resolve("tiny"))
    assert(r.magicPrime == null && r.items == 1)
    assert(lines.exists(l => l.startsWith("### magic_prime: not computed:") && l.contains("3")))
  }
}
