package dev.gosling.trainer.model;

/**
 * bfloat16 conversions: the upper 16 bits of a float32, rounded to nearest, ties to even (as torch's
 * {@code .bfloat16()} and CUDA's {@code __float2bfloat16} do).
 */
public final class Bf16 {
    private Bf16() {
    }

    /** The bf16 bit pattern nearest to {@code value} (ties to even); NaN stays a quiet NaN of the same sign. */
    public static short fromFloat(float value) {
        int bits = Float.floatToRawIntBits(value);
        if (Float.isNaN(value)) {
            return (short) ((bits >>> 16) | 0x0040);
        }
        // Adding 0x7FFF plus the lowest kept bit rounds half to even; a carry into the exponent is the correct rounding.
        int rounded = bits + 0x7FFF + ((bits >>> 16) & 1);
        return (short) (rounded >>> 16);
    }

    /** The float32 whose upper half is {@code bf16Bits} (exact). */
    public static float toFloat(short bf16Bits) {
        return Float.intBitsToFloat((bf16Bits & 0xFFFF) << 16);
    }

    /** {@code value} rounded to the nearest bf16, as a float32. */
    public static float round(float value) {
        return toFloat(fromFloat(value));
    }
}
