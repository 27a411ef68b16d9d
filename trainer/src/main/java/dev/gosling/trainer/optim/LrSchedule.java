package dev.gosling.trainer.optim;

import dev.gosling.trainer.GoslingException;

/**
 * train_temp's learning rate (rwkv7-reference.md §5.3), set before each optimizer step: a cosine in tokens from
 * lr_init to lr_final over my_exit_tokens, starting after the warmup's tokens, multiplied during the first
 * warmup_steps process-local steps by a linear ramp from 1% to 100%. All in double, as Python computes it. The run
 * ends (rwkv-final.pth, exit) at the first step whose progress reaches 1; past that the lr stays lr_final.
 */
public final class LrSchedule {
    private final double lrInit;
    private final double lrFinal;
    private final long ctxLen;
    private final long realBsz;
    private final long warmupSteps;
    private final long myExitTokens;
    private final long stepOffset;

    /**
     * @param warmupSteps  w_step; ≤ 0 means no warmup (train_temp's default −1)
     * @param myExitTokens total tokens of the run, must be positive (train_temp fails otherwise)
     * @param epochBegin   miniepochs already done by earlier processes (auto-resume)
     * @param epochSteps   optimizer steps per miniepoch (40320 / real_bsz)
     */
    public LrSchedule(double lrInit, double lrFinal, long ctxLen, long realBsz, long warmupSteps, long myExitTokens,
                      long epochBegin, long epochSteps) {
        if (!(lrInit > 0) || !(lrFinal >= 0)) {
            throw new GoslingException("--lr_init " + lrInit + " / --lr_final " + lrFinal + ": lr_init must be > 0 and lr_final >= 0");
        }
        if (myExitTokens <= 0) {
            throw new GoslingException("--my_exit_tokens " + myExitTokens + " must be positive (train_temp's schedule is defined only then); "
                    + "use the token count make_data printed for this data");
        }
        this.lrInit = lrInit;
        this.lrFinal = lrFinal;
        this.ctxLen = ctxLen;
        this.realBsz = realBsz;
        this.warmupSteps = warmupSteps;
        this.myExitTokens = myExitTokens;
        this.stepOffset = epochBegin * epochSteps;
    }

    /** real_step = global_step + epoch_begin·epoch_steps: the step counted over all processes of the run. */
    public long realStep(long globalStep) {
        return globalStep + stepOffset;
    }

    /** Cosine progress in [0, 1] at process-local step {@code globalStep}. */
    public double progress(long globalStep) {
        double tokensNow = (double) realStep(globalStep) * ctxLen * realBsz;
        double tokensWarm = (double) warmupSteps * ctxLen * realBsz;
        double progress = (tokensNow - tokensWarm) / ((double) myExitTokens - tokensWarm);
        return Math.max(0.0, Math.min(1.0, progress));
    }

    /** Whether the run is over before this step: train_temp saves rwkv-final.pth and exits when progress reaches 1. */
    public boolean finished(long globalStep) {
        return progress(globalStep) >= 1.0;
    }

    /** The base lr for the optimizer step at process-local {@code globalStep} (att.w0 uses 2× this). */
    public double lr(long globalStep) {
        double finalFactor = lrFinal / lrInit;
        double multiplier = (0.5 + finalFactor / 2) + (0.5 - finalFactor / 2) * Math.cos(Math.PI * progress(globalStep));
        double lr = lrInit * multiplier;
        if (globalStep < warmupSteps) {
            lr = lr * (0.01 + 0.99 * globalStep / warmupSteps);
        }
        return lr;
    }
}
