package dev.gosling.trainer.dist;

import static org.bytedeco.cuda.global.cudart.cudaErrorNotReady;
import static org.bytedeco.cuda.global.cudart.cudaEventCreateWithFlags;
import static org.bytedeco.cuda.global.cudart.cudaEventDestroy;
import static org.bytedeco.cuda.global.cudart.cudaEventDisableTiming;
import static org.bytedeco.cuda.global.cudart.cudaEventRecord;
import static org.bytedeco.cuda.global.cudart.cudaFree;
import static org.bytedeco.cuda.global.cudart.cudaMalloc;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyAsync;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyDeviceToHost;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyHostToDevice;
import static org.bytedeco.cuda.global.cudart.cudaSetDevice;
import static org.bytedeco.cuda.global.cudart.cudaStreamCreateWithFlags;
import static org.bytedeco.cuda.global.cudart.cudaStreamDestroy;
import static org.bytedeco.cuda.global.cudart.cudaStreamNonBlocking;
import static org.bytedeco.cuda.global.cudart.cudaStreamQuery;
import static org.bytedeco.cuda.global.cudart.cudaStreamWaitEvent;
import static org.bytedeco.cuda.global.cudart.cudaSuccess;
import static org.bytedeco.cuda.global.nccl.NCCL_UNIQUE_ID_BYTES;
import static org.bytedeco.cuda.global.nccl.ncclAllGather;
import static org.bytedeco.cuda.global.nccl.ncclAllReduce;
import static org.bytedeco.cuda.global.nccl.ncclBroadcast;
import static org.bytedeco.cuda.global.nccl.ncclCommAbort;
import static org.bytedeco.cuda.global.nccl.ncclCommDestroy;
import static org.bytedeco.cuda.global.nccl.ncclCommGetAsyncError;
import static org.bytedeco.cuda.global.nccl.ncclCommInitRank;
import static org.bytedeco.cuda.global.nccl.ncclDouble;
import static org.bytedeco.cuda.global.nccl.ncclFloat;
import static org.bytedeco.cuda.global.nccl.ncclGetErrorString;
import static org.bytedeco.cuda.global.nccl.ncclGetLastError;
import static org.bytedeco.cuda.global.nccl.ncclGetUniqueId;
import static org.bytedeco.cuda.global.nccl.ncclGetVersion;
import static org.bytedeco.cuda.global.nccl.ncclGroupEnd;
import static org.bytedeco.cuda.global.nccl.ncclGroupStart;
import static org.bytedeco.cuda.global.nccl.ncclInProgress;
import static org.bytedeco.cuda.global.nccl.ncclReduce;
import static org.bytedeco.cuda.global.nccl.ncclReduceScatter;
import static org.bytedeco.cuda.global.nccl.ncclSuccess;
import static org.bytedeco.cuda.global.nccl.ncclSum;

