package dev.gosling.trainer.checkpoint;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import dev.gosling.trainer.GoslingException;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The safetensors format (web-rwkv and Ai00 load only this): an 8-byte little-endian header length, a JSON header
 * padded with spaces to a multiple of 8, then the tensors' bytes back to back.
 *
 * <p>Writing follows the reference implementation (huggingface/safetensors {@code serialize}) byte for byte:
 * tensors ordered by dtype width descending (F32, BF16, F16), then by name; header entries in that order with
 * {@code __metadata__} first; compact JSON. Those readers look tensors up by name, so the order is only there to
 * make the output identical to {@code safetensors.torch.save_file}'s. Reading returns tensors in file order and
 * validates the header as the reference does: offsets contiguous from 0, lengths matching dtype and shape, nothing
 * out of bounds or left over.
 */
public final class SafeTensors {
    /** The reference implementation's limit on the JSON header. */
    static final long MAX_HEADER_SIZE = 100_000_000L;
    private static final String METADATA_KEY = "__metadata__";
    private static final ObjectMapper JSON = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .build();

    private SafeTensors() {
    }

    /** Writes {@code stateDict} atomically without metadata. */
    public static void write(Path file, StateDict stateDict) {
        write(file, stateDict, Map.of());
    }

    /** Writes {@code stateDict} atomically; {@code metadata} becomes {@code __metadata__} (omitted when empty). */
    public static void write(Path file, StateDict stateDict, Map<String, String> metadata) {
        AtomicFiles.write(file, channel -> write(channel, stateDict, metadata));
    }

    /** Streams the file to {@code out}. */
    public static void write(WritableByteChannel out, StateDict stateDict, Map<String, String> metadata)
            throws IOException {
        List<NamedTensor> ordered = new ArrayList<>(stateDict.tensors());
        ordered.sort(Comparator.comparingInt((NamedTensor t) -> alignmentRank(t.dtype())).reversed()
                .thenComparing(NamedTensor::name, SafeTensors::compareUtf8));
        byte[] header = header(ordered, metadata);
        ByteBuffer prefix = ByteBuffer.allocate(8 + header.length).order(ByteOrder.LITTLE_ENDIAN);
        prefix.putLong(header.length).put(header).flip();
        writeFully(out, prefix);
        for (NamedTensor t : ordered) {
            writeFully(out, t.data());
        }
    }

    /** Reads every tensor (memory-mapped, not copied), in file order. */
    public static StateDict read(Path file) {
        return open(file, true).tensors;
    }

    /** The {@code __metadata__} map (empty when absent). */
    public static Map<String, String> readMetadata(Path file) {
        return open(file, false).metadata;
    }

    /** Names, dtypes and shapes from the header alone, in file order. */
    public static List<TensorSpec> listTensors(Path file) {
        List<TensorSpec> specs = new ArrayList<>();
        for (Located l : open(file, false).located) {
            specs.add(l.spec);
        }
        return specs;
    }

    /** The reference implementation's dtype order (its Dtype enum is declared in increasing alignment). */
    private static int alignmentRank(DType dtype) {
        switch (dtype) {
            case F16:
                return 0;
            case BF16:
                return 1;
            default:
                return 2;
        }
    }

    /** Rust's String ordering: by UTF-8 bytes. */
    private static int compareUtf8(String a, String b) {
        return Arrays.compareUnsigned(a.getBytes(StandardCharsets.UTF_8), b.getBytes(StandardCharsets.UTF_8));
    }

    private static byte[] header(List<NamedTensor> ordered, Map<String, String> metadata) throws IOException {
        ByteArrayOutputStream json = new ByteArrayOutputStream();
        try (JsonGenerator g = new JsonFactory().createGenerator(json)) {
            g.writeStartObject();
            if (!metadata.isEmpty()) {
                g.writeObjectFieldStart(METADATA_KEY);
                for (Map.Entry<String, String> e : new TreeMap<>(metadata).entrySet()) {
                    g.writeStringField(e.getKey(), e.getValue());
                }
                g.writeEndObject();
            }
            long offset = 0;
            for (NamedTensor t : ordered) {
                if (t.name().equals(METADATA_KEY)) {
                    throw new IllegalArgumentException("a tensor may not be named " + METADATA_KEY);
                }
                g.writeObjectFieldStart(t.name());
                g.writeStringField("dtype", t.dtype().safetensorsName());
                g.writeArrayFieldStart("shape");
                for (long d : t.shape()) {
                    g.writeNumber(d);
                }
                g.writeEndArray();
                g.writeArrayFieldStart("data_offsets");
                g.writeNumber(offset);
                offset += t.byteSize();
                g.writeNumber(offset);
                g.writeEndArray();
                g.writeEndObject();
            }
            g.writeEndObject();
        }
        int padding = (8 - json.size() % 8) % 8;
        for (int i = 0; i < padding; i++) {
            json.write(' ');
        }
        return json.toByteArray();
    }

