package dev.gosling.trainer.train;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.checkpoint.AtomicFiles;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * A run's YAML file (conf/train/*.yaml, conf/models/*.yaml): one flat mapping of flag names (train_temp's, without
 * dashes) to single values. Values are kept as written ({@code lr_init: 6e-4} stays "6e-4") and parsed by the
 * config records. Unknown keys, duplicates, nested values and nulls are one-line errors with file:line.
 */
public final class TrainYaml {
    private static final YAMLFactory YAML = new YAMLFactory();

    private TrainYaml() {
    }

    /** The key → value pairs of {@code file}, in file order; every key must be one of {@code allowed}. */
    public static Map<String, String> read(Path file, Set<String> allowed) {
        Map<String, String> values = new LinkedHashMap<>();
        try (InputStream in = Files.newInputStream(file); JsonParser parser = YAML.createParser(in)) {
            JsonToken first = parser.nextToken();
            if (first == null) {
                return values; // an empty file sets nothing
            }
            if (first != JsonToken.START_OBJECT) {
                throw error(file, parser.currentTokenLocation(), "expected a mapping of option names to values (e.g. 'ctx_len: 512')");
            }
            for (JsonToken token = parser.nextToken(); token != JsonToken.END_OBJECT; token = parser.nextToken()) {
                String key = parser.currentName();
                JsonLocation keyAt = parser.currentTokenLocation();
                if (!allowed.contains(key)) {
                    String near = TrainConfig.nearestKey(key, allowed);
                    throw error(file, keyAt, "unknown key '" + key + "'" + (near == null ? "" : " (did you mean '" + near + "'?)")
                            + "; keys are train_temp's flag names without dashes");
                }
                if (values.containsKey(key)) {
                    throw error(file, keyAt, "'" + key + "' is set twice; keep one");
                }
                JsonToken value = parser.nextToken();
                switch (value) {
                    case VALUE_STRING, VALUE_NUMBER_INT, VALUE_NUMBER_FLOAT, VALUE_TRUE, VALUE_FALSE -> values.put(key, parser.getText());
                    case VALUE_NULL -> throw error(file, keyAt, "'" + key + "' has no value; give one or delete the line");
                    default -> throw error(file, keyAt, "'" + key + "' must be a single value, not a list or a mapping");
                }
            }
            if (parser.nextToken() != null) {
                throw error(file, parser.currentTokenLocation(), "only one YAML document is read; remove the rest");
            }
            return values;
        } catch (NoSuchFileException e) {
            throw new GoslingException(file + ": no such file (check the --config path)");
        } catch (JsonProcessingException e) {
            JsonLocation at = e.getLocation();
            String message = e.getOriginalMessage() == null ? "invalid YAML" : e.getOriginalMessage().replace('\n', ' ');
            throw new GoslingException(file + (at != null && at.getLineNr() > 0 ? ":" + at.getLineNr() : "") + ": invalid YAML: " + message);
        } catch (IOException e) {
            throw new GoslingException(file + ": cannot read: " + AtomicFiles.describe(e));
        }
    }

    private static GoslingException error(Path file, JsonLocation at, String message) {
        return new GoslingException(file + (at != null && at.getLineNr() > 0 ? ":" + at.getLineNr() : "") + ": " + message);
    }
}
