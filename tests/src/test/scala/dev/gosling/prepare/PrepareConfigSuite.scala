package dev.gosling.prepare

import java.nio.charset.StandardCharsets.UTF_8
import java.nio.file.{Files, Path}

import dev.gosling.pipeline.clean.NormalizeConfig
import dev.gosling.pipeline.dedup.FuzzyDedupConfig
import dev.gosling.pipeline.ingest.IngestConfig
import dev.gosling.pipeline.prepare.{PrepareConfig, PrepareConfigLoader, StageName}
import dev.gosling.pipeline.prepare.PrepareConfigLoader.Override
import dev.gosling.testkit.Shared
import dev.gosling.trainer.GoslingException
import org.scalatest.funsuite.AnyFunSuite

import scala.jdk.CollectionConverters._

/** Recipes: every mistake is one line naming file:line (or the flag) and the key, before any work. */
class PrepareConfigSuite extends AnyFunSuite {
  private def recipe(yaml: String): Path = {
    val p = Files.createTempDirectory("gosling-recipe").resolve("r.yaml")
    Files.write(p, yaml.getBytes(UTF_8))
    p
  }

  private def load(yaml: String, overrides: Override*): PrepareConfig = PrepareConfigLoader.load(recipe(yaml), overrides.asJava)

  private def error(yaml: String, overrides: Override*): String = {
    val e = intercept[GoslingException](load(yaml, overrides: _*))
    assert(!e.getMessage.contains("\n"), "one line")
    e.getMessage
  }

  test("defaults: only ingest runs; unset thresholds take the reference values; work_dir from the recipe name") {
    val c = load("input: x.jsonl\n")
    assert(c.stages.asScala == Seq(StageName.INGEST))
    assert(c.ingest == IngestConfig.defaults() && c.seed == 42L && c.shards == null && c.progressSeconds == 30.0)
    assert(c.workDir == "out/prepare/r")
    val f = load("input: x\nfilter:\n  gopher_quality: {}\n  c4: true\n").filter
    assert(f.gopherQuality.minDocWords == 50 && f.c4.minNumSentences == 3 && f.c4.minWordsPerLine == 5)
    assert(f.length == null && f.fineweb == null && f.gopherRepetition == null)
  }

  test("an unknown key is named with file:line and the known keys") {
    val m = error("input: x\nfilter:\n  gopher_quality:\n    min_doc_wrds: 10\n")
    assert(m.matches(".*r\\.yaml:4: filter\\.gopher_quality\\.min_doc_wrds: unknown key; known keys: min_doc_words, .*"), m)
    val top = error("input: x\nshufle: {copies: 2}\n")
    assert(top.matches(".*r\\.yaml:2: shufle: unknown key; known keys: .*shuffle.*"), top)
    assert(error("input: x\nexact_dedup: {by: text}\n").matches(".*:2: exact_dedup\\.by: unknown key \\(this section takes no settings\\)"))
  }

  test("impossible values are named: fractions over 1, min above max, negative counts, wrong types") {
    assert(error("input: x\nfilter:\n  fineweb:\n    short_line_thr: 1.5\n").matches(".*:4: filter\\.fineweb\\.short_line_thr: 1\\.5 is out of range \\[0, 1\\] \\(it is a fraction\\)"))
    assert(error("input: x\nfilter:\n  length: {min_chars: 500, max_chars: 100}\n").contains("filter.length.min_chars: 500 is above filter.length.max_chars 100"))
    assert(error("input: x\nfilter:\n  gopher_quality: {min_doc_words: -1}\n").contains("filter.gopher_quality.min_doc_words: -1 is out of range"))
    assert(error("input: x\nshuffle: {copies: 0}\n").matches(".*:2: shuffle\\.copies: 0 is out of range \\[1, 10000\\]"))
    assert(error("input: x\nshuffle: {copies: two}\n").contains("shuffle.copies: expected a whole number, got text"))
    assert(error("input: x\nnormalize: {form: NFD}\n").contains("normalize.form: expected one of nfc, nfkc, none, got 'NFD'"))
    assert(error("input: x\ningest: {max_doc_bytes: 2000, max_line_bytes: 1024}\n").contains("ingest.max_doc_bytes: 2000 exceeds ingest.max_line_bytes 1024"))
    assert(error("input: x\nfilter: {}\n").contains("filter: no filter group is on"))
    assert(error("input: x\ningest: false\n").contains("ingest: cannot be switched off"))
    assert(error("input: x\nfilter:\n  gopher_repetition:\n    top_n_grams: {two: 0.2}\n").contains("filter.gopher_repetition.top_n_grams.two: n must be a whole number"))
    assert(error("input: x\nfilter:\n  c4: {end_punctuation: []}\n").contains("filter.c4.end_punctuation: the list is empty"))
    assert(error("input: x\nshards: 0\n").contains("shards: expected auto or a whole number"))
  }

