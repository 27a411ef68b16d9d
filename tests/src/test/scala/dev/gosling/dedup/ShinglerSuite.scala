package dev.gosling.dedup

import dev.gosling.pipeline.dedup.Shingler
import dev.gosling.pipeline.dedup.Shingler.Mode
import org.scalatest.funsuite.AnyFunSuite

class ShinglerSuite extends AnyFunSuite {
  private def hashes(text: String, words: Int = 5, chars: Int = 5): (Mode, Seq[Long]) = {
    val s = new Shingler(words, chars)
    val mode = s.shingle(text)
    (mode, s.hashes().take(s.size()).toSeq)
  }

  test("word 5-grams: one shingle per window of five tokens, in order") {
    val (mode, h) = hashes("one two three four five six seven")
    assert(mode == Mode.WORDS)
    assert(h.size == 3)
    assert(h.distinct.size == 3)
    // window 2 of this text is window 0 of its tail
    assert(hashes("three four five six seven")._2 == Seq(h(2)))
    // order matters
    assert(hashes("two one three four five")._2 != hashes("one two three four five")._2)
  }

  test("case, punctuation, spacing and line breaks never change a shingle") {
    val a = hashes("The quick brown fox jumps over the lazy dog")._2
    val b = hashes("  the QUICK, brown (fox) -- jumps\tover\n\nthe lazy... dog!!  ")._2
    assert(a == b)
    // but the letters themselves do
    assert(hashes("The quick brown fix jumps over the lazy dog")._2 != a)
  }

  test("tokens split at apostrophes and symbols; digits are word characters") {
    assert(hashes("don't stop", 2)._2 == hashes("don t stop", 2)._2)
    assert(hashes("route 66 west coast", 4)._2.size == 1)
    assert(hashes("route 66 west coast", 4)._2 != hashes("route 67 west coast", 4)._2)
  }

  test("a document shorter than the shingle has one shingle of all its tokens; one without tokens has none") {
    val (m1, h1) = hashes("just three words")
    assert(m1 == Mode.WORDS && h1.size == 1)
    assert(hashes("just three words")._2 == hashes("Just, three words.")._2)
    assert(hashes("just two")._2 != h1)
    for (t <- Seq("", "   \n\t ", "!!! ... --- ***", null)) {
      val (m, h) = hashes(t)
      assert(m == Mode.NONE && h.isEmpty, s"'$t'")
    }
  }

  test("Chinese is shingled by characters: 5-character windows, punctuation ignored") {
    val text = "床前明月光，疑是地上霜。举头望明月，低头思故乡。"
    val (mode, h) = hashes(text)
    assert(mode == Mode.CHARS)
    assert(h.size == 20 - 5 + 1)
    assert(hashes("床前明月光疑是地上霜举头望明月低头思故乡")._2 == h)
    // a character changed in the middle changes exactly the five windows that cover it
    val edited = "床前明月光，疑是天上霜。举头望明月，低头思故乡。"
    assert(h.diff(hashes(edited)._2).size == 5)
  }

  test("Japanese kana and kanji, Korean Hangul and Thai are character-shingled; the mode is chosen per document") {
    assert(hashes("吾輩は猫である。名前はまだ無い。")._1 == Mode.CHARS)
    assert(hashes("カタカナのテキストです")._1 == Mode.CHARS)
    assert(hashes("안녕하세요 반갑습니다")._1 == Mode.CHARS)
    assert(hashes("ภาษาไทยไม่มีการเว้นวรรค")._1 == Mode.CHARS)
    // English with a few Chinese characters stays in word mode
    assert(hashes("The word 中文 means the Chinese language in Chinese writing")._1 == Mode.WORDS)
    // Chinese with a few Latin words stays in character mode; each Latin word is one token
    val (m, h) = hashes("我们使用 Apache Spark 处理数据，速度很快。")
    assert(m == Mode.CHARS)
    assert(h.size == 14 - 5 + 1) // 我们使用 Apache Spark 处理数据速度很快 = 4 + 2 + 8 tokens
  }

  test("combining marks stay inside their word; characters outside the BMP are one token") {
    // Devanagari vowel signs and virama are combining marks: "नमस्ते दुनिया" is two words
    assert(new Shingler(5, 5).tokenize("नमस्ते दुनिया") == 2)
    assert(new Shingler(5, 5).tokenize("café naïve") == 2)
    // U+20000 (CJK extension B) is a surrogate pair in UTF-16 and one character token
    val s = new Shingler(5, 5)
    assert(s.tokenize("\uD840\uDC00\uD840\uDC01中") == 3)
  }

  test("the shingle set is sorted and distinct; exact Jaccard on sets") {
    val s = new Shingler(2, 2)
    val set = s.shingleSet("a b a b a b c")
    assert(set.toSeq == set.toSeq.sorted.distinct)
    assert(set.length == 3) // {a b, b a, b c}
    assert(Shingler.jaccard(Array(1L, 2L, 3L), Array(2L, 3L, 4L)) == 0.5)
    assert(Shingler.jaccard(Array(1L), Array(2L)) == 0.0)
    assert(Shingler.jaccard(Array.empty[Long], Array.empty[Long]) == 0.0)
    assert(Shingler.jaccard(set, set) == 1.0)
  }

  test("a reused shingler gives the same hashes as a fresh one (no state leaks between documents)") {
    val reused = new Shingler(5, 5)
    val texts = Seq("a long document with many many words in it to fill the buffers " * 200, "short one two three four five",
      "中文文本的测试用例", "", "another text with some words here and there")
    for (t <- texts) {
      reused.shingle(t)
      val fresh = new Shingler(5, 5)
      fresh.shingle(t)
      assert(reused.hashes().take(reused.size()).toSeq == fresh.hashes().take(fresh.size()).toSeq)
    }
  }

  test("hash values are pinned: a change here changes every signature and must be deliberate") {
    val (_, h) = hashes("Pinned text for the fuzzy dedup shingler, version one.")
    assert(h.size == 5)
    assert(h.map(java.lang.Long.toHexString) == ShinglerSuite.Pinned)
  }
}

object ShinglerSuite {
  val Pinned: Seq[String] = Seq("42150d9455532dc8", "eb07553935cfab72", "d821bbca1f0f7df4", "e0ccf8b608774596", "8940c2136d35279b")
}
