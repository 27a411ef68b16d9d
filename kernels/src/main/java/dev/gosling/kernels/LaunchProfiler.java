package dev.gosling.kernels;

import static org.bytedeco.cuda.global.cudart.cudaEventCreate;
import static org.bytedeco.cuda.global.cudart.cudaEventDestroy;
import static org.bytedeco.cuda.global.cudart.cudaEventElapsedTime;
import static org.bytedeco.cuda.global.cudart.cudaEventRecord;
import static org.bytedeco.cuda.global.cudart.cudaEventSynchronize;

import org.bytedeco.cuda.cudart.CUevent_st;
import org.bytedeco.cuda.cudart.CUstream_st;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * GPU time per kernel name, for finding where a training step goes (the device machine has no Nsight Systems): while
 * {@link #start started}, every {@link Kernel#launch} and every call wrapped in {@link #around} records a CUDA event
 * before and after itself on its stream; {@link #stop} waits for the events and sums the milliseconds by name. The
 * events add a few microseconds of launch overhead per kernel, so the profiled step is a little slower than an
 * unprofiled one; the split between kernels is what it is for. One thread at a time (the trainer's).
 */
public final class LaunchProfiler {

    /** The time of one name: calls and milliseconds summed. */
    public record Entry(String name, int calls, double ms) {
    }

    private static LaunchProfiler active;

    private final List<String> names = new ArrayList<>();
    private final List<CUevent_st> events = new ArrayList<>(); // start, stop of launch i at 2i, 2i+1
    private final List<CUevent_st> pool = new ArrayList<>();

    private LaunchProfiler() {
    }

    /** Starts recording launches (on this thread's backend); replaces a profiler already started. */
    public static synchronized void start() {
        if (active != null) {
            active.release();
        }
        active = new LaunchProfiler();
    }

    /** Stops recording and returns the time of each name, largest total first. */
    public static synchronized List<Entry> stop() {
        LaunchProfiler p = active;
        active = null;
        if (p == null) {
            return List.of();
        }
        try {
            return p.collect();
        } finally {
            p.release();
        }
    }

    /** Runs {@code body} (e.g. a cuBLAS call) on {@code stream}, timed as {@code name} when a profiler is started. */
    public static void around(String name, CUstream_st stream, Runnable body) {
        around(() -> name, stream, body);
    }

    /** As above, the name made only while profiling (a GEMM's shape). */
    public static void around(java.util.function.Supplier<String> name, CUstream_st stream, Runnable body) {
        LaunchProfiler p = active;
        if (p == null) {
            body.run();
            return;
        }
        String n = name.get();
        p.record(n, stream, true);
        try {
            body.run();
        } finally {
            p.record(n, stream, false);
        }
    }

    static void before(String name, CUstream_st stream) {
        LaunchProfiler p = active;
        if (p != null) {
            p.record(name, stream, true);
        }
    }

    static void after(String name, CUstream_st stream) {
        LaunchProfiler p = active;
        if (p != null) {
            p.record(name, stream, false);
        }
    }

    private void record(String name, CUstream_st stream, boolean start) {
        CUevent_st e;
        if (pool.isEmpty()) {
            e = new CUevent_st();
            Cuda.check(cudaEventCreate(e), "cudaEventCreate");
        } else {
            e = pool.remove(pool.size() - 1);
        }
        Cuda.check(cudaEventRecord(e, stream), "cudaEventRecord");
        if (start) {
            names.add(name);
        }
        events.add(e);
    }

    private List<Entry> collect() {
        Map<String, double[]> sums = new LinkedHashMap<>();
        float[] ms = new float[1];
        for (int i = 0; i + 1 < events.size(); i += 2) {
            Cuda.check(cudaEventSynchronize(events.get(i + 1)), "cudaEventSynchronize");
            Cuda.check(cudaEventElapsedTime(ms, events.get(i), events.get(i + 1)), "cudaEventElapsedTime");
            double[] s = sums.computeIfAbsent(names.get(i / 2), k -> new double[2]);
            s[0]++;
            s[1] += ms[0];
        }
        List<Entry> out = new ArrayList<>();
        sums.forEach((name, s) -> out.add(new Entry(name, (int) s[0], s[1])));
        out.sort((a, b) -> Double.compare(b.ms(), a.ms()));
        return out;
    }

    private void release() {
        events.addAll(pool);
        for (CUevent_st e : events) {
            cudaEventDestroy(e);
        }
        events.clear();
        pool.clear();
        names.clear();
    }
}
