package dev.gosling.pipeline.export;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import dev.gosling.pipeline.ingest.DocIds;
import dev.gosling.pipeline.ingest.LineOutcome;
import dev.gosling.trainer.GoslingException;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Iterator;
import java.util.List;

/**
 * Writes rejected lines to a jsonl file, one object per line: {"file", "line", "reason", "detail", "raw"} where raw is
 * the head of the line (at most 1 KiB, invalid UTF-8 shown as U+FFFD). Written under a temporary name, then renamed.
 */
public final class QuarantineWriter {
    private static final JsonFactory JSON = new JsonFactory();

    private QuarantineWriter() {
    }

    public static long write(Iterator<LineOutcome> rejects, List<Path> inputFiles, Path out) {
        Path tmp = out.resolveSibling(out.getFileName() + ".tmp");
        long n = 0;
        try {
            Files.createDirectories(out.toAbsolutePath().getParent());
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE);
                 OutputStream os = new BufferedOutputStream(Channels.newOutputStream(ch), 1 << 16);
                 JsonGenerator g = JSON.createGenerator(os)) {
                g.setRootValueSeparator(null);
                while (rejects.hasNext()) {
                    LineOutcome r = rejects.next();
                    g.writeStartObject();
                    g.writeStringField("file", inputFiles.get(DocIds.fileOrdinal(r.docId())).toString());
                    g.writeNumberField("line", DocIds.lineNumber(r.docId()));
                    g.writeStringField("reason", r.reason().label());
                    g.writeStringField("detail", r.detail());
                    g.writeStringField("raw", new String(r.rawHead(), StandardCharsets.UTF_8));
                    g.writeEndObject();
                    g.writeRaw('\n');
                    n++;
                }
                g.flush();
                os.flush();
                ch.force(true);
            }
            Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            return n;
        } catch (IOException e) {
            throw new GoslingException(out + ": cannot write the quarantine file: " + e.getMessage(), e);
        } finally {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // the temporary name never looks finished; a leftover is harmless
            }
        }
    }
}
