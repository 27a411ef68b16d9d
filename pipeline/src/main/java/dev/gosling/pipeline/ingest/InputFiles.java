package dev.gosling.pipeline.ingest;

import dev.gosling.trainer.GoslingException;

import java.io.IOException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * Resolves an input argument (a file, a directory or a glob) into the sorted list of jsonl files it names.
 * The position of a file in this list is its ordinal, the first half of every stable document id.
 */
public final class InputFiles {
    private InputFiles() {
    }

    public static boolean isJsonl(Path p) {
        String n = p.getFileName().toString();
        return n.endsWith(".jsonl") || n.endsWith(".jsonl.gz");
    }

    /** Sorted absolute paths; a directory contributes its *.jsonl and *.jsonl.gz files (recursively). */
    public static List<Path> resolve(String input) {
        List<Path> files = new ArrayList<>();
        if (isGlob(input)) {
            Path base = globBase(input);
            PathMatcher matcher = FileSystems.getDefault().getPathMatcher("glob:" + Paths.get(input).toAbsolutePath().normalize());
            try (Stream<Path> walk = Files.walk(base)) {
                walk.filter(Files::isRegularFile).map(p -> p.toAbsolutePath().normalize()).filter(matcher::matches).forEach(files::add);
            } catch (IOException e) {
                throw new GoslingException(input + ": cannot list files: " + e.getMessage(), e);
            }
            if (files.isEmpty()) {
                throw new GoslingException(input + ": the glob matches no file");
            }
        } else {
            Path p = Paths.get(input).toAbsolutePath().normalize();
            if (Files.isDirectory(p)) {
                try (Stream<Path> walk = Files.walk(p)) {
                    walk.filter(Files::isRegularFile).filter(InputFiles::isJsonl).forEach(files::add);
                } catch (IOException e) {
                    throw new GoslingException(input + ": cannot list the directory: " + e.getMessage(), e);
                }
                if (files.isEmpty()) {
                    throw new GoslingException(input + ": the directory holds no .jsonl or .jsonl.gz file");
                }
            } else if (Files.isRegularFile(p)) {
                files.add(p);
            } else {
                throw new GoslingException(input + ": no such file or directory");
            }
        }
        files.sort(null);
        for (Path f : files) {
            if (!Files.isReadable(f)) {
                throw new GoslingException(f + ": not readable");
            }
        }
        return files;
    }

    /** The output name make_data would use: the base name without its extension (and without .jsonl.gz). */
    public static String defaultOutputName(String input) {
        if (isGlob(input)) {
            throw new GoslingException(input + ": a glob input needs --out PREFIX (there is no single input name to reuse)");
        }
        Path p = Paths.get(input).toAbsolutePath().normalize();
        String name = p.getFileName() == null ? "out" : p.getFileName().toString();
        if (Files.isDirectory(p)) {
            return name;
        }
        if (name.endsWith(".gz")) {
            name = name.substring(0, name.length() - 3);
        }
        int dot = name.lastIndexOf('.');
        return dot > 0 ? name.substring(0, dot) : name;
    }

    static boolean isGlob(String s) {
        return s.indexOf('*') >= 0 || s.indexOf('?') >= 0 || s.indexOf('[') >= 0 || s.indexOf('{') >= 0;
    }

    /** The longest leading directory of the glob that holds no wildcard: where the walk starts. */
    private static Path globBase(String glob) {
        Path abs = Paths.get(glob).toAbsolutePath().normalize();
        Path base = abs.getRoot();
        for (Path part : abs) {
            if (isGlob(part.toString())) {
                break;
            }
            base = base.resolve(part);
        }
        if (!Files.isDirectory(base)) {
            throw new GoslingException(glob + ": no such directory " + base);
        }
        return base;
    }
}
