package dev.gosling.pipeline.tokenize;

import java.io.Serializable;

/** A document's tokens as the .bin stores them: uint16 little-endian, EOD 0 included unless --no-eod. */
public record TokenizedDoc(long docId, byte[] tokensLE) implements Serializable {
    public int tokenCount() {
        return tokensLE.length / 2;
    }

    public int[] tokens() {
        int[] ids = new int[tokenCount()];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = (tokensLE[2 * i] & 0xFF) | (tokensLE[2 * i + 1] & 0xFF) << 8;
        }
        return ids;
    }
}
