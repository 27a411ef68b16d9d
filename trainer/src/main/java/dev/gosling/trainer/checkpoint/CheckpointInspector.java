package dev.gosling.trainer.checkpoint;

import dev.gosling.trainer.GoslingException;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Summarises a .pth or .safetensors checkpoint from its headers alone (no tensor data is read): every key with dtype
 * and shape, the parameter count, and the RWKV-7 model size inferred the way the loaders infer it (reference §9.3):
 * n_layer from the highest {@code blocks.N.}, vocab and n_embd from {@code emb.weight}, heads from
 * {@code blocks.0.att.r_k}, the LoRA dims from w1/a1/v1/g1. It then compares the keys and shapes with the state
 * dict of §6.3 for that size and lists what is missing, extra or misshapen.
 */
public final class CheckpointInspector {
    private static final String ZERO3_PREFIX = "_forward_module.";
    private static final Pattern BLOCK = Pattern.compile("^blocks\\.(\\d+)\\.");

    private CheckpointInspector() {
    }

    /** The model dimensions a checkpoint implies. */
    public static final class ModelShape {
        public final int nLayer;
        public final long nEmbd;
        public final long vocabSize;
        public final long nHead;
        public final long headSize;
        public final long ffnHidden;
        public final long dDecay;
        public final long dAaa;
        public final long dMv;
        public final long dGate;

        public ModelShape(int nLayer, long nEmbd, long vocabSize, long nHead, long headSize, long ffnHidden,
                          long dDecay, long dAaa, long dMv, long dGate) {
            this.nLayer = nLayer;
            this.nEmbd = nEmbd;
            this.vocabSize = vocabSize;
            this.nHead = nHead;
            this.headSize = headSize;
            this.ffnHidden = ffnHidden;
            this.dDecay = dDecay;
            this.dAaa = dAaa;
            this.dMv = dMv;
            this.dGate = dGate;
        }

        /** Every key of an RWKV-7 x070 state dict of this size with its shape, in state-dict order (§6.3). */
        public Map<String, long[]> expectedShapes() {
            Map<String, long[]> m = new LinkedHashMap<>();
            long c = nEmbd;
            long[] vec = {c};
            long[] mix = {1, 1, c};
            m.put("emb.weight", new long[] {vocabSize, c});
            for (int l = 0; l < nLayer; l++) {
                String b = "blocks." + l + ".";
                m.put(b + "ln1.weight", vec);
                m.put(b + "ln1.bias", vec);
                m.put(b + "ln2.weight", vec);
                m.put(b + "ln2.bias", vec);
                if (l == 0) {
                    m.put(b + "ln0.weight", vec);
                    m.put(b + "ln0.bias", vec);
                }
                for (String x : new String[] {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g"}) {
                    m.put(b + "att." + x, mix);
                }
                m.put(b + "att.w0", mix);
                m.put(b + "att.w1", new long[] {c, dDecay});
                m.put(b + "att.w2", new long[] {dDecay, c});
                m.put(b + "att.a0", mix);
                m.put(b + "att.a1", new long[] {c, dAaa});
                m.put(b + "att.a2", new long[] {dAaa, c});
                m.put(b + "att.v0", mix);
                m.put(b + "att.v1", new long[] {c, dMv});
                m.put(b + "att.v2", new long[] {dMv, c});
                m.put(b + "att.g1", new long[] {c, dGate});
                m.put(b + "att.g2", new long[] {dGate, c});
                m.put(b + "att.k_k", mix);
                m.put(b + "att.k_a", mix);
                m.put(b + "att.r_k", new long[] {nHead, headSize});
                for (String w : new String[] {"receptance", "key", "value", "output"}) {
                    m.put(b + "att." + w + ".weight", new long[] {c, c});
                }
                m.put(b + "att.ln_x.weight", vec);
                m.put(b + "att.ln_x.bias", vec);
                m.put(b + "ffn.x_k", mix);
                m.put(b + "ffn.key.weight", new long[] {ffnHidden, c});
                m.put(b + "ffn.value.weight", new long[] {c, ffnHidden});
            }
            m.put("ln_out.weight", vec);
            m.put("ln_out.bias", vec);
            m.put("head.weight", new long[] {vocabSize, c});
            return m;
        }

        /** The RWKV-LM README's count: 2VC + 4C + L(19C + 12C² + 2C(D_DECAY + D_MV + D_AAA + D_GATE)). */
        public long formulaParameters() {
            long c = nEmbd;
            return 2 * vocabSize * c + 4 * c + nLayer * (19 * c + 12 * c * c + 2 * c * (dDecay + dMv + dAaa + dGate));
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "RWKV-7 x070: n_layer %d, n_embd %d, vocab %d, n_head %d x head_size %d, "
                    + "ffn %d, LoRA decay %d / aaa %d / mv %d / gate %d", nLayer, nEmbd, vocabSize, nHead, headSize,
                    ffnHidden, dDecay, dAaa, dMv, dGate);
        }
    }

