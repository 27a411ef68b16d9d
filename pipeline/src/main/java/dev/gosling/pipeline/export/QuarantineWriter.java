package dev.gosling.pipeline.export;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import dev.gosling.pipeline.ingest.DocIds;
import dev.gosling.pipeline.ingest.LineOutcome;
import dev.gosling.trainer.checkpoint.AtomicFiles;

import java.io.BufferedOutputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.channels.Channels;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.List;

/**
 * Writes rejected lines to a jsonl file, one object per line: {"file", "line", "reason", "detail", "raw"} where raw is
 * the head of the line (at most 1 KiB, invalid UTF-8 shown as U+FFFD). Committed atomically (AtomicFiles).
 */
public final class QuarantineWriter {
    private static final JsonFactory JSON = new JsonFactory();

    private QuarantineWriter() {
    }

    public static long write(Iterator<LineOutcome> rejects, List<Path> inputFiles, Path out) {
        long[] n = {0};
        AtomicFiles.write(out, channel -> {
            OutputStream os = new BufferedOutputStream(Channels.newOutputStream(channel), 1 << 16);
            JsonGenerator g = JSON.createGenerator(os);
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
                n[0]++;
            }
            g.flush(); // not closed: closing would close the channel the atomic write still has to sync
            os.flush();
        });
        return n[0];
    }
}
