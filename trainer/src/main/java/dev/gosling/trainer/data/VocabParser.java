package dev.gosling.trainer.data;

import dev.gosling.trainer.GoslingException;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.CharsetDecoder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Reads the RWKV vocab format: one token per line, {@code <id> <python literal> <byte length>}, split on the first
 * and the last space (the literal may hold spaces). The literal is Python's repr() of a str ('…' or "…", UTF-8
 * encoded) or of a bytes value (b'…', raw bytes). Ids must run 1, 2, 3, … with no gap.
 */
final class VocabParser {
    /** Token ids are stored as uint16 (binidx), so a vocab cannot go past this id. */
    static final int MAX_ID = 0xFFFF;
    /** The trie packs a token's length in 16 bits. */
    static final int MAX_TOKEN_BYTES = 0xFFFF;

    /** What to do about a malformed vocab (every parse error ends with it). */
    static final String FIX = "use an unmodified rwkv_vocab_v20230424.txt"
            + " (each line is `<id> <python literal> <byte length>`)";

    private final String sourceName;
    private final CharsetDecoder decoder = Utf8.strictDecoder();
    private int lineNumber;
    // Scratch for one literal's bytes; grows to the longest token.
    private byte[] scratch = new byte[512];

    private VocabParser(String sourceName) {
        this.sourceName = sourceName;
    }

    /** The token bytes indexed by id; index 0 (EOD) is null. */
    static byte[][] parse(InputStream in, String sourceName) {
        byte[] all;
        try {
            all = in.readAllBytes();
        } catch (IOException e) {
            throw new GoslingException("cannot read vocab " + sourceName + ": " + e.getMessage()
                    + "; check that the file exists and is readable", e);
        }
        return new VocabParser(sourceName).parseAll(all);
    }

    private byte[][] parseAll(byte[] all) {
        List<byte[]> tokens = new ArrayList<>(65536);
        tokens.add(null); // id 0 = end of document, not in the file
        int start = 0;
        while (start < all.length) {
            int nl = indexOf(all, (byte) '\n', start);
            int end = nl < 0 ? all.length : nl;
            lineNumber++;
            // Python reads the file in text mode; the CRLF copy of the vocab must parse the same.
            int contentEnd = end > start && all[end - 1] == '\r' ? end - 1 : end;
            tokens.add(parseLine(all, start, contentEnd, tokens.size()));
            start = end + 1;
        }
        if (tokens.size() == 1) {
            throw new GoslingException(sourceName + ": the vocab has no tokens; " + FIX);
        }
        return tokens.toArray(new byte[0][]);
    }

    private byte[] parseLine(byte[] all, int start, int end, int expectedId) {
        if (start == end) {
            throw error("empty line");
        }
        String line = Utf8.decodeStrict(decoder, all, start, end - start);
        if (line == null) {
            throw error("the line is not valid UTF-8");
        }
        int firstSpace = line.indexOf(' ');
        int lastSpace = line.lastIndexOf(' ');
        if (firstSpace < 0 || firstSpace == lastSpace) {
            throw error("expected three fields `<id> <literal> <byte length>`, found " + show(line));
        }
        int id = parseNumber(line.substring(0, firstSpace), "id");
        if (id != expectedId) {
            throw error("id " + id + " where " + expectedId + " was expected (ids must be contiguous from 1)");
        }
        if (id > MAX_ID) {
            throw error("id " + id + " does not fit the uint16 token space (at most " + MAX_ID + ")");
        }
        int declaredLength = parseNumber(line.substring(lastSpace + 1), "byte length");
        byte[] token = parseLiteral(line.substring(firstSpace + 1, lastSpace));
        if (token.length == 0) {
            throw error("empty token");
        }
        if (token.length > MAX_TOKEN_BYTES) {
            throw error("token of " + token.length + " bytes, longer than " + MAX_TOKEN_BYTES);
        }
        if (token.length != declaredLength) {
            throw error("the byte length column says " + declaredLength + " but the literal is "
                    + token.length + " bytes");
        }
        return token;
    }

    private int parseNumber(String field, String what) {
        if (field.isEmpty() || field.length() > 9) {
            throw error("bad " + what + " " + show(field) + " (expected a decimal number)");
        }
        int value = 0;
        for (int i = 0; i < field.length(); i++) {
            char c = field.charAt(i);
            if (c < '0' || c > '9') {
                throw error("bad " + what + " " + show(field) + " (expected a decimal number)");
            }
            value = value * 10 + (c - '0');
        }
        return value;
    }