    /** What {@link #inspect(Path)} found. */
    public static final class Summary {
        public final Path file;
        public final String format;
        public final long fileBytes;
        public final List<TensorSpec> tensors;
        public final long totalParameters;
        public final Optional<ModelShape> model;
        public final List<String> notes;

        Summary(Path file, String format, long fileBytes, List<TensorSpec> tensors, Optional<ModelShape> model,
                List<String> notes) {
            this.file = file;
            this.format = format;
            this.fileBytes = fileBytes;
            this.tensors = Collections.unmodifiableList(new ArrayList<>(tensors));
            long total = 0;
            for (TensorSpec t : tensors) {
                total += t.numel();
            }
            this.totalParameters = total;
            this.model = model;
            this.notes = Collections.unmodifiableList(new ArrayList<>(notes));
        }

        /** A printable report: one line per tensor, then totals, the inferred model and the notes. */
        public String table() {
            int nameWidth = "name".length();
            int shapeWidth = "shape".length();
            for (TensorSpec t : tensors) {
                nameWidth = Math.max(nameWidth, t.name().length());
                shapeWidth = Math.max(shapeWidth, t.shapeString().length());
            }
            StringBuilder sb = new StringBuilder();
            sb.append(String.format(Locale.ROOT, "%s  (%s, %s bytes, %d tensors)%n", file, format,
                    grouped(fileBytes), tensors.size()));
            String row = "%-" + nameWidth + "s  %-5s  %-" + shapeWidth + "s  %15s%n";
            sb.append(String.format(Locale.ROOT, row, "name", "dtype", "shape", "params"));
            for (TensorSpec t : tensors) {
                sb.append(String.format(Locale.ROOT, row, t.name(), t.dtype(), t.shapeString(), grouped(t.numel())));
            }
            Map<DType, Long> perDtype = new LinkedHashMap<>();
            for (TensorSpec t : tensors) {
                perDtype.merge(t.dtype(), t.numel(), Long::sum);
            }
            sb.append(String.format(Locale.ROOT, "total parameters: %s", grouped(totalParameters)));
            perDtype.forEach((d, n) -> sb.append(String.format(Locale.ROOT, "  (%s: %s)", d, grouped(n))));
            sb.append(System.lineSeparator());
            sb.append("model: ").append(model.map(ModelShape::toString).orElse("not an RWKV-7 x070 state dict"))
                    .append(System.lineSeparator());
            for (String note : notes) {
                sb.append("note: ").append(note).append(System.lineSeparator());
            }
            return sb.toString();
        }

        @Override
        public String toString() {
            return table();
        }
    }

