package dev.gosling.trainer.checkpoint;

import java.io.ByteArrayOutputStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * Writes data.pkl of a state dict exactly as torch.save does (pickle protocol 2 from CPython's pickler): an
 * OrderedDict of {@code _rebuild_tensor_v2(persistent storage, 0, size, stride, False, OrderedDict())}, with the
 * pickler's memo (BINPUT/BINGET) reproduced so that the bytes equal torch's for the same tensors.
 */
final class TorchPickleWriter {
    private static final int BATCH_SIZE = 1000; // CPython pickle's _BATCHSIZE for SETITEMS

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private int memoSize;
    private int orderedDictMemo = -1;
    private int rebuildMemo = -1;
    private int storageStringMemo = -1;
    private int cpuStringMemo = -1;
    private final Map<DType, Integer> storageClassMemo = new EnumMap<>(DType.class);

    private TorchPickleWriter() {
    }

    /** The pickle of {@code specs} in order; tensor i's storage is the zip record data/i. */
    static byte[] stateDict(List<TensorSpec> specs) {
        TorchPickleWriter w = new TorchPickleWriter();
        w.write(0x80);
        w.write(2);
        w.orderedDictMemo = w.global("collections", "OrderedDict");
        w.write(')');
        w.write('R');
        w.memoize();
        for (int start = 0; start < specs.size(); start += BATCH_SIZE) {
            int end = Math.min(specs.size(), start + BATCH_SIZE);
            boolean single = end - start == 1;
            if (!single) {
                w.write('(');
            }
            for (int i = start; i < end; i++) {
                w.string(specs.get(i).name());
                w.tensor(specs.get(i), Integer.toString(i));
            }
            w.write(single ? 's' : 'u');
        }
        w.write('.');
        return w.out.toByteArray();
    }

    private void tensor(TensorSpec spec, String storageKey) {
        if (rebuildMemo < 0) {
            rebuildMemo = global("torch._utils", "_rebuild_tensor_v2");
        } else {
            get(rebuildMemo);
        }
        write('(');
        // persistent id: ('storage', torch.XStorage, key, 'cpu', numel)
        write('(');
        storageStringMemo = stringOnce("storage", storageStringMemo);
        Integer classMemo = storageClassMemo.get(spec.dtype());
        if (classMemo == null) {
            storageClassMemo.put(spec.dtype(), global("torch", spec.dtype().torchStorageClass()));
        } else {
            get(classMemo);
        }
        string(storageKey);
        cpuStringMemo = stringOnce("cpu", cpuStringMemo);
        integer(spec.numel());
        write('t');
        memoize();
        write('Q');
        integer(0);
        long[] shape = spec.shape();
        tuple(shape);
        tuple(contiguousStrides(shape));
        write(0x89); // NEWFALSE: requires_grad
        get(orderedDictMemo); // backward_hooks = OrderedDict()
        write(')');
        write('R');
        memoize();
        write('t');
        memoize();
        write('R');
        memoize();
    }

    /** Row-major strides as torch computes them (a zero-size dimension counts as 1). */
    static long[] contiguousStrides(long[] shape) {
        long[] strides = new long[shape.length];
        long stride = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            strides[i] = stride;
            stride *= Math.max(shape[i], 1);
        }
        return strides;
    }

    private void tuple(long[] items) {
        if (items.length == 0) {
            write(')');
            return;
        }
        if (items.length > 3) {
            write('(');
        }
        for (long item : items) {
            integer(item);
        }
        write(items.length == 1 ? 0x85 : items.length == 2 ? 0x86 : items.length == 3 ? 0x87 : 't');
        memoize();
    }

    private int global(String module, String name) {
        write('c');
        writeBytes((module + "\n" + name + "\n").getBytes(StandardCharsets.US_ASCII));
        return memoize();
    }

    private int stringOnce(String value, int memo) {
        if (memo >= 0) {
            get(memo);
            return memo;
        }
        string(value);
        return memoSize - 1;
    }

    private void string(String value) {
        byte[] utf8 = value.getBytes(StandardCharsets.UTF_8);
        write('X');
        int32(utf8.length);
        writeBytes(utf8);
        memoize();
    }

    private void integer(long value) {
        if (value >= 0 && value <= 0xFF) {
            write('K');
            write((int) value);
        } else if (value >= 0 && value <= 0xFFFF) {
            write('M');
            write((int) (value & 0xFF));
            write((int) (value >>> 8));
        } else if (value >= Integer.MIN_VALUE && value <= Integer.MAX_VALUE) {
            write('J');
            int32((int) value);
        } else {
            // LONG1: minimal little-endian two's complement, as pickle.encode_long writes it.
            byte[] bigEndian = BigInteger.valueOf(value).toByteArray();
            write(0x8A);
            write(bigEndian.length);
            for (int i = bigEndian.length - 1; i >= 0; i--) {
                write(bigEndian[i] & 0xFF);
            }
        }
    }

    private int memoize() {
        int index = memoSize++;
        if (index < 256) {
            write('q');
            write(index);
        } else {
            write('r');
            int32(index);
        }
        return index;
    }

    private void get(int index) {
        if (index < 256) {
            write('h');
            write(index);
        } else {
            write('j');
            int32(index);
        }
    }

    private void int32(int v) {
        write(v & 0xFF);
        write((v >>> 8) & 0xFF);
        write((v >>> 16) & 0xFF);
        write((v >>> 24) & 0xFF);
    }

    private void write(int b) {
        out.write(b);
    }

    private void writeBytes(byte[] bytes) {
        out.write(bytes, 0, bytes.length);
    }
}
