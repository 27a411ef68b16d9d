package dev.gosling.kernels;

import static org.bytedeco.cuda.global.cudart.cuInit;
import static org.bytedeco.cuda.global.cudart.cuLaunchKernel;
import static org.bytedeco.cuda.global.cudart.cudaDevAttrComputeCapabilityMajor;
import static org.bytedeco.cuda.global.cudart.cudaDevAttrComputeCapabilityMinor;
import static org.bytedeco.cuda.global.cudart.cudaDeviceGetAttribute;
import static org.bytedeco.cuda.global.cudart.cudaDeviceSynchronize;
import static org.bytedeco.cuda.global.cudart.cudaFree;
import static org.bytedeco.cuda.global.cudart.cudaMalloc;
import static org.bytedeco.cuda.global.cudart.cudaMemcpy;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyDeviceToHost;
import static org.bytedeco.cuda.global.cudart.cudaSetDevice;
import static org.bytedeco.cuda.global.cudart.cudaStreamCreate;

import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;

/**
 * Launches one kernel (elementwise.cu's fill_f32) through each way of passing kernel parameters and streams, and
 * checks what it wrote: the smallest test of the driver-API launch path from Java.
 * {@code java -cp … dev.gosling.kernels.LaunchSelfTest}
 */
public final class LaunchSelfTest {
    private LaunchSelfTest() {
    }

    public static void main(String[] args) {
        Cuda.checkDriver(cuInit(0), "cuInit");
        Cuda.check(cudaSetDevice(0), "cudaSetDevice");
        Cuda.check(cudaFree(null), "cudaFree(null)");
        int[] major = new int[1];
        int[] minor = new int[1];
        Cuda.check(cudaDeviceGetAttribute(major, cudaDevAttrComputeCapabilityMajor, 0), "cudaDeviceGetAttribute");
        Cuda.check(cudaDeviceGetAttribute(minor, cudaDevAttrComputeCapabilityMinor, 0), "cudaDeviceGetAttribute");
        CUstream_st stream = new CUstream_st();
        Cuda.check(cudaStreamCreate(stream), "cudaStreamCreate");
        System.out.println("stream address " + Long.toHexString(stream.address()));
        try (KernelLoader loader = new KernelLoader(major[0], minor[0], false, KernelLoader.defaultCacheDir())) {
            Kernel k = loader.kernel("elementwise", "fill_f32");
            int[] attr = new int[1];
            int rc = org.bytedeco.cuda.global.cudart.cuFuncGetAttribute(attr,
                    org.bytedeco.cuda.global.cudart.CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, k.function());
            System.out.println("fill_f32: max threads/block " + attr[0] + " (rc " + rc + ")");
            for (int i = 0; i < 4; i++) {
                try (org.bytedeco.javacpp.SizeTPointer off = new org.bytedeco.javacpp.SizeTPointer(1);
                     org.bytedeco.javacpp.SizeTPointer size = new org.bytedeco.javacpp.SizeTPointer(1)) {
                    int prc = org.bytedeco.cuda.global.cudart.cuFuncGetParamInfo(k.function(), i, off, size);
                    System.out.println("  param " + i + ": rc " + prc + " offset " + off.get() + " size " + size.get());
                }
            }
            int n = 1000;
            Pointer dev = new Pointer();
            Cuda.check(cudaMalloc(dev, 4L * n), "cudaMalloc");
            for (int variant = 0; variant < 4; variant++) {
                boolean useStream = (variant & 1) == 1;
                boolean pp = variant >= 2;
                float value = 1 + variant;
                int code;
                if (pp) {
                    LongPointer a = new LongPointer(1).put(dev.address());
                    FloatPointer v = new FloatPointer(1).put(value);
                    LongPointer nn = new LongPointer(1).put(n);
                    PointerPointer<Pointer> params = new PointerPointer<>(a, v, nn);
                    code = cuLaunchKernel(k.function(), 4, 1, 1, 256, 1, 1, 0, useStream ? stream : null, params, null);
                } else {
                    LaunchArgs la = new LaunchArgs(8);
                    la.reset().ptr(dev.address()).f32(value).i64(n);
                    System.out.printf("  args -> %x %x %x%n", la.pointerAt(0), la.pointerAt(1), la.pointerAt(2));
                    code = cuLaunchKernel(k.function(), 4, 1, 1, 256, 1, 1, 0, useStream ? stream : null,
                            la.pointers(), (PointerPointer<?>) null);
                }
                int sync = cudaDeviceSynchronize();
                float[] host = new float[n];
                try (FloatPointer h = new FloatPointer(n)) {
                    cudaMemcpy(h, dev, 4L * n, cudaMemcpyDeviceToHost);
                    h.get(host);
                }
                boolean ok = true;
                for (float x : host) {
                    ok &= x == value;
                }
                System.out.printf("variant %s, %s stream: launch %d (%s), sync %d, values %s%n",
                        pp ? "PointerPointer" : "LaunchArgs", useStream ? "own" : "null", code,
                        code == 0 ? "ok" : Cuda.driverErrorText(code), sync, ok ? "CORRECT" : "WRONG");
            }
        }
    }
}
