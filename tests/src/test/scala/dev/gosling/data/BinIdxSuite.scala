package dev.gosling.data

import dev.gosling.testkit.Shared
import dev.gosling.trainer.GoslingException
import dev.gosling.trainer.data.{BinIdxFormat, BinIdxReader, BinIdxWriter, MagicPrime}
import java.io.RandomAccessFile
import java.nio.{ByteBuffer, ByteOrder}
import java.nio.charset.StandardCharsets
import java.nio.file.{Files, Path}
import java.util.Comparator
import org.scalacheck.Gen
import org.scalatest.funsuite.AnyFunSuite
import org.scalatestplus.scalacheck.ScalaCheckPropertyChecks
import scala.jdk.CollectionConverters._
import scala.util.Random

class BinIdxSuite extends AnyFunSuite with ScalaCheckPropertyChecks {

  // ---- helpers ------------------------------------------------------------------------------------------------

  private def withDir[A](body: Path => A): A = {
    val dir = Files.createTempDirectory("binidx-suite")
    try body(dir)
    finally Files.walk(dir).sorted(Comparator.reverseOrder[Path]()).forEach(p => Files.delete(p))
  }

  private def listing(dir: Path): Set[String] = Files.list(dir).iterator.asScala.map(_.getFileName.toString).toSet

  private def hex(s: String): Array[Byte] = s.split("\\s+").filter(_.nonEmpty).map(Integer.parseInt(_, 16).toByte)

