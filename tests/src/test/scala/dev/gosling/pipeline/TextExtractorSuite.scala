package dev.gosling.pipeline

import java.nio.charset.StandardCharsets.UTF_8

import dev.gosling.pipeline.ingest.{RawLine, RejectReason, TextExtractor}
import dev.gosling.trainer.data.Utf8
import org.scalatest.funsuite.AnyFunSuite

class TextExtractorSuite extends AnyFunSuite {
  private def extract(bytes: Array[Byte]) = TextExtractor.extract(new RawLine(0, 1, bytes, bytes.length, false))
  private def extract(s: String) = TextExtractor.extract(new RawLine(0, 1, s.getBytes(UTF_8), s.getBytes(UTF_8).length, false))
  private def reason(s: String) = extract(s).reason

  test("the \"text\" field is taken; other fields and nesting are ignored; escapes are decoded") {
    val o = extract("{\"meta\": {\"a\": [1, {\"text\": 2}]}, \"text\": \"h\\u00e9\\n\\ud83e\\udda2\", \"n\": NaN}")
    assert(o.isDocument && new String(o.text, UTF_8) == "hé\n🦢")
  }

  test("the last duplicate \"text\" wins, as in Python's json") {
    assert(new String(extract("""{"text": "a", "text": "b"}""").text, UTF_8) == "b")
    assert(reason("""{"text": "a", "text": 3}""") == RejectReason.TEXT_NOT_STRING)
  }

  test("each kind of bad line has its reason") {
    assert(reason("""{"text": "a"""") == RejectReason.INVALID_JSON)
    assert(reason("""{"text": "a"} trailing""") == RejectReason.INVALID_JSON)
    assert(reason("{\"text\": \"a\u0001\"}") == RejectReason.INVALID_JSON) // a raw control character inside a string
    assert(reason("""["text"]""") == RejectReason.NOT_AN_OBJECT)
    assert(reason("\"just a string\"") == RejectReason.NOT_AN_OBJECT)
    assert(reason("""{"txt": "a"}""") == RejectReason.MISSING_TEXT)
    assert(reason("""{"text": null}""") == RejectReason.TEXT_NOT_STRING)
    assert(reason("""{"text": ["a"]}""") == RejectReason.TEXT_NOT_STRING)
    assert(reason("""{"text": ""}""") == RejectReason.EMPTY_TEXT)
    assert(reason("{\"text\": \"x\\ud800y\"}") == RejectReason.LONE_SURROGATE)
    assert(reason("{\"text\": \"\\udc00\"}") == RejectReason.LONE_SURROGATE)
    val bad = """{"text": "a""".getBytes(UTF_8) ++ Array(0xC3.toByte, 0x28.toByte) ++ "\"}".getBytes(UTF_8)
    val o = extract(bad)
    assert(o.reason == RejectReason.INVALID_UTF8 && o.detail.contains("byte 11"))
  }

  test("a rejected line keeps at most 1 KiB of its raw bytes") {
    val o = extract("{\"x\": \"" + "z" * 5000 + "\"}")
    assert(o.reason == RejectReason.MISSING_TEXT && o.rawHead.length == 1024)
  }

  test("a lone surrogate's detail names its position") {
    assert(extract("{\"text\": \"ab\\ud800\"}").detail.contains("at char 2"))
  }

  test("UTF-8 validation: overlong forms, surrogates, > U+10FFFF and truncated sequences are invalid") {
    def bad(xs: Int*) = Utf8.firstInvalid(xs.map(_.toByte).toArray, 0, xs.size)
    assert(bad(0x41, 0xC2, 0xA9) == -1)
    assert(bad(0xF0, 0x9F, 0xA6, 0xA2) == -1)
    assert(bad(0xC0, 0x80) == 0)
    assert(bad(0xE0, 0x80, 0x80) == 0)
    assert(bad(0xED, 0xA0, 0x80) == 0)
    assert(bad(0xF4, 0x90, 0x80, 0x80) == 0)
    assert(bad(0x41, 0xE2, 0x82) == 1)
    assert(bad(0x80) == 0)
    assert(bad(0xFF) == 0)
  }
}
