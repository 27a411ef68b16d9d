package dev.gosling.checkpoint

import dev.gosling.checkpoint.CheckpointFixtures._
import dev.gosling.trainer.GoslingException
import dev.gosling.trainer.checkpoint.{DType, NamedTensor, StateDict, TorchCheckpoint}
import org.scalatest.funsuite.AnyFunSuite
import org.scalatestplus.scalacheck.ScalaCheckDrivenPropertyChecks

import java.nio.charset.StandardCharsets
import java.nio.file.{Files, Path, Paths}
import java.util.zip.{CRC32, ZipFile}
import scala.jdk.CollectionConverters._

class TorchCheckpointSuite extends AnyFunSuite with ScalaCheckDrivenPropertyChecks {

  implicit override val generatorDrivenConfig: PropertyCheckConfiguration =
    PropertyCheckConfiguration(minSuccessful = 60)

  private def sample: StateDict = StateDict.of(
    NamedTensor.fromFloats("emb.weight", DType.BF16, Array(2L, 3L), Array(1f, 2f, 3f, -4f, 0.5f, 1e-3f)),
    NamedTensor.fromFloats("blocks.0.att.x_r", DType.F16, Array(1L, 1L, 5L), Array(0.1f, 0.2f, 0.3f, 0.4f, 65504f)),
    NamedTensor.fromFloats("scale", DType.F32, Array.emptyLongArray, Array(2.5f)),
    NamedTensor.ofBytes("empty", DType.BF16, Array(0L, 3L), Array.emptyByteArray))

  private def crc(b: Array[Byte]): Long = { val c = new CRC32(); c.update(b); c.getValue }

  private def assertOneLine(e: GoslingException, file: Path): Unit = {
    assert(!e.getMessage.contains("\n"), e.getMessage)
    assert(e.getMessage.startsWith(file.toString + ": "), e.getMessage)
  }

  test("random state dicts survive write and read bit for bit, in order (ScalaCheck)") {
    withTempDir { dir =>
      forAll(genStateDict) { sd =>
        val file = dir.resolve("model.pth")
        TorchCheckpoint.write(file, sd)
        assert(TorchCheckpoint.read(file) == sd)
        assert(TorchCheckpoint.listTensors(file) == sd.specs())
      }
    }
  }

  test("zip layout is torch.save's: record names and order, STORED, 64-byte aligned data, descriptors, ZIP64 end") {
    withTempDir { dir =>
      val file = dir.resolve("rwkv-final.pth")
      val sd = sample
      TorchCheckpoint.write(file, sd)
      val bytes = Files.readAllBytes(file)
      val layout = TorchZipLayout.parse(bytes)
      val a = "rwkv-final/"
      assert(layout.records.map(_.name) == Seq(a + "data.pkl", a + ".format_version", a + ".storage_alignment",
        a + "byteorder", a + "data/0", a + "data/1", a + "data/2", a + "data/3", a + "version", a + ".data/serialization_id"))

      var expectedHeader = 0L
      for (r <- layout.records) {
        val data = java.util.Arrays.copyOfRange(bytes, r.dataOffset.toInt, (r.dataOffset + r.size).toInt)
        assert(r.headerOffset == expectedHeader, s"${r.name} follows the previous record directly")
        assert(r.dataOffset % 64 == 0, s"${r.name} data at ${r.dataOffset}")
        assert(bytes.u16(r.headerOffset + 8) == 0, "STORED in the local header too")
        assert(r.flags == (if (r.size > 0) 0x0808 else 0x0800))
        assert(bytes.u16(r.headerOffset + 6) == r.flags)
        // local extra = "FB" + filler length + 'Z' filler, nothing else below 4 GiB
        assert(r.localExtra.take(2).sameElements("FB".getBytes) && r.localExtra.u16(2) == r.localExtra.length - 4)
        assert(r.localExtra.drop(4).forall(_ == 'Z'.toByte))
        assert(r.centralExtra.isEmpty)
        assert(r.crc == crc(data), r.name)
        val end = r.dataOffset + r.size
        if (r.size > 0) {
          assert(bytes.u32(end) == 0x08074b50L && bytes.u32(end + 4) == r.crc && bytes.u32(end + 8) == r.size && bytes.u32(end + 12) == r.size)
          expectedHeader = end + 16
        } else expectedHeader = end
      }
      assert(layout.centralOffset == expectedHeader)
      def text(name: String) = {
        val r = layout.records.find(_.name == a + name).get
        new String(bytes, r.dataOffset.toInt, r.size.toInt, StandardCharsets.US_ASCII)
      }
      assert(text(".format_version") == "1")
      assert(text(".storage_alignment") == "64")
      assert(text("byteorder") == "little")
      assert(text("version") == "3\n")
      assert(text(".data/serialization_id").matches("[0-9]{40}"))
      for ((t, i) <- sd.tensors().asScala.zipWithIndex) {
        val r = layout.records.find(_.name == s"${a}data/$i").get
        val stored = java.util.Arrays.copyOfRange(bytes, r.dataOffset.toInt, (r.dataOffset + r.size).toInt)
        val expected = new Array[Byte](t.byteSize.toInt)
        t.data().get(expected)
        assert(stored.sameElements(expected), s"data/$i holds ${t.name}'s bytes")
      }
      assert(layout.eocdEntries == 10 && layout.eocdCentralOffset == layout.centralOffset)
      assert(layout.zip64EndOffset == layout.centralOffset + layout.centralSize)
      assert(bytes.length == layout.zip64EndOffset + 56 + 20 + 22)
    }
  }

