package dev.gosling.kernels;

/**
 * A failed CUDA, cuBLAS or NVRTC call: which call, its status code and the library's own text. The trainer turns the
 * ones a user can act on (out of memory, no device) into one-line {@code GoslingException}s.
 */
public final class CudaException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** The status code the call returned. */
    public final int code;

    public CudaException(String call, int code, String text) {
        super(call + " failed: " + text + " (" + code + ")");
        this.code = code;
    }

    public CudaException(String message) {
        super(message);
        this.code = -1;
    }
}
