package dev.gosling.trainer.optim;

import dev.gosling.trainer.backend.Backend;
import dev.gosling.trainer.backend.DType;
import dev.gosling.trainer.backend.Tensor;
import dev.gosling.trainer.dist.Shard;
import dev.gosling.trainer.model.ParameterLayout;
import dev.gosling.trainer.model.WeightCopy;

import java.util.List;

/**
 * {@link AdamW} with its moments on a backend's device, so a GPU step never copies weights or gradients to the host:
 * the same update, element by element in float32 ({@link Backend#adamwStep}), the same global-norm clipping (the
 * norm from {@link Backend#sumOfSquares}), the same bias corrections. The host sees the moments only when a
 * checkpoint is written ({@link #downloadMoments}) or restored ({@link #restore}).
 * <p>
 * Under a sharded strategy an instance owns some pieces of the flat buffer only (ZeRO-1: one contiguous {@link Shard};
 * ZeRO-2: one piece of every gradient bucket): its moments hold the owned pieces back to back, and a step updates only
 * those parts of the weights, with the norm of the whole gradient given by the caller (the sum over ranks of each
 * rank's Σ g² over its pieces). Since AdamW is element-wise, the pieces update exactly as the whole buffer would.
 */
public final class DeviceAdamW implements AutoCloseable {
    private final Backend backend;
    private final float beta1;
    private final float beta2;
    private final float eps;
    private final double gradClip;
    private final long length;
    /** The owned ranges of the layout, sorted and disjoint; one piece [0, length) when whole. */
    private final List<Shard> pieces;
    /** Where piece i starts in the moments (and in an owned-gradients buffer): the lengths of the pieces before it. */
    private final long[] ownedOffsets;
    private final long ownedLength;
    private final AdamW.Segments[] segments;
    private final Tensor m;
    private final Tensor v;
    /** Views of m and v per piece (null for empty pieces). */
    private final Tensor[] mPieces;
    private final Tensor[] vPieces;
    private long step;

    /** Moments for every parameter of {@code layout}, zero, on {@code backend}; gradClip ≤ 0 turns clipping off. */
    public DeviceAdamW(Backend backend, ParameterLayout layout, double beta1, double beta2, double eps, double weightDecay,
                       double gradClip) {
        this(backend, layout, beta1, beta2, eps, weightDecay, gradClip, (List<Shard>) null);
    }

    /** Moments for the parameters in {@code shard} of the layout's flat buffer only (null: all of them). */
    public DeviceAdamW(Backend backend, ParameterLayout layout, double beta1, double beta2, double eps, double weightDecay,
                       double gradClip, Shard shard) {
        this(backend, layout, beta1, beta2, eps, weightDecay, gradClip, shard == null ? null : List.of(shard));
    }

    /**
     * Moments for the parameters in {@code pieces} (sorted, disjoint ranges of the layout's flat buffer; empty pieces
     * allowed) only; null: all of them.
     */
    public DeviceAdamW(Backend backend, ParameterLayout layout, double beta1, double beta2, double eps, double weightDecay,
                       double gradClip, List<Shard> pieces) {
        AdamW.validate(beta1, beta2, eps, weightDecay);
        this.backend = backend;
        this.beta1 = (float) beta1;
        this.beta2 = (float) beta2;
        this.eps = (float) eps;
        this.gradClip = gradClip;
        this.length = ParameterLayout.checkedLength(layout.totalElements(), "the optimizer's moments");
        this.pieces = List.copyOf(pieces == null ? List.of(new Shard(0, length)) : pieces);
        this.ownedOffsets = new long[this.pieces.size()];
        this.segments = new AdamW.Segments[this.pieces.size()];
        AdamW.Segments all = AdamW.segments(layout, weightDecay);
        long owned = 0;
        long previousEnd = 0;
        for (int i = 0; i < this.pieces.size(); i++) {
            Shard piece = this.pieces.get(i);
            if (piece.start() < previousEnd || piece.end() > length || piece.length() < 0) {
                throw new IllegalArgumentException("piece " + piece + " of a buffer of " + length + " overlaps, is out of order or out of range");
            }
            previousEnd = piece.end();
            ownedOffsets[i] = owned;
            owned += piece.length();
            segments[i] = all.slice(piece.start(), piece.end());
        }
        this.ownedLength = owned;
        Tensor first = backend.allocate(DType.F32, (int) ownedLength);
        try {
            this.v = backend.allocate(DType.F32, (int) ownedLength);
        } catch (RuntimeException | Error e) {
            first.close();
            throw e;
        }
        this.m = first;
        this.mPieces = new Tensor[this.pieces.size()];
        this.vPieces = new Tensor[this.pieces.size()];
        for (int i = 0; i < this.pieces.size(); i++) {
            int n = (int) this.pieces.get(i).length();
            if (n > 0) {
                mPieces[i] = backend.view(m, ownedOffsets[i], n);
                vPieces[i] = backend.view(v, ownedOffsets[i], n);
            }
        }
    }