    /** Reads the headers of {@code file} (.pth or .safetensors, told apart by content) and summarises them. */
    public static Summary inspect(Path file) {
        long fileBytes;
        byte[] head = new byte[9];
        int headLength;
        try (InputStream in = Files.newInputStream(file)) {
            fileBytes = Files.size(file);
            headLength = in.readNBytes(head, 0, head.length);
        } catch (NoSuchFileException e) {
            throw new GoslingException(file + ": no such file (check the path)");
        } catch (IOException e) {
            throw new GoslingException(file + ": cannot read: " + AtomicFiles.describe(e));
        }
        List<TensorSpec> specs;
        String format;
        if (headLength >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4) {
            specs = TorchCheckpoint.listTensors(file);
            format = "torch zip";
        } else if (headLength == 9 && head[8] == '{'
                && ByteBuffer.wrap(head, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong() <= SafeTensors.MAX_HEADER_SIZE) {
            specs = SafeTensors.listTensors(file);
            format = "safetensors";
        } else {
            throw new GoslingException(file + ": neither a torch .pth (zip) nor a .safetensors file");
        }
        return summarise(file, format, fileBytes, specs);
    }

    static Summary summarise(Path file, String format, long fileBytes, List<TensorSpec> specs) {
        List<String> notes = new ArrayList<>();
        Map<String, TensorSpec> byName = new LinkedHashMap<>();
        boolean allPrefixed = !specs.isEmpty();
        for (TensorSpec t : specs) {
            allPrefixed &= t.name().startsWith(ZERO3_PREFIX);
        }
        for (TensorSpec t : specs) {
            String name = allPrefixed ? t.name().substring(ZERO3_PREFIX.length()) : t.name();
            byName.put(name, t);
        }
        if (allPrefixed) {
            notes.add("every key starts with '" + ZERO3_PREFIX + "' (a DeepSpeed ZeRO-3 save); the loader strips it");
        }
        Optional<ModelShape> model = infer(byName, notes);
        model.ifPresent(m -> compare(m, byName, notes));
        return new Summary(file, format, fileBytes, specs, model, notes);
    }

    private static Optional<ModelShape> infer(Map<String, TensorSpec> t, List<String> notes) {
        TensorSpec emb = t.get("emb.weight");
        int maxBlock = -1;
        for (String name : t.keySet()) {
            Matcher m = BLOCK.matcher(name);
            if (m.find()) {
                try {
                    maxBlock = Math.max(maxBlock, Integer.parseInt(m.group(1)));
                } catch (NumberFormatException ignored) {
                    // An absurd index is just not an RWKV block.
                }
            }
        }
        if (emb == null || emb.rank() != 2 || maxBlock < 0) {
            return Optional.empty();
        }
        long vocab = emb.dim(0);
        long c = emb.dim(1);
        long nHead = c / 64;
        long headSize = 64;
        TensorSpec rk = t.get("blocks.0.att.r_k");
        if (rk != null && rk.rank() == 2) {
            nHead = rk.dim(0);
            headSize = rk.dim(1);
        } else {
            notes.add("blocks.0.att.r_k is missing or not [H, 64]; head size 64 assumed");
        }
        long ffn = dim(t, "blocks.0.ffn.key.weight", 0, 4 * c);
        long dDecay = dim(t, "blocks.0.att.w1", 1, 0);
        long dAaa = dim(t, "blocks.0.att.a1", 1, 0);
        // Layer 0's v1 is never used; web-rwkv reads blocks.1's.
        long dMv = dim(t, "blocks.1.att.v1", 1, dim(t, "blocks.0.att.v1", 1, 0));
        long dGate = dim(t, "blocks.0.att.g1", 1, 0);
        if (headSize != 64) {
            notes.add("head size " + headSize + " is not 64, which the RWKV-7 kernels and loaders require");
        }
        if (maxBlock + 1 < 2) {
            notes.add("only one layer; web-rwkv and the official init need at least 2");
        }
        return Optional.of(new ModelShape(maxBlock + 1, c, vocab, nHead, headSize, ffn, dDecay, dAaa, dMv, dGate));
    }

    private static long dim(Map<String, TensorSpec> t, String name, int axis, long fallback) {
        TensorSpec spec = t.get(name);
        return spec != null && spec.rank() > axis ? spec.dim(axis) : fallback;
    }

    private static void compare(ModelShape m, Map<String, TensorSpec> actual, List<String> notes) {
        Map<String, long[]> expected = m.expectedShapes();
        List<String> missing = new ArrayList<>();
        List<String> misshapen = new ArrayList<>();
        for (Map.Entry<String, long[]> e : expected.entrySet()) {
            TensorSpec t = actual.get(e.getKey());
            if (t == null) {
                missing.add(e.getKey());
            } else if (!Arrays.equals(t.shape(), e.getValue())) {
                misshapen.add(e.getKey() + " " + t.shapeString() + " (expected " + Arrays.toString(e.getValue()) + ")");
            }
        }
        List<String> extra = new ArrayList<>();
        for (String name : actual.keySet()) {
            if (!expected.containsKey(name)) {
                extra.add(name);
            }
        }
        if (!missing.isEmpty()) {
            notes.add(missing.size() + " expected keys missing: " + abbreviated(missing));
        }
        if (!misshapen.isEmpty()) {
            notes.add(misshapen.size() + " keys with unexpected shapes: " + abbreviated(misshapen));
        }
        if (!extra.isEmpty()) {
            notes.add(extra.size() + " keys beyond the RWKV-7 state dict: " + abbreviated(extra));
        }
        if (missing.isEmpty() && misshapen.isEmpty() && extra.isEmpty()) {
            notes.add("keys and shapes match the RWKV-7 x070 state dict (" + expected.size() + " tensors, "
                    + grouped(m.formulaParameters()) + " parameters by the RWKV-LM formula)");
        }
    }

    private static String abbreviated(List<String> items) {
        int shown = Math.min(items.size(), 8);
        String head = String.join(", ", items.subList(0, shown));
        return items.size() > shown ? head + ", ... (" + (items.size() - shown) + " more)" : head;
    }

    private static String grouped(long n) {
        return String.format(Locale.ROOT, "%,d", n);
    }
}
