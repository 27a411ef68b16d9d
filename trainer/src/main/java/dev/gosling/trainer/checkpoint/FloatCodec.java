package dev.gosling.trainer.checkpoint;

/**
 * Conversions between float32 and the 16-bit formats, bit-compatible with PyTorch (c10::BFloat16, c10::Half):
 * float → 16 bit rounds to nearest, ties to even; 16 bit → float is exact.
 */
public final class FloatCodec {
    private FloatCodec() {
    }

    /** The canonical NaN torch writes for every NaN it converts to bfloat16. */
    public static final short BF16_NAN = 0x7FC0;

    /**
     * float32 → bfloat16 bits, round to nearest even. NaN becomes the quiet NaN 0x7FC0 as in torch; plain
     * truncation would turn a NaN with only low payload bits into infinity.
     */
    public static short toBf16Bits(float value) {
        int bits = Float.floatToRawIntBits(value);
        if ((bits & 0x7FFFFFFF) > 0x7F800000) {
            return BF16_NAN;
        }
        int roundingBias = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + roundingBias) >>> 16);
    }

    public static float fromBf16Bits(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /** float32 → IEEE half bits, round to nearest even, overflow to infinity, subnormals kept, NaN stays NaN. */
    public static short toF16Bits(float value) {
        int bits = Float.floatToRawIntBits(value);
        int sign = (bits >>> 16) & 0x8000;
        int magnitude = bits & 0x7FFFFFFF;
        if (magnitude > 0x7F800000) {
            // The quiet NaN of c10's portable conversion (fp16_ieee_from_fp32_value): payload dropped, sign kept.
            return (short) (sign | 0x7E00);
        }
        if (magnitude >= 0x477FF000) {
            // 65520 and above: halfway between 65504 (odd mantissa) and 65536 rounds up, so infinity.
            return (short) (sign | 0x7C00);
        }
        if (magnitude >= 0x38800000) {
            // Normal half: rebias the exponent (127 → 15) and round the 13 dropped mantissa bits; a carry may
            // ripple into the exponent, which is the right result.
            int rebased = magnitude - (112 << 23);
            int rounded = rebased + 0xFFF + ((rebased >>> 13) & 1);
            return (short) (sign | (rounded >>> 13));
        }
        // Subnormal half (or zero): the value in units of 2^-24, rounded half to even. Scaling by 2^24 is exact.
        float scaled = Float.intBitsToFloat(magnitude) * 0x1p24f;
        return (short) (sign | (int) Math.rint(scaled));
    }

    public static float fromF16Bits(short bits) {
        int h = bits & 0xFFFF;
        int sign = (h & 0x8000) << 16;
        int exponent = (h >>> 10) & 0x1F;
        int mantissa = h & 0x3FF;
        if (exponent == 0x1F) {
            return Float.intBitsToFloat(sign | 0x7F800000 | (mantissa << 13));
        }
        if (exponent == 0) {
            float magnitude = mantissa * 0x1p-24f;
            return sign == 0 ? magnitude : -magnitude;
        }
        return Float.intBitsToFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
    }
}