    /**
     * One step on fp32 {@code params} from fp32 {@code grads} (both the layout's length, on the same backend) with base
     * learning rate {@code lr}. {@code ranks} is the number of data-parallel ranks whose gradients were summed into
     * {@code grads}: the step uses their mean (a power of two divides exactly, so 1 rank and 2 ranks round alike).
     * Returns the norm of the mean gradient before clipping.
     */
    public double step(Tensor params, Tensor grads, double lr, int ranks) {
        checkLength(params, length, "params");
        checkLength(grads, length, "grads");
        return step(params, grads, lr, ranks, backend.sumOfSquares(grads));
    }

    /**
     * {@link #step(Tensor, Tensor, double, int)} that also writes the model's {@code copy} of its GEMM weights from the
     * updated masters in the same kernel ({@link Backend#adamwStep} with the copy) and then tells it so
     * ({@link WeightCopy#writtenWith}): the model's next pass reads it without converting, and the caller need not call
     * parametersUpdated for this step. Only an instance that updates the whole buffer can (single GPU, ddp): a sharded
     * one (ZeRO) updates its pieces, and the all-gather after it changes the rest. A null copy: the plain step.
     */
    public double step(Tensor params, Tensor grads, double lr, int ranks, WeightCopy copy) {
        if (copy == null) {
            return step(params, grads, lr, ranks);
        }
        if (!isWhole()) {
            throw new IllegalStateException("a sharded optimizer updates only its pieces of the weights and cannot write the model's"
                    + " weight copy; step without it and call parametersUpdated after the all-gather");
        }
        if (copy.masters() != params) {
            throw new IllegalArgumentException("the weight copy is not of these params");
        }
        checkLength(params, length, "params");
        checkLength(grads, length, "grads");
        double norm = update(params, grads, false, lr, ranks, backend.sumOfSquares(grads), copy);
        copy.writtenWith(params);
        return norm;
    }

    /**
     * The step with the norm taken from {@code sumOfSquares}, Σ g² of the whole summed gradient over every rank's
     * pieces: only this instance's pieces of {@code params} change, read from the same places of {@code grads} (both
     * the layout's length). Returns the norm of the mean gradient.
     */
    public double step(Tensor params, Tensor grads, double lr, int ranks, double sumOfSquares) {
        checkLength(grads, length, "grads");
        return update(params, grads, false, lr, ranks, sumOfSquares, null);
    }

    /**
     * The step from {@code owned}, the summed gradients of this instance's pieces back to back ({@link #ownedLength()}
     * elements, as ZeRO-2 keeps them), with the norm from {@code sumOfSquares} as above.
     */
    public double stepOwned(Tensor params, Tensor owned, double lr, int ranks, double sumOfSquares) {
        checkLength(owned, ownedLength, "owned grads");
        return update(params, owned, true, lr, ranks, sumOfSquares, null);
    }

