package dev.gosling.trainer.backend.cuda;

import org.bytedeco.javacpp.Pointer;

/**
 * A JavaCPP {@link Pointer} that carries a raw device address, for the library calls that take {@code void*} device
 * arguments (cuBLAS, cudaMemcpy, cudaFree). Reusable: {@link #at} re-points it without allocating.
 */
final class DevicePointer extends Pointer {
    DevicePointer() {
        super((Pointer) null);
    }

    DevicePointer at(long deviceAddress) {
        this.address = deviceAddress;
        this.position = 0;
        this.limit = 0;
        this.capacity = 0;
        return this;
    }
}
