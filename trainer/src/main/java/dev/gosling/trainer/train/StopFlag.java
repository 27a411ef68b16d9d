package dev.gosling.trainer.train;

/**
 * A request to stop training at the next step boundary: the {@link Trainer} finishes the step in progress, saves
 * {@code rwkv-last.pth} plus its state and returns. Set by {@link SignalStop} on SIGINT/SIGTERM, by the
 * {@code max_steps} option, or by any thread (a Spark barrier task being cancelled, a test). Thread-safe; the first
 * reason wins.
 */
public final class StopFlag {
    private volatile String reason;

    /** Asks the loop to stop; {@code why} is printed with the save ("SIGTERM", "max_steps 100", ...). */
    public synchronized void request(String why) {
        if (reason == null) {
            reason = why;
        }
    }

    public boolean requested() {
        return reason != null;
    }

    /** Why the stop was requested, or null if it was not. */
    public String reason() {
        return reason;
    }
}
