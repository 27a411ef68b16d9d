package dev.gosling.pipeline

import java.io.ByteArrayOutputStream
import java.nio.charset.StandardCharsets.UTF_8
import java.nio.file.{Files, Path}
import java.util.zip.GZIPOutputStream

import dev.gosling.pipeline.ingest.{JsonlLineReader, RawLine}
import dev.gosling.trainer.GoslingException
import org.scalatest.funsuite.AnyFunSuite

import scala.jdk.CollectionConverters._

class JsonlLineReaderSuite extends AnyFunSuite {
  private def file(bytes: Array[Byte], name: String = "in.jsonl"): Path = {
    val dir = Files.createTempDirectory("gosling-lines")
    val p = dir.resolve(name)
    Files.write(p, bytes)
    p
  }

  private def gz(bytes: Array[Byte]): Array[Byte] = {
    val bos = new ByteArrayOutputStream()
    val z = new GZIPOutputStream(bos)
    z.write(bytes)
    z.close()
    bos.toByteArray
  }

  private def lines(p: Path, max: Int = 1 << 20): Seq[RawLine] = {
    val r = new JsonlLineReader(p, 3, max)
    try r.asScala.toSeq finally r.close()
  }

  private def texts(p: Path): Seq[(Long, String)] = lines(p).map(l => (l.lineNumber, new String(l.bytes, UTF_8)))

  test("universal newlines: LF, CRLF and lone CR end a line; numbers count every line") {
    assert(texts(file("a\nb\r\nc\rd".getBytes(UTF_8))) == Seq(1L -> "a", 2L -> "b", 3L -> "c", 4L -> "d"))
    assert(texts(file("a\r\n\r\nb\n".getBytes(UTF_8))) == Seq(1L -> "a", 3L -> "b"))
    assert(texts(file("\r\r\rx\r".getBytes(UTF_8))) == Seq(4L -> "x"))
  }

  test("Python strip(): ASCII and Unicode whitespace at both ends; empty lines skipped") {
    val s = " \t{\"text\": \"a b\"}\u00a0\u3000\u2028 \n   \n\u000b\u001c\nx"
    assert(texts(file(s.getBytes(UTF_8))) == Seq(1L -> "{\"text\": \"a b\"}", 4L -> "x"))
    assert(texts(file(Array.emptyByteArray)).isEmpty)
  }

  test("a UTF-8 BOM at the start of the file is dropped") {
    assert(texts(file(Array(0xEF, 0xBB, 0xBF).map(_.toByte) ++ "{}\n".getBytes(UTF_8))) == Seq(1L -> "{}"))
  }

  test("ids carry the file ordinal and line number") {
    val l = lines(file("\n\nq".getBytes(UTF_8))).head
    assert(l.fileOrdinal == 3 && l.lineNumber == 3)
  }

  test("gzip input, including multi-member files") {
    val p = file(gz("a\nb\n".getBytes(UTF_8)) ++ gz("c\n".getBytes(UTF_8)), "x.jsonl.gz")
    assert(texts(p) == Seq(1L -> "a", 2L -> "b", 3L -> "c"))
  }

  test("a truncated .gz is a one-line error naming the file") {
    val whole = gz(("line\n" * 20000).getBytes(UTF_8))
    val p = file(whole.take(whole.length / 2), "cut.jsonl.gz")
    val e = intercept[GoslingException](lines(p))
    assert(e.getMessage.contains("cut.jsonl.gz") && e.getMessage.contains("truncated") && !e.getMessage.contains("\n"))
  }

  test("a file that is not gzip but named .gz is a one-line error") {
    val e = intercept[GoslingException](lines(file("plain\n".getBytes(UTF_8), "p.jsonl.gz")))
    assert(e.getMessage.contains("p.jsonl.gz") && e.getMessage.contains("gzip"))
  }

  test("a line over the limit keeps only its head and is marked too long; the next line is intact") {
    val long = "y" * 5000
    val ls = lines(file((long + "\nshort\n").getBytes(UTF_8)), max = 1024)
    assert(ls.size == 2)
    assert(ls.head.tooLong && ls.head.bytes.length == 1024 && ls.head.length == 5000)
    assert(!ls(1).tooLong && new String(ls(1).bytes, UTF_8) == "short")
  }

  test("lines that span read chunks are joined (1 MiB buffers)") {
    val a = "a" * (3 << 20)
    val ls = lines(file((a + "\r\nb").getBytes(UTF_8)), max = 4 << 20)
    assert(ls.map(_.length) == Seq(a.length.toLong, 1L))
  }
}
