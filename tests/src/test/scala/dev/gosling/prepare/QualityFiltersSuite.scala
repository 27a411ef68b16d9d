package dev.gosling.prepare

import java.util.{List => JList}

import dev.gosling.pipeline.clean._
import org.scalacheck.Gen
import org.scalatest.funsuite.AnyFunSuite
import org.scalatestplus.scalacheck.ScalaCheckPropertyChecks

import scala.collection.mutable
import scala.jdk.CollectionConverters._

/** The filters' rules, one by one, and the repetition measures against plain string implementations of datatrove's. */
class QualityFiltersSuite extends AnyFunSuite with ScalaCheckPropertyChecks {

  private def words(s: String): Seq[String] = {
    val w = new Words().scan(s)
    (0 until w.count).map(i => s.substring(w.start(i), w.end(i)))
  }

  private def only(length: LengthRules = null, rep: GopherRepetitionRules = null, quality: GopherQualityRules = null,
                   c4: C4Rules = null, fineweb: FineWebRules = null) =
    new QualityFilters(new FilterConfig(length, rep, quality, c4, fineweb))

  private def reason(f: QualityFilters, text: String): String = f.apply(text).reason

  // A plain English paragraph that passes every reference rule.
  private val good: String = Seq(
    "The history of the river valley is long and it has been studied by many scholars over the years.",
    "Farmers settled near the water because the soil was rich and the climate was mild for most of the year.",
    "Later the town grew into a market centre with a bridge, a church and a school that served the whole district.",
    "Today visitors come to walk along the banks and to learn about the people who have lived there for centuries.",
    "Local volunteers keep a small museum open on weekends and they are happy to answer questions from guests.").mkString("\n")

  test("the reference thresholds are the published ones (Gopher Table A1, C4 paper, FineWeb)") {
    val q = GopherQualityRules.defaults()
    assert((q.minDocWords, q.maxDocWords, q.minAvgWordLength, q.maxAvgWordLength) == (50, 100000, 3.0, 10.0))
    assert((q.maxSymbolWordRatio, q.maxBulletLinesRatio, q.maxEllipsisLinesRatio, q.minAlphaWordsRatio, q.minStopWords) ==
      (0.1, 0.9, 0.3, 0.8, 2))
    assert(q.stopWords.asScala == Seq("the", "be", "to", "of", "and", "that", "have", "with"))
    val r = GopherRepetitionRules.defaults()
    assert((r.dupLineFrac, r.dupParaFrac, r.dupLineCharFrac, r.dupParaCharFrac) == (0.3, 0.3, 0.2, 0.2))
    assert(r.topNGrams.asScala.toSeq == Seq(2 -> 0.2, 3 -> 0.18, 4 -> 0.16))
    assert(r.dupNGrams.asScala.toSeq == Seq(5 -> 0.15, 6 -> 0.14, 7 -> 0.13, 8 -> 0.12, 9 -> 0.11, 10 -> 0.1))
    val c = C4Rules.defaults()
    assert(c.minWordsPerLine == 5 && c.minNumSentences == 3 && c.maxWordLength == 1000, "C4 paper: 5 words per line, 3 sentences")
    assert(c.endPunctuation.asScala == Seq(".", "?", "!", "\"") && c.filterNoTerminalPunct)
    val f = FineWebRules.defaults()
    assert((f.linePunctThr, f.shortLineThr, f.shortLineLength, f.charDuplicatesRatio, f.newLineRatio) == (0.12, 0.67, 30, 0.01, 0.3))
  }

  test("a clean English paragraph passes every group; C4 keeps all its lines") {
    val all = only(new LengthRules(100, 10000, 10, 10000), GopherRepetitionRules.defaults(), GopherQualityRules.defaults(),
      C4Rules.defaults(), FineWebRules.defaults())
    assert(all.apply(good).reason == null, String.valueOf(all.detail))
    assert(all.text == good && all.c4LinesRemoved == 0)
  }

