package dev.gosling.prepare

import java.text.Normalizer

import dev.gosling.pipeline.clean.{NormalizeConfig, TextNormalizer}
import org.scalacheck.Gen
import org.scalatest.funsuite.AnyFunSuite
import org.scalatestplus.scalacheck.ScalaCheckPropertyChecks

class NormalizerSuite extends AnyFunSuite with ScalaCheckPropertyChecks {
  private val nfc = new TextNormalizer(NormalizeConfig.defaults())
  private val nfkc = new TextNormalizer(new NormalizeConfig(NormalizeConfig.Form.NFKC, true))
  private val keepForm = new TextNormalizer(new NormalizeConfig(NormalizeConfig.Form.NONE, false))

  test("line endings are unified to \\n: CRLF, CR, NEL, LS, PS") {
    assert(nfc.normalize("a\r\nb\rc\u0085d\u2028e\u2029f\n") == "a\nb\nc\nd\ne\nf\n")
  }

  test("control characters go except \\n and \\t; DEL and C1 controls too") {
    assert(nfc.normalize("a\u0000b\u0007c\td\u007Fe\u0090f\u000Bg\u000Ch") == "abc\tdefgh")
  }

  test("ANSI colour sequences go whole when configured, only the ESC otherwise") {
    assert(nfc.normalize("\u001B[32m《静夜思》\u001B[m\n李白") == "《静夜思》\n李白")
    assert(keepForm.normalize("\u001B[1;31mred\u001B[0m") == "[1;31mred[0m")
    assert(nfc.normalize("\u001B[") == "[", "an incomplete sequence leaves its printable part")
  }

  test("NFC composes, NFKC also folds compatibility forms; plain ASCII is returned as is") {
    assert(nfc.normalize("e\u0301") == "\u00E9")
    assert(nfc.normalize("\uFF21\uFF11\uFB01") == "\uFF21\uFF11\uFB01")
    assert(nfkc.normalize("\uFF21\uFF11\uFB01") == "A1fi")
    val ascii = "plain ASCII text\nwith\ttabs"
    assert(nfc.normalize(ascii) eq ascii)
  }

  test("a removed control never leaves a non-NFC text behind (controls go before composition)") {
    assert(nfc.normalize("e\u0007\u0301") == "\u00E9")
  }

  private val genMessy: Gen[String] = Gen.listOf(Gen.frequency(
    5 -> Gen.alphaNumChar.map(_.toString),
    2 -> Gen.oneOf("\r\n", "\r", "\n", "\t", "\u0085", "\u2028", "\u2029", "\u0000", "\u001B[31m", "\u001B[", "\u007F", "\u009B"),
    2 -> Gen.oneOf("e\u0301", "\u00E9", "\uFF21", "\uFB01", "\u1100\u1161", "\u0041\u030A", "中", "😀", "\u200D"),
    1 -> Gen.choose(0, 0x2FFF).map(_.toChar).filter(c => !Character.isSurrogate(c)).map(_.toString))).map(_.mkString)

  test("properties: a fixed point; no control but \\n and \\t; NFC (or NFKC) normalized") {
    for ((n, form) <- Seq(nfc -> Normalizer.Form.NFC, nfkc -> Normalizer.Form.NFKC)) {
      forAll(genMessy, minSuccessful(500)) { s =>
        val out = n.normalize(s)
        assert(n.normalize(out) == out)
        assert(!out.exists(c => Character.getType(c) == Character.CONTROL && c != '\n' && c != '\t'))
        assert(!out.contains('\r') && !out.contains('\u2028') && !out.contains('\u2029'))
        assert(Normalizer.isNormalized(out, form))
      }
    }
  }
}
