package dev.gosling.trainer.checkpoint;

import dev.gosling.trainer.GoslingException;

import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A pickle reader that only rebuilds tensors. It interprets the opcodes of protocols 0-5 that plain data and
 * torch.save use, but a global may only name collections.OrderedDict, torch._utils._rebuild_tensor_v2,
 * torch._utils._rebuild_parameter or a bf16/fp16/fp32 storage class, and those are never called: REDUCE builds
 * plain Java values from them. Nothing in the pickle can run code or construct other objects.
 */
final class RestrictedUnpickler {

    /** Python None. */
    enum None { NONE }

    /** The only globals a pickle may name. */
    enum Global {
        ORDERED_DICT("collections", "OrderedDict"),
        REBUILD_TENSOR_V2("torch._utils", "_rebuild_tensor_v2"),
        REBUILD_PARAMETER("torch._utils", "_rebuild_parameter"),
        STORAGE_BF16("torch", "BFloat16Storage"),
        STORAGE_F16("torch", "HalfStorage"),
        STORAGE_F32("torch", "FloatStorage");

        final String module;
        final String name;

        Global(String module, String name) {
            this.module = module;
            this.name = name;
        }

        DType storageDType() {
            switch (this) {
                case STORAGE_BF16:
                    return DType.BF16;
                case STORAGE_F16:
                    return DType.F16;
                case STORAGE_F32:
                    return DType.F32;
                default:
                    return null;
            }
        }
    }

    /** A Python tuple. */
    static final class Tuple {
        final List<Object> items;

        Tuple(List<Object> items) {
            this.items = List.copyOf(items);
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Tuple && items.equals(((Tuple) o).items);
        }

        @Override
        public int hashCode() {
            return items.hashCode();
        }
    }

    /** A Python dict or OrderedDict, with the attributes a BUILD gave it (an OrderedDict's _metadata). */
    static final class Dict {
        final boolean ordered;
        final LinkedHashMap<Object, Object> items = new LinkedHashMap<>();
        final Map<Object, Object> attributes = new LinkedHashMap<>();

        Dict(boolean ordered) {
            this.ordered = ordered;
        }
    }

    /** persistent_load(('storage', torch.XStorage, key, location, numel)): zip record data/key. */
    static final class StorageRef {
        final DType dtype;
        final String key;
        final long numel;

        StorageRef(DType dtype, String key, long numel) {
            this.dtype = dtype;
            this.key = key;
            this.numel = numel;
        }
    }

    /** _rebuild_tensor_v2(storage, offset, size, stride, ...): a strided view of a storage. */
    static final class TensorRef {
        final StorageRef storage;
        final long offset;
        final long[] size;
        final long[] stride;

        TensorRef(StorageRef storage, long offset, long[] size, long[] stride) {
            this.storage = storage;
            this.offset = offset;
            this.size = size;
            this.stride = stride;
        }
    }

    private final byte[] in;
    private final String source;
    private int pos;
    private ArrayList<Object> stack = new ArrayList<>();
    private final ArrayList<ArrayList<Object>> metastack = new ArrayList<>();
    private final Map<Long, Object> memo = new HashMap<>();
    private final Map<String, StorageRef> storages = new HashMap<>();

    private RestrictedUnpickler(byte[] in, String source) {
        this.in = in;
        this.source = source;
    }

    /** Unpickles {@code pickle}; {@code source} names the file in error messages. */
    static Object load(byte[] pickle, String source) {
        return new RestrictedUnpickler(pickle, source).run();
    }

