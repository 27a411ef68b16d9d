package dev.gosling.trainer.model;

import dev.gosling.trainer.backend.Tensor;

/**
 * A model's converted copy of its GEMM weights ({@link dev.gosling.trainer.backend.Backend#gemmWeightCopyDtype}: bf16
 * under the CUDA backend's bf16 GEMMs): masters [{@link #from()}, end), copy element j holding master from + j. The
 * model converts what a pass needs into it and reads it back later in the pass; an optimizer that updates every master
 * can write it in the same step instead ({@link dev.gosling.trainer.optim.DeviceAdamW#step(Tensor, Tensor, double, int,
 * WeightCopy)}), so that the next pass converts nothing.
 * <p>
 * The model trusts the copy at the start of a pass only when the optimizer says it wrote it ({@link #writtenWith}) and
 * nothing told the model of a change since ({@link DeviceTrainable#parametersUpdated}); any other pass converts each
 * weight again before it reads it. Nothing but that optimizer call marks the copy as written.
 */
public final class WeightCopy {
    private final Tensor masters;
    private final Tensor copy;
    private final long from;
    /** Set by {@link #writtenWith}, taken by the model's next pass. */
    private boolean written;

    WeightCopy(Tensor masters, Tensor copy, long from) {
        this.masters = masters;
        this.copy = copy;
        this.from = from;
    }

    /** The master weights the copy is of. */
    public Tensor masters() {
        return masters;
    }

    /** The copy: masters.numel() − from() elements of the backend's copy dtype. */
    public Tensor tensor() {
        return copy;
    }

    /** The first master the copy holds (element 0 of {@link #tensor()}). */
    public long from() {
        return from;
    }

    /**
     * For the optimizer only, right after it queued the step that updated every one of {@code masters} and wrote the
     * copy from the updated values ({@link dev.gosling.trainer.backend.Backend#adamwStep} with the copy): the model's
     * next pass reads the copy as it is.
     */
    public void writtenWith(Tensor masters) {
        if (masters != this.masters) {
            throw new IllegalArgumentException("the weight copy is of another model's master weights");
        }
        written = true;
    }

    /** Whether an optimizer wrote the copy since the last call or {@link #forget}, which both clear the mark. */
    boolean takeWritten() {
        boolean w = written;
        written = false;
        return w;
    }

    /** Drops an optimizer's mark: the masters changed since. */
    void forget() {
        written = false;
    }
}
