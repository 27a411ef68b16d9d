package dev.gosling.trainer.model;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.function.Consumer;

/**
 * Incremental UTF-8 decoding for streamed tokens: bytes in, whole characters out. A character split over two writes
 * is held back until it completes; malformed bytes become U+FFFD (Python's {@code errors='replace'}), and an
 * incomplete sequence left at {@link #finish} becomes one U+FFFD.
 */
final class Utf8Stream {
    private final CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPLACE).onUnmappableCharacter(CodingErrorAction.REPLACE);
    private final Consumer<String> sink;
    private final CharBuffer chars = CharBuffer.allocate(256);
    private ByteBuffer pending = ByteBuffer.allocate(64);

    Utf8Stream(Consumer<String> sink) {
        this.sink = sink;
    }

    /** Decodes what it can of the bytes so far and passes it on (nothing when only a partial character is held). */
    void write(byte[] bytes) {
        if (pending.remaining() < bytes.length) {
            ByteBuffer bigger = ByteBuffer.allocate(pending.position() + bytes.length + 64);
            pending.flip();
            bigger.put(pending);
            pending = bigger;
        }
        pending.put(bytes);
        pending.flip();
        drain(false);
        pending.compact();
    }

    /** End of input: flushes whatever is held. */
    void finish() {
        pending.flip();
        drain(true);
        decoder.flush(chars);
        emit();
        pending.clear();
        decoder.reset();
    }

    private void drain(boolean endOfInput) {
        while (decoder.decode(pending, chars, endOfInput).isOverflow()) {
            emit();
        }
        emit();
    }

    private void emit() {
        if (chars.position() > 0) {
            chars.flip();
            sink.accept(chars.toString());
            chars.clear();
        }
    }
}
