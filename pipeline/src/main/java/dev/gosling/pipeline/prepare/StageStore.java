package dev.gosling.pipeline.prepare;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.gosling.trainer.GoslingException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The work directory: one folder per stage holding its outputs, {@value #STATS} and, written last, the completion
 * marker {@value #MARKER} with the stage's identity key and the size and SHA-256 of every file. A stage is built in
 * {@code .tmp-STAGE}, renamed into place, then marked; a folder without a valid marker is never trusted.
 */
public final class StageStore {
    public static final String MARKER = "_COMPLETE.json";
    public static final String STATS = "stats.json";
    private static final Pattern SPARK_PART = Pattern.compile("part-(\\d{5,})-.*\\.parquet");

    private final Path work;

    public StageStore(Path work) {
        this.work = work;
    }

    public Path work() {
        return work;
    }

    public Path dir(StageName s) {
        return work.resolve(s.key());
    }

    /** The stage's marker when it matches the key and every recorded file is there with its size; else null. */
    public JsonNode completed(StageName s, String key) {
        Path marker = dir(s).resolve(MARKER);
        if (!Files.isRegularFile(marker)) {
            return null;
        }
        JsonNode m;
        try {
            m = Json.MAPPER.readTree(marker.toFile());
        } catch (IOException e) {
            return null;
        }
        if (m == null || !key.equals(m.path("key").asText())) {
            return null;
        }
        for (JsonNode f : m.path("files")) {
            Path p = resolve(s, f.path("path").asText());
            try {
                if (!Files.isRegularFile(p) || Files.size(p) != f.path("bytes").asLong()) {
                    return null;
                }
            } catch (IOException e) {
                return null;
            }
        }
        return m;
    }

    /** A file path as the marker records it: relative to the stage folder when inside it. */
    private Path resolve(StageName s, String recorded) {
        Path p = Path.of(recorded);
        return p.isAbsolute() ? p : dir(s).resolve(p);
    }

    /** A fresh, empty folder to build the stage in. */
    public Path begin(StageName s) {
        Path tmp = work.resolve(".tmp-" + s.key());
        AtomicFiles.deleteTree(tmp);
        try {
            Files.createDirectories(tmp);
        } catch (IOException e) {
            throw new GoslingException(tmp + ": cannot create: " + e.getMessage(), e);
        }
        return tmp;
    }

    /**
     * Spark's part-00003-<uuid>-c000.snappy.parquet become part-00003.parquet with a canonical footer
     * ({@link ParquetFooters}); _SUCCESS and .crc files go; all synced.
     */
    public static void tidyParquetDir(Path dir) {
        try (Stream<Path> list = Files.list(dir)) {
            for (Path p : (Iterable<Path>) list.sorted()::iterator) {
                String name = p.getFileName().toString();
                Matcher m = SPARK_PART.matcher(name);
                if (name.equals("_SUCCESS") || name.endsWith(".crc")) {
                    Files.delete(p);
                } else if (m.matches()) {
                    Path to = dir.resolve("part-" + m.group(1) + ".parquet");
                    if (Files.exists(to)) {
                        throw new GoslingException(dir + ": two Spark files for partition " + m.group(1));
                    }
                    ParquetFooters.canonicalize(p);
                    Files.move(p, to, StandardCopyOption.ATOMIC_MOVE);
                } else {
                    throw new GoslingException(dir + ": unexpected file " + name + " in Spark's output");
                }
            }
            AtomicFiles.fsyncDir(dir);
        } catch (IOException e) {
            throw new GoslingException(dir + ": cannot tidy Spark's output: " + e.getMessage(), e);
        }
    }

    /** Every regular file under dir, relative paths, sorted. */
    public static List<Path> files(Path dir) {
        try (Stream<Path> walk = Files.walk(dir)) {
            List<Path> out = new ArrayList<>();
            walk.filter(Files::isRegularFile).map(dir::relativize).sorted().forEach(out::add);
            return out;
        } catch (IOException e) {
            throw new GoslingException(dir + ": cannot list: " + e.getMessage(), e);
        }
    }

    /** SHA-256 of each file, read on the driver (which must see the work dir anyway), several files at a time. */
    public static Map<Path, String> checksums(List<Path> files) {
        Map<Path, String> out = new java.util.concurrent.ConcurrentSkipListMap<>();
        files.parallelStream().forEach(f -> out.put(f, AtomicFiles.sha256(f)));
        return new TreeMap<>(out);
    }

    /**
     * Moves the built folder into place and writes the marker: key, and size + SHA-256 of every file of the stage
     * (those in its folder, relative, and {@code external} ones such as a binidx written elsewhere, absolute).
     */
    public ObjectNode commit(StageName s, Path tmp, String key, List<Path> external) {
        Path dir = dir(s);
        try {
            if (Files.exists(dir)) {
                Path old = work.resolve(".old-" + s.key());
                AtomicFiles.deleteTree(old);
                Files.move(dir, old, StandardCopyOption.ATOMIC_MOVE);
                AtomicFiles.deleteTree(old);
            }
            AtomicFiles.fsyncDir(tmp);
            Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
            AtomicFiles.fsyncDir(work);
        } catch (IOException e) {
            throw new GoslingException(dir + ": cannot put the stage's output in place: " + e.getMessage(), e);
        }
        List<Path> all = new ArrayList<>();
        for (Path rel : files(dir)) {
            all.add(dir.resolve(rel));
        }
        all.addAll(external);
        Map<Path, String> sums = checksums(all);
        ObjectNode marker = Json.object();
        marker.put("stage", s.key());
        marker.put("key", key);
        ArrayNode arr = marker.putArray("files");
        for (Path p : all) {
            ObjectNode f = arr.addObject();
            f.put("path", p.startsWith(dir) ? dir.relativize(p).toString() : p.toString());
            try {
                f.put("bytes", Files.size(p));
            } catch (IOException e) {
                throw new GoslingException(p + ": cannot stat: " + e.getMessage(), e);
            }
            f.put("sha256", sums.get(p));
        }
        AtomicFiles.write(dir.resolve(MARKER), Json.bytes(marker));
        return marker;
    }

    /** Removes a stage's marker (so a later run cannot trust its folder) before it is rebuilt. */
    public void invalidate(StageName s) {
        try {
            Files.deleteIfExists(dir(s).resolve(MARKER));
        } catch (IOException e) {
            throw new GoslingException(dir(s) + ": cannot remove the old marker: " + e.getMessage(), e);
        }
    }
}
