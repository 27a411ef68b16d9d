package dev.gosling.data

import com.fasterxml.jackson.databind.ObjectMapper
import dev.gosling.testkit.Shared
import dev.gosling.trainer.GoslingException
import dev.gosling.trainer.data.{IntList, InvalidTextException, WorldTokenizer}
import org.scalacheck.Gen
import org.scalatest.funsuite.AnyFunSuite
import org.scalatestplus.scalacheck.ScalaCheckPropertyChecks

import java.io.ByteArrayInputStream
import java.nio.ByteBuffer
import java.nio.charset.StandardCharsets.UTF_8
import java.nio.file.Files
import java.security.MessageDigest
import java.util.concurrent.{Callable, Executors}
import scala.jdk.CollectionConverters._

class WorldTokenizerSuite extends AnyFunSuite with ScalaCheckPropertyChecks {
  private val tok = WorldTokenizer.world()
  private lazy val vocabFile: Array[Byte] = Files.readAllBytes(Shared.path("vocab/rwkv_vocab_v20230424.txt"))

  /** The trivially correct matcher: at each position try every length from the longest down, in a hash map. */
  private lazy val naiveVocab: java.util.HashMap[ByteBuffer, Integer] = {
    val m = new java.util.HashMap[ByteBuffer, Integer]()
    for (id <- 1 to tok.maxTokenId) m.put(ByteBuffer.wrap(tok.tokenBytes(id)), id)
    m
  }

  private def naiveEncode(b: Array[Byte]): Array[Int] = {
    val out = Array.newBuilder[Int]
    var pos = 0
    while (pos < b.length) {
      var len = math.min(tok.maxTokenBytes, b.length - pos)
      var id: Integer = null
      while (id == null) { id = naiveVocab.get(ByteBuffer.wrap(b, pos, len)); if (id == null) len -= 1 }
      out += id.intValue
      pos += len
    }
    out.result()
  }

  private def viaList(text: String): Array[Int] = {
    val list = new IntList(1)
    list.add(-7) // the list appends: what was there stays
    val n = tok.encode(text: CharSequence, list)
    assert(list.get(0) == -7 && n == list.size - 1)
    list.toArray.drop(1)
  }

  private def oneLine(e: Throwable): String = {
    val m = e.getMessage
    assert(m != null && !m.contains('\n') && !m.contains('\r'), s"not one line: $m")
    m
  }

  // ---- reference vectors and vocab facts ----

  test("every row of tokenizer-vectors.tsv, through every encode path, and back") {
    val json = new ObjectMapper()
    val rows = Shared.tsv("tokenizer-vectors.tsv")
    assert(rows.size == 9)
    for (row <- rows) {
      val text = json.readValue(row("input_json"), classOf[String])
      val expected = row("ids").split(",").map(_.toInt)
      assert(tok.encode(text).toSeq == expected.toSeq, s"encode($text)")
      val utf8 = WorldTokenizer.utf8(text)
      assert(tok.encodeUtf8(utf8, 0, utf8.length).toSeq == expected.toSeq)
      val padded = Array[Byte](9, 9) ++ utf8 ++ Array[Byte](9)
      assert(tok.encodeUtf8(padded, 2, utf8.length).toSeq == expected.toSeq, "offset slice")
      assert(viaList(text).toSeq == expected.toSeq)
      assert(tok.decode(expected) == text)
      assert(tok.decodeBytes(expected, 0, expected.length).sameElements(utf8))
    }
  }

  test("vocab facts: 65529 tokens, id = byte + 1, the longest token, the str-\\x pitfall, EOD") {
    assert(WorldTokenizer.EOD == 0)
    assert(tok.maxTokenId == 65529)
    assert(tok.vocabSize == 65536)
    assert(tok.maxTokenBytes == 128)
    for (b <- 0 to 255) assert(tok.tokenBytes(b + 1).sameElements(Array(b.toByte)), s"byte $b")
    assert(tok.tokenBytes(65529).sameElements(Array.fill(128)(' '.toByte)))
    assert(tok.tokenBytes(2423).sameElements(Array(0xC2.toByte, 0x80.toByte)))
    assert(tok.tokenBytes(3319).sameElements(Array(0xF0.toByte, 0x9F.toByte)))
    assert(tok.encode(" " * 128).toSeq == Seq(65529))
    assert(tok.encode("\u0080").toSeq == Seq(2423))
    assert(WorldTokenizer.world() eq tok, "parsed once and cached")
  }