  private def le(bytes: Int)(fill: ByteBuffer => ByteBuffer): Array[Byte] =
    fill(ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN)).array

  /** An .idx built field by field from the spec's table (rwkv7-reference.md §2.1), not by the writer. */
  private def idxBytes(dtype: Int, sizes: Seq[Int], pointers: Seq[Long], docIdx: Seq[Long],
                       magic: Array[Byte] = hex("4D 4D 49 44 49 44 58 00 00"), version: Long = 1,
                       items: Option[Long] = None, docCount: Option[Long] = None): Array[Byte] =
    magic ++ le(8)(_.putLong(version)) ++ Array(dtype.toByte) ++ le(8)(_.putLong(items.getOrElse(sizes.size.toLong))) ++
      le(8)(_.putLong(docCount.getOrElse(docIdx.size.toLong))) ++ sizes.flatMap(s => le(4)(_.putInt(s))) ++
      pointers.flatMap(p => le(8)(_.putLong(p))) ++ docIdx.flatMap(d => le(8)(_.putLong(d)))

  private def uint16Bytes(tokens: Seq[Int]): Array[Byte] = tokens.flatMap(t => le(2)(_.putShort(t.toShort))).toArray

  private def writePair(prefix: Path, docs: Seq[Array[Int]]): Unit = {
    val out = new BinIdxWriter(prefix)
    try {
      docs.foreach(d => out.addDocument(d, 0, d.length))
      out.commit()
    } finally out.close()
  }

  /** A small valid pair: 3 documents, 6 tokens. */
  private val smallDocs = Seq(Array(5, 0), Array(65535, 7, 0), Array(0))

  private def withSmallPair[A](body: (Path, Path, Path) => A): A = withDir { dir =>
    val prefix = dir.resolve("x")
    writePair(prefix, smallDocs)
    body(prefix, dir.resolve("x.idx"), dir.resolve("x.bin"))
  }

  private def patch(file: Path, offset: Int, bytes: Array[Byte]): Unit = {
    val all = Files.readAllBytes(file)
    System.arraycopy(bytes, 0, all, offset, bytes.length)
    Files.write(file, all)
  }

  /** Opening must fail with one line that starts with the file's path and contains `expected`. */
  private def openError(prefix: Path, file: Path, expected: String): String = {
    val e = intercept[GoslingException](BinIdxReader.open(prefix))
    val message = e.getMessage
    assert(message.startsWith(file.toString + ": "), message)
    assert(message.contains(expected), message)
    assert(!message.contains("\n"), message)
    message
  }

  private def readAll(reader: BinIdxReader): Array[Int] = {
    val out = new Array[Int](reader.tokenCount.toInt)
    reader.readTokens(0, out, 0, out.length)
    out
  }

  // ---- the format, proven against the spec -------------------------------------------------------------------

  test("writer output equals a hand-made spec layout byte for byte") {
    withDir { dir =>
      writePair(dir.resolve("x"), smallDocs)
      val expectedIdx = hex(
        """4D 4D 49 44 49 44 58 00 00
           01 00 00 00 00 00 00 00
           08
           03 00 00 00 00 00 00 00
           04 00 00 00 00 00 00 00
           02 00 00 00  03 00 00 00  01 00 00 00
           00 00 00 00 00 00 00 00  04 00 00 00 00 00 00 00  0A 00 00 00 00 00 00 00
           00 00 00 00 00 00 00 00  01 00 00 00 00 00 00 00  02 00 00 00 00 00 00 00  03 00 00 00 00 00 00 00""")
      val expectedBin = hex("05 00 00 00  FF FF 07 00 00 00  00 00")
      assert(expectedIdx.length == 42 + 20 * 3)
      assert(Files.readAllBytes(dir.resolve("x.idx")).sameElements(expectedIdx))
      assert(Files.readAllBytes(dir.resolve("x.bin")).sameElements(expectedBin))
      assert(listing(dir) == Set("x.bin", "x.idx"))
    }
  }

  test("a hand-made pair with multi-item documents reads as the spec says, and addItem/endDocument writes it") {
    withDir { dir =>
      // Items [1 2] [3] | [4 5 0]: two documents, doc_idx = [0, 2, 3].
      val idx = hex(
        """4D 4D 49 44 49 44 58 00 00  01 00 00 00 00 00 00 00  08
           03 00 00 00 00 00 00 00  03 00 00 00 00 00 00 00
           02 00 00 00  01 00 00 00  03 00 00 00
           00 00 00 00 00 00 00 00  04 00 00 00 00 00 00 00  06 00 00 00 00 00 00 00
           00 00 00 00 00 00 00 00  02 00 00 00 00 00 00 00  03 00 00 00 00 00 00 00""")
      val bin = hex("01 00 02 00  03 00  04 00 05 00 00 00")
      Files.write(dir.resolve("hand.idx"), idx)
      Files.write(dir.resolve("hand.bin"), bin)
      val reader = BinIdxReader.open(dir.resolve("hand"))
      try {
        assert(reader.dtypeCode == 8 && reader.itemSizeBytes == 2)
        assert(reader.itemCount == 3 && reader.documentCount == 2 && reader.tokenCount == 6)
        assert((0 until 3).map(reader.size) == Seq(2, 1, 3))
        assert((0 until 3).map(reader.pointer) == Seq(0L, 4L, 6L))
        assert(reader.docIdx.toSeq == Seq(0L, 2L, 3L))
        assert(reader.docIdxLength == 3 && reader.docIdx(1) == 2L)
        assert(reader.item(0).toSeq == Seq(1, 2) && reader.item(1).toSeq == Seq(3) && reader.item(2).toSeq == Seq(4, 5, 0))
        assert(readAll(reader).toSeq == Seq(1, 2, 3, 4, 5, 0))
      } finally reader.close()

      val out = new BinIdxWriter(dir.resolve("made"))
      try {
        out.addItem(Array(9, 1, 2, 9), 1, 2)
        out.addItem(Array(3), 0, 1)
        out.endDocument()
        out.addItem(Array(4, 5, 0), 0, 3) // left open: commit ends it
        assert(out.itemCount == 3 && out.documentCount == 1 && out.tokenCount == 6)
        out.commit()
      } finally out.close()
      assert(Files.readAllBytes(dir.resolve("made.idx")).sameElements(idx))
      assert(Files.readAllBytes(dir.resolve("made.bin")).sameElements(bin))
    }
  }

  test("demo.jsonl structure: 546 items, 200 499 tokens, .bin 400 998 and .idx 10 962 bytes, magic_prime 47 and 389") {
    // The tokenizer is not part of this unit, so the 182 document sizes are synthetic but add up to the
    // reference's 66 833 tokens per copy (demo-jsonl-expectations.md); 3 shuffled copies as make_data writes them.
    val lines = Files.readAllLines(Shared.path("fixtures/demo.jsonl"), StandardCharsets.UTF_8).asScala.count(_.strip.nonEmpty)
    assert(lines == 182)
    val random = new Random(546)
    val cuts = random.shuffle((1 until 66833).toVector).take(lines - 1).sorted
    val sizes = ((0 +: cuts) :+ 66833).sliding(2).map { case Seq(a, b) => b - a }.toVector
    assert(sizes.sum == 66833 && sizes.size == 182 && sizes.forall(_ >= 1))
    val docs = sizes.map(n => Array.tabulate(n)(i => if (i == n - 1) 0 else 1 + random.nextInt(65529)))
    val copies = (0 until 3).flatMap(_ => random.shuffle(docs))
    withDir { dir =>
      val out = new BinIdxWriter(dir.resolve("demo"))
      try {
        copies.foreach(d => out.addDocument(d, 0, d.length))
        assert(out.tokenCount == 200499 && out.itemCount == 546)
        out.commit()
      } finally out.close()
      val idx = Files.readAllBytes(dir.resolve("demo.idx"))
      assert(Files.size(dir.resolve("demo.bin")) == 400998)
      assert(idx.length == 10962 && idx.length == 42 + 20 * 546)
      val header = ByteBuffer.wrap(idx).order(ByteOrder.LITTLE_ENDIAN)
      assert(idx.take(9).sameElements(hex("4D 4D 49 44 49 44 58 00 00")))
      assert(header.getLong(9) == 1 && idx(17) == 8 && header.getLong(18) == 546 && header.getLong(26) == 547)
      val sizesOnDisk = (0 until 546).map(i => header.getInt(34 + 4 * i))
      assert(sizesOnDisk == copies.map(_.length))
      val pointersOnDisk = (0 until 546).map(i => header.getLong(34 + 4 * 546 + 8 * i))
      assert(pointersOnDisk == sizesOnDisk.scanLeft(0L)(_ + 2L * _).init)
      assert((0 until 547).map(i => header.getLong(34 + 12 * 546 + 8 * i)) == (0L to 546L))

      val reader = BinIdxReader.open(dir.resolve("demo.bin"))
      try {
        assert(reader.tokenCount == 200499 && reader.itemCount == 546 && reader.documentCount == 546)
        for (i <- 0 until 546) {
          val item = reader.item(i)
          assert(item.sameElements(copies(i)) && item.last == 0)
        }
        assert(MagicPrime.magicPrime(reader.tokenCount, 4096) == 47)
        assert(MagicPrime.magicPrime(reader.tokenCount, 512) == 389)
      } finally reader.close()
    }
  }

  // ---- round trips and flat reads ------------------------------------------------------------------------------

  test("random documents round-trip through writer and reader, with flat reads at random offsets (ScalaCheck)") {
    val doc = Gen.choose(0, 40).flatMap(n => Gen.listOfN(n, Gen.choose(0, 65535)).map(_.toArray))
    val docs = Gen.choose(0, 30).flatMap(n => Gen.listOfN(n, doc))
    forAll(docs, Gen.oneOf(8L, 16L, 24L, 40L, 1L << 30), Gen.listOfN(20, Gen.choose(0.0, 1.0)), minSuccessful(60)) {
      (documents, slice, fractions) =>
        withDir { dir =>
          writePair(dir.resolve("r"), documents)
          val flat = documents.flatten.toArray
          val reader = BinIdxReader.open(dir.resolve("r"), slice)
          try {
            assert(reader.itemCount == documents.size && reader.tokenCount == flat.length)
            assert(reader.docIdx.toSeq == (0L to documents.size.toLong))
            documents.indices.foreach(i => assert(reader.item(i).sameElements(documents(i))))
            assert(readAll(reader).sameElements(flat))
            for (Seq(a, b) <- fractions.grouped(2)) {
              val offset = (a * flat.length).toInt
              val len = (b * (flat.length - offset)).toInt
              val dst = Array.fill(len + 3)(-1)
              reader.readTokens(offset, dst, 2, len)
              assert(dst.slice(2, 2 + len).sameElements(flat.slice(offset, offset + len)))
              assert(dst(0) == -1 && dst(1) == -1 && dst(2 + len) == -1)
            }
          } finally reader.close()
        }
    }
  }

  test("readTokens crosses item boundaries and mapping-slice boundaries at every offset") {
    withDir { dir =>
      val sizes = Seq(1, 7, 8, 9, 3, 16, 2, 30, 5)
      var next = 60000
      val docs = sizes.map(n => Array.fill(n) { next += 1; next % 65536 })
      writePair(dir.resolve("b"), docs)
      val flat = docs.flatten.toArray
      for (slice <- Seq(8L, 16L, 24L)) { // 4, 8 and 12 tokens per slice
        val reader = BinIdxReader.open(dir.resolve("b"), slice)
        try {
          for (offset <- 0 to flat.length; len <- 0 to flat.length - offset) {
            val dst = new Array[Int](len)
            reader.readTokens(offset, dst, 0, len)
            assert(dst.sameElements(flat.slice(offset, offset + len)), s"slice $slice offset $offset len $len")
          }
        } finally reader.close()
      }
    }
  }

  test("a .bin over 4 GiB (sparse) is read across the 2 GiB and 4 GiB boundaries with the default mapping") {
    withDir { dir =>
      val big = 1 << 30 // tokens per item: 2 GiB of uint16
      val sizes = Seq(big, big, 16)
      val binBytes = 4L * big + 32
      Files.write(dir.resolve("big.idx"), idxBytes(8, sizes, Seq(0L, 2L * big, 4L * big), Seq(0L, 1L, 2L, 3L)))
      val file = new RandomAccessFile(dir.resolve("big.bin").toFile, "rw")
      val marks = Map(2L * big - 4 -> 11, 2L * big - 2 -> 12, 2L * big -> 13, 4L * big - 2 -> 14, 4L * big -> 15, binBytes - 2 -> 0)
      try {
        file.setLength(binBytes) // sparse: no disk space used for the zeros
        for ((at, token) <- marks) { file.seek(at); file.write(uint16Bytes(Seq(token))) }
      } finally file.close()
      val reader = BinIdxReader.open(dir.resolve("big"))
      try {
        assert(reader.tokenCount == 2L * big + 16 && reader.itemCount == 3)
        assert(reader.pointer(1) == 2L * big && reader.pointer(2) == 4L * big)
        val dst = new Array[Int](6)
        reader.readTokens(big - 3L, dst, 0, 6)
        assert(dst.toSeq == Seq(0, 11, 12, 13, 0, 0))
        reader.readTokens(2L * big - 2, dst, 0, 6)
        assert(dst.toSeq == Seq(0, 14, 15, 0, 0, 0))
        reader.readTokens(reader.tokenCount - 6, dst, 0, 6)
        assert(dst.toSeq == Seq(0, 0, 0, 0, 0, 0))
        assert(reader.item(2).length == 16)
      } finally reader.close()
    }
  }

  test("readTokens outside the data is a one-line error naming the .bin; a too small destination is a bug") {
    withSmallPair { (prefix, _, bin) =>
      val reader = BinIdxReader.open(prefix)
      try {
        val dst = new Array[Int](8)
        reader.readTokens(0, dst, 0, 6)
        reader.readTokens(6, dst, 0, 0)
        for ((offset, len) <- Seq((1L, 6), (6L, 1), (-1L, 2), (Long.MaxValue, 2))) {
          val e = intercept[GoslingException](reader.readTokens(offset, dst, 0, len))
          assert(e.getMessage == s"$bin: cannot read $len tokens at token offset $offset: the data has 6 tokens; " +
            "magic_prime and ctx_len must be those computed for this data")
        }
        intercept[IndexOutOfBoundsException](reader.readTokens(0, dst, 4, 5))
        intercept[IndexOutOfBoundsException](reader.item(3))
      } finally reader.close()
      intercept[IllegalStateException](reader.readTokens(0, new Array[Int](1), 0, 1))
    }
  }

  test("the reader accepts the prefix, the .bin or the .idx path; the writer accepts a .bin path") {
    withDir { dir =>
      val out = new BinIdxWriter(dir.resolve("p.bin"))
      try {
        assert(out.binPath == dir.resolve("p.bin") && out.idxPath == dir.resolve("p.idx"))
        smallDocs.foreach(d => out.addDocument(d))
        out.commit()
      } finally out.close()
      assert(listing(dir) == Set("p.bin", "p.idx"))
      for (name <- Seq("p", "p.bin", "p.idx")) {
        val reader = BinIdxReader.open(dir.resolve(name))
        try {
          assert(reader.binPath == dir.resolve("p.bin") && reader.idxPath == dir.resolve("p.idx"))
          assert(readAll(reader).toSeq == smallDocs.flatten)
        } finally reader.close()
      }
    }
  }

  test("an empty dataset commits and reads as 0 items, doc_idx [0]") {
    withDir { dir =>
      writePair(dir.resolve("e"), Seq.empty)
      assert(Files.size(dir.resolve("e.idx")) == 42 && Files.size(dir.resolve("e.bin")) == 0)
      val reader = BinIdxReader.open(dir.resolve("e"))
      try assert(reader.tokenCount == 0 && reader.itemCount == 0 && reader.docIdx.toSeq == Seq(0L))
      finally reader.close()
    }
  }

  test("int32 data (json2binidx's dtype for the world vocab) is readable; float data opens but gives no tokens") {
    withDir { dir =>
      Files.write(dir.resolve("i.idx"), idxBytes(4, Seq(2, 1), Seq(0L, 8L), Seq(0L, 1L, 2L)))
      Files.write(dir.resolve("i.bin"), Seq(65529, 0, 70000).flatMap(t => le(4)(_.putInt(t))).toArray)
      val ints = BinIdxReader.open(dir.resolve("i"))
      try {
        assert(ints.dtypeCode == 4 && ints.itemSizeBytes == 4 && ints.tokenCount == 3)
        assert(readAll(ints).toSeq == Seq(65529, 0, 70000) && ints.item(1).toSeq == Seq(70000))
      } finally ints.close()

      Files.write(dir.resolve("n.idx"), idxBytes(3, Seq(2), Seq(0L), Seq(0L, 1L)))
      Files.write(dir.resolve("n.bin"), le(4)(_.putShort(7.toShort).putShort(-3.toShort)))
      val negative = BinIdxReader.open(dir.resolve("n"))
      try {
        val e = intercept[GoslingException](readAll(negative))
        assert(e.getMessage.startsWith(s"${dir.resolve("n.bin")}: token 1 is -3, not a token id"), e.getMessage)
      } finally negative.close()

      Files.write(dir.resolve("f.idx"), idxBytes(7, Seq(2), Seq(0L), Seq(0L, 1L)))
      Files.write(dir.resolve("f.bin"), new Array[Byte](16))
      val floats = BinIdxReader.open(dir.resolve("f"))
      try {
        assert(floats.tokenCount == 2 && floats.itemSizeBytes == 8)
        val e = intercept[GoslingException](floats.item(0))
        assert(e.getMessage.startsWith(s"${dir.resolve("f.idx")}: dtype code 7 (float64) holds no token ids"), e.getMessage)
      } finally floats.close()
    }
  }

  // ---- corrupt and missing inputs: one test each ------------------------------------------------------------

  test("bad magic: all 9 bytes are checked") {
    withSmallPair { (prefix, idx, _) =>
      patch(idx, 8, Array[Byte](1))
      openError(prefix, idx, "not a binidx index: its first 9 bytes are 4D 4D 49 44 49 44 58 00 01, not the magic")
    }
  }

  test("bad version") {
    withSmallPair { (prefix, idx, _) =>
      patch(idx, 9, le(8)(_.putLong(2)))
      openError(prefix, idx, "unsupported binidx version 2; only version 1 exists")
    }
  }

  test("bad dtype code") {
    for (code <- Seq(0, 9, 255)) withSmallPair { (prefix, idx, _) =>
      patch(idx, 17, Array(code.toByte))
      openError(prefix, idx, s"unknown dtype code $code (codes are 1..8; RWKV data uses 8 = uint16)")
    }
  }

  test("a dtype whose element size disagrees with the data is caught by the pointers or the .bin length") {
    withSmallPair { (prefix, idx, _) =>
      patch(idx, 17, Array(4.toByte)) // int32: 4 bytes per token, so item 1 should start at byte 8
      openError(prefix, idx, "pointers[1] is 4 but the sizes before it put item 1 at byte 8 (4 bytes per token)")
    }
    withDir { dir =>
      writePair(dir.resolve("one"), Seq(Array(1, 2, 3, 0)))
      patch(dir.resolve("one.idx"), 17, Array(5.toByte)) // int64: one item, so only the length can tell
      openError(dir.resolve("one"), dir.resolve("one.bin"), "truncated: 8 bytes, but one.idx says 4 tokens × 8 bytes = 32 bytes")
    }
  }

  test("truncated .idx: the message gives the header's counts, the expected and the actual size") {
    withDir { dir =>
      writePair(dir.resolve("x"), Seq.fill(546)(Array(1, 0)))
      val idx = dir.resolve("x.idx")
      Files.write(idx, Files.readAllBytes(idx).take(1000))
      val message = openError(dir.resolve("x"), idx, "")
      assert(message == s"$idx: truncated: header says 546 items and 547 doc_idx entries (10962 bytes) but the file " +
        "has 1000 bytes; the index is corrupt or incomplete, write the pair again")
    }
  }

  test(".idx shorter than its header") {
    withSmallPair { (prefix, idx, _) =>
      Files.write(idx, Files.readAllBytes(idx).take(20))
      openError(prefix, idx, "truncated: 20 bytes, shorter than the 34-byte header")
    }
  }

  test(".idx longer than its header says") {
    withSmallPair { (prefix, idx, _) =>
      Files.write(idx, Files.readAllBytes(idx) ++ new Array[Byte](8))
      openError(prefix, idx, "too long: header says 3 items and 4 doc_idx entries (102 bytes) but the file has 110 bytes")
    }
  }

  test("a garbage item count cannot overflow the size check") {
    withSmallPair { (prefix, idx, _) =>
      patch(idx, 18, le(8)(_.putLong(-1L)))
      openError(prefix, idx, "truncated: header says 18446744073709551615 items and 4 doc_idx entries (more than any file holds)")
    }
  }

  test(".bin shorter than the sizes say") {
    withSmallPair { (prefix, _, bin) =>
      Files.write(bin, Files.readAllBytes(bin).take(10))
      openError(prefix, bin, "truncated: 10 bytes, but x.idx says 6 tokens × 2 bytes = 12 bytes")
    }
  }

  test(".bin longer than the sizes say") {
    withSmallPair { (prefix, _, bin) =>
      Files.write(bin, Files.readAllBytes(bin) ++ new Array[Byte](2))
      openError(prefix, bin, "too long: 14 bytes, but x.idx says 6 tokens × 2 bytes = 12 bytes")
    }
  }

  test("pointer mismatch") {
    withSmallPair { (prefix, idx, _) =>
      patch(idx, 34 + 12 + 8, le(8)(_.putLong(6)))
      openError(prefix, idx, "pointers[1] is 6 but the sizes before it put item 1 at byte 4 (2 bytes per token)")
    }
  }

  test("negative size") {
    withSmallPair { (prefix, idx, _) =>
      patch(idx, 34 + 4, le(4)(_.putInt(-3)))
      openError(prefix, idx, "sizes[1] is -3; sizes cannot be negative")
    }
  }

  test("doc_idx that does not start at 0, decreases, or does not end at the item count") {
    val docIdxAt = 34 + 12 * 3
    withSmallPair { (prefix, idx, _) =>
      patch(idx, docIdxAt, le(8)(_.putLong(1)))
      openError(prefix, idx, "doc_idx[0] is 1; doc_idx must start at 0")
    }
    withSmallPair { (prefix, idx, _) =>
      patch(idx, docIdxAt + 16, le(8)(_.putLong(0)))
      openError(prefix, idx, "doc_idx[2] is 0, less than doc_idx[1] = 1; doc_idx must not decrease")
    }
    withSmallPair { (prefix, idx, _) =>
      patch(idx, docIdxAt + 24, le(8)(_.putLong(2)))
      openError(prefix, idx, "doc_idx ends at 2 but there are 3 items; doc_idx must end at the item count")
    }
    withDir { dir =>
      Files.write(dir.resolve("z.idx"), idxBytes(8, Seq.empty, Seq.empty, Seq.empty))
      Files.write(dir.resolve("z.bin"), new Array[Byte](0))
      openError(dir.resolve("z"), dir.resolve("z.idx"), "doc_idx is empty; it must run from 0 to the item count 0")
    }
  }

  test("missing .bin") {
    withSmallPair { (prefix, _, bin) =>
      Files.delete(bin)
      openError(prefix, bin, "not found, but its index x.idx is there")
    }
  }

  test("missing .idx") {
    withSmallPair { (prefix, idx, _) =>
      Files.delete(idx)
      openError(prefix, idx, "not found; a binidx dataset is the pair x.bin + x.idx")
    }
  }

  // ---- writer: atomic commit and bad tokens -----------------------------------------------------------------

  test("before commit no prefix.bin/.idx exist; close without commit leaves nothing") {
    withDir { dir =>
      val out = new BinIdxWriter(dir.resolve("sub/a"))
      out.addDocument(Array.fill(5000000)(7), 0, 5000000) // more than the write buffer, so some is on disk
      val sub = dir.resolve("sub")
      assert(!Files.exists(sub.resolve("a.bin")) && !Files.exists(sub.resolve("a.idx")))
      assert(listing(sub).forall(n => !n.endsWith(".bin") && !n.endsWith(".idx")) && listing(sub).size == 1)
      out.close()
      assert(listing(sub).isEmpty)
      out.close() // idempotent
      intercept[IllegalStateException](out.addDocument(Array(0), 0, 1))
    }
  }

  test("commit replaces an existing older pair; until then the old pair stays intact and readable") {
    withDir { dir =>
      val prefix = dir.resolve("d")
      writePair(prefix, Seq(Array(1, 2, 0)))
      val oldReader = BinIdxReader.open(prefix)
      val out = new BinIdxWriter(prefix)
      try {
        out.addDocument(Array(9, 8, 7, 0), 0, 4)
        out.addDocument(Array(6, 0), 0, 2)
        val stillOld = BinIdxReader.open(prefix)
        try assert(readAll(stillOld).toSeq == Seq(1, 2, 0)) finally stillOld.close()
        out.commit()
      } finally out.close()
      assert(listing(dir) == Set("d.bin", "d.idx"))
      val fresh = BinIdxReader.open(prefix)
      try assert(readAll(fresh).toSeq == Seq(9, 8, 7, 0, 6, 0) && fresh.itemCount == 2) finally fresh.close()
      // A reader opened before the commit keeps the old files it mapped.
      try assert(readAll(oldReader).toSeq == Seq(1, 2, 0)) finally oldReader.close()
    }
  }

  test("a committed writer refuses more work") {
    withDir { dir =>
      val out = new BinIdxWriter(dir.resolve("c"))
      try {
        out.addDocument(Array(0), 0, 1)
        out.commit()
        intercept[IllegalStateException](out.commit())
        intercept[IllegalStateException](out.addDocument(Array(0), 0, 1))
        intercept[IllegalStateException](out.endDocument())
      } finally out.close()
      assert(listing(dir) == Set("c.bin", "c.idx"))
    }
  }

  test("token ids outside 0..65535 are a one-line error naming the id, its position and the document; the writer stays usable") {
    withDir { dir =>
      val out = new BinIdxWriter(dir.resolve("t"))
      try {
        out.addDocument(Array(3, 0), 0, 2)
        val high = intercept[GoslingException](out.addDocument(Array(1, 65535, 65536, 0), 0, 4))
        assert(high.getMessage == s"${dir.resolve("t.bin")}: token id 65536 at position 2 of document 1 (counting from 0) " +
          "is outside uint16 0..65535; check the tokenizer and its vocabulary")
        out.addItem(Array(4, 4), 0, 2)
        val negative = intercept[GoslingException](out.addItem(Array(-1, 0), 0, 2))
        assert(negative.getMessage.contains("token id -1 at position 2 of document 1 (counting from 0)"), negative.getMessage)
        intercept[IndexOutOfBoundsException](out.addItem(Array(1), 0, 2))
        out.endDocument()
        assert(out.tokenCount == 4 && out.itemCount == 2 && out.documentCount == 2)
        out.commit()
      } finally out.close()
      val reader = BinIdxReader.open(dir.resolve("t"))
      try assert(readAll(reader).toSeq == Seq(3, 0, 4, 4)) finally reader.close()
    }
  }

  test("format constants and names") {
    assert(BinIdxFormat.magic.sameElements("MMIDIDX\u0000\u0000".getBytes(StandardCharsets.US_ASCII)))
    assert((1 to 8).map(BinIdxFormat.itemSize) == Seq(1, 1, 2, 4, 8, 8, 8, 2))
    assert(BinIdxFormat.dtypeName(8) == "uint16" && BinIdxFormat.dtypeName(4) == "int32")
    assert(BinIdxFormat.idxFileBytes(546, 547) == 10962)
    assert(BinIdxFormat.prefixOf(Path.of("a/b.c.bin")) == Path.of("a/b.c") && BinIdxFormat.prefixOf(Path.of("a/b.c")) == Path.of("a/b.c"))
    intercept[IllegalArgumentException](BinIdxFormat.itemSize(9))
    intercept[IllegalArgumentException](BinIdxReader.open(Path.of("x"), 12))
  }
}
