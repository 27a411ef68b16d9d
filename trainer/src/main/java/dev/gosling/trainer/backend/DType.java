package dev.gosling.trainer.backend;

/** Element type of a {@link Tensor}. */
public enum DType {
    /** 32-bit float: the CPU training precision. */
    F32(4),
    /** 64-bit float: the CPU checking precision (finite-difference gradient checks). */
    F64(8),
    /** 32-bit signed integer: token ids and targets. */
    I32(4),
    /**
     * bfloat16 (CUDA backend only), under bf16 GEMMs: the tensors only GEMMs read ({@link Backend#gemmInputDtype})
     * and the saved projections ({@link Backend#savedActivationDtype}). Downloaded as float (widened exactly), not
     * uploaded.
     */
    BF16(2);

    /** Bytes per element. */
    public final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    public boolean isFloating() {
        return this != I32;
    }
}
