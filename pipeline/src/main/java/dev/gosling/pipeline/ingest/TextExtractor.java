package dev.gosling.pipeline.ingest;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.data.Utf8;
import dev.gosling.trainer.data.WorldTokenizer;

import java.io.IOException;

/**
 * Takes the "text" field out of one jsonl line, as make_data.py's json.loads(line)["text"] does, but turns every
 * failure into a counted reject: invalid UTF-8, invalid JSON, not an object, no "text", a non-string "text",
 * a lone surrogate (Python would crash on encode), an empty text.
 */
public final class TextExtractor {
    // Python's json accepts NaN/Infinity and has no length limits; Jackson's defaults would reject a 100 MB text.
    private static final JsonFactory JSON = JsonFactory.builder()
            .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
            .streamReadConstraints(StreamReadConstraints.builder()
                    .maxStringLength(Integer.MAX_VALUE).maxNumberLength(Integer.MAX_VALUE).maxNestingDepth(10_000).build())
            .build();

    private TextExtractor() {
    }

    public static LineOutcome extract(RawLine line) {
        long id = line.docId();
        byte[] raw = line.bytes();
        if (line.tooLong()) {
            return LineOutcome.reject(id, RejectReason.LINE_TOO_LONG, "line has " + line.length() + " bytes", raw);
        }
        int bad = Utf8.firstInvalid(raw, 0, raw.length);
        if (bad >= 0) {
            return LineOutcome.reject(id, RejectReason.INVALID_UTF8, "invalid UTF-8 at byte " + bad, raw);
        }
        String text = null;
        boolean sawText = false;
        String textType = null;
        try (JsonParser p = JSON.createParser(raw)) {
            JsonToken first = p.nextToken();
            if (first != JsonToken.START_OBJECT) {
                if (first != null && first.isStructStart()) {
                    p.skipChildren();
                }
                expectEnd(p);
                return LineOutcome.reject(id, RejectReason.NOT_AN_OBJECT, "the line is a JSON " + kind(first) + ", not an object", raw);
            }
            JsonToken t;
            while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                JsonToken value = p.nextToken();
                if ("text".equals(name)) { // like Python's dict, the last duplicate key wins
                    sawText = true;
                    text = value == JsonToken.VALUE_STRING ? p.getText() : null;
                    textType = kind(value);
                    p.skipChildren(); // a non-string "text" may be an object or array
                } else {
                    p.skipChildren();
                }
            }
            if (t != JsonToken.END_OBJECT) {
                throw new IOException("unexpected " + t);
            }
            expectEnd(p);
        } catch (IOException e) {
            return LineOutcome.reject(id, RejectReason.INVALID_JSON, oneLine(e), raw);
        }
        if (!sawText) {
            return LineOutcome.reject(id, RejectReason.MISSING_TEXT, "no \"text\" field", raw);
        }
        if (text == null) {
            return LineOutcome.reject(id, RejectReason.TEXT_NOT_STRING, "\"text\" is a " + textType + ", not a string", raw);
        }
        if (text.isEmpty()) {
            return LineOutcome.reject(id, RejectReason.EMPTY_TEXT, "\"text\" is empty", raw);
        }
        try {
            return LineOutcome.document(id, WorldTokenizer.utf8(text));
        } catch (GoslingException e) {
            return LineOutcome.reject(id, RejectReason.LONE_SURROGATE, "\"text\": " + e.getMessage(), raw);
        }
    }

    private static void expectEnd(JsonParser p) throws IOException {
        JsonToken extra = p.nextToken();
        if (extra != null) {
            throw new IOException("unexpected " + kind(extra) + " after the JSON value at column " + p.currentLocation().getColumnNr());
        }
    }

    private static String kind(JsonToken t) {
        if (t == null) {
            return "nothing";
        }
        switch (t) {
            case START_OBJECT: return "object";
            case START_ARRAY: return "array";
            case VALUE_STRING: return "string";
            case VALUE_NUMBER_INT:
            case VALUE_NUMBER_FLOAT: return "number";
            case VALUE_TRUE:
            case VALUE_FALSE: return "boolean";
            case VALUE_NULL: return "null";
            default: return t.toString();
        }
    }

    /** Jackson's messages span lines (source excerpts); keep the first. */
    private static String oneLine(IOException e) {
        String m = String.valueOf(e.getMessage());
        int nl = m.indexOf('\n');
        return nl >= 0 ? m.substring(0, nl) : m;
    }
}
