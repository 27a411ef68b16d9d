package dev.gosling.trainer.dist;

import static org.bytedeco.cuda.global.cudart.cudaErrorNotReady;
import static org.bytedeco.cuda.global.cudart.cudaFree;
import static org.bytedeco.cuda.global.cudart.cudaMalloc;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyAsync;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyDeviceToHost;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyHostToDevice;
import static org.bytedeco.cuda.global.cudart.cudaSetDevice;
import static org.bytedeco.cuda.global.cudart.cudaStreamCreate;
import static org.bytedeco.cuda.global.cudart.cudaStreamDestroy;
import static org.bytedeco.cuda.global.cudart.cudaStreamQuery;
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
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.nccl;
import org.bytedeco.cuda.nccl.ncclComm;
import org.bytedeco.cuda.nccl.ncclUniqueId;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Data-parallel ranks on GPUs linked by NCCL (libnccl.so.2 from the GPU machine, through the Bytedeco CUDA presets'
 * {@code org.bytedeco.cuda.global.nccl}). One rank per GPU; the ranks may be threads of one process
 * ({@code gosling train --devices N}) or Spark tasks on several hosts. Rank 0 makes the unique id
 * ({@link #newUniqueId}); the launcher ships its 128 bytes to every rank (Spark: through the barrier's allGather), and
 * each rank {@link #join}s.
 * <p>
 * The reductions run in place on the {@link CudaBackend}'s stream, after the backward pass that wrote the gradients.
 * Each call waits for its reduction to finish, polling the stream, NCCL's asynchronous error and a deadline; a rank
 * that does not take part within the timeout makes the call fail naming this rank and the operation, after
 * {@code ncclCommAbort} has released the GPU. (No bucketing or overlap with the backward pass: the whole gradient is
 * reduced in one call after it.) Shards are {@link Shard}'s: equal pieces through NCCL's in-place reduce-scatter and
 * all-gather, the remainder of fewer than world-size elements through a reduce to / broadcast from the last rank.
 */
public final class NcclCollective implements Collective {
    private final int rank;
    private final int worldSize;
    private final int device;
    private final long timeoutNanos;
    private final ncclComm comm;
    /** Stream and device buffer for the small host-value exchanges (no backend is involved there). */
    private final CUstream_st valueStream;
    private long valueBuffer;
    private long valueBufferBytes;
    private final Address a = new Address();
    private final Address b = new Address();
    private final Address c = new Address();
    private final Address d = new Address();
    private volatile String abortReason;
    private boolean aborted;
    private boolean closed;

    private NcclCollective(int rank, int worldSize, int device, long timeoutNanos, ncclComm comm, CUstream_st valueStream) {
        this.rank = rank;
        this.worldSize = worldSize;
        this.device = device;
        this.timeoutNanos = timeoutNanos;
        this.comm = comm;
        this.valueStream = valueStream;
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
        Cuda.check(cudaStreamCreate(stream), "cudaStreamCreate");
        return new NcclCollective(rank, worldSize, device, TimeUnit.SECONDS.toNanos(timeoutSeconds), comm, stream);
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int worldSize() {
        return worldSize;
    }

    @Override
    public void allReduceSum(Backend backend, Tensor t) {
        CudaBackend gpu = cuda(backend);
        long at = gpu.deviceAddress(t);
        CUstream_st stream = gpu.stream();
        check(ncclAllReduce(a.at(at), b.at(at), t.numel(), ncclFloat, ncclSum, comm, stream), "ncclAllReduce", comm);
        await(stream, "allReduceSum(" + t.numel() + ")");
    }

    @Override
    public void reduceScatterSum(Backend backend, Tensor t) {
        CudaBackend gpu = cuda(backend);
        long at = gpu.deviceAddress(t);
        CUstream_st stream = gpu.stream();
        long n = t.numel();
        long piece = n / worldSize;
        long tail = n - piece * worldSize;
        check(ncclGroupStart(), "ncclGroupStart", comm);
        int status = ncclSuccess;
        if (piece > 0) {
            // In place: rank r's result lands at its own piece of the buffer (recvbuff = sendbuff + r·piece).
            status = ncclReduceScatter(a.at(at), b.at(at + 4 * rank * piece), piece, ncclFloat, ncclSum, comm, stream);
        }
        if (status == ncclSuccess && tail > 0) {
            long tailAt = at + 4 * worldSize * piece;
            status = ncclReduce(c.at(tailAt), d.at(tailAt), tail, ncclFloat, ncclSum, worldSize - 1, comm, stream);
        }
        int end = ncclGroupEnd();
        check(status, "ncclReduceScatter", comm);
        check(end, "ncclGroupEnd (reduce-scatter)", comm);
        await(stream, "reduceScatterSum(" + n + ")");
    }

    @Override
    public void allGather(Backend backend, Tensor t) {
        CudaBackend gpu = cuda(backend);
        long at = gpu.deviceAddress(t);
        CUstream_st stream = gpu.stream();
        long n = t.numel();
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
        await(stream, "allGather(" + n + ")");
    }

    @Override
    public double[] allGather(double[] values) {
        checkOpen();
        Cuda.check(cudaSetDevice(device), "cudaSetDevice(" + device + ")");
        int k = values.length;
        long bytes = 8L * k * worldSize;
        if (valueBufferBytes < bytes) {
            if (valueBuffer != 0) {
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
            Cuda.check(cudaMemcpyAsync(a.at(valueBuffer + 8L * k * rank), host, 8L * k, cudaMemcpyHostToDevice, valueStream),
                    "cudaMemcpyAsync");
            check(ncclAllGather(a.at(valueBuffer + 8L * k * rank), b.at(valueBuffer), k, ncclDouble, comm, valueStream),
                    "ncclAllGather(values)", comm);
            Cuda.check(cudaMemcpyAsync(host, a.at(valueBuffer), bytes, cudaMemcpyDeviceToHost, valueStream), "cudaMemcpyAsync");
            await(valueStream, "allGather(values of " + k + ")");
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

    /** Frees the communicator (aborting it when a call failed, so a stuck peer cannot hold this rank). */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        Cuda.check(cudaSetDevice(device), "cudaSetDevice(" + device + ")");
        if (aborted || abortReason != null) {
            abortComm();
        } else {
            ncclCommDestroy(comm);
        }
        if (valueBuffer != 0) {
            cudaFree(a.at(valueBuffer));
        }
        cudaStreamDestroy(valueStream);
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
        if (abortReason != null) {
            throw new IllegalStateException("rank " + rank + ": NCCL aborted: " + abortReason);
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
