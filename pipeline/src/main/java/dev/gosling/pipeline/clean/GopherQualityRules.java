package dev.gosling.pipeline.clean;

import java.io.Serializable;
import java.util.List;

/**
 * filter.gopher_quality: Rae et al. 2021 (Gopher, Table A1), parameter names and defaults as datatrove's
 * GopherQualityFilter except {@code min_alpha_words_ratio} (datatrove: max_non_alpha_words_ratio, same meaning:
 * drop when fewer than this fraction of words hold a letter). A null threshold is not checked.
 */
public record GopherQualityRules(Integer minDocWords, Integer maxDocWords, Double minAvgWordLength, Double maxAvgWordLength,
                                 Double maxSymbolWordRatio, Double maxBulletLinesRatio, Double maxEllipsisLinesRatio,
                                 Double minAlphaWordsRatio, Integer minStopWords, List<String> stopWords) implements Serializable {

    /** Gopher's stop words (the paper's list, as datatrove has it). Matched case-sensitively, occurrences counted. */
    public static final List<String> ENGLISH_STOP_WORDS = List.of("the", "be", "to", "of", "and", "that", "have", "with");

    public static GopherQualityRules defaults() {
        return new GopherQualityRules(50, 100_000, 3.0, 10.0, 0.1, 0.9, 0.3, 0.8, 2, ENGLISH_STOP_WORDS);
    }
}