  test("the JDK's zip reader, an independent implementation, reads every record") {
    withTempDir { dir =>
      val file = dir.resolve("m.pth")
      TorchCheckpoint.write(file, sample)
      val zf = new ZipFile(file.toFile)
      try {
        val names = zf.entries().asScala.map(_.getName).toSeq
        assert(names.head == "m/data.pkl" && names.size == 10)
        val data0 = zf.getInputStream(zf.getEntry("m/data/0")).readAllBytes()
        assert(data0.length == 12 && crc(data0) == zf.getEntry("m/data/0").getCrc)
      } finally zf.close()
    }
  }

  test("torch's computed storage offsets (format version 1, mmap loading) equal the real ones") {
    withTempDir { dir =>
      val file = dir.resolve("x.pth")
      val rng = new scala.util.Random(3)
      val sd = StateDict.of((0 until 40).map(i => randomTensor(rng, s"t$i", DType.BF16, Array(rng.nextInt(70).toLong))): _*)
      TorchCheckpoint.write(file, sd)
      val layout = TorchZipLayout.parse(Files.readAllBytes(file))
      val actual = (0 until 40).map(i => layout.records.find(_.name == s"x/data/$i").get.dataOffset)
      assert(TorchZipLayout.torchComputedStorageOffsets(layout, "x", 40) == actual)
    }
  }

  test("the archive folder is the file name without its extension, as torch names it") {
    assert(TorchCheckpoint.archiveNameFor(Paths.get("/p/rwkv-final.pth")) == "rwkv-final")
    assert(TorchCheckpoint.archiveNameFor(Paths.get("RWKV-x070-0.1B.pth")) == "RWKV-x070-0.1B")
    assert(TorchCheckpoint.archiveNameFor(Paths.get("noext")) == "noext")
    assert(TorchCheckpoint.archiveNameFor(Paths.get(".pth")) == "archive")
  }

  test("writing is atomic: an overwrite leaves only the new file, a failed write leaves nothing behind") {
    withTempDir { dir =>
      val file = dir.resolve("rwkv-1.pth")
      TorchCheckpoint.write(file, sample)
      val second = StateDict.of(NamedTensor.fromFloats("only", DType.F32, Array(1L), Array(7f)))
      TorchCheckpoint.write(file, second)
      assert(TorchCheckpoint.read(file) == second)
      assert(Files.list(dir).iterator().asScala.map(_.getFileName.toString).toSeq == Seq("rwkv-1.pth"))

      val occupied = dir.resolve("occupied.pth")
      Files.createDirectories(occupied.resolve("inside"))
      val e = intercept[GoslingException](TorchCheckpoint.write(occupied, sample))
      assertOneLine(e, occupied)
      assert(e.getMessage.contains("cannot write"))
      assert(Files.list(dir).iterator().asScala.map(_.getFileName.toString).toSet == Set("rwkv-1.pth", "occupied.pth"))
    }
  }