  test("stop words must be single words to the CJK-aware splitter") {
    val m = error("input: x\nfilter:\n  gopher_quality: {stop_words: [的, 我们]}\n")
    assert(m.contains("filter.gopher_quality.stop_words: '我们' is 2 words"), m)
    assert(error("input: x\nfilter:\n  gopher_quality: {stop_words: []}\n").contains("min_stop_words"))
  }

  test("fuzzy_dedup: absent is off, {} or true the defaults; recipe keys and --set change them") {
    val d = FuzzyDedupConfig.defaults()
    assert(load("input: x\n").fuzzyDedup == null)
    val on = load("input: x\nexact_dedup: {}\nfuzzy_dedup: {}\nshuffle: {}\n")
    assert(on.fuzzyDedup == d && on.stages.asScala == Seq(StageName.INGEST, StageName.EXACT_DEDUP, StageName.FUZZY_DEDUP, StageName.SHUFFLE))
    assert(load("input: x\nfuzzy_dedup: true\n").fuzzyDedup == d)
    assert(load("input: x\nfuzzy_dedup:\n  bands: 14\n  rows: 8\n  verify: false\n", Override.parse("fuzzy_dedup.threshold=0.7")).fuzzyDedup ==
      d.withBands(14, 8).withVerify(false, 0.7))
    assert(load("input: x\nfuzzy_dedup: {checkpoint_dir: /tmp/cc, seed: 7, max_bucket_size: 50}\n").fuzzyDedup ==
      new FuzzyDedupConfig(5, 5, 20, 9, 7L, 50, true, 0.8, "/tmp/cc", 4, 100))
    assert(StageName.ofKey("fuzzy_dedup") == StageName.FUZZY_DEDUP)
  }

  test("fuzzy_dedup: an unknown key or an impossible value fails naming file:line (or the flag) and the key") {
    val unknown = error("input: x\nfuzzy_dedup:\n  bands: 14\n  band: 3\n")
    assert(unknown.matches(".*r\\.yaml:4: fuzzy_dedup\\.band: unknown key; known keys: shingle_words, cjk_shingle_chars, bands, .*"), unknown)
    assert(error("input: x\nfuzzy_dedup:\n  threshold: 1.5\n").matches(".*r\\.yaml:3: fuzzy_dedup\\.threshold = 1\\.5: must be in \\(0, 1\\].*"))
    assert(error("input: x\nfuzzy_dedup:\n  bands: 64\n  rows: 32\n").matches(".*r\\.yaml:3: fuzzy_dedup\\.bands × fuzzy_dedup\\.rows = 64 × 32 = 2048 permutations: .*"))
    assert(error("input: x\nfuzzy_dedup:\n  verify: 1\n").matches(".*r\\.yaml:3: fuzzy_dedup\\.verify = 1: must be true or false"))
    assert(error("input: x\nfuzzy_dedup:\n  rows: 8.5\n").matches(".*r\\.yaml:3: fuzzy_dedup\\.rows = 8\\.5: must be an integer"))
    assert(error("input: x\nfuzzy_dedup:\n  rows: null\n").matches(".*r\\.yaml:3: fuzzy_dedup\\.rows: must be set.*"))
    assert(error("input: x\nfuzzy_dedup: [20, 9]\n").matches(".*r\\.yaml:2: fuzzy_dedup: expected a map of settings.*"))
    assert(error("input: x\nfuzzy_dedup: {}\n", Override.parse("fuzzy_dedup.bands=0"))
      .startsWith("--set fuzzy_dedup.bands=0: fuzzy_dedup.bands = 0: must be between 1 and 1024"))
    assert(error("input: x\n", Override.parse("fuzzy_dedup.bands=14")).startsWith("--set fuzzy_dedup.bands=14: fuzzy_dedup is not on in"))
  }

