package dev.gosling.pipeline.clean;

import java.text.Normalizer;

/**
 * The normalize stage's per-document function: line endings \r\n, \r, NEL (U+0085), LS (U+2028) and PS (U+2029)
 * become \n; ANSI CSI escape sequences (ESC [ parameters intermediates final) go whole when configured; every other
 * control character (Unicode Cc, C0 and C1, DEL) except \n and \t goes; then the text is put in NFC (or NFKC).
 * Controls go before composition so that removing one can never leave a text that is not normalized; NFC and NFKC
 * never create controls, so the result is a fixed point: normalize(normalize(x)) == normalize(x).
 * Plain printable ASCII returns the same String without copying.
 */
public final class TextNormalizer {
    private final NormalizeConfig cfg;
    private final StringBuilder sb = new StringBuilder();

    public TextNormalizer(NormalizeConfig cfg) {
        this.cfg = cfg;
    }

    public String normalize(String s) {
        int n = s.length();
        int i = 0;
        while (i < n) {
            char c = s.charAt(i);
            if ((c < 0x20 && c != '\n' && c != '\t') || c >= 0x7F) {
                break;
            }
            i++;
        }
        if (i == n) {
            return s;
        }
        sb.setLength(0);
        sb.append(s, 0, i);
        boolean nonAscii = false;
        while (i < n) {
            char c = s.charAt(i);
            if (c == '\r') {
                sb.append('\n');
                i += (i + 1 < n && s.charAt(i + 1) == '\n') ? 2 : 1;
                continue;
            }
            if (c == 0x85 || c == 0x2028 || c == 0x2029) {
                sb.append('\n');
                i++;
                continue;
            }
            if (c == 0x1B && cfg.removeAnsiEscapes() && i + 1 < n && s.charAt(i + 1) == '[') {
                int j = i + 2;
                while (j < n && s.charAt(j) >= 0x30 && s.charAt(j) <= 0x3F) {
                    j++; // parameter bytes
                }
                while (j < n && s.charAt(j) >= 0x20 && s.charAt(j) <= 0x2F) {
                    j++; // intermediate bytes
                }
                if (j < n && s.charAt(j) >= 0x40 && s.charAt(j) <= 0x7E) {
                    i = j + 1; // the final byte ends the sequence
                    continue;
                }
                i++; // not a complete sequence: only the ESC (a control) goes
                continue;
            }
            if ((c < 0x20 && c != '\n' && c != '\t') || (c >= 0x7F && c <= 0x9F)) {
                i++;
                continue;
            }
            nonAscii |= c >= 0x80;
            sb.append(c);
            i++;
        }
        String out = sb.toString();
        if (!nonAscii || cfg.form() == NormalizeConfig.Form.NONE) {
            return out;
        }
        Normalizer.Form form = cfg.form() == NormalizeConfig.Form.NFKC ? Normalizer.Form.NFKC : Normalizer.Form.NFC;
        return Normalizer.isNormalized(out, form) ? out : Normalizer.normalize(out, form);
    }
}
