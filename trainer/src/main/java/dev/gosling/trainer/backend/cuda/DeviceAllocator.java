package dev.gosling.trainer.backend.cuda;

import static org.bytedeco.cuda.global.cudart.cudaErrorMemoryAllocation;
import static org.bytedeco.cuda.global.cudart.cudaFree;
import static org.bytedeco.cuda.global.cudart.cudaGetLastError;
import static org.bytedeco.cuda.global.cudart.cudaMalloc;

import dev.gosling.kernels.Cuda;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import org.bytedeco.javacpp.Pointer;

/**
 * A caching device allocator: freed blocks go to a free list keyed by their rounded size and are handed out again,
 * so a training step that allocates what the previous one freed makes no cudaMalloc call (and no cudaFree, which
 * would synchronise the device). Sizes round up to 512 bytes below 1 MiB and to 2 MiB above. With one stream,
 * reuse is safe: work queued on a block before it was freed runs before work queued after it is handed out again.
 * When cudaMalloc runs out, the cached blocks are released and the call is retried once.
 */
final class DeviceAllocator implements AutoCloseable {
    private static final long SMALL = 1L << 20;

    private final Map<Long, ArrayDeque<Long>> cached = new HashMap<>();
    /** Live blocks: address → rounded size. */
    private final Map<Long, Long> live = new HashMap<>();
    private final DevicePointer scratch = new DevicePointer();
    private long liveBytes;
    private long cachedBytes;
    private long peakReserved;
    private long mallocCalls;

    static long round(long bytes) {
        long b = Math.max(bytes, 1);
        return b < SMALL ? (b + 511) & ~511L : (b + (2L << 20) - 1) & ~((2L << 20) - 1);
    }

    /**
     * A block of at least {@code bytes}; returns its address, or 0 when the device is out of memory even after the
     * cache was released.
     */
    long allocate(long bytes) {
        long size = round(bytes);
        ArrayDeque<Long> free = cached.get(size);
        Long reuse = free == null ? null : free.poll();
        long address;
        if (reuse != null) {
            address = reuse;
            cachedBytes -= size;
        } else {
            address = malloc(size);
            if (address == 0) {
                releaseCached();
                address = malloc(size);
                if (address == 0) {
                    return 0;
                }
            }
        }
        live.put(address, size);
        liveBytes += size;
        peakReserved = Math.max(peakReserved, liveBytes + cachedBytes);
        return address;
    }

    private long malloc(long size) {
        Pointer p = new Pointer();
        int code = cudaMalloc(p, size);
        if (code == cudaErrorMemoryAllocation) {
            cudaGetLastError();
            return 0;
        }
        Cuda.check(code, "cudaMalloc(" + size + ")");
        mallocCalls++;
        return p.address();
    }

    void free(long address) {
        Long size = live.remove(address);
        if (size == null) {
            throw new IllegalStateException("device block " + Long.toHexString(address) + " is not live");
        }
        liveBytes -= size;
        cached.computeIfAbsent(size, s -> new ArrayDeque<>()).push(address);
        cachedBytes += size;
    }

    /** Gives every cached block back to the driver (synchronises the device). */
    void releaseCached() {
        for (Map.Entry<Long, ArrayDeque<Long>> e : cached.entrySet()) {
            for (long a : e.getValue()) {
                Cuda.check(cudaFree(scratch.at(a)), "cudaFree");
            }
        }
        cached.clear();
        cachedBytes = 0;
    }

    long liveBytes() {
        return liveBytes;
    }

    long cachedBytes() {
        return cachedBytes;
    }

    /** The most memory held at once (live + cached), as torch's max_memory_reserved. */
    long peakReservedBytes() {
        return peakReserved;
    }

    long mallocCalls() {
        return mallocCalls;
    }

    /** Frees everything, live blocks included (their tensors are dead with the backend). */
    @Override
    public void close() {
        releaseCached();
        for (long a : live.keySet()) {
            cudaFree(scratch.at(a));
        }
        live.clear();
        liveBytes = 0;
    }
}