  test("the bundled vocab is the shared file, byte for byte") {
    val in = classOf[WorldTokenizer].getResourceAsStream(WorldTokenizer.VOCAB_RESOURCE)
    val bundled = try in.readAllBytes() finally in.close()
    assert(bundled.sameElements(vocabFile))
    val sha = MessageDigest.getInstance("SHA-256").digest(bundled).map(b => f"${b & 0xff}%02x").mkString
    assert(sha == "e6dee3d4e31b4d5c40ac99508ac6c701ceef4bed681bf2167ce9a908552bca89")
  }

  test("each token's bytes match its line: the length column, and the raw text of literals without escapes") {
    val lines = new String(vocabFile, UTF_8).split("\n")
    assert(lines.length == 65529)
    var plain = 0
    for ((line, i) <- lines.zipWithIndex) {
      val id = i + 1
      val lit = line.substring(line.indexOf(' ') + 1, line.lastIndexOf(' '))
      assert(line.substring(0, line.indexOf(' ')).toInt == id)
      assert(tok.tokenBytes(id).length == line.substring(line.lastIndexOf(' ') + 1).toInt, s"line $id")
      if (!lit.contains('\\') && !lit.startsWith("b")) {
        assert(tok.tokenBytes(id).sameElements(lit.substring(1, lit.length - 1).getBytes(UTF_8)), s"line $id")
        plain += 1
      }
    }
    assert(plain > 60000)
  }

  // ---- the fast trie against the naive matcher ----

  private val genVocabBytes: Gen[Array[Byte]] = {
    val piece: Gen[Array[Byte]] = Gen.frequency(
      5 -> Gen.choose(1, 65529).map(id => tok.tokenBytes(id)),
      3 -> Gen.choose(30000, 65529).flatMap { id =>
        val t = tok.tokenBytes(id); Gen.choose(1, t.length).map(n => t.take(n)) // a prefix: the walk must back off
      },
      2 -> Gen.choose(0, 255).map(b => Array(b.toByte)),
      1 -> Gen.choose(1, 300).map(n => Array.fill(n)(' '.toByte)))
    Gen.choose(0, 60).flatMap(n => Gen.listOfN(n, piece)).map(_.toArray.flatten)
  }

  private val genCodePoint: Gen[Int] = Gen.frequency(
    6 -> Gen.choose(0x20, 0x7E),
    2 -> Gen.oneOf(0x00, 0x09, 0x0A, 0x0D, 0x01, 0x1F, 0x7F),
    2 -> Gen.choose(0x80, 0x7FF),
    4 -> Gen.choose(0x4E00, 0x9FFF),
    1 -> Gen.choose(0x3000, 0x303F),
    2 -> Gen.choose(0x1F300, 0x1FAFF),
    1 -> Gen.choose(0x800, 0xFFFF).suchThat(c => c < 0xD800 || c > 0xDFFF),
    1 -> Gen.choose(0x10000, 0x10FFFF))

  private val genText: Gen[String] = Gen.choose(0, 200).flatMap(n => Gen.listOfN(n, genCodePoint))
    .map(cps => new String(cps.toArray, 0, cps.size))

  test("property: the double-array trie equals the naive longest match on byte strings built from the vocab") {
    forAll(genVocabBytes, minSuccessful(300)) { bytes =>
      assert(tok.encodeUtf8(bytes, 0, bytes.length).toSeq == naiveEncode(bytes).toSeq)
    }
  }

  test("property: arbitrary valid Unicode (astral, CJK, emoji, controls, NUL) matches the naive matcher and round-trips") {
    forAll(genText, minSuccessful(300)) { text =>
      val ids = tok.encode(text)
      assert(ids.toSeq == naiveEncode(text.getBytes(UTF_8)).toSeq)
      assert(viaList(text).toSeq == ids.toSeq)
      assert(ids.forall(id => id >= 1 && id <= 65529))
      assert(tok.decode(ids) == text)
    }
  }

