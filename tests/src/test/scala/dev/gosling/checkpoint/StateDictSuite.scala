package dev.gosling.checkpoint

import dev.gosling.trainer.checkpoint.{DType, NamedTensor, StateDict}
import org.scalatest.funsuite.AnyFunSuite

import java.nio.{ByteBuffer, ByteOrder}

class StateDictSuite extends AnyFunSuite {
  test("fromFloats encodes each dtype little-endian and toFloats decodes it exactly") {
    val values = Array(1.0f, -2.5f, 0.1f, 65504f)
    val f32 = NamedTensor.fromFloats("a", DType.F32, Array(2L, 2L), values)
    assert(f32.byteSize == 16 && f32.numel == 4)
    assert(f32.data().order() == ByteOrder.LITTLE_ENDIAN && f32.data().getFloat(4) == -2.5f)
    assert(f32.toFloats().sameElements(values))
    val bf = NamedTensor.fromFloats("b", DType.BF16, Array(4L), values)
    assert(bf.byteSize == 8)
    assert((bf.data().getShort(0) & 0xffff) == 0x3f80)
    assert(bf.data().get(0) == 0x80.toByte && bf.data().get(1) == 0x3f.toByte) // little-endian bytes
    assert(bf.toFloats()(2) == java.lang.Float.intBitsToFloat(0x3dcd0000)) // 0.1 rounded to bf16
    val half = NamedTensor.fromFloats("c", DType.F16, Array(4L), values)
    assert(half.toFloats()(3) == 65504f)
  }

  test("a tensor refuses data of the wrong length and negative dimensions") {
    intercept[IllegalArgumentException](NamedTensor.ofBytes("x", DType.BF16, Array(3L), new Array[Byte](4)))
    intercept[IllegalArgumentException](NamedTensor.ofBytes("x", DType.F32, Array(-1L), new Array[Byte](0)))
    intercept[IllegalArgumentException](NamedTensor.fromFloats("x", DType.F32, Array(2L), Array(1f)))
  }

  test("a scalar has one element; a zero-size dimension has none") {
    assert(NamedTensor.fromFloats("s", DType.F32, Array.emptyLongArray, Array(3f)).numel == 1)
    assert(NamedTensor.ofBytes("e", DType.BF16, Array(0L, 5L), Array.emptyByteArray).numel == 0)
  }

  test("the tensor's data is a read-only view that callers cannot disturb") {
    val t = NamedTensor.fromFloats("a", DType.F32, Array(2L), Array(1f, 2f))
    val view = t.data()
    assert(view.isReadOnly)
    view.position(4)
    assert(t.data().position() == 0 && t.data().remaining() == 8)
  }

  test("of() wraps the remaining bytes of a buffer without copying") {
    val backing = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN)
    backing.putFloat(0, 9f).putFloat(4, 1f).putFloat(8, 2f)
    backing.position(4)
    val t = NamedTensor.of("a", DType.F32, Array(2L), backing)
    assert(t.toFloats().sameElements(Array(1f, 2f)))
  }

  test("a state dict keeps insertion order, refuses duplicate names and totals its tensors") {
    val d = new StateDict()
    d.add(NamedTensor.fromFloats("z", DType.F32, Array(2L), Array(1f, 2f)))
    d.add(NamedTensor.fromFloats("a", DType.BF16, Array(3L), Array(1f, 2f, 3f)))
    assert(d.names().toArray.toSeq == Seq("z", "a"))
    assert(d.totalParameters == 5 && d.totalBytes == 14)
    intercept[IllegalArgumentException](d.add(NamedTensor.fromFloats("z", DType.F32, Array(1L), Array(0f))))
    assert(d.get("a").dtype == DType.BF16 && !d.find("q").isPresent)
    val reordered = StateDict.of(d.get("a"), d.get("z"))
    assert(reordered != d, "order is part of a state dict's identity")
    assert(StateDict.of(d.get("z"), d.get("a")) == d)
  }
}
