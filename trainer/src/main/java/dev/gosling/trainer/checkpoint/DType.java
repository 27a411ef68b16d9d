package dev.gosling.trainer.checkpoint;

import java.util.Optional;

/** The tensor element types a Gosling checkpoint holds, with their names in the torch and safetensors formats. */
public enum DType {
    BF16(2, "BFloat16Storage", "BF16"),
    F16(2, "HalfStorage", "F16"),
    F32(4, "FloatStorage", "F32");

    private final int elementSize;
    private final String torchStorageClass;
    private final String safetensorsName;

    DType(int elementSize, String torchStorageClass, String safetensorsName) {
        this.elementSize = elementSize;
        this.torchStorageClass = torchStorageClass;
        this.safetensorsName = safetensorsName;
    }

    /** Bytes per element. */
    public int elementSize() {
        return elementSize;
    }

    /** The legacy storage class torch.save pickles for this dtype, without the module: "BFloat16Storage". */
    public String torchStorageClass() {
        return torchStorageClass;
    }

    /** The dtype string of a safetensors header: "BF16", "F16", "F32". */
    public String safetensorsName() {
        return safetensorsName;
    }

    public static Optional<DType> fromTorchStorageClass(String name) {
        for (DType d : values()) {
            if (d.torchStorageClass.equals(name)) {
                return Optional.of(d);
            }
        }
        return Optional.empty();
    }

    public static Optional<DType> fromSafetensorsName(String name) {
        for (DType d : values()) {
            if (d.safetensorsName.equals(name)) {
                return Optional.of(d);
            }
        }
        return Optional.empty();
    }

    /** Decodes one element (little-endian bit pattern already read) to float; exact for every dtype here. */
    float decode(int bits) {
        switch (this) {
            case BF16:
                return FloatCodec.fromBf16Bits((short) bits);
            case F16:
                return FloatCodec.fromF16Bits((short) bits);
            default:
                return Float.intBitsToFloat(bits);
        }
    }
}