  test("words: letters and digits with inner . , ' - _, punctuation runs as symbol words, one word per CJK character") {
    assert(words("Hello, world... don't 3.14 e.g. well-known #tag") ==
      Seq("Hello", ",", "world", "...", "don't", "3.14", "e.g", ".", "well-known", "#", "tag"))
    assert(words("我爱北京。カタカナ and ひらがな!") == Seq("我", "爱", "北", "京", "。", "カ", "タ", "カ", "ナ", "and", "ひ", "ら", "が", "な", "!"))
    assert(words("한국어 문장") == Seq("한국어", "문장"), "Hangul is space-delimited")
    val w = new Words().scan("ab ... 中")
    assert(!w.isSymbol(0) && w.hasAlpha(0) && w.isSymbol(1) && !w.hasAlpha(1) && w.isCjk(2) && w.hasAlpha(2))
    assert(new Words().scan("𝔘𝔫𝔦").codePoints(0) == 3, "lengths are code points, like Python len()")
    val longest = new Array[Int](1)
    val mixed = "你好 world, foo"
    assert(Words.countLineWords(mixed, 0, mixed.length, longest) == 4 && longest(0) == 6)
    assert(Words.countLineWords("one two  three", 0, "one two  three".length, null) == 3, "len(line.split()) for space-delimited text")
  }

  test("gopher_quality: each rule names its key") {
    val q = only(quality = GopherQualityRules.defaults())
    assert(reason(q, "the cat and the dog with a hat") == "gopher_quality.min_doc_words")
    val longWords = (1 to 60).map(_ => "extraordinarily").mkString(" ") + " the and"
    assert(reason(q, longWords) == "gopher_quality.max_avg_word_length")
    assert(reason(q, (1 to 60).map(_ => "a b").mkString(" ") + " the and") == "gopher_quality.min_avg_word_length")
    assert(reason(q, good + (" #" * 80)) == "gopher_quality.max_symbol_word_ratio")
    assert(reason(q, good.split("\n").map(l => l.dropRight(1) + "...").mkString("\n")) == "gopher_quality.max_symbol_word_ratio" ||
      reason(q, good.split("\n").map(l => l.dropRight(1) + "...").mkString("\n")) == "gopher_quality.max_ellipsis_lines_ratio")
    val ellipsisLines = good.split("\n").map(_ + " so on \u2026").mkString("\n")
    assert(reason(only(quality = new GopherQualityRules(50, 100000, 3.0, 10.0, 0.5, 0.9, 0.3, 0.8, 2, GopherQualityRules.ENGLISH_STOP_WORDS)),
      ellipsisLines) == "gopher_quality.max_ellipsis_lines_ratio")
    assert(reason(q, good.split("\n").map("- " + _).mkString("\n")) == "gopher_quality.max_bullet_lines_ratio")
    assert(reason(q, good + (" 1234 5678" * 40)) == "gopher_quality.min_alpha_words_ratio")
    val noStop = "Farmers settled near water because soil was rich, climate was mild for most years. " * 6
    assert(reason(q, noStop) == "gopher_quality.min_stop_words")
    assert(reason(q, noStop.replace("Farmers", "The farmers").replace("because", "because of")) == null)
    assert(reason(q, noStop.replace("Farmers", "THE farmers")) == "gopher_quality.min_stop_words", "stop words match case-sensitively (datatrove)")
  }

  test("gopher_repetition: duplicate lines and paragraphs, top n-grams, repeated n-grams") {
    val r = only(rep = GopherRepetitionRules.defaults())
    val lines = good.split("\n")
    assert(reason(r, (lines ++ lines.take(3)).mkString("\n")) == "gopher_repetition.dup_line_frac")
    assert(reason(r, (lines ++ lines.take(2)).mkString("\n")) == "gopher_repetition.dup_line_char_frac")
    assert(reason(r, (lines ++ Seq.fill(4)("x")).mkString("\n\n")) == "gopher_repetition.dup_para_frac")
    assert(reason(r, good + " " + ("buy now " * 40)) == "gopher_repetition.top_n_grams.2")
    val loop = "one two three four five six seven eight nine ten eleven twelve "
    assert(reason(r, good + " " + loop * 3).startsWith("gopher_repetition.dup_n_grams."))
    assert(reason(r, good) == null)
    val off = new GopherRepetitionRules(null, null, null, null, new java.util.TreeMap(), new java.util.TreeMap())
    assert(reason(only(rep = off), (lines ++ lines).mkString("\n")) == null, "null thresholds are not checked")
  }

