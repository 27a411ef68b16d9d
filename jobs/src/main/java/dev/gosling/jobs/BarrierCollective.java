package dev.gosling.jobs;

import dev.gosling.trainer.backend.Backend;
import dev.gosling.trainer.backend.Tensor;
import dev.gosling.trainer.dist.Collective;
import dev.gosling.trainer.dist.Shard;
import org.apache.spark.BarrierTaskContext;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Base64;

/**
 * A CPU collective over Spark's barrier {@code allGather}: every message goes through the driver's barrier
 * coordinator, as base64 of little-endian floats in pieces of at most {@link #PIECE_FLOATS} floats (1 MiB of data),
 * and every rank sums all ranks' pieces in rank order (the same order, and so the same bits, as
 * {@link dev.gosling.trainer.dist.InProcessCollective}). Each gradient element crosses the network twice per rank and
 * the driver relays world-size copies of it: this is for tests and test-size models on CPU clusters. GPUs use NCCL.
 * <p>
 * Every call waits at most {@code spark.barrier.sync.timeout}; a failure names this rank and the operation.
 */
final class BarrierCollective implements Collective {
    /** Floats per allGather message: 1 MiB of data, 1.4 MB of base64, far below spark.rpc.message.maxSize. */
    static final int PIECE_FLOATS = 1 << 18;

    private final BarrierTaskContext context;
    private final int rank;
    private final int worldSize;
    private long calls;

    BarrierCollective(BarrierTaskContext context) {
        this.context = context;
        this.rank = context.partitionId();
        this.worldSize = context.getTaskInfos().length;
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
        float[] host = new float[checkedLength(t)];
        backend.download(t, host);
        for (int from = 0; from < host.length; from += PIECE_FLOATS) {
            int to = Math.min(host.length, from + PIECE_FLOATS);
            String[] all = gather(encode(host, from, to), "allReduceSum(" + host.length + ") piece at " + from);
            float[] sum = decode(all[0]);
            for (int r = 1; r < all.length; r++) {
                float[] piece = decode(all[r]);
                for (int i = 0; i < sum.length; i++) {
                    sum[i] += piece[i];
                }
            }
            System.arraycopy(sum, 0, host, from, sum.length);
        }
        backend.upload(host, t);
    }

    /** The all-reduce (the shard gets the same sums; over allGather a true reduce-scatter would save nothing). */
    @Override
    public void reduceScatterSum(Backend backend, Tensor t) {
        allReduceSum(backend, t);
    }

    @Override
    public void allGather(Backend backend, Tensor t) {
        int n = checkedLength(t);
        float[] host = new float[n];
        backend.download(t, host);
        // Every rank makes the same number of calls: as many pieces as the longest shard (the last) needs.
        long longest = Shard.of(n, worldSize, worldSize - 1).length();
        for (long from = 0; from == 0 || from < longest; from += PIECE_FLOATS) {
            Shard mine = shard(n);
            int a = (int) Math.min(mine.end(), mine.start() + from);
            int b = (int) Math.min(mine.end(), mine.start() + from + PIECE_FLOATS);
            String[] all = gather(encode(host, a, b), "allGather(" + n + ") piece at " + from);
            for (int r = 0; r < all.length; r++) {
                float[] piece = decode(all[r]);
                Shard theirs = Shard.of(n, worldSize, r);
                System.arraycopy(piece, 0, host, (int) Math.min(theirs.end(), theirs.start() + from), piece.length);
            }
        }
        backend.upload(host, t);
    }

    @Override
    public double[] allGather(double[] values) {
        StringBuilder sb = new StringBuilder();
        for (double v : values) {
            sb.append(sb.length() == 0 ? "" : ",").append(Long.toHexString(Double.doubleToRawLongBits(v)));
        }
        String[] all = gather(sb.toString(), "allGather(values of " + values.length + ")");
        double[] out = new double[values.length * all.length];
        for (int r = 0; r < all.length; r++) {
            String[] parts = all[r].isEmpty() ? new String[0] : all[r].split(",");
            if (parts.length != values.length) {
                throw new IllegalStateException("rank " + rank + ": rank " + r + " gathered " + parts.length + " values, this rank " + values.length);
            }
            for (int i = 0; i < parts.length; i++) {
                out[r * values.length + i] = Double.longBitsToDouble(Long.parseUnsignedLong(parts[i], 16));
            }
        }
        return out;
    }

    @Override
    public String name() {
        return "spark-allGather(" + worldSize + " ranks)";
    }

    @Override
    public void close() {
    }

    private String[] gather(String message, String what) {
        calls++;
        try {
            return context.allGather(message);
        } catch (RuntimeException e) {
            throw new IllegalStateException("rank " + rank + " of " + worldSize + ": Spark barrier allGather #" + calls + " (" + what
                    + ") failed: " + e.getMessage(), e);
        }
    }

    private static int checkedLength(Tensor t) {
        if (t.numel() > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException("the Spark allGather collective is for test-size models; " + t.numel() + " elements is too many");
        }
        return (int) t.numel();
    }

    static String encode(float[] values, int from, int to) {
        ByteBuffer bytes = ByteBuffer.allocate(4 * (to - from)).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = from; i < to; i++) {
            bytes.putFloat(values[i]);
        }
        return Base64.getEncoder().encodeToString(bytes.array());
    }

    static float[] decode(String message) {
        ByteBuffer bytes = ByteBuffer.wrap(Base64.getDecoder().decode(message)).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[bytes.remaining() / 4];
        for (int i = 0; i < out.length; i++) {
            out[i] = bytes.getFloat();
        }
        return out;
    }
}