    private Object run() {
        while (true) {
            if (pos >= in.length) {
                throw corrupt("pickle ends without STOP");
            }
            int start = pos;
            int op = in[pos++] & 0xFF;
            switch (op) {
                case 0x80: { // PROTO
                    int version = u8();
                    if (version > 5) {
                        throw corrupt("pickle protocol " + version + " is newer than 5", start);
                    }
                    break;
                }
                case 0x95: // FRAME: a length hint only
                    need(8);
                    pos += 8;
                    break;
                case '.': // STOP
                    return pop(start);
                case '(': // MARK
                    metastack.add(stack);
                    stack = new ArrayList<>();
                    break;
                case '0': // POP
                    if (stack.isEmpty()) {
                        popMark(start);
                    } else {
                        pop(start);
                    }
                    break;
                case '1': // POP_MARK
                    popMark(start);
                    break;
                case '2': // DUP
                    push(top(start));
                    break;
                case 'N':
                    push(None.NONE);
                    break;
                case 0x88:
                    push(Boolean.TRUE);
                    break;
                case 0x89:
                    push(Boolean.FALSE);
                    break;
                case 'J': // BININT
                    push((long) le32());
                    break;
                case 'K': // BININT1
                    push((long) u8());
                    break;
                case 'M': // BININT2
                    push((long) (u8() | (u8() << 8)));
                    break;
                case 0x8A: // LONG1
                    push(longBytes(u8(), start));
                    break;
                case 0x8B: // LONG4
                    push(longBytes(length(le32(), start), start));
                    break;
                case 'G': { // BINFLOAT, big-endian
                    need(8);
                    long bits = 0;
                    for (int i = 0; i < 8; i++) {
                        bits = (bits << 8) | (in[pos++] & 0xFF);
                    }
                    push(Double.longBitsToDouble(bits));
                    break;
                }
                case 'X': // BINUNICODE
                case 'T': // BINSTRING (Python 2 str; torch.load decodes it as UTF-8)
                    push(utf8(length(le32(), start)));
                    break;
                case 0x8C: // SHORT_BINUNICODE
                case 'U': // SHORT_BINSTRING
                    push(utf8(u8()));
                    break;
                case 0x8D: // BINUNICODE8
                    push(utf8(length(le64(), start)));
                    break;
                case 'B': // BINBYTES
                    push(bytes(length(le32(), start)));
                    break;
                case 'C': // SHORT_BINBYTES
                    push(bytes(u8()));
                    break;
                case 0x8E: // BINBYTES8
                    push(bytes(length(le64(), start)));
                    break;
                case ')':
                    push(new Tuple(List.of()));
                    break;
                case 't':
                    push(new Tuple(popMark(start)));
                    break;
                case 0x85:
                case 0x86:
                case 0x87: {
                    int n = op - 0x84;
                    if (stack.size() < n) {
                        throw corrupt("stack underflow", start);
                    }
                    List<Object> items = new ArrayList<>(stack.subList(stack.size() - n, stack.size()));
                    stack.subList(stack.size() - n, stack.size()).clear();
                    push(new Tuple(items));
                    break;
                }
                case ']':
                    push(new ArrayList<>());
                    break;
                case 'l':
                    push(new ArrayList<>(popMark(start)));
                    break;
                case 'a': {
                    Object value = pop(start);
                    list(top(start), start).add(value);
                    break;
                }
                case 'e': {
                    List<Object> items = popMark(start);
                    list(top(start), start).addAll(items);
                    break;
                }
                case '}':
                    push(new Dict(false));
                    break;
                case 'd': {
                    Dict dict = new Dict(false);
                    setItems(dict, popMark(start), start);
                    push(dict);
                    break;
                }
                case 's': {
                    Object value = pop(start);
                    Object key = pop(start);
                    setItems(dict(top(start), start), List.of(key, value), start);
                    break;
                }
                case 'u': {
                    List<Object> items = popMark(start);
                    setItems(dict(top(start), start), items, start);
                    break;
                }
                case 'c': { // GLOBAL
                    String module = line(start);
                    String name = line(start);
                    push(global(module, name));
                    break;
                }
                case 0x93: { // STACK_GLOBAL
                    Object name = pop(start);
                    Object module = pop(start);
                    if (!(module instanceof String) || !(name instanceof String)) {
                        throw corrupt("STACK_GLOBAL needs two strings", start);
                    }
                    push(global((String) module, (String) name));
                    break;
                }
                case 'i': { // INST imports and calls a class like GLOBAL + REDUCE
                    String module = line(start);
                    String name = line(start);
                    throw refuse(module + "." + name);
                }
                case 0x81:
                case 0x92:
                case 'o':
                    throw new GoslingException(source + ": refuses to load: pickle opcode "
                            + (op == 'o' ? "OBJ" : op == 0x81 ? "NEWOBJ" : "NEWOBJ_EX")
                            + " constructs an object (only tensor rebuild functions are allowed)");
                case 0x82:
                case 0x83:
                case 0x84:
                    throw new GoslingException(source + ": refuses to load: pickle uses the extension registry "
                            + "(only tensor rebuild functions are allowed)");
                case 'R': { // REDUCE
                    Object args = pop(start);
                    Object callable = pop(start);
                    push(reduce(callable, args, start));
                    break;
                }
                case 'b': { // BUILD
                    Object state = pop(start);
                    Object target = top(start);
                    if (!(target instanceof Dict) || !(state instanceof Dict)) {
                        throw corrupt("BUILD sets state on something other than an OrderedDict", start);
                    }
                    ((Dict) target).attributes.putAll(((Dict) state).items);
                    break;
                }
                case 'Q': // BINPERSID
                    push(persistentLoad(pop(start), start));
                    break;
                case 'p': // PUT (text)
                    memo.put(parseIndex(line(start), start), top(start));
                    break;
                case 'q':
                    memo.put((long) u8(), top(start));
                    break;
                case 'r':
                    memo.put(le32() & 0xFFFFFFFFL, top(start));
                    break;
                case 0x94: // MEMOIZE
                    memo.put((long) memo.size(), top(start));
                    break;
                case 'g':
                    push(memoGet(parseIndex(line(start), start), start));
                    break;
                case 'h':
                    push(memoGet(u8(), start));
                    break;
                case 'j':
                    push(memoGet(le32() & 0xFFFFFFFFL, start));
                    break;
                default:
                    throw corrupt(String.format("unsupported pickle opcode 0x%02x", op), start);
            }
        }
    }

