package dev.gosling.trainer.data;

import dev.gosling.trainer.GoslingException;

import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * The RWKV "world" tokenizer (rwkv_vocab_v20230424): greedy longest byte match over the UTF-8 text (maximal munch,
 * not BPE), exactly as the reference TRIE_TOKENIZER. Id 0 is the end-of-document token and is never produced by
 * {@link #encode}. Immutable and thread-safe.
 */
public final class WorldTokenizer {
    /** End of document: appended after every document in binidx; not in the vocab file. */
    public static final int EOD = 0;
    /** The model's padded vocab (the uint16 token space); ids above {@link #maxTokenId()} are never produced. */
    public static final int VOCAB_SIZE = 65536;
    /** The bundled vocab, a resource beside this class. */
    public static final String VOCAB_RESOURCE = "rwkv_vocab_v20230424.txt";
    static final String VOCAB_SHA256 = "e6dee3d4e31b4d5c40ac99508ac6c701ceef4bed681bf2167ce9a908552bca89";

    /** Bytes converted from UTF-16 per step of {@link #encode(CharSequence, IntList)}; small enough to stay in L1. */
    private static final int CHUNK_BYTES = 16 * 1024;
    private static final ThreadLocal<byte[][]> SCRATCH = ThreadLocal.withInitial(() -> new byte[1][]);

    private final String sourceName;
    private final DoubleArrayTrie trie;
    /** Token id's bytes are tokenData[tokenStart[id], tokenStart[id + 1]). */
    private final byte[] tokenData;
    private final int[] tokenStart;
    private final int maxTokenId;
    private final int maxTokenBytes;

    private WorldTokenizer(String sourceName, byte[][] tokens) {
        this.sourceName = sourceName;
        this.trie = DoubleArrayTrie.build(tokens, sourceName);
        this.maxTokenId = tokens.length - 1;
        int total = 0;
        int longest = 0;
        for (int id = 1; id <= maxTokenId; id++) {
            total += tokens[id].length;
            longest = Math.max(longest, tokens[id].length);
        }
        this.maxTokenBytes = longest;
        this.tokenData = new byte[total];
        this.tokenStart = new int[maxTokenId + 2];
        int p = 0;
        for (int id = 1; id <= maxTokenId; id++) {
            tokenStart[id] = p;
            System.arraycopy(tokens[id], 0, tokenData, p, tokens[id].length);
            p += tokens[id].length;
        }
        tokenStart[maxTokenId + 1] = p;
    }

    /** The bundled rwkv_vocab_v20230424 tokenizer, parsed once on first use. */
    public static WorldTokenizer world() {
        if (Bundled.FAILURE != null) {
            throw new GoslingException(Bundled.FAILURE.getMessage(), Bundled.FAILURE);
        }
        return Bundled.INSTANCE;
    }

    /**
     * Parses a vocab in the RWKV format ({@code <id> <python literal> <byte length>} per line, LF or CRLF).
     * A malformed line is a {@link GoslingException} naming {@code sourceName:line}. Does not close {@code in}.
     */
    public static WorldTokenizer parse(InputStream in, String sourceName) {
        return new WorldTokenizer(sourceName, VocabParser.parse(in, sourceName));
    }

    /** {@value #VOCAB_SIZE}: the padded model vocab. */
    public int vocabSize() {
        return VOCAB_SIZE;
    }

    /** The largest id in the vocab (65529 for the world vocab); ids 1..maxTokenId are tokens. */
    public int maxTokenId() {
        return maxTokenId;
    }

    /** The length in bytes of the longest token (128 for the world vocab). */
    public int maxTokenBytes() {
        return maxTokenBytes;
    }

    /** Where the vocab came from (the resource or file name given to {@link #parse}). */
    public String sourceName() {
        return sourceName;
    }

    /** A copy of the bytes of token {@code id} (1..maxTokenId). */
    public byte[] tokenBytes(int id) {
        checkId(id, -1);
        byte[] out = new byte[tokenStart[id + 1] - tokenStart[id]];
        System.arraycopy(tokenData, tokenStart[id], out, 0, out.length);
        return out;
    }

    /** The token ids of a text (no EOD appended). A lone surrogate is an {@link InvalidTextException}. */
    public int[] encode(String text) {
        IntList out = new IntList(Math.max(16, text.length() / 3));
        encode(text, out);
        return out.toArray();
    }

    /** The token ids of UTF-8 bytes (any bytes tokenize: every byte is a token). */
    public int[] encodeUtf8(byte[] utf8, int off, int len) {
        IntList out = new IntList(Math.max(16, len / 3));
        encodeUtf8(utf8, off, len, out);
        return out.toArray();
    }

    /** Appends the token ids of {@code utf8[off, off + len)} to {@code out}; returns how many were appended. */
    public int encodeUtf8(byte[] utf8, int off, int len, IntList out) {
        java.util.Objects.checkFromIndexSize(off, len, utf8.length);
        int before = out.size();
        trie.encode(utf8, off, off + len, off + len, out);
        return out.size() - before;
    }

    /**
     * Appends the token ids of a text to {@code out} and returns how many were appended, converting to UTF-8 through a
     * small per-thread buffer (no allocation per document). On a lone surrogate ({@link InvalidTextException})
     * {@code out} is left as it was.
     */
    public int encode(CharSequence text, IntList out) {
        int before = out.size();
        byte[] buf = scratch(Math.max(CHUNK_BYTES, 4 * maxTokenBytes + 8));
        int n = text.length();
        int charPos = 0;
        int filled = 0;
        try {
            while (true) {
                long r = Utf8.encodeSome(text, charPos, buf, filled, buf.length);
                charPos = (int) (r >>> 32);
                filled = (int) r;
                if (charPos == n) {
                    trie.encode(buf, 0, filled, filled, out);
                    return out.size() - before;
                }
                // Match only where a whole longest token fits in the buffer; the tail waits for the next chunk.
                int stop = filled - maxTokenBytes + 1;
                int pos = trie.encode(buf, 0, stop, filled, out);
                System.arraycopy(buf, pos, buf, 0, filled - pos);
                filled -= pos;
            }
        } catch (InvalidTextException e) {
            out.setSize(before);
            throw e;
        }
    }

    /** Strict UTF-8 of a text: a lone surrogate is an {@link InvalidTextException} naming its char index. */
    public static byte[] utf8(String text) {
        return Utf8.encode(text);
    }

    /**
     * The text of token ids. Bytes that are not valid UTF-8 (e.g. a character split between two slices) become
     * U+FFFD, as Python's {@code decode('utf-8', errors='replace')}. EOD (0) or an id outside the vocab is an error.
     */
    public String decode(int[] ids) {
        byte[] bytes = decodeBytes(ids, 0, ids.length);
        return Utf8.decodeReplacing(bytes, 0, bytes.length);
    }

    /** The concatenated bytes of {@code ids[off, off + len)}; EOD (0) or an id outside the vocab is an error. */
    public byte[] decodeBytes(int[] ids, int off, int len) {
        java.util.Objects.checkFromIndexSize(off, len, ids.length);
        int total = 0;
        for (int i = off; i < off + len; i++) {
            checkId(ids[i], i);
            total += tokenStart[ids[i] + 1] - tokenStart[ids[i]];
        }
        byte[] out = new byte[total];
        int p = 0;
        for (int i = off; i < off + len; i++) {
            int start = tokenStart[ids[i]];
            int length = tokenStart[ids[i] + 1] - start;
            System.arraycopy(tokenData, start, out, p, length);
            p += length;
        }
        return out;
    }

    private void checkId(int id, int index) {
        if (id >= 1 && id <= maxTokenId) {
            return;
        }
        String at = index >= 0 ? " at index " + index : "";
        if (id == EOD) {
            throw new GoslingException("token id 0 (end of document)" + at + " has no text;"
                    + " split the sequence at EOD before decoding");
        }
        throw new GoslingException("token id " + id + at + " is outside the vocab " + sourceName + " (1.."
                + maxTokenId + "); the ids were not made by this tokenizer");
    }

    private static byte[] scratch(int size) {
        byte[][] holder = SCRATCH.get();
        if (holder[0] == null || holder[0].length < size) {
            holder[0] = new byte[size];
        }
        return holder[0];
    }

    @Override
    public String toString() {
        return "WorldTokenizer(" + sourceName + ", " + maxTokenId + " tokens)";
    }

    /** Lazy holder: the bundled vocab is read and checked on the first call to {@link #world()}. */
    private static final class Bundled {
        static final WorldTokenizer INSTANCE;
        static final GoslingException FAILURE;

        static {
            WorldTokenizer instance = null;
            GoslingException failure = null;
            try {
                instance = loadBundled();
            } catch (GoslingException e) {
                failure = e;
            }
            INSTANCE = instance;
            FAILURE = failure;
        }

        private static WorldTokenizer loadBundled() {
            byte[] bytes;
            try (InputStream in = WorldTokenizer.class.getResourceAsStream(VOCAB_RESOURCE)) {
                if (in == null) {
                    throw new GoslingException("the bundled vocab " + VOCAB_RESOURCE
                            + " is missing from the classpath; rebuild the jar");
                }
                bytes = in.readAllBytes();
            } catch (IOException e) {
                throw new GoslingException("cannot read the bundled vocab " + VOCAB_RESOURCE + ": " + e.getMessage()
                        + "; rebuild the jar", e);
            }
            String sha = sha256(bytes);
            if (!sha.equals(VOCAB_SHA256)) {
                throw new GoslingException("the bundled vocab " + VOCAB_RESOURCE + " has sha256 " + sha
                        + ", expected " + VOCAB_SHA256 + "; the jar is damaged, rebuild it");
            }
            return parse(new java.io.ByteArrayInputStream(bytes), VOCAB_RESOURCE);
        }

        private static String sha256(byte[] bytes) {
            try {
                return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException("every Java runtime has SHA-256", e);
            }
        }
    }
}
