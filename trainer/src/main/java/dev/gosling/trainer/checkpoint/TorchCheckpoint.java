package dev.gosling.trainer.checkpoint;

import dev.gosling.trainer.GoslingException;
import dev.gosling.trainer.checkpoint.RestrictedUnpickler.Dict;
import dev.gosling.trainer.checkpoint.RestrictedUnpickler.StorageRef;
import dev.gosling.trainer.checkpoint.RestrictedUnpickler.TensorRef;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * PyTorch checkpoints (.pth) in the zip format of torch.save (PyTorch 1.6 and later), as the RWKV trainer, the rwkv
 * package and RWKV Runner read them.
 *
 * <p>Writing reproduces torch.save byte for byte in structure: records {@code data.pkl}, {@code .format_version},
 * {@code .storage_alignment}, {@code byteorder}, {@code data/0..n-1}, {@code version}, {@code .data/serialization_id}
 * under a folder named after the file, each STORED and 64-byte aligned, ZIP64 end records always (files over
 * 4 GiB work), and a protocol-2 pickle of an OrderedDict of {@code _rebuild_tensor_v2} calls. Tensors are streamed
 * from their buffers.
 *
 * <p>Reading unpickles with a restricted unpickler that only rebuilds tensors and never runs code; it accepts
 * OrderedDict or dict of bf16/fp16/fp32 tensors (Parameters too), honours storage offsets, strides and shared
 * storages, maps storages instead of copying them, and checks every CRC. Keys are returned as stored: a ZeRO-3
 * {@code _forward_module.} prefix is the loader's to strip.
 */
public final class TorchCheckpoint {
    private TorchCheckpoint() {
    }

    /** Writes {@code stateDict} to {@code file} atomically (temporary file, fsync, rename). */
    public static void write(Path file, StateDict stateDict) {
        String archive = archiveNameFor(file);
        AtomicFiles.write(file, channel -> write(channel, archive, stateDict));
    }

    /**
     * Streams {@code stateDict} as a torch zip to {@code out}, whose first byte is the archive's first byte. Not
     * atomic: {@link #write(Path, StateDict)} is the variant for files.
     */
    public static void write(WritableByteChannel out, String archiveName, StateDict stateDict) throws IOException {
        if (archiveName.isEmpty() || archiveName.contains("/") || archiveName.equals("..")) {
            throw new IllegalArgumentException("archive name must be one plain folder name: '" + archiveName + "'");
        }
        List<NamedTensor> tensors = stateDict.tensors();
        List<TensorSpec> specs = new ArrayList<>(tensors.size());
        tensors.forEach(t -> specs.add(t.spec()));
        TorchZipWriter zip = new TorchZipWriter(out, archiveName);
        zip.writeRecord("data.pkl", TorchPickleWriter.stateDict(specs));
        // As torch >= 2.7: storages are in key order ("1"), each data start is 64-byte aligned.
        zip.writeRecord(".format_version", ascii("1"));
        zip.writeRecord(".storage_alignment", ascii(Integer.toString(TorchZipWriter.ALIGNMENT)));
        zip.writeRecord("byteorder", ascii("little"));
        for (int i = 0; i < tensors.size(); i++) {
            zip.writeRecord("data/" + i, tensors.get(i).data());
        }
        zip.finish();
    }

    /**
     * The folder name torch.save gives the archive: the file name without its last extension
     * ("rwkv-final.pth" → "rwkv-final"), or "archive" where that leaves nothing usable.
     */
    public static String archiveNameFor(Path file) {
        String name = file.getFileName().toString();
        int dot = name.lastIndexOf('.');
        String stem = dot >= 0 ? name.substring(0, dot) : name;
        return stem.isEmpty() || stem.equals(".") || stem.equals("..") ? "archive" : stem;
    }

