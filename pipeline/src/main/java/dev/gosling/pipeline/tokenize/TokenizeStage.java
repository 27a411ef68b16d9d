package dev.gosling.pipeline.tokenize;

import dev.gosling.pipeline.ingest.LineOutcome;
import dev.gosling.trainer.data.WorldTokenizer;
import org.apache.spark.api.java.JavaRDD;

/** Tokenizes each document with the world tokenizer (the same class the trainer uses) and appends EOD 0. */
public final class TokenizeStage {
    private TokenizeStage() {
    }

    public static JavaRDD<TokenizedDoc> run(JavaRDD<LineOutcome> documents, boolean appendEod) {
        return documents.map(doc -> tokenize(doc, appendEod));
    }

    public static TokenizedDoc tokenize(LineOutcome doc, boolean appendEod) {
        int[] ids = WorldTokenizer.world().encodeUtf8(doc.text(), 0, doc.text().length);
        int n = ids.length + (appendEod ? 1 : 0);
        byte[] le = new byte[2 * n]; // a trailing EOD is already 0 0
        for (int i = 0; i < ids.length; i++) {
            le[2 * i] = (byte) ids[i];
            le[2 * i + 1] = (byte) (ids[i] >>> 8);
        }
        return new TokenizedDoc(doc.docId(), le);
    }
}