  test("the String path equals the byte path on texts longer than its 16 KiB chunk, whatever falls on the seams") {
    val seams = for (k <- 16384 - 140 to 16384 + 8) yield ("a" * k) + " " * 300 + "🦢\u0000中文" * 40 + "b"
    val texts = seams ++ Seq(" " * 100000, "你好，世界。" * 20000, "🦢" * 30000, "x" + " " * 16383 + "\n\n" * 5000)
    for (text <- texts) {
      val bytes = text.getBytes(UTF_8)
      val expected = tok.encodeUtf8(bytes, 0, bytes.length)
      assert(viaList(text).toSeq == expected.toSeq, s"length ${text.length}")
    }
    val long = "你好，世界。" * 3000
    assert(tok.encode(long).toSeq == naiveEncode(long.getBytes(UTF_8)).toSeq)
  }

  test("encoding from several threads at once gives the sequential answer") {
    val texts = (0 until 64).map(i => s"Document $i: 你好，世界 🦢 " * (50 + i))
    val expected = texts.map(t => tok.encode(t).toSeq)
    val pool = Executors.newFixedThreadPool(4)
    try {
      val futures = (0 until 16).map(_ => pool.submit(new Callable[Seq[Seq[Int]]] {
        def call(): Seq[Seq[Int]] = { val l = new IntList(); texts.map { t => l.clear(); tok.encode(t: CharSequence, l); l.toArray.toSeq } }
      }))
      futures.foreach(f => assert(f.get() == expected))
    } finally pool.shutdown()
  }

  // ---- lone surrogates ----

  test("a lone surrogate is an InvalidTextException naming its char index, from every entry point") {
    val cases = Seq(
      "\uD800abc" -> 0, "ab\uD800cd" -> 2, "abc\uD800" -> 3, // high alone: start, middle, end
      "\uDC00abc" -> 0, "ab\uDC00cd" -> 2, "abc\uDFFF" -> 3, // low alone: start, middle, end
      "a\uDC00\uD800b" -> 1, // reversed pair: the low comes first
      "🦢\uD83Eb" -> 2, // a valid pair, then a high with no low
      ("a" * 40000) + "\uDBFF" + "b" -> 40000) // past the String path's first chunk
    for ((text, index) <- cases) {
      val e1 = intercept[InvalidTextException](WorldTokenizer.utf8(text))
      val e2 = intercept[InvalidTextException](tok.encode(text))
      val list = new IntList(); list.add(5)
      val e3 = intercept[InvalidTextException](tok.encode(text: CharSequence, list))
      assert(list.toArray.toSeq == Seq(5), "the list is left as it was")
      for (e <- Seq(e1, e2, e3)) {
        assert(e.charIndex == index)
        assert(e.surrogate == text.charAt(index))
        assert(e.isInstanceOf[GoslingException])
        assert(oneLine(e).startsWith(f"lone surrogate U+${text.charAt(index).toInt}%04X at char $index"))
      }
    }
  }

  test("utf8 is the strict encoding of valid text, with pairs joined") {
    assert(WorldTokenizer.utf8("a\u0000é中🦢").toSeq == "a\u0000é中🦢".getBytes(UTF_8).toSeq)
    assert(WorldTokenizer.utf8("🦢").toSeq == Seq(0xF0, 0x9F, 0xA6, 0xA2).map(_.toByte))
    assert(WorldTokenizer.utf8("").isEmpty)
  }

  // ---- decoding ----

  test("decoding EOD, a negative id or an id past the vocab is an error naming the id and index") {
    val e0 = intercept[GoslingException](tok.decode(Array(33155, 0)))
    assert(oneLine(e0).contains("token id 0 (end of document) at index 1"))
    val big = intercept[GoslingException](tok.decode(Array(65530)))
    assert(oneLine(big).contains("token id 65530 at index 0 is outside the vocab"))
    val neg = intercept[GoslingException](tok.decodeBytes(Array(1, 2, -1), 1, 2))
    assert(oneLine(neg).contains("token id -1 at index 2"))
    intercept[GoslingException](tok.tokenBytes(0))
    intercept[GoslingException](tok.tokenBytes(65536))
    assert(tok.decodeBytes(Array(0, 34, 0), 1, 1).toSeq == Seq('!'.toByte), "only the slice is checked")
    intercept[IndexOutOfBoundsException](tok.decodeBytes(Array(34), 1, 1))
  }

