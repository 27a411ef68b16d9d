package dev.gosling.checkpoint

import com.fasterxml.jackson.databind.ObjectMapper
import dev.gosling.checkpoint.CheckpointFixtures._
import dev.gosling.trainer.checkpoint.{DType, FloatCodec, NamedTensor, StateDict, TorchCheckpoint}
import org.scalatest.funsuite.AnyFunSuite

import java.nio.file.{Files, Path, Paths}
import java.nio.{ByteBuffer, ByteOrder}
import java.util.concurrent.TimeUnit
import java.util.zip.ZipFile
import scala.jdk.CollectionConverters._

/**
 * Interop with real PyTorch (Debian's python3-torch): torch.load(weights_only=True) of Java-written files, Java reading
 * torch.save output, and byte equality of data.pkl. Python is found through -Dgosling.python, else /usr/bin/python3
 * (where Debian installs torch), else python3 on the PATH. Without torch the suite fails when CI is set and is
 * cancelled otherwise.
 */
class TorchInteropSuite extends AnyFunSuite {
  private val json = new ObjectMapper()

  private lazy val pythonWithTorch: Either[String, String] = {
    val python = sys.props.get("gosling.python")
      .orElse(Some("/usr/bin/python3").filter(p => Files.isExecutable(Paths.get(p))))
      .getOrElse("python3")
    try {
      val (code, out) = run(python, "-c", "import torch; print(torch.__version__)")
      if (code == 0) Right(python) else Left(s"$python cannot import torch: ${out.trim.linesIterator.toSeq.lastOption.getOrElse("")}")
    } catch {
      case e: java.io.IOException => Left(s"cannot run $python: ${e.getMessage}")
    }
  }

  private def python: String = pythonWithTorch match {
    case Right(p) => p
    case Left(why) =>
      val message = s"TorchInteropSuite needs python3 with torch ($why); install it with: apt-get install -y python3-torch " +
        "(or point -Dgosling.python at a python that has torch)"
      if (sys.env.contains("CI")) fail(message) else cancel(message)
  }

  private val script: String = Paths.get(getClass.getResource("/python/torch_interop.py").toURI).toString

  private def run(command: String*): (Int, String) = {
    val process = new ProcessBuilder(command: _*).redirectErrorStream(true).start()
    val output = new String(process.getInputStream.readAllBytes())
    assert(process.waitFor(300, TimeUnit.SECONDS), s"${command.mkString(" ")} timed out")
    (process.exitValue(), output)
  }

  private def runScript(args: String*): String = {
    val (code, out) = run(Seq(python, script) ++ args: _*)
    assert(code == 0, s"torch_interop.py ${args.head} failed:\n$out")
    out
  }

  /** Writes the manifest and float32 values the Python side compares with. */
  private def describe(dir: Path, tensors: Seq[(NamedTensor, Array[Float])]): (Path, Path) = {
    val manifest = json.createArrayNode()
    var offset = 0L
    val values = ByteBuffer.allocate(tensors.map(_._2.length).sum * 4).order(ByteOrder.LITTLE_ENDIAN)
    for ((t, v) <- tensors) {
      val m = manifest.addObject()
      m.put("name", t.name).put("dtype", t.dtype.safetensorsName).put("offset", offset).put("count", v.length)
      val shape = m.putArray("shape")
      t.shape().foreach(d => shape.add(d))
      v.foreach(values.putFloat)
      offset += v.length
    }
    val manifestFile = dir.resolve("manifest.json")
    val valuesFile = dir.resolve("values.f32")
    json.writeValue(manifestFile.toFile, manifest)
    Files.write(valuesFile, values.array())
    (manifestFile, valuesFile)
  }

  private def dataPkl(file: Path): Array[Byte] = {
    val zf = new ZipFile(file.toFile)
    try {
      val entry = zf.entries().asScala.find(_.getName.endsWith("/data.pkl")).get
      zf.getInputStream(entry).readAllBytes()
    } finally zf.close()
  }

  private def floats(bits: Int*): Array[Float] = bits.map(java.lang.Float.intBitsToFloat).toArray

