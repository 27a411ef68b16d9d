package dev.gosling.kernels;

import static org.bytedeco.cuda.global.cudart.cuLaunchKernel;

import org.bytedeco.cuda.cudart.CUfunc_st;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.javacpp.PointerPointer;

/** One {@code extern "C"} kernel of a loaded module, launched through the driver API on a given stream. */
public final class Kernel {
    public final String name;
    private final CUfunc_st function;

    Kernel(String name, CUfunc_st function) {
        this.name = name;
        this.function = function;
    }

    /** Launches on {@code stream} with the arguments in {@code args}; launch errors are thrown at once. */
    public void launch(int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ, int sharedBytes,
                       CUstream_st stream, LaunchArgs args) {
        if (gridX <= 0 || gridY <= 0 || gridZ <= 0) {
            throw new IllegalArgumentException(name + ": empty grid " + gridX + "×" + gridY + "×" + gridZ);
        }
        LaunchProfiler.before(name, stream);
        try {
            Cuda.checkDriver(cuLaunchKernel(function, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes, stream,
                    args.pointers(), (PointerPointer<?>) null), "cuLaunchKernel(" + name + ")");
        } finally {
            LaunchProfiler.after(name, stream);
        }
    }

    /** The driver handle, for callers that launch by other means (cooperative launches, graphs). */
    public CUfunc_st function() {
        return function;
    }

    @Override
    public String toString() {
        return name;
    }
}