  test("strided views, storage offsets, shared and expanded storages are materialised contiguously") {
    val pk = pickle.proto(2).emptyDict.mark
      .str("t").tensor("FloatStorage", "0", 12, 0, Seq(4, 3), Seq(1, 4))
      .str("row1").tensor("FloatStorage", "0", 12, 4, Seq(4), Seq(1))
      .str("col2").tensor("FloatStorage", "0", 12, 2, Seq(3), Seq(4))
      .str("expanded").tensor("FloatStorage", "0", 12, 5, Seq(2, 3), Seq(0, 1))
      .str("whole").tensor("FloatStorage", "0", 12, 0, Seq(3, 4), Seq(4, 1))
      .str("last").tensor("FloatStorage", "0", 12, 11, Seq(), Seq())
      .str("half").tensor("HalfStorage", "1", 2, 0, Seq(2), Seq(1))
      .setItems.stop.bytes
    val halfBytes = Array[Byte](0x00, 0x3c, 0x00, 0xc0.toByte) // 1.0, -2.0
    withTempDir { dir =>
      val file = dir.resolve("views.pth")
      Files.write(file, torchZip(pk, Seq("0" -> floatBytes((0 until 12).map(_.toFloat)), "1" -> halfBytes)))
      val sd = TorchCheckpoint.read(file)
      def values(n: String) = sd.get(n).toFloats().toSeq
      assert(sd.names().asScala == Seq("t", "row1", "col2", "expanded", "whole", "last", "half"))
      assert(sd.get("t").shape().toSeq == Seq(4, 3))
      assert(values("t") == Seq(0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11).map(_.toFloat))
      assert(values("row1") == Seq(4f, 5f, 6f, 7f))
      assert(values("col2") == Seq(2f, 6f, 10f))
      assert(values("expanded") == Seq(5f, 6f, 7f, 5f, 6f, 7f))
      assert(values("whole") == (0 until 12).map(_.toFloat))
      assert(values("last") == Seq(11f) && sd.get("last").shape().isEmpty)
      assert(sd.get("half").dtype == DType.F16 && values("half") == Seq(1f, -2f))
    }
  }

  test("Parameters, an OrderedDict with _metadata, and protocol-4 opcodes are understood") {
    val pk = pickle.proto(4).op(0x95).op(0).op(0).op(0).op(0).op(0).op(0).op(0).op(0) // FRAME
      .shortStr("collections").shortStr("OrderedDict").op(0x93).op(0x94).emptyTuple.reduce.op(0x94)
      .shortStr("w").op(0x94)
      .global("torch._utils", "_rebuild_parameter")
      .mark.tensor("BFloat16Storage", "0", 2, 0, Seq(2), Seq(1)).op(0x88).global("collections", "OrderedDict").emptyTuple.reduce.tuple.reduce
      .op('s')
      .emptyDict.str("_metadata").emptyDict.str("").emptyDict.str("version").int(1).op('s').op('s').op('s').op('b')
      .stop.bytes
    withTempDir { dir =>
      val file = dir.resolve("p.pth")
      Files.write(file, torchZip(pk, Seq("0" -> Array[Byte](0x80.toByte, 0x3f, 0x00, 0x40))))
      val sd = TorchCheckpoint.read(file)
      assert(sd.names().asScala == Seq("w") && sd.get("w").toFloats().toSeq == Seq(1f, 2f))
    }
  }

  test("the restricted unpickler refuses a pickle that calls os.system, with one line naming the file") {
    val evil = pickle.proto(2).global("os", "system").mark.str("echo pwned").tuple.reduce.stop.bytes
    withTempDir { dir =>
      val file = dir.resolve("file.pth")
      Files.write(file, torchZip(evil))
      val e = intercept[GoslingException](TorchCheckpoint.read(file))
      assert(e.getMessage == s"$file: refuses to load: pickle references os.system (only tensor rebuild functions are allowed)")
      assert(intercept[GoslingException](TorchCheckpoint.listTensors(file)).getMessage == e.getMessage)
    }
  }