  test("invalid UTF-8 decodes to U+FFFD per maximal subpart, as Python's errors='replace'") {
    // Expected values printed by CPython 3: bytes.fromhex(h).decode('utf-8', 'replace').
    val R = "\uFFFD"
    val cases = Seq(
      "f09f" -> R, "eda080" -> R * 3, "c0af" -> R * 2, "e28261" -> (R + "a"), "f4908080" -> R * 4,
      "8080" -> R * 2, "f09fa6" -> R, "e08080" -> R * 3, "f888808080" -> R * 5, "61ff62" -> ("a" + R + "b"),
      "e180e2f09192f1bf41" -> (R * 4 + "A"), "f0808080" -> R * 4, "efbfbf" -> "\uFFFF", "f09fa6a2" -> "🦢")
    for ((hex, expected) <- cases) {
      val bytes = java.util.HexFormat.of().parseHex(hex)
      val ids = tok.encodeUtf8(bytes, 0, bytes.length)
      assert(tok.decode(ids) == expected, hex)
    }
    assert(tok.decode(Array(3319)) == R, "id 3319 is half an emoji")
    assert(tok.decode(Array.empty[Int]) == "")
  }

  // ---- parsing ----

  private def first256: String = new String(vocabFile, UTF_8).split("\n").take(256).mkString("", "\n", "\n")

  private def parse(text: String, name: String = "test.txt"): WorldTokenizer =
    WorldTokenizer.parse(new ByteArrayInputStream(text.getBytes(UTF_8)), name)

  private def parseError(lines: String*): String =
    oneLine(intercept[GoslingException](parse(first256 + lines.mkString("\n"))))

  test("parse errors are one line naming source:line and what is wrong") {
    val cases = Seq(
      Seq("257 'ab' 3") -> "test.txt:257: the byte length column says 3 but the literal is 2 bytes",
      Seq("258 'ab' 2") -> "test.txt:257: id 258 where 257 was expected (ids must be contiguous from 1)",
      Seq("257 'ab' 2", "257 'cd' 2") -> "test.txt:258: id 257 where 258 was expected",
      Seq("257 '\\q' 1") -> "test.txt:257: bad escape «\\q»",
      Seq("257 'ab 2") -> "test.txt:257: unterminated literal «'ab»",
      Seq("257 'ab\\' 2") -> "test.txt:257: unterminated literal",
      Seq("257 \"a'b 3") -> "test.txt:257: unterminated literal",
      Seq("257 'a'b' 3") -> "test.txt:257: text after the closing quote",
      Seq("257 '\\x4' 1") -> "test.txt:257: bad escape «\\x4'»: needs 2 hex digits",
      Seq("257 '\\x") -> "test.txt:257: expected three fields",
      Seq("257 '\\x 1") -> "test.txt:257: bad escape \\x: needs 2 hex digits",
      Seq("257 '\\xZZ' 1") -> "test.txt:257: bad escape «\\xZZ»: needs 2 hex digits",
      Seq("257 '\\ud800' 3") -> "test.txt:257: escape \\ud800 is a surrogate code point",
      Seq("257 '\\U00110000' 4") -> "test.txt:257: escape \\U00110000 is beyond U+10FFFF",
      Seq("257 b'\\u00e9' 2") -> "test.txt:257: bad escape \\u in a bytes literal",
      Seq("257 b'é' 2") -> "test.txt:257: non-ASCII character «é» in a bytes literal",
      Seq("257 b'\\777' 1") -> "test.txt:257: octal escape \\777 is out of the byte range",
      Seq("257 '\\N{DASH}' 1") -> "test.txt:257: bad escape «\\N»",
      Seq("257 ab 2") -> "test.txt:257: expected a Python literal",
      Seq("257 u'ab' 2") -> "test.txt:257: expected a Python literal",
      Seq("257 '' 0") -> "test.txt:257: empty token",
      Seq("257 'ab'") -> "test.txt:257: expected three fields",
      Seq("257 'a b'") -> "test.txt:257: bad byte length «b'»",
      Seq("257") -> "test.txt:257: expected three fields",
      Seq("x57 'ab' 2") -> "test.txt:257: bad id «x57»",
      Seq("257 'ab' two") -> "test.txt:257: bad byte length «two»",
      Seq("", "257 'ab' 2") -> "test.txt:257: empty line",
      Seq("257 'a\rb' 3") -> "test.txt:257: carriage return inside a line",
      Seq("257 'a' 1") -> "test.txt:257: token 257 has the same bytes as token 98",
      Seq(s"257 '${"a" * 65536}' 65536") -> "test.txt:257: token of 65536 bytes, longer than 65535")
    for ((lines, expected) <- cases) {
      val m = parseError(lines: _*)
      assert(m.startsWith(expected), s"for ${lines.mkString("|")}: $m")
      assert(m.contains("use an unmodified rwkv_vocab_v20230424.txt"), m)
    }
    val badUtf8 = first256.getBytes(UTF_8) ++ Array[Byte]('2', '5', '7', ' ', '\'', 0xC3.toByte, '\'', ' ', '2')
    val e = intercept[GoslingException](WorldTokenizer.parse(new ByteArrayInputStream(badUtf8), "bad.txt"))
    assert(oneLine(e).startsWith("bad.txt:257: the line is not valid UTF-8"))
  }

