package dev.gosling.checkpoint

import dev.gosling.trainer.checkpoint.{DType, NamedTensor, StateDict}
import org.scalacheck.Gen

import java.io.ByteArrayOutputStream
import java.nio.charset.StandardCharsets
import java.nio.file.{Files, Path}
import java.util.zip.{CRC32, ZipEntry, ZipOutputStream}
import scala.util.Random

/** Builders the checkpoint suites share: random state dicts, hand-made pickles and zips, a toy RWKV-7 state dict. */
object CheckpointFixtures {

  def tempDir(prefix: String): Path = Files.createTempDirectory(prefix)

  def deleteTree(dir: Path): Unit = {
    if (Files.exists(dir)) {
      val paths = Files.walk(dir)
      try paths.sorted(java.util.Comparator.reverseOrder()).forEach(p => Files.delete(p))
      finally paths.close()
    }
  }

  def withTempDir[A](body: Path => A): A = {
    val dir = tempDir("gosling-ckpt")
    try body(dir) finally deleteTree(dir)
  }

  /** A tensor of random bytes: every bit pattern, NaNs included, must survive a round trip untouched. */
  def randomTensor(rng: Random, name: String, dtype: DType, shape: Array[Long]): NamedTensor = {
    val n = shape.product * dtype.elementSize
    val bytes = new Array[Byte](n.toInt)
    rng.nextBytes(bytes)
    NamedTensor.ofBytes(name, dtype, shape, bytes)
  }

  val genDType: Gen[DType] = Gen.oneOf(DType.BF16, DType.F16, DType.F32)
  val genShape: Gen[Array[Long]] = for {
    rank <- Gen.choose(0, 4)
    dims <- Gen.listOfN(rank, Gen.frequency(1 -> Gen.const(0L), 12 -> Gen.choose(1L, 7L)))
  } yield dims.toArray

  /** Names like torch's (dots, digits) plus a few that test escaping and UTF-8. */
  val genName: Gen[String] = Gen.oneOf(
    Gen.choose(0, 40).map(i => s"blocks.$i.att.w$i"),
    Gen.alphaNumStr.suchThat(_.nonEmpty).map(_.take(12)),
    Gen.oneOf("emb.weight", "ln_out.bias", "name with spaces", "quote\"back\\slash", "größe.μ", "tab\tnew\nline"))

  val genStateDict: Gen[StateDict] = for {
    count <- Gen.choose(0, 12)
    names <- Gen.listOfN(count, genName).map(_.distinct)
    specs <- Gen.listOfN(names.size, Gen.zip(genDType, genShape))
    seed <- Gen.choose(0L, Long.MaxValue)
  } yield {
    val rng = new Random(seed)
    val dict = new StateDict()
    names.zip(specs).foreach { case (name, (dtype, shape)) => dict.add(randomTensor(rng, name, dtype, shape)) }
    dict
  }

  /** Writes a zip with the JDK's ZipOutputStream: STORED unless `deflate`, names as given (nothing checked). */
  def zip(entries: Seq[(String, Array[Byte])], deflate: Set[String] = Set.empty): Array[Byte] = {
    val out = new ByteArrayOutputStream()
    val zos = new ZipOutputStream(out)
    for ((name, data) <- entries) {
      val e = new ZipEntry(name)
      if (deflate(name)) e.setMethod(ZipEntry.DEFLATED)
      else {
        e.setMethod(ZipEntry.STORED)
        e.setSize(data.length.toLong)
        e.setCompressedSize(data.length.toLong)
        val crc = new CRC32()
        crc.update(data)
        e.setCrc(crc.getValue)
      }
      zos.putNextEntry(e)
      zos.write(data)
      zos.closeEntry()
    }
    zos.close()
    out.toByteArray
  }