  test("other ways of reaching code are refused too: STACK_GLOBAL, INST, NEWOBJ, non-allowed torch names") {
    val cases = Seq(
      pickle.proto(4).shortStr("builtins").shortStr("eval").op(0x93).mark.str("1").tuple.reduce.stop.bytes -> "pickle references builtins.eval",
      pickle.proto(0).mark.str("ls").op('i').bytes ++ "os\nsystem\n".getBytes ++ Array[Byte]('.') -> "pickle references os.system",
      pickle.proto(2).global("torch", "load").mark.str("x").tuple.reduce.stop.bytes -> "pickle references torch.load",
      pickle.proto(2).global("collections", "OrderedDict").emptyTuple.op(0x81).stop.bytes -> "pickle opcode NEWOBJ",
      pickle.proto(2).global("torch", "FloatStorage").mark.tuple.reduce.stop.bytes -> "torch.FloatStorage called as a function")
    withTempDir { dir =>
      for (((pk, expected), i) <- cases.zipWithIndex) {
        val file = dir.resolve(s"c$i.pth")
        Files.write(file, torchZip(pk))
        val e = intercept[GoslingException](TorchCheckpoint.read(file))
        assertOneLine(e, file)
        assert(e.getMessage.contains("refuses to load: " + expected) || e.getMessage.contains(expected), e.getMessage)
      }
    }
  }

  test("zip records named with '..' or an absolute path are refused") {
    val pk = pickle.proto(2).emptyDict.stop.bytes
    withTempDir { dir =>
      for ((name, i) <- Seq("archive/../../etc/passwd", "/archive/data.pkl", "archive/data/..").zipWithIndex) {
        val file = dir.resolve(s"z$i.pth")
        Files.write(file, zip(Seq("archive/data.pkl" -> pk, name -> Array[Byte](1))))
        val e = intercept[GoslingException](TorchCheckpoint.read(file))
        assertOneLine(e, file)
        assert(e.getMessage.contains(s"refuses to load: zip record name '$name'"), e.getMessage)
      }
    }
  }

  test("truncated, corrupted, compressed and non-zip files give one-line errors naming the file") {
    withTempDir { dir =>
      val good = dir.resolve("good.pth")
      TorchCheckpoint.write(good, sample)
      val bytes = Files.readAllBytes(good)
      for (cut <- Seq(3, 10, 100, bytes.length / 2, bytes.length - 30, bytes.length - 1)) {
        val file = dir.resolve(s"cut$cut.pth")
        Files.write(file, java.util.Arrays.copyOf(bytes, cut))
        assertOneLine(intercept[GoslingException](TorchCheckpoint.read(file)), file)
      }
      val layout = TorchZipLayout.parse(bytes)
      val flipped = bytes.clone()
      val data0 = layout.records.find(_.name == "good/data/0").get
      flipped(data0.dataOffset.toInt) = (flipped(data0.dataOffset.toInt) ^ 1).toByte
      val corrupt = dir.resolve("flipped.pth")
      Files.write(corrupt, flipped)
      val e = intercept[GoslingException](TorchCheckpoint.read(corrupt))
      assertOneLine(e, corrupt)
      assert(e.getMessage.contains("good/data/0 fails its CRC check"))

      val compressed = dir.resolve("deflated.pth")
      val pk = pickle.proto(2).emptyDict.stop.bytes
      Files.write(compressed, zip(Seq("archive/data.pkl" -> pk), deflate = Set("archive/data.pkl")))
      assert(intercept[GoslingException](TorchCheckpoint.read(compressed)).getMessage.contains("is compressed"))

      val legacy = dir.resolve("legacy.pth")
      Files.write(legacy, pk)
      assert(intercept[GoslingException](TorchCheckpoint.read(legacy)).getMessage ==
        s"$legacy: not a torch zip checkpoint (expected a zip archive as written by torch.save in PyTorch 1.6 or later; re-save it with a current torch)")

      val missing = dir.resolve("absent.pth")
      assert(intercept[GoslingException](TorchCheckpoint.read(missing)).getMessage == s"$missing: no such file (check the path)")
    }
  }