  test("a vocab without every single byte, or with no tokens, is refused") {
    val without = new String(vocabFile, UTF_8).split("\n").take(255).mkString("\n")
    assert(oneLine(intercept[GoslingException](parse(without, "v.txt"))).startsWith("v.txt: no token for the single byte 0xFF"))
    assert(oneLine(intercept[GoslingException](parse("", "empty.txt"))).startsWith("empty.txt: the vocab has no tokens"))
  }

  test("every Python escape is understood, in str and in bytes literals") {
    val extra = Seq(
      "257 '\\a\\b\\f\\v\\0\\7\\177\\101' 8" -> Array(7, 8, 12, 11, 0, 7, 0x7F, 'A').map(_.toByte),
      "258 'q\\x80\\xff\\u00e9\\u4e2d\\U0001F9A2' 14" -> "q\u0080\u00ffé中🦢".getBytes(UTF_8),
      "259 b'\\x80\\xff\\n\\t\\r\\\\\\'\\\"\\0\\377\\a' 11" ->
        Array(0x80, 0xFF, '\n', '\t', '\r', '\\', '\'', '"', 0, 0xFF, 7).map(_.toByte),
      "260 \"it's \\\"x\\\"\" 8" -> "it's \"x\"".getBytes(UTF_8),
      "261 '\\400' 2" -> "\u0100".getBytes(UTF_8), // octal above 0o377 is a code point in a str literal
      "262 'a b  c' 6" -> "a b  c".getBytes(UTF_8), // spaces inside the literal
      "263 B'\\x00\\x00' 2" -> Array[Byte](0, 0))
    val v = parse(first256 + extra.map(_._1).mkString("\n") + "\n")
    assert(v.maxTokenId == 263)
    for (((_, bytes), i) <- extra.zipWithIndex) assert(v.tokenBytes(257 + i).toSeq == bytes.toSeq, s"id ${257 + i}")
    assert(v.encode("zit's \"x\"").toSeq == Seq(123, 260))
  }

  test("the CRLF copy of the vocab (RWKV-v5/tokenizer) parses identically") {
    val crlf = new String(vocabFile, UTF_8).replace("\n", "\r\n").getBytes(UTF_8)
    val v = WorldTokenizer.parse(new ByteArrayInputStream(crlf), "crlf.txt")
    assert(v.maxTokenId == tok.maxTokenId && v.maxTokenBytes == tok.maxTokenBytes)
    for (id <- 1 to tok.maxTokenId) assert(v.tokenBytes(id).sameElements(tok.tokenBytes(id)), s"id $id")
    val text = "a\tb\r\nc 你好，世界 🦢 RWKV-7 \"Goose\"" * 10
    assert(v.encode(text).toSeq == tok.encode(text).toSeq)
    val noFinalNewline = vocabFile.dropRight(1)
    assert(WorldTokenizer.parse(new ByteArrayInputStream(noFinalNewline), "x").maxTokenId == 65529)
  }

  // ---- IntList ----

  test("IntList grows, clears, copies and checks its bounds") {
    val l = new IntList(0)
    for (i <- 0 until 1000) l.add(i * 3)
    assert(l.size == 1000 && l.get(999) == 2997 && l.toArray.length == 1000)
    l.addAll(Array(7, 8, 9), 1, 2)
    assert(l.size == 1002 && l.get(1001) == 9)
    intercept[IndexOutOfBoundsException](l.get(1002))
    intercept[IndexOutOfBoundsException](l.get(-1))
    l.clear()
    assert(l.isEmpty && l.toArray.isEmpty && l.toString == "[]")
    l.add(4); l.add(5)
    assert(l.toString == "[4, 5]")
    intercept[IllegalArgumentException](new IntList(-1))
  }
}
