package dev.gosling.pipeline.clean;

import java.io.Serializable;
import java.util.Map;
import java.util.TreeMap;

/**
 * filter.gopher_repetition: Rae et al. 2021 (Gopher, Table A1), names and defaults as datatrove's
 * GopherRepetitionFilter. {@code topNGrams} maps n to the largest allowed share of characters in the most frequent
 * n-gram; {@code dupNGrams} maps n to the largest allowed share of characters in repeated n-grams. Null = not checked.
 */
public record GopherRepetitionRules(Double dupLineFrac, Double dupParaFrac, Double dupLineCharFrac, Double dupParaCharFrac,
                                    TreeMap<Integer, Double> topNGrams, TreeMap<Integer, Double> dupNGrams) implements Serializable {

    public static GopherRepetitionRules defaults() {
        return new GopherRepetitionRules(0.30, 0.30, 0.20, 0.20,
                new TreeMap<>(Map.of(2, 0.20, 3, 0.18, 4, 0.16)),
                new TreeMap<>(Map.of(5, 0.15, 6, 0.14, 7, 0.13, 8, 0.12, 9, 0.11, 10, 0.10)));
    }
}