  test("pickles that are not a state dict of supported tensors are explained") {
    def tensorIn(cls: String) = pickle.proto(2).emptyDict.str("x").tensor(cls, "0", 3, 0, Seq(3), Seq(1)).op('s').stop.bytes
    withTempDir { dir =>
      def error(name: String, pk: Array[Byte], storages: Seq[(String, Array[Byte])] = Nil): String = {
        val file = dir.resolve(name)
        Files.write(file, torchZip(pk, storages))
        val e = intercept[GoslingException](TorchCheckpoint.read(file))
        assertOneLine(e, file)
        e.getMessage
      }
      assert(error("long.pth", tensorIn("LongStorage")).contains("tensor type torch.LongStorage is not supported"))
      assert(error("list.pth", pickle.proto(2).op(']').stop.bytes).contains("holds a Python list, not a state dict"))
      assert(error("int.pth", pickle.proto(2).emptyDict.str("step").int(5).op('s').stop.bytes)
        .contains("key 'step' holds a Python int, not a tensor"))
      assert(error("nostorage.pth", tensorIn("FloatStorage")).contains("storage data/0 is missing"))
      assert(error("short.pth", tensorIn("FloatStorage"), Seq("0" -> new Array[Byte](8)))
        .contains("storage data/0 holds 8 bytes, the pickle says 3 F32 elements (12 bytes)"))
      val outOfBounds = pickle.proto(2).emptyDict.str("x").tensor("FloatStorage", "0", 3, 1, Seq(3), Seq(1)).op('s').stop.bytes
      assert(error("oob.pth", outOfBounds, Seq("0" -> new Array[Byte](12))).contains("'x' reaches element 3 of storage 0, which holds 3"))
      assert(error("trunc.pth", pickle.proto(2).emptyDict.str("x").bytes).contains("corrupt data.pkl"))
      assert(error("memo.pth", pickle.proto(2).op('h').op(9).stop.bytes).contains("memo entry 9 used before it was stored"))
    }
  }

  test("ZIP64: records past 4 GiB get ZIP64 extras and 24-byte descriptors that the JDK and our reader accept") {
    withTempDir { dir =>
      val count = 70
      val (file, position) = writeSparseZip64(dir, count)
      assert(Files.size(file) == position && position > (4L << 30))

      val raf = new java.io.RandomAccessFile(file.toFile, "r")
      def read(off: Long, len: Int): Array[Byte] = { val b = new Array[Byte](len); raf.seek(off); raf.readFully(b); b }
      val layout = TorchZipLayout.parseTail(Array.emptyByteArray, position, read)
      val high = layout.records.filter(_.headerOffset >= 0xffffffffL)
      assert(high.nonEmpty && high.exists(_.name == "big/version"))
      for (r <- high) {
        assert(r.localExtra.u16(0) == 1 && r.localExtra.u16(2) == 8 && r.localExtra.u64(4) == r.headerOffset, r.name)
        assert(r.centralExtra.length == 12 && r.centralExtra.u64(4) == r.headerOffset)
        assert(r.dataOffset % 64 == 0)
        val descriptor = read(r.dataOffset + r.size, 24)
        assert(descriptor.u32(0) == 0x08074b50L && descriptor.u32(4) == r.crc, r.name)
        assert(descriptor.u64(8) == r.size && descriptor.u64(16) == r.size, "ZIP64 descriptor sizes are 8 bytes")
      }
      raf.close()
      // Records are back to back: each next header follows the data and its 16- or 24-byte descriptor.
      val nextHeaders = layout.records.drop(1).map(_.headerOffset) :+ layout.centralOffset
      for ((r, next) <- layout.records.zip(nextHeaders)) {
        val descriptor = if (r.size == 0) 0 else if (r.headerOffset >= 0xffffffffL) 24 else 16
        assert(next == r.dataOffset + r.size + descriptor, r.name)
      }
      assert(layout.records.filter(_.headerOffset < 0xffffffffL).forall(_.centralExtra.isEmpty))
      assert(layout.eocdCentralOffset == 0xffffffffL, "the 32-bit EOCD saturates, the ZIP64 one holds the offset")
      assert(TorchZipLayout.torchComputedStorageOffsets(layout, "big", count) ==
        (0 until count).map(i => layout.records.find(_.name == s"big/data/$i").get.dataOffset))

      val specs = TorchCheckpoint.listTensors(file)
      assert(specs.size == count && specs.get(count - 1).name == s"t${count - 1}")
      val zf = new ZipFile(file.toFile)
      try {
        assert(new String(zf.getInputStream(zf.getEntry("big/version")).readAllBytes()) == "3\n")
        assert(zf.getEntry(s"big/data/${count - 1}").getSize == (64L << 20))
      } finally zf.close()
    }
  }
}
