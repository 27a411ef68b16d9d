package dev.gosling.trainer.train;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.LocalDateTime;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * Python's text forms, so train_log.txt reads exactly like train_temp's: {@code f"{x:.6f}"} (correctly rounded),
 * {@code repr(float)} (shortest round-trip digits), {@code str(datetime.now())}, and the repr of dicts, tuples and
 * strings that {@code vars(args)} prints.
 */
public final class PyFormat {
    private PyFormat() {
    }

    /** A Python tuple in a repr ({@code (0.9, 0.99)}). */
    public record Tuple(List<Object> items) {
    }

    /** {@code f"{x:.{digits}f}"}: the exact binary value rounded half to even, as CPython does. */
    public static String fixed(double x, int digits) {
        if (Double.isNaN(x)) {
            return "nan";
        }
        if (Double.isInfinite(x)) {
            return x > 0 ? "inf" : "-inf";
        }
        String s = new BigDecimal(x).setScale(digits, RoundingMode.HALF_EVEN).toPlainString();
        // Python keeps the sign of a negative number that rounds to zero: f"{-1e-9:.6f}" is "-0.000000".
        return (x < 0 || (x == 0 && 1 / x < 0)) && !s.startsWith("-") ? "-" + s : s;
    }

    /** {@code repr(x)} of a Python float: shortest digits, scientific when the exponent is below −4 or at least 16. */
    public static String repr(double x) {
        if (Double.isNaN(x)) {
            return "nan";
        }
        if (Double.isInfinite(x)) {
            return x > 0 ? "inf" : "-inf";
        }
        if (x == 0) {
            return 1 / x < 0 ? "-0.0" : "0.0";
        }
        BigDecimal shortest = new BigDecimal(Double.toString(Math.abs(x))).stripTrailingZeros();
        String digits = shortest.unscaledValue().toString();
        int exponent = digits.length() - shortest.scale() - 1;
        String sign = x < 0 ? "-" : "";
        if (exponent < -4 || exponent >= 16) {
            String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
            return sign + mantissa + "e" + (exponent < 0 ? "-" : "+") + (Math.abs(exponent) < 10 ? "0" : "") + Math.abs(exponent);
        }
        String plain = shortest.toPlainString();
        return sign + (plain.contains(".") ? plain : plain + ".0");
    }

    /** {@code str(datetime.datetime.now())}: {@code 2025-04-24 02:23:42.481256}, the fraction left out when it is zero. */
    public static String datetime(LocalDateTime t) {
        String base = String.format(java.util.Locale.ROOT, "%04d-%02d-%02d %02d:%02d:%02d", t.getYear(), t.getMonthValue(),
                t.getDayOfMonth(), t.getHour(), t.getMinute(), t.getSecond());
        int micros = t.getNano() / 1000;
        return micros == 0 ? base : base + String.format(java.util.Locale.ROOT, ".%06d", micros);
    }

    /** {@code strftime("%Y-%m-%d-%H-%M-%S")}: train.py's my_timestamp. */
    public static String timestamp(LocalDateTime t) {
        return String.format(java.util.Locale.ROOT, "%04d-%02d-%02d-%02d-%02d-%02d", t.getYear(), t.getMonthValue(),
                t.getDayOfMonth(), t.getHour(), t.getMinute(), t.getSecond());
    }

    /** {@code repr(value)} for str, int, float, bool, None, dict (a Map), tuple ({@link Tuple}) and list. */
    public static String repr(Object value) {
        if (value == null) {
            return "None";
        }
        if (value instanceof String s) {
            return reprString(s);
        }
        if (value instanceof Boolean b) {
            return b ? "True" : "False";
        }
        if (value instanceof Double || value instanceof Float) {
            return repr(((Number) value).doubleValue());
        }
        if (value instanceof Number n) {
            return n.toString();
        }
        if (value instanceof Map<?, ?> map) {
            StringBuilder sb = new StringBuilder("{");
            Iterator<? extends Map.Entry<?, ?>> it = map.entrySet().iterator();
            while (it.hasNext()) {
                Map.Entry<?, ?> e = it.next();
                sb.append(repr(e.getKey())).append(": ").append(repr(e.getValue()));
                if (it.hasNext()) {
                    sb.append(", ");
                }
            }
            return sb.append('}').toString();
        }
        if (value instanceof Tuple tuple) {
            return sequence("(", tuple.items(), tuple.items().size() == 1 ? ",)" : ")");
        }
        if (value instanceof List<?> list) {
            return sequence("[", list, "]");
        }
        throw new IllegalArgumentException("no Python repr for " + value.getClass());
    }

    private static String sequence(String open, List<?> items, String close) {
        StringBuilder sb = new StringBuilder(open);
        for (int i = 0; i < items.size(); i++) {
            if (i > 0) {
                sb.append(", ");
            }
            sb.append(repr(items.get(i)));
        }
        return sb.append(close).toString();
    }

    /** CPython's str repr: single quotes unless the text has a single quote and no double quote. */
    private static String reprString(String s) {
        char quote = s.indexOf('\'') >= 0 && s.indexOf('"') < 0 ? '"' : '\'';
        StringBuilder sb = new StringBuilder().append(quote);
        s.codePoints().forEach(c -> {
            if (c == quote || c == '\\') {
                sb.append('\\').appendCodePoint(c);
            } else if (c == '\n') {
                sb.append("\\n");
            } else if (c == '\r') {
                sb.append("\\r");
            } else if (c == '\t') {
                sb.append("\\t");
            } else if (c < 0x20 || c == 0x7f) {
                sb.append(String.format(java.util.Locale.ROOT, "\\x%02x", c));
            } else {
                sb.appendCodePoint(c);
            }
        });
        return sb.append(quote).toString();
    }
}
