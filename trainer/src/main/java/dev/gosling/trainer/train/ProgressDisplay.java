package dev.gosling.trainer.train;

import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.DelegatingProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarConsumer;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.PrintStream;
import java.text.DecimalFormat;
import java.text.DecimalFormatSymbols;
import java.time.Duration;
import java.util.Locale;

/**
 * The progress bar on stderr (me.tongfei progressbar): steps done of the steps to my_exit_tokens, it/s, ETA, and
 * train_temp's Kt/s, loss (the running miniepoch mean, as train_temp shows it) and lr. On a terminal it redraws in
 * place; when stderr is not one (a log file, Spark) it prints a line at most every 30 seconds.
 */
final class ProgressDisplay implements AutoCloseable {
    private static final long LOG_INTERVAL_NANOS = 30_000_000_000L;

    private final ProgressBar bar;

    private ProgressDisplay(ProgressBar bar) {
        this.bar = bar;
    }

    /** A bar from {@code done} to {@code total} steps, or nothing when {@code enabled} is false. */
    static ProgressDisplay open(boolean enabled, long done, long total, PrintStream err) {
        if (!enabled) {
            return new ProgressDisplay(null);
        }
        ProgressBarConsumer consumer;
        if (System.console() != null) {
            consumer = new ConsoleProgressBarConsumer(err);
        } else {
            long[] last = {System.nanoTime() - LOG_INTERVAL_NANOS};
            consumer = new DelegatingProgressBarConsumer(line -> {
                long now = System.nanoTime();
                if (now - last[0] >= LOG_INTERVAL_NANOS) {
                    last[0] = now;
                    err.println(line.strip());
                    err.flush();
                }
            }, 160);
        }
        ProgressBar bar = new ProgressBarBuilder()
                .setTaskName("train")
                .setInitialMax(Math.max(total, done))
                .startsFrom(done, Duration.ZERO)
                .setStyle(ProgressBarStyle.ASCII)
                .setUnit(" it", 1)
                .showSpeed(new DecimalFormat("0.00", DecimalFormatSymbols.getInstance(Locale.ROOT)))
                .setUpdateIntervalMillis(500)
                .setConsumer(consumer)
                .build();
        return new ProgressDisplay(bar);
    }

    /** After a step: {@code done} steps of the run, the running miniepoch loss, the step's lr and Kt/s. */
    void update(long done, double epochLoss, double lr, double kiloTokensPerSecond) {
        if (bar == null) {
            return;
        }
        bar.setExtraMessage(String.format(Locale.ROOT, "loss %.4f lr %.3e %.2f Kt/s", epochLoss, lr, kiloTokensPerSecond));
        bar.stepTo(done);
    }

    @Override
    public void close() {
        if (bar != null) {
            bar.close();
        }
    }
}
