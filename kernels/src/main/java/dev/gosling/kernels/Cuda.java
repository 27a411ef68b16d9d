package dev.gosling.kernels;

import static org.bytedeco.cuda.global.cudart.cuGetErrorString;
import static org.bytedeco.cuda.global.cudart.cudaGetErrorString;

import org.bytedeco.cuda.global.nvrtc;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerPointer;

/** Status checks for the runtime, driver and NVRTC APIs: every call's code is checked where it is made. */
public final class Cuda {
    private Cuda() {
    }

    /** Throws unless a runtime API call ({@code cuda*}) returned cudaSuccess. */
    public static void check(int code, String call) {
        if (code != 0) {
            BytePointer text = cudaGetErrorString(code);
            throw new CudaException(call, code, text == null ? "unknown error" : text.getString());
        }
    }

    /** Throws unless a driver API call ({@code cu*}) returned CUDA_SUCCESS. */
    public static void checkDriver(int code, String call) {
        if (code != 0) {
            throw new CudaException(call, code, driverErrorText(code));
        }
    }

    static String driverErrorText(int code) {
        try (PointerPointer<BytePointer> text = new PointerPointer<>(1)) {
            if (cuGetErrorString(code, text) != 0 || text.get(0) == null) {
                return "unknown driver error";
            }
            return new BytePointer(text.get(0)).getString();
        }
    }

    /** Throws unless an NVRTC call returned NVRTC_SUCCESS. */
    public static void checkNvrtc(int code, String call) {
        if (code != nvrtc.NVRTC_SUCCESS) {
            BytePointer text = nvrtc.nvrtcGetErrorString(code);
            throw new CudaException(call, code, text == null ? "unknown NVRTC error" : text.getString());
        }
    }
}
