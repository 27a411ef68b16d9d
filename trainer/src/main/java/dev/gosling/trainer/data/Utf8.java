package dev.gosling.trainer.data;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Strict UTF-8 both ways: UTF-16 → UTF-8 (a lone surrogate is an {@link InvalidTextException}, never a silent '?'),
 * validation, and decoding with Python's replacement rule. Shared by the tokenizer and the data pipeline.
 */
public final class Utf8 {
    private Utf8() {
    }

    /** The UTF-8 bytes of a text that is valid Unicode. */
    static byte[] encode(String text) {
        checkSurrogates(text);
        // Once no surrogate is unpaired, the JDK's intrinsic encoder gives exactly the strict bytes.
        return text.getBytes(StandardCharsets.UTF_8);
    }

    static void checkSurrogates(CharSequence text) {
        int n = text.length();
        for (int i = 0; i < n; i++) {
            char c = text.charAt(i);
            if (Character.isSurrogate(c)) {
                if (Character.isHighSurrogate(c) && i + 1 < n && Character.isLowSurrogate(text.charAt(i + 1))) {
                    i++;
                } else {
                    throw new InvalidTextException(c, i);
                }
            }
        }
    }

    /**
     * Encodes text[from, text.length()) into dst[dstPos, dstLimit) until the text ends or fewer than 4 bytes of room
     * are left (so a character is never split). Returns {@code (charsConsumedUpTo << 32) | newDstPos}.
     */
    static long encodeSome(CharSequence text, int from, byte[] dst, int dstPos, int dstLimit) {
        int n = text.length();
        int i = from;
        int p = dstPos;
        int safeEnd = dstLimit - 4;
        while (i < n && p <= safeEnd) {
            char c = text.charAt(i);
            if (c < 0x80) {
                dst[p++] = (byte) c;
                i++;
            } else if (c < 0x800) {
                dst[p++] = (byte) (0xC0 | (c >>> 6));
                dst[p++] = (byte) (0x80 | (c & 0x3F));
                i++;
            } else if (!Character.isSurrogate(c)) {
                dst[p++] = (byte) (0xE0 | (c >>> 12));
                dst[p++] = (byte) (0x80 | ((c >>> 6) & 0x3F));
                dst[p++] = (byte) (0x80 | (c & 0x3F));
                i++;
            } else {
                char low;
                if (!Character.isHighSurrogate(c) || i + 1 >= n || !Character.isLowSurrogate(low = text.charAt(i + 1))) {
                    throw new InvalidTextException(c, i);
                }
                int cp = Character.toCodePoint(c, low);
                dst[p++] = (byte) (0xF0 | (cp >>> 18));
                dst[p++] = (byte) (0x80 | ((cp >>> 12) & 0x3F));
                dst[p++] = (byte) (0x80 | ((cp >>> 6) & 0x3F));
                dst[p++] = (byte) (0x80 | (cp & 0x3F));
                i += 2;
            }
        }
        return ((long) i << 32) | p;
    }

    /** Appends the UTF-8 form of one code point (which must not be a surrogate). */
    static int appendCodePoint(int cp, byte[] dst, int p) {
        if (cp < 0x80) {
            dst[p++] = (byte) cp;
        } else if (cp < 0x800) {
            dst[p++] = (byte) (0xC0 | (cp >>> 6));
            dst[p++] = (byte) (0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            dst[p++] = (byte) (0xE0 | (cp >>> 12));
            dst[p++] = (byte) (0x80 | ((cp >>> 6) & 0x3F));
            dst[p++] = (byte) (0x80 | (cp & 0x3F));
        } else {
            dst[p++] = (byte) (0xF0 | (cp >>> 18));
            dst[p++] = (byte) (0x80 | ((cp >>> 12) & 0x3F));
            dst[p++] = (byte) (0x80 | ((cp >>> 6) & 0x3F));
            dst[p++] = (byte) (0x80 | (cp & 0x3F));
        }
        return p;
    }

    /**
     * UTF-8 → String replacing each maximal ill-formed subpart with U+FFFD (Unicode §3.9, as Python's
     * {@code errors='replace'}). The JDK decoder differs: it turns an encoded surrogate (ED A0 80) into one U+FFFD
     * where Python gives three.
     */
    static String decodeReplacing(byte[] b, int off, int len) {
        char[] out = new char[len];
        int n = 0;
        int i = off;
        int end = off + len;
        while (i < end) {
            int b0 = b[i];
            if (b0 >= 0) {
                out[n++] = (char) b0;
                i++;
                continue;
            }
            int seq = sequenceAt(b, i, end);
            if (seq < 0) {
                out[n++] = '\uFFFD'; // the maximal ill-formed subpart is one replacement
                i -= seq;
                continue;
            }
            n += Character.toChars(codePoint(b, i, seq), out, n);
            i += seq;
        }
        return new String(out, 0, n);
    }

    /** Offset of the first byte of [from, to) that starts an ill-formed sequence, or -1 when it is all valid UTF-8. */
    public static int firstInvalid(byte[] b, int from, int to) {
        int i = from;
        while (i < to) {
            if (b[i] >= 0) { // ASCII fast path
                i++;
                continue;
            }
            int seq = sequenceAt(b, i, to);
            if (seq < 0) {
                return i;
            }
            i += seq;
        }
        return -1;
    }

    /**
     * The length of the well-formed UTF-8 sequence starting at the non-ASCII byte b[i], or minus the length of the
     * maximal ill-formed subpart there (Unicode §3.9, Table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF).
     */
    private static int sequenceAt(byte[] b, int i, int end) {
        int b0 = b[i] & 0xFF;
        int need;
        int lo = 0x80;
        int hi = 0xBF; // the allowed range of the second byte
        if (b0 >= 0xC2 && b0 <= 0xDF) {
            need = 1;
        } else if (b0 >= 0xE0 && b0 <= 0xEF) {
            need = 2;
            if (b0 == 0xE0) {
                lo = 0xA0;
            } else if (b0 == 0xED) {
                hi = 0x9F;
            }
        } else if (b0 >= 0xF0 && b0 <= 0xF4) {
            need = 3;
            if (b0 == 0xF0) {
                lo = 0x90;
            } else if (b0 == 0xF4) {
                hi = 0x8F;
            }
        } else {
            return -1;
        }
        int k = 1;
        for (; k <= need && i + k < end; k++) {
            int c = b[i + k] & 0xFF;
            if (c < lo || c > hi) {
                break;
            }
            lo = 0x80;
            hi = 0xBF;
        }
        return k <= need ? -k : need + 1;
    }

    private static int codePoint(byte[] b, int i, int len) {
        int cp = b[i] & (0x7F >> len);
        for (int k = 1; k < len; k++) {
            cp = (cp << 6) | (b[i + k] & 0x3F);
        }
        return cp;
    }

    /** A decoder for {@link #decodeStrict}; not thread-safe, so each user keeps its own. */
    static CharsetDecoder strictDecoder() {
        return StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
    }

    /** Strict UTF-8 → String, or null if the bytes are not valid UTF-8. */
    static String decodeStrict(CharsetDecoder decoder, byte[] bytes, int off, int len) {
        try {
            CharBuffer chars = decoder.decode(ByteBuffer.wrap(bytes, off, len));
            return chars.toString();
        } catch (CharacterCodingException e) {
            return null;
        }
    }
}
