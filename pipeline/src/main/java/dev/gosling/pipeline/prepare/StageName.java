package dev.gosling.pipeline.prepare;

import java.util.Locale;

/**
 * The prepare stages in their fixed order. The YAML key, the work-dir folder and --from-stage all use {@link #key()}
 * (e.g. {@code exact_dedup}, {@code fuzzy_dedup}).
 */
public enum StageName {
    INGEST, NORMALIZE, FILTER, EXACT_DEDUP, FUZZY_DEDUP, SHUFFLE, TOKENIZE, BINIDX;

    public String key() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static StageName ofKey(String key) {
        for (StageName s : values()) {
            if (s.key().equals(key)) {
                return s;
            }
        }
        return null;
    }

    public static String keys() {
        StringBuilder sb = new StringBuilder();
        for (StageName s : values()) {
            sb.append(sb.length() == 0 ? "" : ", ").append(s.key());
        }
        return sb.toString();
    }
}
