package dev.gosling.trainer.backend;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.backend.cpu.CpuBackend;
import dev.gosling.trainer.backend.cuda.CudaBackend;
import dev.gosling.trainer.backend.cuda.CudaProbe;
import java.util.function.Consumer;

/**
 * {@code --accelerator auto|gpu|cpu}: which {@link Backend} a run gets.
 * <ul>
 *   <li>{@code cpu}: the CPU backend.</li>
 *   <li>{@code gpu}: the CUDA backend, or a one-line {@link GoslingException} naming what is missing (no driver, no
 *       GPU, no libcudart/libcublas).</li>
 *   <li>{@code auto}: the CUDA backend when the driver, a GPU and the CUDA libraries load; otherwise the CPU backend,
 *       with one line to {@code log} saying why.</li>
 * </ul>
 */
public final class Accelerators {
    private Accelerators() {
    }

    public static final String AUTO = "auto";
    public static final String GPU = "gpu";
    public static final String CPU = "cpu";

    /**
     * @param accelerator auto, gpu or cpu
     * @param device      the CUDA device index for gpu/auto
     * @param cpuThreads  threads of the CPU backend when it is chosen
     * @param log         receives the one line that says why auto fell back to the CPU
     */
    public static Backend open(String accelerator, int device, int cpuThreads, Consumer<String> log) {
        switch (accelerator == null ? "" : accelerator) {
            case CPU:
                return new CpuBackend(cpuThreads);
            case GPU: {
                CudaProbe.Result probe = CudaProbe.probe();
                if (!probe.available()) {
                    throw new GoslingException("--accelerator gpu: " + probe.reason());
                }
                checkDevice(device, probe.devices());
                return new CudaBackend(device, false);
            }
            case AUTO: {
                CudaProbe.Result probe = CudaProbe.probe();
                if (probe.available()) {
                    checkDevice(device, probe.devices());
                    return new CudaBackend(device, false);
                }
                log.accept("--accelerator auto: using the CPU backend: " + probe.reason());
                return new CpuBackend(cpuThreads);
            }
            default:
                throw new GoslingException("--accelerator " + accelerator + " is not supported; use auto, gpu or cpu");
        }
    }

    private static void checkDevice(int device, int devices) {
        if (device < 0 || device >= devices) {
            throw new GoslingException("CUDA device " + device + " does not exist: this machine has " + devices
                    + " GPU(s), numbered from 0");
        }
    }
}