  test("torch.load(weights_only=True) reads Java's .pth; Java's bf16/fp16 rounding equals torch's; data.pkl equals torch.save's") {
    val rng = new scala.util.Random(11)
    val bf16Edges = floats(0x3f800000, 0x3f808000, 0x3f818000, 0x3f808001, 0xbf818000, 0x7f7fffff, 0x7f7f7fff,
      0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0x00000001, 0x00018000, 0x007fffff, 0x80000000, 0x3fffffff)
    val f16Edges = Array(1f, 1f + math.pow(2, -11).toFloat, 1f + 3 * math.pow(2, -11).toFloat, 65504f, 65519.996f,
      65520f, 1e6f, -1e6f, math.pow(2, -24).toFloat, math.pow(2, -25).toFloat, 3 * math.pow(2, -25).toFloat, -0f, 0.1f, Float.NaN)
    def gaussian(n: Int) = Array.fill(n)((rng.nextGaussian() * 2).toFloat)
    val specs: Seq[(String, DType, Array[Long], Array[Float])] = Seq(
      ("emb.weight", DType.BF16, Array(300L, 256L), gaussian(300 * 256)),
      ("bf16.edges", DType.BF16, Array(4L, 4L), bf16Edges),
      ("f16.edges", DType.F16, Array(14L), f16Edges),
      ("f32.random", DType.F32, Array(7L, 9L), gaussian(63)),
      ("blocks.0.att.x_r", DType.BF16, Array(1L, 1L, 64L), gaussian(64)),
      ("scalar", DType.F32, Array.emptyLongArray, Array(-0.75f)),
      ("empty.0x3", DType.BF16, Array(0L, 3L), Array.emptyFloatArray),
      ("empty.3x0", DType.F16, Array(3L, 0L), Array.emptyFloatArray),
      ("five.d", DType.F32, Array(2L, 1L, 3L, 1L, 2L), gaussian(12)))
    val tensors = specs.map { case (n, d, s, v) => (NamedTensor.fromFloats(n, d, s, v), v) }
    withTempDir { dir =>
      val file = dir.resolve("rwkv-java.pth")
      val sd = StateDict.of(tensors.map(_._1): _*)
      TorchCheckpoint.write(file, sd)
      val (manifest, values) = describe(dir, tensors)
      val resaved = dir.resolve("resaved.pth")
      assert(runScript("check", file.toString, manifest.toString, values.toString, resaved.toString).contains("OK 9 tensors"))
      assert(dataPkl(resaved).sameElements(dataPkl(file)), "torch.save of the loaded dict pickles the same bytes")
      assert(TorchCheckpoint.read(resaved) == sd)
    }
  }

  test("data.pkl equals torch.save's for more than 1000 keys (SETITEMS batches, 4-byte memo indices)") {
    val tensors = (0 until 1001).map { i =>
      val v = Array(i.toFloat, -i.toFloat)
      (NamedTensor.fromFloats(s"blocks.$i.w", if (i % 2 == 0) DType.BF16 else DType.F32, Array(2L), v), v)
    }
    withTempDir { dir =>
      val file = dir.resolve("many.pth")
      TorchCheckpoint.write(file, StateDict.of(tensors.map(_._1): _*))
      val (manifest, values) = describe(dir, tensors)
      val resaved = dir.resolve("many-resaved.pth")
      assert(runScript("check", file.toString, manifest.toString, values.toString, resaved.toString).contains("OK 1001 tensors"))
      assert(dataPkl(resaved).sameElements(dataPkl(file)))
    }
  }

  test("Java reads torch.save output: non-contiguous views, shared storages, a Parameter, _metadata, fp16 edges") {
    withTempDir { dir =>
      val file = dir.resolve("from-torch.pth")
      val manifest = dir.resolve("py.json")
      val values = dir.resolve("py.f32")
      assert(runScript("save", file.toString, manifest.toString, values.toString).contains("OK saved 12 tensors"))
      val expected = json.readTree(manifest.toFile).elements().asScala.toSeq
      val raw = ByteBuffer.wrap(Files.readAllBytes(values)).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer()
      val sd = TorchCheckpoint.read(file)
      assert(sd.names().asScala == expected.map(_.get("name").asText()))
      for (m <- expected) {
        val t = sd.get(m.get("name").asText())
        assert(t.dtype.safetensorsName == m.get("dtype").asText(), t.name)
        assert(t.shape().toSeq == m.get("shape").elements().asScala.map(_.asLong()).toSeq, t.name)
        val want = new Array[Float](m.get("count").asInt())
        raw.position(m.get("offset").asInt()).get(want)
        val got = t.toFloats()
        assert(got.map(java.lang.Float.floatToRawIntBits).sameElements(want.map(java.lang.Float.floatToRawIntBits)), t.name)
      }
      assert(sd.get("view.t").toFloats().toSeq == Seq(0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11).map(_.toFloat))
      assert(sd.get("half").toFloats()(0) == math.pow(2, -24).toFloat)
      assert(TorchCheckpoint.listTensors(file).asScala.map(_.name) == sd.names().asScala)
    }
  }

  test("Python's zipfile reads the ZIP64 records Java writes past 4 GiB (CRC-checked)") {
    python // fail or cancel before the 4 GiB write when torch is missing
    withTempDir { dir =>
      val (file, _) = writeSparseZip64(dir, 70)
      val out = runScript("zipinfo", file.toString, "big/version", "big/.data/serialization_id", "big/byteorder")
      val info = json.readTree(out.linesIterator.toSeq.last)
      val records = info.get("records").elements().asScala.toSeq
      assert(records.size == 70 + 6 && records.forall(_.get("stored").asBoolean()))
      val version = records.find(_.get("name").asText() == "big/version").get
      assert(version.get("header_offset").asLong() > (4L << 30))
      assert(records.find(_.get("name").asText() == "big/data/69").get.get("size").asLong() == (64L << 20))
      assert(info.get("contents").get("big/version").asText() == "3\n")
      assert(info.get("contents").get("big/byteorder").asText() == "little")
      assert(info.get("contents").get("big/.data/serialization_id").asText().matches("[0-9]{40}"))
    }
  }
}