    /** Reads every tensor, in the pickle's key order. */
    public static StateDict read(Path file) {
        try (TorchZipReader zip = TorchZipReader.open(file)) {
            List<Map.Entry<String, TensorRef>> refs = tensorRefs(file, zip);
            Map<String, ByteBuffer> storages = new HashMap<>();
            StateDict dict = new StateDict();
            for (Map.Entry<String, TensorRef> e : refs) {
                TensorRef ref = e.getValue();
                ByteBuffer storage = storages.get(ref.storage.key);
                if (storage == null) {
                    storage = zip.map(storageEntry(file, zip, ref.storage), true);
                    storages.put(ref.storage.key, storage);
                }
                dict.add(materialise(file, e.getKey(), ref, storage));
            }
            return dict;
        } catch (IOException e) {
            throw new GoslingException(file + ": cannot read: " + AtomicFiles.describe(e), e);
        }
    }

    /** Names, dtypes and shapes from data.pkl and the zip directory, without reading tensor data. */
    public static List<TensorSpec> listTensors(Path file) {
        try (TorchZipReader zip = TorchZipReader.open(file)) {
            List<TensorSpec> specs = new ArrayList<>();
            for (Map.Entry<String, TensorRef> e : tensorRefs(file, zip)) {
                TensorRef ref = e.getValue();
                checkView(file, e.getKey(), ref, storageEntry(file, zip, ref.storage).size);
                specs.add(new TensorSpec(e.getKey(), ref.storage.dtype, ref.size));
            }
            return specs;
        } catch (IOException e) {
            throw new GoslingException(file + ": cannot read: " + AtomicFiles.describe(e), e);
        }
    }

    private static List<Map.Entry<String, TensorRef>> tensorRefs(Path file, TorchZipReader zip) throws IOException {
        TorchZipReader.Entry pickle = zip.find("data.pkl").orElseThrow(() -> zip.corrupt("no data.pkl record"));
        zip.find("byteorder").ifPresent(entry -> {
            String order;
            try {
                order = new String(zip.readSmall(entry), StandardCharsets.US_ASCII).trim();
            } catch (IOException e) {
                throw new GoslingException(file + ": cannot read: " + AtomicFiles.describe(e), e);
            }
            if (!order.equals("little")) {
                throw new GoslingException(file + ": byte order is '" + order + "'; Gosling reads little-endian "
                        + "checkpoints only (re-save it on a little-endian machine)");
            }
        });
        Object root = RestrictedUnpickler.load(zip.readSmall(pickle), file.toString());
        if (!(root instanceof Dict)) {
            throw new GoslingException(file + ": holds a Python " + pythonType(root) + ", not a state dict of tensors "
                    + "(save model.state_dict() with torch.save)");
        }
        List<Map.Entry<String, TensorRef>> refs = new ArrayList<>();
        for (Map.Entry<Object, Object> e : ((Dict) root).items.entrySet()) {
            if (!(e.getKey() instanceof String)) {
                throw new GoslingException(file + ": state dict has a non-string key " + pythonType(e.getKey())
                        + " (save model.state_dict() with torch.save)");
            }
            if (!(e.getValue() instanceof TensorRef)) {
                throw new GoslingException(file + ": key '" + e.getKey() + "' holds a Python " + pythonType(e.getValue())
                        + ", not a tensor (save model.state_dict() with torch.save)");
            }
            refs.add(Map.entry((String) e.getKey(), (TensorRef) e.getValue()));
        }
        return refs;
    }

    private static TorchZipReader.Entry storageEntry(Path file, TorchZipReader zip, StorageRef storage) {
        TorchZipReader.Entry entry = zip.find("data/" + storage.key)
                .orElseThrow(() -> zip.corrupt("storage data/" + storage.key + " is missing"));
        long expected = Math.multiplyExact(storage.numel, (long) storage.dtype.elementSize());
        if (entry.size != expected) {
            throw zip.corrupt("storage data/" + storage.key + " holds " + entry.size + " bytes, the pickle says "
                    + storage.numel + " " + storage.dtype + " elements (" + expected + " bytes)");
        }
        return entry;
    }

