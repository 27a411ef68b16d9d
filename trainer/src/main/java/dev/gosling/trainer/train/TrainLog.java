package dev.gosling.trainer.train;

import dev.gosling.trainer.GoslingException;

import java.io.Closeable;
import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.LocalDateTime;
import java.util.Map;

/**
 * {@code proj_dir/train_log.txt} as train_temp writes it (rwkv7-reference.md §5.6), opened for appending: each process
 * adds {@code NEW RUN {timestamp}}, the repr of its arguments and of its optimizer settings, then one line per
 * miniepoch, {@code "{epoch} {loss:.6f} {exp(loss):.4f} {lr:.8f} {datetime.now()} {current_epoch}"}. Every write is
 * flushed, so the file is complete up to the last line whatever stops the process.
 */
public final class TrainLog implements Closeable {
    public static final String FILE = "train_log.txt";

    private final Path file;
    private final Writer out;

    public TrainLog(Path projDir) {
        this.file = projDir.resolve(FILE);
        try {
            Files.createDirectories(projDir);
            this.out = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new GoslingException(file + ": cannot open for appending: " + e.getMessage());
        }
    }

    /** The run header: {@code NEW RUN {timestamp}}, {@code vars(args)}, the optimizer/precision settings. */
    public void newRun(String timestamp, Map<String, Object> args, Map<String, Object> strategy) {
        write("NEW RUN " + timestamp + "\n" + PyFormat.repr(args) + "\n" + PyFormat.repr(strategy) + "\n");
    }

    /** The line train_temp writes at a miniepoch's end. */
    public void miniepoch(long epoch, double epochLoss, double lr, long currentEpoch, LocalDateTime now) {
        write(line(epoch, epochLoss, lr, currentEpoch, now) + "\n");
    }

    /** {@code "{epoch} {loss:.6f} {exp(loss):.4f} {lr:.8f} {now} {current_epoch}"}. */
    public static String line(long epoch, double epochLoss, double lr, long currentEpoch, LocalDateTime now) {
        return epoch + " " + PyFormat.fixed(epochLoss, 6) + " " + PyFormat.fixed(Math.exp(epochLoss), 4) + " "
                + PyFormat.fixed(lr, 8) + " " + PyFormat.datetime(now) + " " + currentEpoch;
    }

    private void write(String text) {
        try {
            out.write(text);
            out.flush();
        } catch (IOException e) {
            throw new GoslingException(file + ": cannot write: " + e.getMessage());
        }
    }

    @Override
    public void close() {
        try {
            out.close();
        } catch (IOException e) {
            throw new GoslingException(file + ": cannot close: " + e.getMessage());
        }
    }
}