    private Object global(String module, String name) {
        for (Global g : Global.values()) {
            if (g.module.equals(module) && g.name.equals(name)) {
                return g;
            }
        }
        if (module.equals("torch") && name.endsWith("Storage")) {
            throw new GoslingException(source + ": tensor type torch." + name + " is not supported (Gosling reads "
                    + "bf16, fp16 and fp32 tensors; convert with .to(torch.bfloat16) and re-save)");
        }
        if (module.equals("torch._utils") && name.startsWith("_rebuild_")) {
            throw new GoslingException(source + ": tensor kind torch._utils." + name + " is not supported (Gosling "
                    + "reads dense bf16, fp16 and fp32 tensors)");
        }
        throw refuse(module + "." + name);
    }

    private GoslingException refuse(String qualifiedName) {
        return new GoslingException(source + ": refuses to load: pickle references " + qualifiedName
                + " (only tensor rebuild functions are allowed)");
    }

    private Object reduce(Object callable, Object args, int at) {
        if (!(callable instanceof Global)) {
            throw corrupt("REDUCE on something that is not a global", at);
        }
        if (!(args instanceof Tuple)) {
            throw corrupt("REDUCE arguments are not a tuple", at);
        }
        List<Object> a = ((Tuple) args).items;
        Global g = (Global) callable;
        switch (g) {
            case ORDERED_DICT:
                if (!a.isEmpty()) {
                    throw corrupt("OrderedDict called with arguments", at);
                }
                return new Dict(true);
            case REBUILD_TENSOR_V2: {
                // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                if (a.size() != 6 && a.size() != 7) {
                    throw corrupt("_rebuild_tensor_v2 takes 6 or 7 arguments, got " + a.size(), at);
                }
                if (!(a.get(0) instanceof StorageRef) || !(a.get(4) instanceof Boolean) || !(a.get(5) instanceof Dict)) {
                    throw corrupt("_rebuild_tensor_v2 arguments have unexpected types", at);
                }
                long offset = nonNegative(a.get(1), "storage offset", at);
                long[] size = longs(a.get(2), "size", at);
                long[] stride = longs(a.get(3), "stride", at);
                if (size.length != stride.length) {
                    throw corrupt("size and stride differ in length", at);
                }
                return new TensorRef((StorageRef) a.get(0), offset, size, stride);
            }
            case REBUILD_PARAMETER:
                // (data, requires_grad, backward_hooks): a Parameter is its data for us.
                if (a.size() != 3 || !(a.get(0) instanceof TensorRef)) {
                    throw corrupt("_rebuild_parameter arguments have unexpected types", at);
                }
                return a.get(0);
            default:
                throw refuse(g.module + "." + g.name + " called as a function");
        }
    }

    private StorageRef persistentLoad(Object pid, int at) {
        if (!(pid instanceof Tuple) || ((Tuple) pid).items.size() != 5) {
            throw corrupt("persistent id is not a 5-tuple", at);
        }
        List<Object> p = ((Tuple) pid).items;
        if (!"storage".equals(p.get(0)) || !(p.get(1) instanceof Global) || ((Global) p.get(1)).storageDType() == null
                || !(p.get(2) instanceof String) || !(p.get(3) instanceof String)) {
            throw corrupt("persistent id is not ('storage', type, key, location, numel)", at);
        }
        DType dtype = ((Global) p.get(1)).storageDType();
        String key = (String) p.get(2);
        if (!key.matches("[A-Za-z0-9_]{1,64}")) {
            throw corrupt("storage key '" + key + "' is not a plain record name", at);
        }
        long numel = nonNegative(p.get(4), "storage size", at);
        StorageRef known = storages.get(key);
        if (known != null) {
            if (known.dtype != dtype) {
                throw corrupt("storage " + key + " is used both as " + known.dtype + " and " + dtype, at);
            }
            return known;
        }
        StorageRef ref = new StorageRef(dtype, key, numel);
        storages.put(key, ref);
        return ref;
    }

    private void setItems(Dict dict, List<Object> flat, int at) {
        if (flat.size() % 2 != 0) {
            throw corrupt("odd number of items for a dict", at);
        }
        for (int i = 0; i < flat.size(); i += 2) {
            Object key = flat.get(i);
            if (key instanceof Dict || key instanceof List || key instanceof TensorRef) {
                throw corrupt("unhashable dict key", at);
            }
            dict.items.put(key, flat.get(i + 1));
        }
    }

    @SuppressWarnings("unchecked")
    private List<Object> list(Object o, int at) {
        if (!(o instanceof ArrayList)) {
            throw corrupt("APPEND to something that is not a list", at);
        }
        return (List<Object>) o;
    }

    private Dict dict(Object o, int at) {
        if (!(o instanceof Dict)) {
            throw corrupt("SETITEM on something that is not a dict", at);
        }
        return (Dict) o;
    }

    private long nonNegative(Object o, String what, int at) {
        if (!(o instanceof Long) || (Long) o < 0) {
            throw corrupt(what + " is not a non-negative integer", at);
        }
        return (Long) o;
    }

    private long[] longs(Object o, String what, int at) {
        if (!(o instanceof Tuple)) {
            throw corrupt(what + " is not a tuple", at);
        }
        List<Object> items = ((Tuple) o).items;
        long[] out = new long[items.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = nonNegative(items.get(i), what + " entry", at);
        }
        return out;
    }

    private Object memoGet(long index, int at) {
        Object value = memo.get(index);
        if (value == null) {
            throw corrupt("memo entry " + index + " used before it was stored", at);
        }
        return value;
    }

    private long parseIndex(String text, int at) {
        try {
            return Long.parseLong(text.trim());
        } catch (NumberFormatException e) {
            throw corrupt("bad memo index '" + text + "'", at);
        }
    }

    private Object longBytes(int n, int at) {
        need(n);
        if (n == 0) {
            return 0L;
        }
        byte[] bigEndian = new byte[n];
        for (int i = 0; i < n; i++) {
            bigEndian[n - 1 - i] = in[pos + i];
        }
        pos += n;
        BigInteger value = new BigInteger(bigEndian);
        if (value.bitLength() < 64) {
            return value.longValue();
        }
        throw corrupt("integer too large", at);
    }

    private void push(Object o) {
        stack.add(Objects.requireNonNull(o));
    }

    private Object pop(int at) {
        if (stack.isEmpty()) {
            throw corrupt("stack underflow", at);
        }
        return stack.remove(stack.size() - 1);
    }

    private Object top(int at) {
        if (stack.isEmpty()) {
            throw corrupt("stack underflow", at);
        }
        return stack.get(stack.size() - 1);
    }

    private List<Object> popMark(int at) {
        if (metastack.isEmpty()) {
            throw corrupt("no MARK to pop to", at);
        }
        List<Object> items = stack;
        stack = metastack.remove(metastack.size() - 1);
        return items;
    }

    private int u8() {
        need(1);
        return in[pos++] & 0xFF;
    }

    private int le32() {
        need(4);
        int v = (in[pos] & 0xFF) | (in[pos + 1] & 0xFF) << 8 | (in[pos + 2] & 0xFF) << 16 | (in[pos + 3] & 0xFF) << 24;
        pos += 4;
        return v;
    }

    private long le64() {
        need(8);
        long v = 0;
        for (int i = 7; i >= 0; i--) {
            v = (v << 8) | (in[pos + i] & 0xFF);
        }
        pos += 8;
        return v;
    }

    private int length(long n, int at) {
        if (n < 0 || n > in.length - pos) {
            throw corrupt("length " + n + " runs past the end of the pickle", at);
        }
        return (int) n;
    }

    private String utf8(int n) {
        return new String(bytes(n), StandardCharsets.UTF_8);
    }

    private byte[] bytes(int n) {
        need(n);
        byte[] out = Arrays.copyOfRange(in, pos, pos + n);
        pos += n;
        return out;
    }

    private String line(int at) {
        int end = pos;
        while (end < in.length && in[end] != '\n') {
            end++;
        }
        if (end >= in.length) {
            throw corrupt("unterminated text argument", at);
        }
        String s = new String(in, pos, end - pos, StandardCharsets.UTF_8);
        pos = end + 1;
        return s;
    }

    private void need(int n) {
        if (n < 0 || pos + n > in.length) {
            throw corrupt("pickle is truncated", pos);
        }
    }

    private GoslingException corrupt(String what) {
        return corrupt(what, pos);
    }

    private GoslingException corrupt(String what, int at) {
        return new GoslingException(source + ": corrupt data.pkl: " + what + " at byte " + at
                + " (re-save the checkpoint with torch.save)");
    }
}