    /** The step; {@code copy} (whole instances only) written with the masters when not null. */
    private double update(Tensor params, Tensor grads, boolean owned, double lr, int ranks, double sumOfSquares, WeightCopy copy) {
        checkLength(params, length, "params");
        double norm = Math.sqrt(sumOfSquares) / ranks;
        float gradScale = AdamW.clipScale(norm, gradClip) * (float) (1.0 / ranks);
        step++;
        float bc1 = (float) (1.0 - Math.pow(beta1, step));
        float bc2 = (float) (1.0 - Math.pow(beta2, step));
        if (copy != null) {
            backend.adamwStep(params, grads, m, v, segments[0].ends(), segments[0].learningRates(lr), segments[0].decays(), beta1,
                    beta2, eps, gradScale, bc1, bc2, copy.tensor(), copy.from());
            return norm;
        }
        if (isWhole()) {
            backend.adamwStep(params, grads, m, v, segments[0].ends(), segments[0].learningRates(lr), segments[0].decays(), beta1,
                    beta2, eps, gradScale, bc1, bc2);
            return norm;
        }
        for (int i = 0; i < pieces.size(); i++) {
            Shard piece = pieces.get(i);
            if (piece.length() == 0) {
                continue;
            }
            int n = (int) piece.length();
            try (Tensor p = backend.view(params, piece.start(), n);
                 Tensor g = backend.view(grads, owned ? ownedOffsets[i] : piece.start(), n)) {
                backend.adamwStep(p, g, mPieces[i], vPieces[i], segments[i].ends(), segments[i].learningRates(lr), segments[i].decays(),
                        beta1, beta2, eps, gradScale, bc1, bc2);
            }
        }
        return norm;
    }

    /** The part of a layout-length tensor a one-piece instance updates (a view; close it, which frees nothing). */
    public Tensor shardOf(Tensor full) {
        Shard shard = shard();
        return backend.view(full, shard.start(), (int) shard.length());
    }

    /** The one contiguous range this instance owns (whole or ZeRO-1). */
    public Shard shard() {
        if (pieces.size() != 1) {
            throw new IllegalStateException("this optimizer owns " + pieces.size() + " pieces, not one shard");
        }
        return pieces.get(0);
    }

    /** The owned ranges of the layout, in order. */
    public List<Shard> pieces() {
        return pieces;
    }

    /** Where piece i starts in the moments (the lengths of the pieces before it). */
    public long ownedOffset(int i) {
        return ownedOffsets[i];
    }

    /** Elements owned: the sum of the pieces' lengths, the length of each moment. */
    public long ownedLength() {
        return ownedLength;
    }

    /** Whether the moments cover the whole buffer (no sharding). */
    public boolean isWhole() {
        return pieces.size() == 1 && pieces.get(0).start() == 0 && pieces.get(0).end() == length;
    }

    /** Bytes of optimizer state on the device (the two moments of the owned pieces, fp32). */
    public long stateBytes() {
        return 2L * Float.BYTES * ownedLength;
    }

    /** The first and second moments of the owned pieces, back to back, on the device (for gathering a checkpoint). */
    public Tensor firstMoment() {
        return m;
    }

    public Tensor secondMoment() {
        return v;
    }

    private static void checkLength(Tensor t, long expected, String what) {
        if (t.numel() != expected) {
            throw new IllegalArgumentException(what + " has " + t.numel() + " elements, expected " + expected);
        }
    }

    public long stepCount() {
        return step;
    }

    /** Copies the moments to the host (for a checkpoint's state); unsharded instances only. */
    public void downloadMoments(float[] firstMoment, float[] secondMoment) {
        if (!isWhole()) {
            throw new IllegalStateException("a sharded optimizer's moments are gathered over the ranks, not downloaded");
        }
        backend.download(m, firstMoment);
        backend.download(v, secondMoment);
    }

    /**
     * Restores saved moments (the whole buffer's, as a checkpoint holds them; a sharded instance takes its pieces) and
     * step count, so a resumed run continues bit for bit.
     */
    public void restore(float[] firstMoment, float[] secondMoment, long stepCount) {
        AdamW.checkRestorable(firstMoment, secondMoment, stepCount, length);
        if (isWhole()) {
            backend.upload(firstMoment, m);
            backend.upload(secondMoment, v);
        } else {
            backend.upload(owned(firstMoment), m);
            backend.upload(owned(secondMoment), v);
        }
        step = stepCount;
    }

    /** The owned pieces of a layout-length array, back to back. */
    private float[] owned(float[] whole) {
        float[] out = new float[(int) ownedLength];
        for (int i = 0; i < pieces.size(); i++) {
            Shard piece = pieces.get(i);
            System.arraycopy(whole, (int) piece.start(), out, (int) ownedOffsets[i], (int) piece.length());
        }
        return out;
    }

    @Override
    public void close() {
        m.close();
        v.close();
    }
}