  test("c4: line rules remove lines, lorem ipsum and { drop the document, sentences are counted") {
    val c = only(c4 = C4Rules.defaults())
    val doc = Seq("Home | About | Contact", good.split("\n")(0), "Please enable JavaScript to view the comments powered by us.",
      "Read our privacy policy before you sign up for the newsletter today.", good.split("\n")(1) + "[12][citation needed]",
      "Too short.", good.split("\n")(2)).mkString("\r\n")
    val f = c.apply(doc)
    assert(f.reason == null, String.valueOf(f.detail))
    assert(f.text == Seq(good.split("\n")(0), good.split("\n")(1), good.split("\n")(2)).mkString("\n"))
    assert(f.c4LinesRemoved == 4)
    assert(reason(c, good + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit.") == "c4.filter_lorem_ipsum")
    assert(reason(c, good + "\nThe code is function f() { return x; } in the file.") == "c4.filter_curly_bracket")
    assert(reason(c, good + "\nfunction f() { return x; }") == null, "a line without an end mark goes before the { rule sees it (C4's order)")
    assert(reason(c, good.split("\n").take(2).mkString("\n")) == "c4.min_num_sentences")
    assert(reason(c, "no terminal punctuation here at all friends\nnor here in this line my friends") == "c4.min_num_sentences")
    val noSentences = new C4Rules(true, true, C4Rules.C4_END_MARKS, 5, 1000, null, true, true, true, true)
    assert(reason(only(c4 = noSentences), "short.\nalso short.") == "c4.no_lines_left")
    assert(reason(c, "x" * 1001 + " is a very long word in a sentence.\n" + good) == null)
    assert(c.apply("x" * 1001 + " is a very long word in a sentence.\n" + good).c4LinesRemoved == 1)
  }

  test("c4 counts CJK words per character and CJK end marks when configured") {
    val zh = "今天天气很好，我们去公园散步。\n孩子们在草地上奔跑，老人们在树下下棋。\n晚上大家一起吃饭，聊了很多有趣的事情。"
    val english = only(c4 = C4Rules.defaults())
    assert(reason(english, zh) == "c4.min_num_sentences", "C4's own end marks are ASCII: every Chinese line goes")
    val cjk = new C4Rules(true, true, JList.of(".", "?", "!", "\"", "。", "！", "？"), 5, 1000, 3, true, true, true, true)
    val f = only(c4 = cjk).apply(zh)
    assert(f.reason == null && f.text == zh, String.valueOf(f.detail))
  }

  test("fineweb: terminal punctuation, short lines, duplicated line characters, newlines per word") {
    val f = only(fineweb = FineWebRules.defaults())
    assert(reason(f, good) == null)
    assert(reason(f, good.split("\n").map(_.dropRight(1)).mkString("\n")) == "fineweb.line_punct_thr")
    assert(reason(f, good + "\n" + Seq.fill(12)("Short line here.").mkString("\n")) == "fineweb.short_line_thr")
    assert(reason(f, good + "\n" + good.split("\n")(0)) == "fineweb.char_duplicates_ratio")
    assert(reason(f, (1 to 20).map(i => s"Item number $i.").mkString("\n\n")) == "fineweb.new_line_ratio" ||
      reason(f, (1 to 20).map(i => s"Item number $i.").mkString("\n\n")) == "fineweb.short_line_thr")
    val listy = new FineWebRules(0.12, false, FineWebRules.TERMINAL_PUNCTUATION, null, 30, null, 0.3)
    assert(reason(only(fineweb = listy), (1 to 20).map(i => s"Item $i.").mkString("\n")) == "fineweb.new_line_ratio")
    assert(reason(f, " \n\t\n") == "fineweb.empty")
  }

  test("length: characters are code points, tokens are RWKV world tokens") {
    val l = only(length = new LengthRules(5, 10, null, null))
    assert(reason(l, "abcd") == "length.min_chars")
    assert(reason(l, "𝔘𝔫𝔦𝔠𝔬𝔡𝔢") == null, "7 code points, 14 UTF-16 units")
    assert(reason(l, "abcdefghijk") == "length.max_chars")
    val t = only(length = new LengthRules(null, null, 3, 5))
    assert(reason(t, "Hello") == "length.min_tokens")
    assert(reason(t, "Hello world, how are you?") == "length.max_tokens")
    assert(reason(t, "Hello world!") == null)
  }

  test("Chinese: CJK-aware counting keeps real text that whitespace counting would drop") {
    val poem = "床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n" * 3 + "这是我们的家乡，有山有水，人们在这里生活了很多年。"
    val cjkQuality = new GopherQualityRules(50, 100000, null, null, 0.1, 0.9, 0.3, 0.6, 2, JList.of("的", "了", "是", "在"))
    val f = only(quality = cjkQuality).apply(poem)
    assert(f.reason == null, String.valueOf(f.detail))
    val w = new Words().scan(poem)
    assert((0 until w.count).count(i => !w.isSymbol(i)) == poem.count(c => Chars.isCjk(c)), "one word per Han character")
    assert(poem.split("\\s+").length < 50, "by whitespace it would be a handful of words")
    assert(reason(only(quality = GopherQualityRules.defaults()), poem) != null)
  }

  // ---------------------------------------------------------------- the repetition measures vs plain strings

  private object Py {
    def len(s: String): Int = s.codePointCount(0, s.length)

    def findDuplicates(xs: Seq[String]): (Long, Long) = {
      val seen = mutable.HashSet[String]()
      var elems = 0L
      var chars = 0L
      for (x <- xs) if (!seen.add(x)) { elems += 1; chars += len(x) }
      (elems, chars)
    }

    def topDuplicate(ws: Seq[String], n: Int): Long = {
      if (ws.size < n) return 0
      val grams = ws.sliding(n).map(_.mkString(" ")).toSeq
      val counts = mutable.LinkedHashMap[String, Int]()
      grams.foreach(g => counts(g) = counts.getOrElse(g, 0) + 1)
      val (g, c) = counts.foldLeft(("", 0)) { case (best, kv) => if (kv._2 > best._2) kv else best }
      len(g).toLong * c
    }

    def findAllDuplicate(ws: Seq[String], n: Int): Long = {
      val unique = mutable.HashSet[String]()
      var repeated = 0L
      var idx = 0
      while (idx < ws.size - n + 1) {
        val g = ws.slice(idx, idx + n).mkString
        if (unique.contains(g)) { repeated += len(g); idx += n } else { unique += g; idx += 1 }
      }
      repeated
    }
  }

  private val genText: Gen[String] = for {
    n <- Gen.choose(0, 120)
    parts <- Gen.listOfN(n, Gen.zip(Gen.oneOf("a", "b", "ab", "ba", "c", "the", "x", "中", "𝔘"), Gen.oneOf(" ", " ", " ", "\n", "\n\n", ", ", ". ", "\n\n\n")))
  } yield parts.map { case (w, sep) => w + sep }.mkString

  test("Repetition's hashed measures equal datatrove's string definitions (find_duplicates, top and all duplicate n-grams)") {
    val rep = new Repetition()
    val lines = new Lines()
    forAll(genText, minSuccessful(400)) { text =>
      val astral = text.exists(Character.isSurrogate)
      lines.splitNewlineRuns(text, 0, text.length, 1)
      rep.findDuplicates(text, (0 until lines.count).map(lines.start).toArray, (0 until lines.count).map(lines.end).toArray, lines.count, astral)
      val pyLines = text.split("\n+", -1).toSeq
      assert(lines.count == pyLines.size)
      assert((rep.dupElements, rep.dupChars) == Py.findDuplicates(pyLines))
      val ws = words(text)
      val w = new Words().scan(text)
      rep.prepareWords(text, w)
      for (n <- 2 to 4) assert(rep.topNGramChars(n) == Py.topDuplicate(ws, n), s"top $n-gram")
      for (n <- 1 to 6) assert(rep.duplicateNGramChars(n) == Py.findAllDuplicate(ws, n), s"all duplicate $n-grams")
    }
  }

  test("line splitting follows Python: splitlines(), split(\"\\n\"), re.split(r\"\\n{2,}\")") {
    val l = new Lines()
    def ranges(x: Lines, s: String) = (0 until x.count).map(i => s.substring(x.start(i), x.end(i)))
    assert(ranges(l.splitLines("a\nb\r\nc\rd\u2028e\n"), "a\nb\r\nc\rd\u2028e\n") == Seq("a", "b", "c", "d", "e"))
    assert(ranges(l.splitNewline("\na\n\nb\n"), "\na\n\nb\n") == Seq("", "a", "", "b", ""))
    val paras = "a\n\nb\nc\n\n\nd"
    assert(ranges(l.splitNewlineRuns(paras, 0, paras.length, 2), paras) == Seq("a", "b\nc", "d"))
  }
}
