package dev.gosling.trainer.train;

import me.tongfei.progressbar.ConsoleProgressBarConsumer;
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
 * place; when stderr is not one (a log file, Spark) it prints a line every 30 seconds and one at the end.
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
        ProgressBarConsumer consumer = System.console() != null ? new ConsoleProgressBarConsumer(err) : new Lines(err);
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
        bar.setExtraMessage(String.format(Locale.ROOT, " loss %.4f lr %.3e %.2f Kt/s", epochLoss, lr, kiloTokensPerSecond));
        bar.stepTo(done);
    }

    @Override
    public void close() {
        if (bar != null) {
            bar.close();
        }
    }

    /** Off a terminal: the latest rendering as a plain line every 30 seconds, and the last one when the bar closes. */
    private static final class Lines implements ProgressBarConsumer {
        private final PrintStream err;
        private long printedAt = System.nanoTime();
        private String latest;
        private boolean printed = true;

        Lines(PrintStream err) {
            this.err = err;
        }

        @Override
        public int getMaxRenderedLength() {
            return 160;
        }

        @Override
        public synchronized void accept(String rendered) {
            latest = rendered.strip();
            printed = false;
            if (System.nanoTime() - printedAt >= LOG_INTERVAL_NANOS) {
                print();
            }
        }

        @Override
        public synchronized void close() {
            if (!printed && latest != null) {
                print();
            }
        }

        private void print() {
            err.println(latest);
            err.flush();
            printed = true;
            printedAt = System.nanoTime();
        }
    }
}