  /** A torch-style archive ("archive/data.pkl", "archive/data/<key>", ...) around a hand-made pickle. */
  def torchZip(pickle: Array[Byte], storages: Seq[(String, Array[Byte])] = Seq.empty): Array[Byte] =
    zip(Seq("archive/data.pkl" -> pickle, "archive/byteorder" -> "little".getBytes) ++
      storages.map { case (k, b) => s"archive/data/$k" -> b } ++ Seq("archive/version" -> "3\n".getBytes))

  /** Emits pickle opcodes one by one, for crafting pickles torch would (or would never) write. */
  final class PickleBuilder {
    private val out = new ByteArrayOutputStream()
    def op(code: Int): PickleBuilder = { out.write(code); this }
    def proto(v: Int): PickleBuilder = op(0x80).op(v)
    def global(module: String, name: String): PickleBuilder = {
      op('c'); out.write(s"$module\n$name\n".getBytes(StandardCharsets.UTF_8)); this
    }
    def str(s: String): PickleBuilder = {
      val b = s.getBytes(StandardCharsets.UTF_8)
      op('X'); int32(b.length); out.write(b); this
    }
    def shortStr(s: String): PickleBuilder = {
      val b = s.getBytes(StandardCharsets.UTF_8)
      op(0x8c).op(b.length); out.write(b); this
    }
    def int(v: Long): PickleBuilder =
      if (v >= 0 && v < 256) op('K').op(v.toInt) else { op('J'); int32(v.toInt); this }
    def mark: PickleBuilder = op('(')
    def tuple: PickleBuilder = op('t')
    def emptyTuple: PickleBuilder = op(')')
    def reduce: PickleBuilder = op('R')
    def emptyDict: PickleBuilder = op('}')
    def setItems: PickleBuilder = op('u')
    def stop: PickleBuilder = op('.')
    def longs(vs: Long*): PickleBuilder = { mark; vs.foreach(int); tuple }
    /** ('storage', torch.<cls>, key, 'cpu', numel) BINPERSID */
    def storage(cls: String, key: String, numel: Long): PickleBuilder =
      mark.str("storage").global("torch", cls).str(key).str("cpu").int(numel).tuple.op('Q')
    /** _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()) */
    def tensor(cls: String, key: String, numel: Long, offset: Long, size: Seq[Long], stride: Seq[Long]): PickleBuilder = {
      global("torch._utils", "_rebuild_tensor_v2").mark.storage(cls, key, numel).int(offset)
      longs(size: _*).longs(stride: _*).op(0x89).global("collections", "OrderedDict").emptyTuple.reduce
      tuple.reduce
    }
    private def int32(v: Int): Unit = { out.write(v & 0xff); out.write((v >>> 8) & 0xff); out.write((v >>> 16) & 0xff); out.write(v >>> 24) }
    def bytes: Array[Byte] = out.toByteArray
  }

  def pickle: PickleBuilder = new PickleBuilder

  def floatBytes(values: Seq[Float]): Array[Byte] = {
    val b = java.nio.ByteBuffer.allocate(values.size * 4).order(java.nio.ByteOrder.LITTLE_ENDIAN)
    values.foreach(v => b.putFloat(v))
    b.array()
  }

