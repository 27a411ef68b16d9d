package dev.gosling.checkpoint

import dev.gosling.checkpoint.CheckpointFixtures._
import dev.gosling.trainer.GoslingException
import dev.gosling.trainer.checkpoint.{DType, NamedTensor, SafeTensors, StateDict}
import org.scalatest.funsuite.AnyFunSuite
import org.scalatestplus.scalacheck.ScalaCheckDrivenPropertyChecks

import java.io.ByteArrayOutputStream
import java.nio.channels.Channels
import java.nio.charset.StandardCharsets
import java.nio.file.{Files, Path}
import java.nio.{ByteBuffer, ByteOrder}
import scala.jdk.CollectionConverters._

class SafeTensorsSuite extends AnyFunSuite with ScalaCheckDrivenPropertyChecks {

  implicit override val generatorDrivenConfig: PropertyCheckConfiguration =
    PropertyCheckConfiguration(minSuccessful = 60)

  private def serialize(sd: StateDict, metadata: Map[String, String] = Map.empty): Array[Byte] = {
    val out = new ByteArrayOutputStream()
    SafeTensors.write(Channels.newChannel(out), sd, metadata.asJava)
    out.toByteArray
  }

  private def bytes(values: Int*): Array[Byte] = values.map(_.toByte).toArray

  private val f32Zero2Five = floatBytes((0 until 6).map(_.toFloat))

  // Expected bytes copied from huggingface/safetensors safetensors/src/tensor.rs (tests test_serialization,
  // test_empty, test_serialization_forced_alignement): the reference implementation's own output.
  test("output equals the reference implementation's bytes: one F32 tensor") {
    val sd = StateDict.of(NamedTensor.ofBytes("attn.0", DType.F32, Array(1L, 2L, 3L), f32Zero2Five))
    assert(serialize(sd).sameElements(bytes(
      64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100,
      116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34,
      58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115,
      101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63,
      0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64)))
  }

  test("output equals the reference implementation's bytes: header padded with spaces to 8") {
    val sd = StateDict.of(NamedTensor.ofBytes("attn0", DType.F32, Array(1L, 1L, 2L, 3L), f32Zero2Five))
    assert(serialize(sd).sameElements(bytes(
      72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116,
      121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58,
      91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102,
      115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32,
      32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0,
      160, 64)))
  }

  test("output equals the reference implementation's bytes: empty, and empty with metadata") {
    assert(serialize(new StateDict()).sameElements(bytes(8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32)))
    assert(serialize(new StateDict(), Map("framework" -> "pt")).sameElements(bytes(
      40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95,
      95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112,
      116, 34, 125, 125, 32, 32, 32, 32, 32)))
  }