    /** Checks that every element of the view lies inside its storage. */
    private static void checkView(Path file, String name, TensorRef ref, long storageBytes) {
        long numel;
        long last = ref.offset;
        try {
            numel = TensorSpec.elementCount(ref.size);
            for (int d = 0; d < ref.size.length; d++) {
                if (ref.size[d] > 0) {
                    last = Math.addExact(last, Math.multiplyExact(ref.size[d] - 1, ref.stride[d]));
                }
            }
        } catch (ArithmeticException e) {
            throw new GoslingException(file + ": tensor '" + name + "' has a size that overflows (corrupt data.pkl)");
        }
        long storageNumel = storageBytes / ref.storage.dtype.elementSize();
        if (numel > 0 && last >= storageNumel) {
            throw new GoslingException(file + ": tensor '" + name + "' reaches element " + last + " of storage "
                    + ref.storage.key + ", which holds " + storageNumel + " (corrupt data.pkl; re-save the checkpoint)");
        }
        if (Math.multiplyExact(numel, (long) ref.storage.dtype.elementSize()) > Integer.MAX_VALUE) {
            throw new GoslingException(file + ": tensor '" + name + "' is larger than 2 GiB, which Gosling does not "
                    + "handle as one tensor");
        }
    }

    private static NamedTensor materialise(Path file, String name, TensorRef ref, ByteBuffer storage) {
        checkView(file, name, ref, storage.capacity());
        int elementSize = ref.storage.dtype.elementSize();
        long numel = TensorSpec.elementCount(ref.size);
        if (numel == 0) {
            return NamedTensor.of(name, ref.storage.dtype, ref.size, ByteBuffer.allocate(0));
        }
        if (isContiguous(ref.size, ref.stride)) {
            ByteBuffer view = storage.duplicate();
            view.position((int) (ref.offset * elementSize));
            view.limit((int) ((ref.offset + numel) * elementSize));
            return NamedTensor.of(name, ref.storage.dtype, ref.size, view);
        }
        // A strided view (a transpose, a slice): gather it into a fresh contiguous buffer.
        ByteBuffer out = ByteBuffer.allocate((int) (numel * elementSize)).order(ByteOrder.LITTLE_ENDIAN);
        long[] index = new long[ref.size.length];
        for (long i = 0; i < numel; i++) {
            long element = ref.offset;
            for (int d = 0; d < index.length; d++) {
                element += index[d] * ref.stride[d];
            }
            int from = (int) (element * elementSize);
            for (int b = 0; b < elementSize; b++) {
                out.put(storage.get(from + b));
            }
            for (int d = index.length - 1; d >= 0; d--) {
                if (++index[d] < ref.size[d]) {
                    break;
                }
                index[d] = 0;
            }
        }
        out.flip();
        return NamedTensor.of(name, ref.storage.dtype, ref.size, out);
    }

    /** torch's is_contiguous: row-major strides, ignoring dimensions of size 1. */
    private static boolean isContiguous(long[] size, long[] stride) {
        long expected = 1;
        for (int d = size.length - 1; d >= 0; d--) {
            if (size[d] != 1) {
                if (stride[d] != expected) {
                    return false;
                }
                expected *= size[d];
            }
        }
        return true;
    }

    private static String pythonType(Object o) {
        if (o instanceof Dict) {
            return "dict";
        } else if (o instanceof RestrictedUnpickler.Tuple) {
            return "tuple";
        } else if (o instanceof List) {
            return "list";
        } else if (o instanceof String) {
            return "str";
        } else if (o instanceof Long) {
            return "int";
        } else if (o instanceof Double) {
            return "float";
        } else if (o instanceof Boolean) {
            return "bool";
        } else if (o instanceof RestrictedUnpickler.None) {
            return "None";
        } else if (o instanceof StorageRef) {
            return "storage";
        } else if (o instanceof RestrictedUnpickler.Global) {
            return "class or function";
        }
        return o.getClass().getSimpleName();
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }
}