  /** Shapes of an RWKV-7 x070 state dict in state-dict order (reference §6.3). */
  def rwkv7Shapes(nLayer: Int, c: Long, vocab: Long, dDecay: Long, dAaa: Long, dMv: Long, dGate: Long): Seq[(String, Array[Long])] = {
    val vec = Array(c)
    val mix = Array(1L, 1L, c)
    val blocks = (0 until nLayer).flatMap { l =>
      val b = s"blocks.$l."
      Seq(b + "ln1.weight" -> vec, b + "ln1.bias" -> vec, b + "ln2.weight" -> vec, b + "ln2.bias" -> vec) ++
        (if (l == 0) Seq(b + "ln0.weight" -> vec, b + "ln0.bias" -> vec) else Nil) ++
        Seq("x_r", "x_w", "x_k", "x_v", "x_a", "x_g").map(x => b + "att." + x -> mix) ++
        Seq(b + "att.w0" -> mix, b + "att.w1" -> Array(c, dDecay), b + "att.w2" -> Array(dDecay, c),
          b + "att.a0" -> mix, b + "att.a1" -> Array(c, dAaa), b + "att.a2" -> Array(dAaa, c),
          b + "att.v0" -> mix, b + "att.v1" -> Array(c, dMv), b + "att.v2" -> Array(dMv, c),
          b + "att.g1" -> Array(c, dGate), b + "att.g2" -> Array(dGate, c),
          b + "att.k_k" -> mix, b + "att.k_a" -> mix, b + "att.r_k" -> Array(c / 64, 64L),
          b + "att.receptance.weight" -> Array(c, c), b + "att.key.weight" -> Array(c, c),
          b + "att.value.weight" -> Array(c, c), b + "att.output.weight" -> Array(c, c),
          b + "att.ln_x.weight" -> vec, b + "att.ln_x.bias" -> vec,
          b + "ffn.x_k" -> mix, b + "ffn.key.weight" -> Array(4 * c, c), b + "ffn.value.weight" -> Array(c, 4 * c))
    }
    Seq("emb.weight" -> Array(vocab, c)) ++ blocks ++
      Seq("ln_out.weight" -> vec, "ln_out.bias" -> vec, "head.weight" -> Array(vocab, c))
  }

  def rwkv7StateDict(nLayer: Int, c: Long, vocab: Long, dDecay: Long, dAaa: Long, dMv: Long, dGate: Long,
                     dtype: DType = DType.BF16, seed: Long = 1): StateDict = {
    val rng = new Random(seed)
    StateDict.of(rwkv7Shapes(nLayer, c, vocab, dDecay, dAaa, dMv, dGate).map { case (n, s) =>
      NamedTensor.fromFloats(n, dtype, s, Array.fill(s.product.toInt)(rng.nextGaussian().toFloat))
    }: _*)
  }

  /**
   * Writes `count` bf16 tensors of 64 MiB (4.4 GiB for 70) as "big.pth" through a channel that stores only the small
   * structures into a sparse file and skips the all-zero tensor data: the result is the complete file while
   * occupying a few KiB of disk. Returns the file and its length.
   */
  def writeSparseZip64(dir: Path, count: Int): (Path, Long) = {
    val chunk = java.nio.ByteBuffer.allocateDirect(64 << 20)
    val sd = StateDict.of((0 until count).map(i => NamedTensor.of(s"t$i", DType.BF16, Array(32L << 20), chunk)): _*)
    val file = dir.resolve("big.pth")
    val channel = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.CREATE_NEW,
      java.nio.file.StandardOpenOption.WRITE)
    var position = 0L
    val capture = new java.nio.channels.WritableByteChannel {
      def write(src: java.nio.ByteBuffer): Int = {
        val n = src.remaining()
        if (n <= (1 << 20)) channel.write(src, position) else src.position(src.limit())
        position += n
        n
      }
      def isOpen: Boolean = true
      def close(): Unit = ()
    }
    try dev.gosling.trainer.checkpoint.TorchCheckpoint.write(capture, "big", sd) finally channel.close()
    (file, position)
  }

  /** Little-endian reads over a byte array, for checking file layouts. */
  implicit final class LittleEndian(private val b: Array[Byte]) extends AnyVal {
    def u16(at: Long): Int = (b(at.toInt) & 0xff) | (b(at.toInt + 1) & 0xff) << 8
    def u32(at: Long): Long = (u16(at) | u16(at + 2) << 16).toLong & 0xffffffffL
    def u64(at: Long): Long = u32(at) | (u32(at + 4) << 32)
    def ascii(at: Long, n: Int): String = new String(b, at.toInt, n, StandardCharsets.UTF_8)
  }
}
