package dev.gosling.trainer.data;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * Constants of the Megatron "MMIDIDX" v1 binidx format (rwkv7-reference.md §2) and the naming of a pair.
 *
 * <p>A dataset is a pair {@code prefix.bin} (the tokens, little-endian, no header) and {@code prefix.idx}
 * (header, int32 sizes, int64 byte pointers, int64 doc_idx). All integers are little-endian; nothing is padded.
 */
public final class BinIdxFormat {
    /** Bytes of the fixed .idx header: magic (9), version (8), dtype code (1), len (8), doc_count (8). */
    public static final int HEADER_BYTES = 34;
    /** The only version there is. */
    public static final long VERSION = 1;
    /** dtype code of uint16, the only dtype RWKV world-vocab data uses. */
    public static final int DTYPE_UINT16 = 8;
    /** Largest token id a uint16 .bin can hold. */
    public static final int MAX_UINT16_TOKEN = 0xFFFF;

    private static final byte[] MAGIC = {0x4D, 0x4D, 0x49, 0x44, 0x49, 0x44, 0x58, 0x00, 0x00};
    // Indexed by dtype code 1..8, in the order of the RWKV and NeoX readers. Code 7 is float64 there
    // (Megatron-LM reads it as float32); token data never uses either float code.
    private static final int[] ITEM_SIZES = {0, 1, 1, 2, 4, 8, 8, 8, 2};
    private static final String[] DTYPE_NAMES = {
        "", "uint8", "int8", "int16", "int32", "int64", "float64", "float64", "uint16"};

    private BinIdxFormat() {
    }

    /** The 9 magic bytes {@code "MMIDIDX\0\0"} (a fresh copy). */
    public static byte[] magic() {
        return MAGIC.clone();
    }

    static boolean isMagic(byte[] bytes) {
        return Arrays.equals(bytes, MAGIC);
    }

    /** Whether {@code code} is one of the dtype codes 1..8 of the format. */
    public static boolean isKnownDtype(int code) {
        return code >= 1 && code <= 8;
    }

    /** Bytes per element for a dtype code 1..8. */
    public static int itemSize(int dtypeCode) {
        if (!isKnownDtype(dtypeCode)) {
            throw new IllegalArgumentException("unknown binidx dtype code " + dtypeCode);
        }
        return ITEM_SIZES[dtypeCode];
    }

    /** numpy name of a dtype code 1..8, e.g. "uint16" for 8. */
    public static String dtypeName(int dtypeCode) {
        if (!isKnownDtype(dtypeCode)) {
            throw new IllegalArgumentException("unknown binidx dtype code " + dtypeCode);
        }
        return DTYPE_NAMES[dtypeCode];
    }

    /** Whether tokens of this dtype are integers (floats cannot be token ids). */
    public static boolean isIntegerDtype(int dtypeCode) {
        return isKnownDtype(dtypeCode) && dtypeCode != 6 && dtypeCode != 7;
    }

    /** Size in bytes of a well-formed .idx with {@code items} sizes/pointers and {@code docCount} doc_idx entries. */
    public static long idxFileBytes(long items, long docCount) {
        return HEADER_BYTES + 12 * items + 8 * docCount;
    }

    /** The prefix of a pair: {@code data/x} for {@code data/x}, {@code data/x.bin} or {@code data/x.idx}. */
    public static Path prefixOf(Path path) {
        Path name = path.getFileName();
        if (name == null) {
            return path;
        }
        String text = name.toString();
        if (text.length() > 4 && (text.endsWith(".bin") || text.endsWith(".idx"))) {
            return path.resolveSibling(text.substring(0, text.length() - 4));
        }
        return path;
    }

    public static Path binPath(Path prefix) {
        return withSuffix(prefixOf(prefix), ".bin");
    }

    public static Path idxPath(Path prefix) {
        return withSuffix(prefixOf(prefix), ".idx");
    }

    static Path withSuffix(Path prefix, String suffix) {
        return prefix.resolveSibling(prefix.getFileName().toString() + suffix);
    }
}