    /** A Python str or bytes literal, as produced by repr(); every Python escape is understood. */
    private byte[] parseLiteral(String lit) {
        int n = lit.length();
        int i = 0;
        boolean isBytes = false;
        if (i < n && (lit.charAt(i) == 'b' || lit.charAt(i) == 'B')) {
            isBytes = true;
            i++;
        }
        char quote = i < n ? lit.charAt(i) : 0;
        if (quote != '\'' && quote != '"') {
            throw error("expected a Python literal ('…', \"…\" or b'…'), found " + show(lit));
        }
        i++;
        int p = 0;
        boolean closed = false;
        while (i < n) {
            ensureScratch(p + 4);
            char c = lit.charAt(i);
            if (c == quote) {
                closed = true;
                i++;
                break;
            }
            if (c == '\r') {
                throw error("carriage return inside a line");
            }
            if (c != '\\') {
                int cp = lit.codePointAt(i);
                if (isBytes && cp >= 0x80) {
                    throw error("non-ASCII character " + show(new String(Character.toChars(cp)))
                            + " in a bytes literal (bytes must be written as \\xNN)");
                }
                p = Utf8.appendCodePoint(cp, scratch, p);
                i += Character.charCount(cp);
                continue;
            }
            if (i + 1 >= n) {
                break; // a final backslash escapes the closing quote: unterminated
            }
            char e = lit.charAt(i + 1);
            i += 2;
            int value; // a byte (bytes literal) or a code point (str literal)
            switch (e) {
                case '\\': value = '\\'; break;
                case '\'': value = '\''; break;
                case '"': value = '"'; break;
                case 'a': value = 7; break;
                case 'b': value = 8; break;
                case 'f': value = 12; break;
                case 'n': value = '\n'; break;
                case 'r': value = '\r'; break;
                case 't': value = '\t'; break;
                case 'v': value = 11; break;
                case 'x':
                    value = hex(lit, i, 2, "\\x");
                    i += 2;
                    break;
                case 'u':
                case 'U': {
                    int digits = e == 'u' ? 4 : 8;
                    if (isBytes) {
                        throw error("bad escape \\" + e + " in a bytes literal (only str literals have it)");
                    }
                    value = hex(lit, i, digits, "\\" + e);
                    i += digits;
                    if (value > Character.MAX_CODE_POINT) {
                        throw error(String.format("escape \\%c%s is beyond U+10FFFF", e, lit.substring(i - digits, i)));
                    }
                    if (value >= Character.MIN_SURROGATE && value <= Character.MAX_SURROGATE) {
                        throw error(String.format("escape \\%c%s is a surrogate code point, which has no UTF-8 form",
                                e, lit.substring(i - digits, i)));
                    }
                    break;
                }
                default:
                    if (e >= '0' && e <= '7') {
                        // Octal: one to three digits, the first already read.
                        value = e - '0';
                        for (int k = 0; k < 2 && i < n && lit.charAt(i) >= '0' && lit.charAt(i) <= '7'; k++) {
                            value = value * 8 + (lit.charAt(i++) - '0');
                        }
                        if (isBytes && value > 0xFF) {
                            throw error("octal escape \\" + Integer.toOctalString(value)
                                    + " is out of the byte range in a bytes literal");
                        }
                        break;
                    }
                    throw error("bad escape " + show("\\" + e) + " in the literal");
            }
            if (isBytes) {
                // Pitfall: in b'…' an \xNN is the raw byte …
                scratch[p++] = (byte) value;
            } else {
                // … but in '…' it is the code point U+00NN, then UTF-8 encoded ('\x80' is C2 80).
                p = Utf8.appendCodePoint(value, scratch, p);
            }
        }
        if (!closed) {
            throw error("unterminated literal " + show(lit));
        }
        if (i != n) {
            throw error("text after the closing quote of the literal " + show(lit));
        }
        return Arrays.copyOf(scratch, p);
    }

    private int hex(String lit, int from, int digits, String escape) {
        if (from + digits > lit.length()) {
            throw error("bad escape " + escape + ": needs " + digits + " hex digits");
        }
        int value = 0;
        for (int k = 0; k < digits; k++) {
            int d = Character.digit(lit.charAt(from + k), 16);
            if (d < 0 || lit.charAt(from + k) > 'f') {
                throw error("bad escape " + show(escape + lit.substring(from, from + digits))
                        + ": needs " + digits + " hex digits");
            }
            value = value * 16 + d;
        }
        return value;
    }

    private void ensureScratch(int capacity) {
        if (capacity > scratch.length) {
            scratch = Arrays.copyOf(scratch, Math.max(capacity, 2 * scratch.length));
        }
    }

    private GoslingException error(String what) {
        return new GoslingException(sourceName + ":" + lineNumber + ": " + what + "; " + FIX);
    }

    private static int indexOf(byte[] a, byte b, int from) {
        for (int i = from; i < a.length; i++) {
            if (a[i] == b) {
                return i;
            }
        }
        return -1;
    }

    /** A short, single-line, quoted rendering of a field for an error message. */
    static String show(String s) {
        StringBuilder sb = new StringBuilder("«");
        int limit = Math.min(s.length(), 60);
        if (limit < s.length() && Character.isHighSurrogate(s.charAt(limit - 1))) {
            limit--; // never cut a surrogate pair in half
        }
        for (int i = 0; i < limit; i++) {
            char c = s.charAt(i);
            // Control characters and line separators would break the one-line message.
            if (c < 0x20 || (c >= 0x7F && c <= 0x9F) || c == 0x2028 || c == 0x2029) {
                sb.append(String.format("\\u%04x", (int) c));
            } else {
                sb.append(c);
            }
        }
        if (s.length() > limit) {
            sb.append('…');
        }
        return sb.append('»').toString();
    }
}