import dev.gosling.kernels.Cuda;
import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.backend.Backend;
import dev.gosling.trainer.backend.Tensor;
import dev.gosling.trainer.backend.cuda.CudaBackend;
import org.bytedeco.cuda.cudart.CUevent_st;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.nccl;
import org.bytedeco.cuda.nccl.ncclComm;
import org.bytedeco.cuda.nccl.ncclUniqueId;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Data-parallel ranks on GPUs linked by NCCL (libnccl.so.2 from the GPU machine, through the Bytedeco CUDA presets'
 * {@code org.bytedeco.cuda.global.nccl}). One rank per GPU; the ranks may be threads of one process
 * ({@code gosling train --devices N}) or Spark tasks on several hosts. Rank 0 makes the unique id
 * ({@link #newUniqueId}); the launcher ships its 128 bytes to every rank (Spark: through the barrier's allGather), and
 * each rank {@link #join}s.
 * <p>
 * Every NCCL call of a rank runs on the collective's own communication stream (non-blocking, so it never waits for
 * the legacy default stream), in the order the calls were made; a call that touches a backend's tensors first makes
 * that stream wait, through an event, for the work queued so far on the {@link CudaBackend}'s stream (the backward pass
 * that wrote the gradients, or the optimizer that last read them). A started reduction ({@link #allReduceSumAsync},
 * {@link #reduceScatterSumAsync}) records a "done" event (from a pool, reused once its operation is known to be done)
 * and returns at once, so the backward pass goes on while it runs: the backend's stream is made to wait for it,
 * device-side, only where the caller asks ({@link #awaitOnDevice}: the operations overlapping a tensor's memory) and in
 * {@link #awaitPending}. The host waits only in {@link #awaitPending} and the synchronous calls: it polls the stream,
 * NCCL's asynchronous error and a deadline; a rank that does not take part within the timeout makes the call fail
 * naming this rank and the operation, after {@code ncclCommAbort} has released the GPU (and stopped the started
 * operations, so no stream waits for them forever). Shards are {@link Shard}'s: equal pieces through NCCL's
 * reduce-scatter and all-gather, the remainder of fewer than world-size elements through a reduce to / broadcast from
 * the last rank. Not thread-safe, except {@link #abort}: one rank's thread makes the calls.
 */
public final class NcclCollective implements Collective {
    private final int rank;
    private final int worldSize;
    private final int device;
    private final long timeoutNanos;
    private final ncclComm comm;
    /** Where every NCCL call of this rank runs. */
    private final CUstream_st commStream;
    /** Recorded on the backend's stream at each call, for the communication stream to wait on (re-recorded each time). */
    private final CUevent_st backendReady;
    /** Started operations not yet known to be done, in start order (the order they run in on commStream). */
    private final List<Pending> pending = new ArrayList<>();
    /** Done events of finished operations, for the next ones. */
    private final ArrayDeque<CUevent_st> freeEvents = new ArrayDeque<>();
    /** Device buffer for the small host-value exchanges (no backend is involved there). */
    private long valueBuffer;
    private long valueBufferBytes;
    private final Address a = new Address();
    private final Address b = new Address();
    private final Address c = new Address();
    private final Address d = new Address();
    private volatile String abortReason;
    private boolean aborted;
    private boolean closed;

    /** A started operation: the device byte ranges [start, end) it reads or writes (pairs), and its done event. */
    private record Pending(String op, long[] ranges, CUevent_st done) {
        boolean touches(long start, long end) {
            for (int i = 0; i < ranges.length; i += 2) {
                if (start < ranges[i + 1] && ranges[i] < end) {
                    return true;
                }
            }
            return false;
        }
    }

    private NcclCollective(int rank, int worldSize, int device, long timeoutNanos, ncclComm comm, CUstream_st commStream,
                           CUevent_st backendReady) {
        this.rank = rank;
        this.worldSize = worldSize;
        this.device = device;
        this.timeoutNanos = timeoutNanos;
        this.comm = comm;
        this.commStream = commStream;
        this.backendReady = backendReady;
    }

    /** Loads libnccl.so.2 (once), or a one-line error saying what to install. */
    private static void load() {
        try {
            Loader.load(nccl.class);
        } catch (UnsatisfiedLinkError | NoClassDefFoundError e) {
            throw new GoslingException("NCCL is not available (" + e.getMessage() + "): multi-GPU training needs libnccl.so.2 on the "
                    + "library path (apt libnccl2, or pip nvidia-nccl-cu13 and LD_LIBRARY_PATH)");
        }
    }

    /** The NCCL library's version code, e.g. 22803 for 2.28.3. */
    public static int version() {
        load();
        int[] v = new int[1];
        check(ncclGetVersion(v), "ncclGetVersion", null);
        return v[0];
    }

    /** A new unique id (128 bytes), made by rank 0 and shipped to every rank before {@link #join}. */
    public static byte[] newUniqueId() {
        load();
        try (ncclUniqueId id = new ncclUniqueId()) {
            check(ncclGetUniqueId(id), "ncclGetUniqueId", null);
            byte[] bytes = new byte[NCCL_UNIQUE_ID_BYTES];
            for (int i = 0; i < bytes.length; i++) {
                bytes[i] = id.internal(i);
            }
            return bytes;
        }
    }

    /**
     * Joins the communicator {@code uniqueId} as {@code rank} of {@code worldSize} on CUDA device {@code device}. Every
     * rank must call it at about the same time (it blocks until all have). If the others do not join within
     * {@code timeoutSeconds} this fails naming this rank; the init thread stays blocked in NCCL (it cannot be
     * interrupted), which is why it is a daemon thread of its own.
     */
    public static NcclCollective join(byte[] uniqueId, int worldSize, int rank, int device, long timeoutSeconds) {
        load();
        if (uniqueId.length != NCCL_UNIQUE_ID_BYTES) {
            throw new IllegalArgumentException("an NCCL unique id has " + NCCL_UNIQUE_ID_BYTES + " bytes, got " + uniqueId.length);
        }
        ncclUniqueId id = new ncclUniqueId();
        for (int i = 0; i < uniqueId.length; i++) {
            id.internal(i, uniqueId[i]);
        }
        ncclComm comm = new ncclComm();
        int[] status = {Integer.MIN_VALUE};
        Throwable[] failure = new Throwable[1];
        Thread init = new Thread(() -> {
            try {
                Cuda.check(cudaSetDevice(device), "cudaSetDevice(" + device + ")");
                status[0] = ncclCommInitRank(comm, worldSize, id, rank);
            } catch (Throwable t) {
                failure[0] = t;
            }
        }, "gosling-nccl-init-rank-" + rank);
        init.setDaemon(true);
        init.start();
        try {
            init.join(TimeUnit.SECONDS.toMillis(timeoutSeconds));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("rank " + rank + ": interrupted while joining the NCCL communicator");
        }
        if (init.isAlive()) {
            throw new IllegalStateException("rank " + rank + " of " + worldSize + " (GPU " + device + "): ncclCommInitRank did not complete within "
                    + timeoutSeconds + " s; another rank did not join (it failed first, or cannot reach rank 0's NCCL bootstrap address)");
        }
        if (failure[0] instanceof RuntimeException e) {
            throw e;
        }
        if (failure[0] != null) {
            throw new IllegalStateException("rank " + rank + ": joining NCCL failed: " + failure[0], failure[0]);
        }
        check(status[0], "rank " + rank + " of " + worldSize + " (GPU " + device + "): ncclCommInitRank", null);
        Cuda.check(cudaSetDevice(device), "cudaSetDevice(" + device + ")");
        CUstream_st stream = new CUstream_st();
        Cuda.check(cudaStreamCreateWithFlags(stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
        return new NcclCollective(rank, worldSize, device, TimeUnit.SECONDS.toNanos(timeoutSeconds), comm, stream, newEvent());
    }

    private static CUevent_st newEvent() {
        CUevent_st event = new CUevent_st();
        Cuda.check(cudaEventCreateWithFlags(event, cudaEventDisableTiming), "cudaEventCreateWithFlags");
        return event;
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int worldSize() {
        return worldSize;
    }

    /** True: the started reductions run on the communication stream while the backend's stream goes on. */
    @Override
    public boolean overlapsCompute() {
        return true;
    }

    @Override
    public void allReduceSum(Backend backend, Tensor t) {
        allReduceSumAsync(backend, t);
        awaitAll("allReduceSum(" + t.numel() + ")");
    }

    @Override
    public void allReduceSumAsync(Backend backend, Tensor t) {
        CudaBackend gpu = cuda(backend);
        long at = gpu.deviceAddress(t);
        long n = t.numel();
        CUstream_st stream = afterBackend(gpu);
        check(ncclAllReduce(a.at(at), b.at(at), n, ncclFloat, ncclSum, comm, stream), "ncclAllReduce", comm);
        started("allReduceSum(" + n + ")", at, at + 4 * n);
    }

    @Override
    public void reduceScatterSum(Backend backend, Tensor t) {
        CudaBackend gpu = cuda(backend);
        long at = gpu.deviceAddress(t);
        long n = t.numel();
        CUstream_st stream = afterBackend(gpu);
        // In place: rank r's result lands at its own shard of the buffer (recvbuff = sendbuff + r·piece).
        queueReduceScatter(at, n, at + 4 * shard(n).start(), stream);
        started("reduceScatterSum(" + n + ")", at, at + 4 * n);
        awaitAll("reduceScatterSum(" + n + ")");
    }

    @Override
    public void reduceScatterSumAsync(Backend backend, Tensor t, Tensor piece) {
        CudaBackend gpu = cuda(backend);
        long at = gpu.deviceAddress(t);
        long n = t.numel();
        Shard mine = shard(n);
        long out = 0;
        if (mine.length() > 0) {
            if (piece == null || piece.numel() != mine.length()) {
                throw new IllegalArgumentException("reduceScatterSumAsync: rank " + rank + "'s shard of " + n + " elements has "
                        + mine.length() + ", the piece " + (piece == null ? "is null" : "has " + piece.numel()));
            }
            out = gpu.deviceAddress(piece);
        }
        CUstream_st stream = afterBackend(gpu);
        queueReduceScatter(at, n, out, stream);
        started("reduceScatterSum(" + n + ")", at, at + 4 * n, out, out + 4 * mine.length());
    }

    /**
     * Queues Σ over the ranks of the n floats at {@code at}, this rank's {@link Shard} of it written at {@code out} (in
     * place when out is the shard's own address): the equal pieces by one reduce-scatter, the remainder by a reduce onto
     * the last rank, behind its piece.
     */
    private void queueReduceScatter(long at, long n, long out, CUstream_st stream) {
        long piece = n / worldSize;
        long tail = n - piece * worldSize;
        check(ncclGroupStart(), "ncclGroupStart", comm);
        int status = ncclSuccess;
        if (piece > 0) {
            status = ncclReduceScatter(a.at(at), b.at(out), piece, ncclFloat, ncclSum, comm, stream);
        }
        if (status == ncclSuccess && tail > 0) {
            long tailAt = at + 4 * worldSize * piece;
            long tailOut = rank == worldSize - 1 ? out + 4 * piece : tailAt; // only the root's receive buffer is written
            status = ncclReduce(c.at(tailAt), d.at(tailOut), tail, ncclFloat, ncclSum, worldSize - 1, comm, stream);
        }
        int end = ncclGroupEnd();
        check(status, "ncclReduceScatter", comm);
        check(end, "ncclGroupEnd (reduce-scatter)", comm);
    }

    @Override
    public void allGather(Backend backend, Tensor t) {
        CudaBackend gpu = cuda(backend);
        long at = gpu.deviceAddress(t);
        long n = t.numel();
        CUstream_st stream = afterBackend(gpu);
        long piece = n / worldSize;
        long tail = n - piece * worldSize;
        check(ncclGroupStart(), "ncclGroupStart", comm);
        int status = ncclSuccess;
        if (piece > 0) {
            // In place: sendbuff = recvbuff + r·piece.
            status = ncclAllGather(a.at(at + 4 * rank * piece), b.at(at), piece, ncclFloat, comm, stream);
        }
        if (status == ncclSuccess && tail > 0) {
            long tailAt = at + 4 * worldSize * piece;
            status = ncclBroadcast(c.at(tailAt), d.at(tailAt), tail, ncclFloat, worldSize - 1, comm, stream);
        }
        int end = ncclGroupEnd();
        check(status, "ncclAllGather", comm);
        check(end, "ncclGroupEnd (all-gather)", comm);
        started("allGather(" + n + ")", at, at + 4 * n);
        awaitAll("allGather(" + n + ")");
    }

    @Override
    public void awaitOnDevice(Backend backend, Tensor t) {
        CudaBackend gpu = cuda(backend);
        long at = gpu.deviceAddress(t);
        long end = at + 4 * t.numel();
        // The operations run in start order on one stream: waiting for the last one touching t waits for all of them.
        for (int i = pending.size() - 1; i >= 0; i--) {
            if (pending.get(i).touches(at, end)) {
                Cuda.check(cudaStreamWaitEvent(gpu.stream(), pending.get(i).done(), 0), "cudaStreamWaitEvent");
                return;
            }
        }
    }

    @Override
    public void awaitPending(Backend backend) {
        CudaBackend gpu = cuda(backend);
        if (pending.isEmpty()) {
            return;
        }
        // The host waits (bounded); the backend's stream then waits for the last operation too, which is already done:
        // its later work is ordered after the reductions whether or not the host looks again.
        CUevent_st last = pending.get(pending.size() - 1).done();
        awaitAll(pending.size() == 1 ? pending.get(0).op()
                : pending.size() + " started reductions (" + pending.get(0).op() + " … " + pending.get(pending.size() - 1).op() + ")");
        Cuda.check(cudaStreamWaitEvent(gpu.stream(), last, 0), "cudaStreamWaitEvent");
    }

    /** The communication stream, after it has been made to wait for the work queued so far on the backend's stream. */
    private CUstream_st afterBackend(CudaBackend gpu) {
        Cuda.check(cudaEventRecord(backendReady, gpu.stream()), "cudaEventRecord");
        Cuda.check(cudaStreamWaitEvent(commStream, backendReady, 0), "cudaStreamWaitEvent");
        return commStream;
    }

    /** Records the done event of the operation just queued, which reads or writes the device byte ranges given. */
    private void started(String op, long... ranges) {
        CUevent_st done = freeEvents.isEmpty() ? newEvent() : freeEvents.pop();
        try {
            Cuda.check(cudaEventRecord(done, commStream), "cudaEventRecord");
        } catch (RuntimeException e) {
            freeEvents.push(done);
            throw e;
        }
        pending.add(new Pending(op, ranges, done));
    }

    /** Waits on the host for everything queued on the communication stream; its done events go back to the pool. */
    private void awaitAll(String op) {
        await(commStream, op);
        for (Pending p : pending) {
            freeEvents.push(p.done());
        }
        pending.clear();
    }

    @Override
    public double[] allGather(double[] values) {
        checkOpen();
        Cuda.check(cudaSetDevice(device), "cudaSetDevice(" + device + ")");
        int k = values.length;
        long bytes = 8L * k * worldSize;
        if (valueBufferBytes < bytes) {
            if (valueBuffer != 0) {
                awaitAll("the operations before allGather(values of " + k + ")"); // cudaFree would wait for them unbounded
                cudaFree(a.at(valueBuffer));
            }
            try (Pointer p = new Pointer()) {
                Cuda.check(cudaMalloc(p, bytes), "cudaMalloc(" + bytes + ")");
                valueBuffer = p.address();
            }
            valueBufferBytes = bytes;
        }
        try (DoublePointer host = new DoublePointer(k * (long) worldSize)) {
            host.put(values);
            Cuda.check(cudaMemcpyAsync(a.at(valueBuffer + 8L * k * rank), host, 8L * k, cudaMemcpyHostToDevice, commStream),
                    "cudaMemcpyAsync");
            check(ncclAllGather(a.at(valueBuffer + 8L * k * rank), b.at(valueBuffer), k, ncclDouble, comm, commStream),
                    "ncclAllGather(values)", comm);
            Cuda.check(cudaMemcpyAsync(host, a.at(valueBuffer), bytes, cudaMemcpyDeviceToHost, commStream), "cudaMemcpyAsync");
            awaitAll("allGather(values of " + k + ")");
            double[] all = new double[k * worldSize];
            host.get(all);
            return all;
        }
    }

    @Override
    public String name() {
        return "nccl(" + worldSize + " ranks)";
    }

    @Override
    public void abort(String reason) {
        abortReason = reason;
    }

    /**
     * Frees the communicator (aborting it when a call failed or started operations were never awaited, so a stuck peer
     * cannot hold this rank), its stream and its events.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        Cuda.check(cudaSetDevice(device), "cudaSetDevice(" + device + ")");
        if (aborted || abortReason != null || !pending.isEmpty()) {
            abortComm();
        } else {
            ncclCommDestroy(comm);
        }
        if (valueBuffer != 0) {
            cudaFree(a.at(valueBuffer));
        }
        cudaStreamDestroy(commStream);
        // An event still recorded on a stream is released when the device reaches it.
        cudaEventDestroy(backendReady);
        for (Pending p : pending) {
            cudaEventDestroy(p.done());
        }
        pending.clear();
        for (CUevent_st e : freeEvents) {
            cudaEventDestroy(e);
        }
        freeEvents.clear();
    }

    /** Waits for {@code stream} (and so this call's reduction), bounded by the timeout, watching for NCCL errors. */
    private void await(CUstream_st stream, String op) {
        long deadline = System.nanoTime() + timeoutNanos;
        int[] async = new int[1];
        while (true) {
            int q = cudaStreamQuery(stream);
            if (q == cudaSuccess) {
                return;
            }
            if (q != cudaErrorNotReady) {
                abortComm();
                Cuda.check(q, "rank " + rank + ": cudaStreamQuery after NCCL " + op);
            }
            ncclCommGetAsyncError(comm, async);
            if (async[0] != ncclSuccess && async[0] != ncclInProgress) {
                String why = errorText(async[0], comm);
                abortComm();
                throw new IllegalStateException("rank " + rank + " of " + worldSize + " (GPU " + device + "): NCCL " + op + " failed: " + why);
            }
            String reason = abortReason;
            if (reason != null) {
                abortComm();
                throw new IllegalStateException("rank " + rank + ": NCCL " + op + " aborted: " + reason);
            }
            if (System.nanoTime() > deadline) {
                abortComm();
                throw new IllegalStateException("rank " + rank + " of " + worldSize + " (GPU " + device + "): NCCL " + op + " did not complete within "
                        + TimeUnit.NANOSECONDS.toSeconds(timeoutNanos) + " s; a rank is stuck or has died (communicator aborted)");
            }
            LockSupport.parkNanos(20_000);
        }
    }

    /** Aborts the communicator: its queued and running operations stop, so nothing waits for them any longer. */
    private void abortComm() {
        if (!aborted) {
            aborted = true;
            ncclCommAbort(comm);
        }
    }

    private void checkOpen() {
        if (aborted || closed) {
            throw new IllegalStateException("rank " + rank + ": the NCCL communicator was " + (closed ? "closed" : "aborted after an earlier failure"));
        }
        String reason = abortReason;
        if (reason != null) {
            // Operations started before may wait for ranks that have stopped: end them before failing.
            abortComm();
            throw new IllegalStateException("rank " + rank + ": NCCL aborted: " + reason);
        }
    }

    private CudaBackend cuda(Backend backend) {
        checkOpen();
        if (!(backend instanceof CudaBackend gpu)) {
            throw new IllegalArgumentException("the NCCL collective reduces CUDA tensors; this rank's backend is " + backend.name());
        }
        if (gpu.device() != device) {
            throw new IllegalArgumentException("rank " + rank + " joined NCCL on GPU " + device + " but its backend runs on GPU " + gpu.device());
        }
        return gpu;
    }

    private static void check(int status, String call, ncclComm comm) {
        if (status != ncclSuccess) {
            throw new IllegalStateException(call + " failed: " + errorText(status, comm));
        }
    }

    private static String errorText(int status, ncclComm comm) {
        BytePointer text = ncclGetErrorString(status);
        String last = null;
        if (comm != null && !comm.isNull()) {
            BytePointer l = ncclGetLastError(comm);
            last = l == null || l.isNull() ? null : l.getString();
        }
        return (text == null || text.isNull() ? "NCCL error " + status : text.getString() + " (" + status + ")")
                + (last == null || last.isEmpty() ? "" : ": " + last);
    }

    /** A JavaCPP pointer carrying a raw device address, re-pointed without allocating. */
    private static final class Address extends Pointer {
        Address() {
            super((Pointer) null);
        }

        Address at(long deviceAddress) {
            this.address = deviceAddress;
            this.position = 0;
            this.limit = 0;
            this.capacity = 0;
            return this;
        }
    }
}
