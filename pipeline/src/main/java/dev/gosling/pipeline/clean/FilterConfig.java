package dev.gosling.pipeline.clean;

import java.io.Serializable;

/**
 * The filter stage's rules. Each group is optional (null = off) and runs in this fixed order, the first failing rule
 * naming the document's reject reason: length (characters), gopher_repetition, gopher_quality, c4, fineweb, length
 * (tokens, last because it tokenizes). The order is FineWeb's (repetition, quality, C4, FineWeb).
 */
public record FilterConfig(LengthRules length, GopherRepetitionRules gopherRepetition, GopherQualityRules gopherQuality,
                           C4Rules c4, FineWebRules fineweb) implements Serializable {
}
