package dev.gosling.trainer.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.gosling.trainer.GoslingException;

import java.io.BufferedReader;
import java.io.Closeable;
import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code proj_dir/metrics.jsonl}: one JSON object per optimizer step, appended and flushed as the step ends:
 * {@code step} (real_step: counted over the whole run), {@code epoch} (miniepoch), {@code loss} (the step's mean
 * cross-entropy), {@code lr} (base lr of the step), {@code tokens} (tokens trained on so far, this step included),
 * {@code tokens_per_s}, {@code grad_norm} (global L2 norm before clipping), {@code step_s} (seconds) and {@code time}
 * (Unix seconds at the step's end). A resumed run appends; a step redone after a crash appears again (the later line
 * is the one that counts).
 */
public final class MetricsLog implements Closeable {
    public static final String FILE = "metrics.jsonl";
    private static final ObjectMapper JSON = new ObjectMapper();

    /** One line of the file. */
    public record Row(long step, long epoch, double loss, double lr, long tokens, double tokensPerSecond, double gradNorm,
                      double stepSeconds, double time) {
    }

    private final Path file;
    private final Writer out;

    public MetricsLog(Path projDir) {
        this.file = projDir.resolve(FILE);
        try {
            Files.createDirectories(projDir);
            this.out = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new GoslingException(file + ": cannot open for appending: " + e.getMessage());
        }
    }

    public void append(Row row) {
        ObjectNode n = JSON.createObjectNode();
        n.put("step", row.step());
        n.put("epoch", row.epoch());
        n.put("loss", row.loss());
        n.put("lr", row.lr());
        n.put("tokens", row.tokens());
        n.put("tokens_per_s", row.tokensPerSecond());
        n.put("grad_norm", row.gradNorm());
        n.put("step_s", row.stepSeconds());
        n.put("time", row.time());
        try {
            out.write(n.toString());
            out.write('\n');
            out.flush();
        } catch (IOException e) {
            throw new GoslingException(file + ": cannot write: " + e.getMessage());
        }
    }

    /**
     * The rows of an existing metrics.jsonl, in file order; a torn last line (the process was killed while writing
     * it) and lines that are not rows are skipped.
     */
    public static List<Row> read(Path projDir) {
        Path path = projDir.resolve(FILE);
        List<Row> rows = new ArrayList<>();
        if (!Files.isRegularFile(path)) {
            return rows;
        }
        try (BufferedReader in = Files.newBufferedReader(path, StandardCharsets.UTF_8)) {
            for (String line = in.readLine(); line != null; line = in.readLine()) {
                JsonNode n;
                try {
                    n = JSON.readTree(line);
                } catch (IOException torn) {
                    continue;
                }
                if (n == null || !n.has("step") || !n.has("loss")) {
                    continue;
                }
                rows.add(new Row(n.path("step").asLong(), n.path("epoch").asLong(), n.path("loss").asDouble(), n.path("lr").asDouble(),
                        n.path("tokens").asLong(), n.path("tokens_per_s").asDouble(), n.path("grad_norm").asDouble(),
                        n.path("step_s").asDouble(), n.path("time").asDouble()));
            }
        } catch (IOException e) {
            throw new GoslingException(path + ": cannot read: " + e.getMessage());
        }
        return rows;
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