  test("tensors are laid out as the reference sorts them: F32, then BF16, then F16, each by name") {
    val t = (n: String, d: DType) => NamedTensor.ofBytes(n, d, Array(1L), new Array[Byte](d.elementSize))
    val sd = StateDict.of(t("b.half", DType.F16), t("z.bf", DType.BF16), t("a.half", DType.F16),
      t("blocks.10.w", DType.F32), t("blocks.2.w", DType.F32), t("a.bf", DType.BF16))
    val out = serialize(sd)
    val headerLength = ByteBuffer.wrap(out, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong.toInt
    val header = new String(out, 8, headerLength, StandardCharsets.UTF_8)
    assert(header.startsWith("{\"blocks.10.w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"blocks.2.w\":"))
    val order = Seq("blocks.10.w", "blocks.2.w", "a.bf", "z.bf", "a.half", "b.half")
    assert(order.map(n => header.indexOf("\"" + n + "\"")) == order.map(n => header.indexOf("\"" + n + "\"")).sorted)
    withTempDir { dir =>
      val file = dir.resolve("m.safetensors")
      Files.write(file, out)
      assert(SafeTensors.read(file).names().asScala == order, "read returns file order")
    }
  }

  test("random state dicts round-trip through a file, bit for bit, with metadata (ScalaCheck)") {
    withTempDir { dir =>
      forAll(genStateDict) { sd =>
        val file = dir.resolve("m.safetensors")
        SafeTensors.write(file, sd, Map("format" -> "pt", "gosling" -> "1").asJava)
        val back = SafeTensors.read(file)
        assert(back.names().asScala.toSet == sd.names().asScala.toSet && back.size == sd.size)
        sd.tensors().asScala.foreach(t => assert(back.get(t.name) == t))
        assert(SafeTensors.readMetadata(file).asScala == Map("format" -> "pt", "gosling" -> "1"))
        assert(SafeTensors.listTensors(file).asScala == back.specs().asScala)
        val headerLength = ByteBuffer.wrap(Files.readAllBytes(file), 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong
        assert(headerLength % 8 == 0)
      }
    }
  }

  /** A file with the given JSON header (unpadded) and data section. */
  private def crafted(dir: Path, name: String, header: String, data: Int): Path = {
    val h = header.getBytes(StandardCharsets.UTF_8)
    val b = ByteBuffer.allocate(8 + h.length + data).order(ByteOrder.LITTLE_ENDIAN)
    b.putLong(h.length).put(h)
    val file = dir.resolve(name)
    Files.write(file, b.array())
    file
  }

  private def error(file: Path): String = {
    val e = intercept[GoslingException](SafeTensors.read(file))
    assert(!e.getMessage.contains("\n"), e.getMessage)
    assert(e.getMessage.startsWith(s"$file: "), e.getMessage)
    e.getMessage
  }

  private def info(dtype: String, shape: String, begin: Long, end: Long) =
    s"""{"dtype":"$dtype","shape":$shape,"data_offsets":[$begin,$end]}"""

  test("offsets are validated: overlap, gap, out of bounds, wrong length, leftover data") {
    withTempDir { dir =>
      val overlap = crafted(dir, "overlap.safetensors",
        s"""{"a":${info("F32", "[2]", 0, 8)},"b":${info("F32", "[2]", 4, 12)}}""", 12)
      assert(error(overlap).contains("tensor 'b' data_offsets [4, 12] overlap tensor 'a' (which ends at 8)"))
      val gap = crafted(dir, "gap.safetensors", s"""{"a":${info("F32", "[1]", 0, 4)},"b":${info("F32", "[1]", 8, 12)}}""", 12)
      assert(error(gap).contains("tensor 'b' starts at 8 but the previous data ends at 4"))
      val oob = crafted(dir, "oob.safetensors", s"""{"a":${info("BF16", "[4]", 0, 8)}}""", 6)
      assert(error(oob).contains("tensor 'a' data_offsets [0, 8] are out of bounds (the data section holds 6 bytes"))
      val length = crafted(dir, "length.safetensors", s"""{"a":${info("BF16", "[2,2]", 0, 6)}}""", 6)
      assert(error(length).contains("span 6 bytes, but BF16 [2, 2] needs 8"))
      val leftover = crafted(dir, "leftover.safetensors", s"""{"a":${info("F16", "[1]", 0, 2)}}""", 5)
      assert(error(leftover).contains("the data section holds 5 bytes but the tensors cover 2"))
      val backwards = crafted(dir, "backwards.safetensors", s"""{"a":${info("F16", "[0]", 4, 2)}}""", 4)
      assert(error(backwards).contains("end before they begin"))
    }
  }

  test("malformed headers are refused with one line naming the file") {
    withTempDir { dir =>
      assert(error(crafted(dir, "json.safetensors", "{\"a\":", 0)).contains("header is not valid JSON"))
      assert(error(crafted(dir, "array.safetensors", "[1,2]", 0)).contains("header is not a JSON object"))
      assert(error(crafted(dir, "dup.safetensors", s"""{"a":${info("F32", "[0]", 0, 0)},"a":${info("F32", "[0]", 0, 0)}}""", 0))
        .contains("Duplicate field 'a'"))
      assert(error(crafted(dir, "i64.safetensors", s"""{"a":${info("I64", "[1]", 0, 8)}}""", 8))
        .contains("tensor 'a' has dtype I64; Gosling reads BF16, F16 and F32"))
      assert(error(crafted(dir, "neg.safetensors", s"""{"a":${info("F32", "[-1]", 0, 0)}}""", 0))
        .contains("tensor 'a' shape holds -1, not a non-negative integer"))
      assert(error(crafted(dir, "meta.safetensors", """{"__metadata__":{"n":1}}""", 0))
        .contains("__metadata__ value of 'n' is not a string"))
      assert(error(crafted(dir, "nooffsets.safetensors", """{"a":{"dtype":"F32","shape":[1]}}""", 4))
        .contains("tensor 'a' has no valid data_offsets"))

      val tooLong = dir.resolve("toolong.safetensors")
      Files.write(tooLong, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(200_000_000L).array())
      assert(error(tooLong).contains("header length 200000000 exceeds the 100000000-byte limit"))
      val truncated = dir.resolve("truncated.safetensors")
      Files.write(truncated, ByteBuffer.allocate(20).order(ByteOrder.LITTLE_ENDIAN).putLong(64).array())
      assert(error(truncated).contains("header of 64 bytes runs past the end of the 20-byte file"))
      val tiny = dir.resolve("tiny.safetensors")
      Files.write(tiny, Array[Byte](1, 2, 3))
      assert(error(tiny).contains("shorter than the 8-byte header length"))
    }
  }
}
