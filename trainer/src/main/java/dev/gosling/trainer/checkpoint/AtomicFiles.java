package dev.gosling.trainer.checkpoint;

import dev.gosling.trainer.GoslingException;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * Writes a file under a temporary name in the same directory, fsyncs it, renames it into place, fsyncs the directory.
 * A kill at any moment leaves either the previous file or the complete new one, never a half-written file under the
 * target name (at worst a {@code .NAME.PID.NANOS.tmp} file is left behind).
 */
public final class AtomicFiles {
    private AtomicFiles() {
    }

    /** Writes the whole content to the (temporary) channel. */
    public interface Body {
        void writeTo(FileChannel channel) throws IOException;
    }

    /** Commits {@code target} atomically; failures are one-line {@link GoslingException}s naming it. */
    public static void write(Path target, Body body) {
        Path absolute = target.toAbsolutePath();
        Path dir = absolute.getParent();
        Path temp = dir.resolve("." + absolute.getFileName() + "." + ProcessHandle.current().pid() + "."
                + System.nanoTime() + ".tmp");
        try {
            Files.createDirectories(dir);
            try (FileChannel channel = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                body.writeTo(channel);
                channel.force(true);
            }
            Files.move(temp, absolute, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            syncDirectory(dir);
        } catch (IOException | RuntimeException e) {
            try {
                Files.deleteIfExists(temp);
            } catch (IOException ignored) {
                // The original failure is the one worth reporting.
            }
            if (e instanceof GoslingException) {
                throw (GoslingException) e;
            }
            throw new GoslingException(target + ": cannot write: " + describe(e)
                    + " (check free space and permissions of " + dir + ")", e);
        }
    }

    /** Commits {@code bytes} as {@code target} atomically. */
    public static void write(Path target, byte[] bytes) {
        write(target, channel -> {
            java.nio.ByteBuffer buffer = java.nio.ByteBuffer.wrap(bytes);
            while (buffer.hasRemaining()) {
                channel.write(buffer);
            }
        });
    }

    /** Makes the rename durable; some file systems refuse to open a directory, and then there is nothing to do. */
    private static void syncDirectory(Path dir) {
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        } catch (IOException ignored) {
            // Not supported here (e.g. some network file systems); the file itself is already synced.
        }
    }

    /** An exception's message on one line (its class name when it has none). */
    public static String describe(Throwable e) {
        String message = e.getMessage();
        return message == null ? e.getClass().getSimpleName() : message.replace('\n', ' ');
    }
}
