package dev.gosling.pipeline.ingest;

/**
 * Python's str.strip() on UTF-8 bytes: removes the characters for which str.isspace() is true
 * (ASCII \t \n \v \f \r, space, \x1c-\x1f, and U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000).
 */
final class PyStrip {
    private PyStrip() {
    }

    static int leading(byte[] b, int from, int to) {
        while (from < to) {
            int n = spaceAt(b, from, to);
            if (n == 0) {
                break;
            }
            from += n;
        }
        return from;
    }

    static int trailing(byte[] b, int from, int to) {
        while (to > from) {
            int n = spaceEndingAt(b, from, to);
            if (n == 0) {
                break;
            }
            to -= n;
        }
        return to;
    }

    /** Length of the whitespace character starting at i, or 0. */
    private static int spaceAt(byte[] b, int i, int to) {
        int c = b[i] & 0xFF;
        if (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F)) {
            return 1;
        }
        if (c == 0xC2 && i + 1 < to) {
            int c1 = b[i + 1] & 0xFF;
            return c1 == 0x85 || c1 == 0xA0 ? 2 : 0;
        }
        if ((c == 0xE1 || c == 0xE2 || c == 0xE3) && i + 2 < to) {
            return isWide(c, b[i + 1] & 0xFF, b[i + 2] & 0xFF) ? 3 : 0;
        }
        return 0;
    }

    /** Length of the whitespace character ending just before `to`, or 0. */
    private static int spaceEndingAt(byte[] b, int from, int to) {
        int c = b[to - 1] & 0xFF;
        if (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F)) {
            return 1;
        }
        if (to - 2 >= from && (b[to - 2] & 0xFF) == 0xC2 && (c == 0x85 || c == 0xA0)) {
            return 2;
        }
        if (to - 3 >= from && isWide(b[to - 3] & 0xFF, b[to - 2] & 0xFF, c)) {
            return 3;
        }
        return 0;
    }

    private static boolean isWide(int c0, int c1, int c2) {
        int cp = ((c0 & 0x0F) << 12) | ((c1 & 0x3F) << 6) | (c2 & 0x3F);
        if ((c0 & 0xF0) != 0xE0 || (c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80) {
            return false;
        }
        return cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
    }
}
