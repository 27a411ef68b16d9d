package dev.gosling.pipeline.clean;

import dev.gosling.trainer.data.IntList;
import dev.gosling.trainer.data.WorldTokenizer;

/**
 * The filter stage's per-document logic, Spark-free: runs the configured rule groups in {@link FilterConfig}'s order
 * and stops at the first failure. A reject reason is the config key of the violated threshold, prefixed by its group
 * (e.g. {@code gopher_quality.min_doc_words}, {@code gopher_repetition.top_n_grams.2}), so every reason names the knob
 * that moves it. C4 may shorten a passing document (it removes lines). One instance per task: not thread-safe.
 */
public final class QualityFilters {
    private final FilterConfig cfg;
    private final DocView view = new DocView();
    private final GopherRepetition repetition;
    private final GopherQuality quality;
    private final C4Filter c4;
    private final FineWebQuality fineweb;
    private final IntList tokenIds = new IntList(1024);

    private String text;
    private String reason;
    private String detail;
    private int c4LinesRemoved;

    public QualityFilters(FilterConfig cfg) {
        this.cfg = cfg;
        repetition = cfg.gopherRepetition() == null ? null : new GopherRepetition(cfg.gopherRepetition());
        quality = cfg.gopherQuality() == null ? null : new GopherQuality(cfg.gopherQuality());
        c4 = cfg.c4() == null ? null : new C4Filter(cfg.c4());
        fineweb = cfg.fineweb() == null ? null : new FineWebQuality(cfg.fineweb());
    }

    /** Filters one document; read the outcome with {@link #reason()}, {@link #detail()} and {@link #text()}. */
    public QualityFilters apply(String doc) {
        text = doc;
        reason = null;
        detail = null;
        c4LinesRemoved = 0;
        LengthRules len = cfg.length();
        view.reset(doc);
        if (len != null) {
            int chars = view.length();
            if (len.minChars() != null && chars < len.minChars()) {
                return reject("length.min_chars", chars + " characters < " + len.minChars());
            }
            if (len.maxChars() != null && chars > len.maxChars()) {
                return reject("length.max_chars", chars + " characters > " + len.maxChars());
            }
        }
        if (repetition != null) {
            String r = repetition.check(view);
            if (r != null) {
                return reject("gopher_repetition." + r, repetition.detail());
            }
        }
        if (quality != null) {
            String r = quality.check(view);
            if (r != null) {
                return reject("gopher_quality." + r, quality.detail());
            }
        }
        if (c4 != null) {
            String r = c4.check(view);
            if (r != null) {
                return reject("c4." + r, c4.detail());
            }
            c4LinesRemoved = c4.linesRemoved();
            if (c4.result() != doc) {
                text = c4.result();
                view.reset(text);
            }
        }
        if (fineweb != null) {
            String r = fineweb.check(view);
            if (r != null) {
                return reject("fineweb." + r, fineweb.detail());
            }
        }
        if (len != null && len.needsTokens()) {
            tokenIds.clear();
            int tokens = WorldTokenizer.world().encode(text, tokenIds);
            if (len.minTokens() != null && tokens < len.minTokens()) {
                return reject("length.min_tokens", tokens + " tokens < " + len.minTokens());
            }
            if (len.maxTokens() != null && tokens > len.maxTokens()) {
                return reject("length.max_tokens", tokens + " tokens > " + len.maxTokens());
            }
        }
        return this;
    }

    private QualityFilters reject(String why, String what) {
        reason = why;
        detail = what;
        return this;
    }

    /** Null when the document passed. */
    public String reason() {
        return reason;
    }

    public String detail() {
        return detail;
    }

    /** The document to keep (C4 may have removed lines); the input text when rejected. */
    public String text() {
        return text;
    }

    public int c4LinesRemoved() {
        return c4LinesRemoved;
    }
}