  test("binidx needs tokenize; input is required") {
    assert(error("input: x\nbinidx: {ctx_len: 512}\n").contains("binidx: binidx writes the tokenize stage's tokens; add `tokenize: {}`"))
    assert(error("seed: 1\n").endsWith("input: missing; set `input:` in the recipe or pass --input FILE|DIR|GLOB"))
    assert(error("input: [a\n").matches(".*r\\.yaml:\\d+: invalid YAML: .*"))
    assert(error("input: a\ninput: b\n").matches(".*r\\.yaml:2: invalid YAML: Duplicate field 'input'.*"))
    assert(error("").contains("the recipe is empty"))
    assert(intercept[GoslingException](PrepareConfigLoader.load(Path.of("/no/such.yaml"), java.util.List.of())).getMessage ==
      "/no/such.yaml: no such recipe file (see conf/prepare/ for the bundled ones)")
  }

  test("overrides: flags and --set change settings and are named in errors; they never switch a stage on") {
    val base = "input: x\nfilter:\n  c4: {}\nshuffle: {copies: 1}\ntokenize: {}\nbinidx: {}\n"
    val c = load(base, Override.of("--copies", "shuffle.copies", 3), Override.parse("filter.c4.min_num_sentences=5"),
      Override.parse("filter.c4.end_punctuation=[\".\", \"。\"]"), Override.parse("binidx.ctx_len=512"), Override.of("--strict", "ingest.strict", true))
    assert(c.shuffle.copies == 3 && c.filter.c4.minNumSentences == 5 && c.filter.c4.endPunctuation.asScala == Seq(".", "。"))
    assert(c.binidx.ctxLen == 512 && c.ingest.strict)
    assert(load(base, Override.parse("filter.c4.min_num_sentences=null")).filter.c4.minNumSentences == null)
    assert(error(base, Override.of("--copies", "shuffle.copies", 0)) == "--copies: shuffle.copies: 0 is out of range [1, 10000]")
    assert(error(base, Override.parse("filter.c4.min_num_sentence=5")).startsWith("--set filter.c4.min_num_sentence=5: filter.c4.min_num_sentence: unknown key"))
    assert(error("input: x\n", Override.parse("normalize.form=NFKC")).startsWith("--set normalize.form=NFKC: normalize is not on in"))
    assert(load("input: x\n", Override.parse("normalize=true")).normalize == NormalizeConfig.defaults())
    assert(intercept[GoslingException](Override.parse("nokey")).getMessage.contains("expected KEY=VALUE"))
  }

  test("the bundled recipes load, and say what they are") {
    val dir = Shared.repo.resolve("conf/prepare")
    val md = PrepareConfigLoader.load(dir.resolve("make-data.yaml"), java.util.List.of())
    assert(md.stages.asScala == Seq(StageName.INGEST, StageName.SHUFFLE, StageName.TOKENIZE, StageName.BINIDX))
    assert(md.shuffle.copies == 3 && md.binidx.ctxLen == 4096 && md.ingest.maxDocBytes == 0)
    val web = PrepareConfigLoader.load(dir.resolve("web-corpus.yaml"), java.util.List.of(Override.of("--input", "input", "x")))
    assert(web.stages.asScala == Seq(StageName.INGEST, StageName.NORMALIZE, StageName.FILTER, StageName.EXACT_DEDUP,
      StageName.FUZZY_DEDUP, StageName.SHUFFLE, StageName.TOKENIZE, StageName.BINIDX))
    assert(web.fuzzyDedup == FuzzyDedupConfig.defaults() && web.fuzzyDedup.bands == 20 && web.fuzzyDedup.rows == 9 && web.fuzzyDedup.verify)
    assert(web.filter.c4.minNumSentences == 3 && web.filter.c4.minWordsPerLine == 5)
    assert(intercept[GoslingException](PrepareConfigLoader.load(dir.resolve("web-corpus.yaml"), java.util.List.of())).getMessage.contains("input: missing"))
    val cjk = PrepareConfigLoader.load(dir.resolve("cjk-web.yaml"), java.util.List.of(Override.of("--input", "input", "x")))
    assert(cjk.normalize.form == NormalizeConfig.Form.NFKC && cjk.filter.gopherQuality.minAvgWordLength == null)
    assert(cjk.filter.gopherQuality.stopWords.contains("的"))
    assert(cjk.fuzzyDedup == FuzzyDedupConfig.defaults() && cjk.stages.contains(StageName.FUZZY_DEDUP))
    assert(md.fuzzyDedup == null, "make-data.yaml stays make_data-compatible")
  }
}
