package dev.gosling.trainer.backend.cuda;

import static org.bytedeco.cuda.global.cudart.cudaErrorInsufficientDriver;
import static org.bytedeco.cuda.global.cudart.cudaErrorNoDevice;
import static org.bytedeco.cuda.global.cudart.cudaGetDeviceCount;
import static org.bytedeco.cuda.global.cudart.cudaGetErrorString;

import org.bytedeco.cuda.global.cublas;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.Loader;

/**
 * Can this process use a CUDA GPU? Loads the runtime (which needs the driver's {@code libcuda.so.1} and CUDA 13's
 * {@code libcudart.so.13}), counts the devices and loads cuBLAS ({@code libcublas.so.13}, {@code libcublasLt.so.13}).
 * The answer is computed once per process; when the GPU is not usable, {@link Result#reason} is one line naming what
 * is missing and how to get it.
 */
public final class CudaProbe {
    private CudaProbe() {
    }

    /** available: a GPU and every library the CUDA backend needs are there; otherwise reason says what is missing. */
    public record Result(boolean available, int devices, String reason) {
    }

    private static Result cached;

    public static synchronized Result probe() {
        if (cached == null) {
            cached = run();
        }
        return cached;
    }

    private static Result run() {
        String platform = Loader.getPlatform();
        if (!platform.equals("linux-x86_64")) {
            return missing("the CUDA backend runs on linux-x86_64 only; this machine is " + platform);
        }
        try {
            Loader.load(cudart.class);
        } catch (UnsatisfiedLinkError | NoClassDefFoundError e) {
            String text = chain(e);
            if (text.contains("libcudart")) {
                return missing("libcudart.so.13 (the CUDA 13 runtime) not found: install CUDA 13 (toolkit or the"
                        + " nvidia-cuda-runtime wheel) and put its lib directory on LD_LIBRARY_PATH");
            }
            if (text.contains("libcuda.so")) {
                return missing("no NVIDIA driver: libcuda.so.1 not found (install the NVIDIA driver >= 580 for CUDA"
                        + " 13, or use --accelerator cpu)");
            }
            return missing("the CUDA runtime could not be loaded: " + firstLine(text));
        }
        int[] count = new int[1];
        int code = cudaGetDeviceCount(count);
        if (code == cudaErrorNoDevice || (code == 0 && count[0] == 0)) {
            return missing("no CUDA GPU found (the driver is installed but reports no device)");
        }
        if (code == cudaErrorInsufficientDriver) {
            return missing("the NVIDIA driver is too old for CUDA 13: update it to >= 580");
        }
        if (code != 0) {
            return missing("CUDA could not start: " + cudaGetErrorString(code).getString() + " (" + code + ")");
        }
        try {
            Loader.load(cublas.class);
        } catch (UnsatisfiedLinkError | NoClassDefFoundError e) {
            return missing("libcublas.so.13 / libcublasLt.so.13 (cuBLAS for CUDA 13) not found: install the CUDA 13"
                    + " toolkit's cuBLAS (or the nvidia-cublas wheel) and put its lib directory on LD_LIBRARY_PATH");
        }
        return new Result(true, count[0], "");
    }

    private static Result missing(String reason) {
        return new Result(false, 0, reason);
    }

    private static String chain(Throwable e) {
        StringBuilder b = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) {
            b.append(t.getMessage()).append(' ');
            for (Throwable s : t.getSuppressed()) {
                b.append(s.getMessage()).append(' ');
            }
        }
        return b.toString();
    }

    private static String firstLine(String s) {
        String t = s.strip();
        int nl = t.indexOf('\n');
        return nl < 0 ? t : t.substring(0, nl);
    }
}
