package dev.gosling.checkpoint

import dev.gosling.trainer.checkpoint.FloatCodec
import org.scalatest.funsuite.AnyFunSuite

/** Bit patterns worked out by hand from IEEE 754: float32 has 23 mantissa bits, bf16 keeps the top 7, fp16 has 10. */
class FloatCodecSuite extends AnyFunSuite {
  private def f(bits: Int): Float = java.lang.Float.intBitsToFloat(bits)
  private def bf16(bits: Int): Int = FloatCodec.toBf16Bits(f(bits)) & 0xffff
  private def f16(value: Float): Int = FloatCodec.toF16Bits(value) & 0xffff

  test("float32 -> bf16 rounds to nearest, ties to even") {
    assert(bf16(0x3f800000) == 0x3f80) // 1.0 exact
    assert(bf16(0x3f807fff) == 0x3f80) // just below half an ulp: down
    assert(bf16(0x3f808000) == 0x3f80) // tie, 0x3f80 is even: down
    assert(bf16(0x3f808001) == 0x3f81) // just above the tie: up
    assert(bf16(0x3f818000) == 0x3f82) // tie, 0x3f81 is odd: up to even
    assert(bf16(0xbf818000) == 0xbf82) // same with the sign set
    assert(bf16(0x3fffffff) == 0x4000) // carry ripples into the exponent
  }

  test("float32 -> bf16 at the edges: infinities, overflow, NaN, zeros, subnormals") {
    assert(bf16(0x7f800000) == 0x7f80) // +inf
    assert(bf16(0xff800000) == 0xff80) // -inf
    assert(bf16(0x7f7fffff) == 0x7f80) // float max rounds past bf16 max: inf
    assert(bf16(0x7f7f7fff) == 0x7f7f) // stays at bf16 max
    assert(bf16(0x7fc00000) == 0x7fc0) // quiet NaN
    assert(bf16(0x7f800001) == 0x7fc0) // signalling NaN with low payload: truncation would give inf
    assert(bf16(0xffc00001) == 0x7fc0) // torch's canonical NaN, sign dropped
    assert(bf16(0x00000000) == 0x0000)
    assert(bf16(0x80000000) == 0x8000) // -0 keeps its sign
    assert(bf16(0x00000001) == 0x0000) // smallest subnormal rounds to 0
    assert(bf16(0x00008000) == 0x0000) // subnormal tie, even: down
    assert(bf16(0x00018000) == 0x0002) // subnormal tie, odd: up
    assert(bf16(0x007fffff) == 0x0080) // largest subnormal rounds up to the smallest normal
  }

  test("bf16 -> float32 -> bf16 is the identity for all 65536 patterns except NaN payloads") {
    for (bits <- 0 until 0x10000) {
      val value = FloatCodec.fromBf16Bits(bits.toShort)
      assert(java.lang.Float.floatToRawIntBits(value) == bits << 16)
      val back = FloatCodec.toBf16Bits(value) & 0xffff
      if (value.isNaN) assert(back == 0x7fc0) else assert(back == bits, f"pattern $bits%04x")
    }
  }

  test("float32 -> fp16 rounds to nearest even, with overflow and subnormals") {
    assert(f16(1.0f) == 0x3c00)
    assert(f16(1.0f + math.pow(2, -11).toFloat) == 0x3c00) // tie, even: down
    assert(f16(1.0f + 3 * math.pow(2, -11).toFloat) == 0x3c02) // tie, odd: up
    assert(f16(-2.0f) == 0xc000)
    assert(f16(65504f) == 0x7bff) // fp16 max
    assert(f16(65519.996f) == 0x7bff) // below the tie with infinity
    assert(f16(65520f) == 0x7c00) // tie with infinity: to even, infinity
    assert(f16(Float.PositiveInfinity) == 0x7c00)
    assert(f16(Float.NegativeInfinity) == 0xfc00)
    assert(f16(math.pow(2, -14).toFloat) == 0x0400) // smallest normal
    assert(f16(math.pow(2, -24).toFloat) == 0x0001) // smallest subnormal
    assert(f16(math.pow(2, -25).toFloat) == 0x0000) // tie with 0: even
    assert(f16(1.5f * math.pow(2, -25).toFloat) == 0x0001)
    assert(f16(3 * math.pow(2, -25).toFloat) == 0x0002) // tie between 1 and 2 ulps: even
    assert(f16(-0.0f) == 0x8000)
    assert(f16(Float.NaN) == 0x7e00)
    assert(f16(f(0xff800001)) == 0xfe00) // NaN keeps its sign, loses its payload
  }

  test("fp16 -> float32 -> fp16 is the identity for all 65536 patterns except NaN payloads") {
    for (bits <- 0 until 0x10000) {
      val value = FloatCodec.fromF16Bits(bits.toShort)
      val back = FloatCodec.toF16Bits(value) & 0xffff
      if (value.isNaN) assert((back & 0x7e00) == 0x7e00) else assert(back == bits, f"pattern $bits%04x")
    }
    assert(FloatCodec.fromF16Bits(0x0001.toShort) == math.pow(2, -24).toFloat)
    assert(FloatCodec.fromF16Bits(0x7bff.toShort) == 65504f)
    assert(FloatCodec.fromF16Bits(0x3555.toShort) == 0.333251953125f)
  }

  test("float32 -> fp16 agrees with rounding the exact value for random floats") {
    val rng = new scala.util.Random(7)
    for (_ <- 0 until 20000) {
      val value = (rng.nextGaussian() * math.pow(2, rng.nextInt(40) - 28)).toFloat
      val bits = FloatCodec.toF16Bits(value)
      val rounded = FloatCodec.fromF16Bits(bits).toDouble
      // No other fp16 value is closer: compare with both neighbours.
      val up = FloatCodec.fromF16Bits((bits + 1).toShort).toDouble
      val down = FloatCodec.fromF16Bits((bits - 1).toShort).toDouble
      val err = math.abs(rounded - value)
      if (!up.isNaN && !up.isInfinite) assert(err <= math.abs(up - value), s"$value")
      if (!down.isNaN && !down.isInfinite) assert(err <= math.abs(down - value), s"$value")
    }
  }
}