    private static final class Located {
        final TensorSpec spec;
        final long begin;
        final long end;

        Located(TensorSpec spec, long begin, long end) {
            this.spec = spec;
            this.begin = begin;
            this.end = end;
        }
    }

    private static final class Opened {
        final List<Located> located;
        final Map<String, String> metadata;
        final StateDict tensors;

        Opened(List<Located> located, Map<String, String> metadata, StateDict tensors) {
            this.located = located;
            this.metadata = metadata;
            this.tensors = tensors;
        }
    }

    private static Opened open(Path file, boolean mapData) {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            long fileSize = channel.size();
            if (fileSize < 8) {
                throw invalid(file, "shorter than the 8-byte header length");
            }
            long headerLength = readBuffer(channel, 0, 8).getLong();
            if (headerLength < 0 || headerLength > MAX_HEADER_SIZE) {
                throw invalid(file, "header length " + Long.toUnsignedString(headerLength) + " exceeds the "
                        + MAX_HEADER_SIZE + "-byte limit");
            }
            if (8 + headerLength > fileSize) {
                throw invalid(file, "header of " + headerLength + " bytes runs past the end of the "
                        + fileSize + "-byte file (truncated?)");
            }
            byte[] headerBytes = new byte[(int) headerLength];
            readBuffer(channel, 8, (int) headerLength).get(headerBytes);
            long dataStart = 8 + headerLength;
            long dataLength = fileSize - dataStart;
            JsonNode root = parseHeader(file, headerBytes);

            Map<String, String> metadata = new LinkedHashMap<>();
            List<Located> located = new ArrayList<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> field = it.next();
                if (field.getKey().equals(METADATA_KEY)) {
                    readMetadata(file, field.getValue(), metadata);
                } else {
                    located.add(tensorInfo(file, field.getKey(), field.getValue()));
                }
            }
            located.sort(Comparator.comparingLong((Located l) -> l.begin).thenComparingLong(l -> l.end));
            long expectedBegin = 0;
            String previous = null;
            for (Located l : located) {
                if (l.begin < expectedBegin) {
                    throw invalid(file, "tensor '" + l.spec.name() + "' data_offsets [" + l.begin + ", " + l.end
                            + "] overlap tensor '" + previous + "' (which ends at " + expectedBegin + ")");
                }
                if (l.begin > expectedBegin) {
                    throw invalid(file, "tensor '" + l.spec.name() + "' starts at " + l.begin + " but the previous "
                            + "data ends at " + expectedBegin + " (gap in data_offsets)");
                }
                if (l.end > dataLength) {
                    throw invalid(file, "tensor '" + l.spec.name() + "' data_offsets [" + l.begin + ", " + l.end
                            + "] are out of bounds (the data section holds " + dataLength + " bytes; truncated?)");
                }
                expectedBegin = l.end;
                previous = l.spec.name();
            }
            if (expectedBegin != dataLength) {
                throw invalid(file, "the data section holds " + dataLength + " bytes but the tensors cover "
                        + expectedBegin);
            }
            StateDict tensors = null;
            if (mapData) {
                tensors = new StateDict();
                for (Located l : located) {
                    if (l.end - l.begin > Integer.MAX_VALUE) {
                        throw new GoslingException(file + ": tensor '" + l.spec.name() + "' is larger than 2 GiB, "
                                + "which Gosling does not handle as one tensor");
                    }
                    ByteBuffer data = l.end == l.begin ? ByteBuffer.allocate(0)
                            : channel.map(FileChannel.MapMode.READ_ONLY, dataStart + l.begin, l.end - l.begin);
                    tensors.add(NamedTensor.of(l.spec.name(), l.spec.dtype(), l.spec.shape(), data));
                }
            }
            return new Opened(located, Collections.unmodifiableMap(metadata), tensors);
        } catch (NoSuchFileException e) {
            throw new GoslingException(file + ": no such file (check the path)");
        } catch (IOException e) {
            throw new GoslingException(file + ": cannot read: " + AtomicFiles.describe(e), e);
        }
    }

    private static JsonNode parseHeader(Path file, byte[] headerBytes) {
        JsonNode root;
        try (JsonParser parser = JSON.getFactory().createParser(headerBytes)) {
            root = JSON.readTree(parser);
            if (parser.nextToken() != null) {
                throw invalid(file, "header holds more than one JSON value");
            }
        } catch (JsonProcessingException e) {
            throw invalid(file, "header is not valid JSON: " + e.getOriginalMessage().replace('\n', ' '));
        } catch (IOException e) {
            throw invalid(file, "header is not valid JSON: " + AtomicFiles.describe(e));
        }
        if (root == null || !root.isObject()) {
            throw invalid(file, "header is not a JSON object");
        }
        return root;
    }

    private static void readMetadata(Path file, JsonNode node, Map<String, String> into) {
        if (!node.isObject()) {
            throw invalid(file, METADATA_KEY + " is not an object of strings");
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().isTextual()) {
                throw invalid(file, METADATA_KEY + " value of '" + e.getKey() + "' is not a string");
            }
            into.put(e.getKey(), e.getValue().textValue());
        }
    }

    private static Located tensorInfo(Path file, String name, JsonNode node) {
        if (!node.isObject()) {
            throw invalid(file, "entry '" + name + "' is not an object");
        }
        JsonNode dtypeNode = node.get("dtype");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw invalid(file, "tensor '" + name + "' has no dtype");
        }
        DType dtype = DType.fromSafetensorsName(dtypeNode.textValue()).orElseThrow(() -> new GoslingException(
                file + ": tensor '" + name + "' has dtype " + dtypeNode.textValue() + "; Gosling reads BF16, F16 and "
                        + "F32 (convert the file)"));
        long[] shape = naturals(file, name, "shape", node.get("shape"), -1);
        long[] offsets = naturals(file, name, "data_offsets", node.get("data_offsets"), 2);
        if (offsets[1] < offsets[0]) {
            throw invalid(file, "tensor '" + name + "' data_offsets [" + offsets[0] + ", " + offsets[1]
                    + "] end before they begin");
        }
        TensorSpec spec;
        long bytes;
        try {
            spec = new TensorSpec(name, dtype, shape);
            bytes = spec.byteSize();
        } catch (ArithmeticException e) {
            throw invalid(file, "tensor '" + name + "' shape " + Arrays.toString(shape) + " overflows");
        }
        if (offsets[1] - offsets[0] != bytes) {
            throw invalid(file, "tensor '" + name + "' data_offsets [" + offsets[0] + ", " + offsets[1] + "] span "
                    + (offsets[1] - offsets[0]) + " bytes, but " + dtype + " " + spec.shapeString() + " needs " + bytes);
        }
        return new Located(spec, offsets[0], offsets[1]);
    }

    private static long[] naturals(Path file, String name, String field, JsonNode node, int requiredLength) {
        if (node == null || !node.isArray() || (requiredLength >= 0 && node.size() != requiredLength)) {
            throw invalid(file, "tensor '" + name + "' has no valid " + field);
        }
        long[] out = new long[node.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode v = node.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
                throw invalid(file, "tensor '" + name + "' " + field + " holds " + v + ", not a non-negative integer");
            }
            out[i] = v.longValue();
        }
        return out;
    }

    private static GoslingException invalid(Path file, String what) {
        return new GoslingException(file + ": not a valid safetensors file: " + what);
    }

    private static ByteBuffer readBuffer(FileChannel channel, long offset, int length) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
        long position = offset;
        while (buffer.hasRemaining()) {
            int n = channel.read(buffer, position);
            if (n < 0) {
                throw new IOException("unexpected end of file");
            }
            position += n;
        }
        buffer.flip();
        return buffer;
    }

    private static void writeFully(WritableByteChannel out, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            out.write(buffer);
        }
    }
}
