package dev.gosling.pipeline.clean;

import java.io.Serializable;
import java.util.List;

/**
 * filter.c4: the C4 clean-up of Raffel et al. 2020, with the paper's values (the TFDS reference c4_utils.py:
 * _MIN_WORDS_PER_LINE = 5, _MIN_NUM_SENTENCES = 3, end marks . ? ! "), not datatrove's C4QualityFilter defaults
 * (3 words per line, 5 sentences, ' as an extra end mark). Lines failing a line rule are removed from the document;
 * "lorem ipsum", a curly bracket, or too few sentences drop the whole document. A null number is not checked.
 */
public record C4Rules(boolean removeCitations, boolean filterNoTerminalPunct, List<String> endPunctuation,
                      Integer minWordsPerLine, Integer maxWordLength, Integer minNumSentences, boolean filterLoremIpsum,
                      boolean filterJavascript, boolean filterCurlyBracket, boolean filterPolicy) implements Serializable {

    /** C4's end marks (TFDS _END_MARKS). */
    public static final List<String> C4_END_MARKS = List.of(".", "?", "!", "\"");

    /** C4's policy lines (TFDS _POLICY_SUBSTRINGS). */
    public static final List<String> POLICY_SUBSTRINGS = List.of("terms of use", "privacy policy", "cookie policy",
            "uses cookies", "use of cookies", "use cookies");

    public static C4Rules defaults() {
        return new C4Rules(true, true, C4_END_MARKS, 5, 1000, 3, true, true, true, true);
    }
}
