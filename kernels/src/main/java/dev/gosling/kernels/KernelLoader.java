package dev.gosling.kernels;

import static org.bytedeco.cuda.global.cudart.CUDA_ERROR_NO_BINARY_FOR_GPU;
import static org.bytedeco.cuda.global.cudart.cuModuleGetFunction;
import static org.bytedeco.cuda.global.cudart.cuModuleLoadData;
import static org.bytedeco.cuda.global.cudart.cuModuleUnload;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.cuda.cudart.CUfunc_st;
import org.bytedeco.cuda.cudart.CUmod_st;
import org.bytedeco.cuda.global.nvrtc;
import org.bytedeco.cuda.nvrtc._nvrtcProgram;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.PointerPointer;
import org.bytedeco.javacpp.SizeTPointer;

/**
 * Loads the kernel modules, one per {@code kernels/src/main/cuda/<op>.cu}, into the current CUDA context:
 * <ol>
 *   <li>the fatbin the build made with nvcc ({@code dev/gosling/kernels/<op>.fatbin}: sm_80/86/89/90 machine code
 *       plus compute_90 PTX), unless NVRTC is forced;</li>
 *   <li>otherwise (no fatbin in the jar, or none that fits this GPU) the {@code .cu} source from the jar, compiled
 *       with NVRTC for this GPU and cached on disk under a key made of the sources, the options and the NVRTC
 *       version, so later runs load the cached cubin (or PTX) without compiling.</li>
 * </ol>
 * Modules load on first use of one of their kernels. Not thread-safe; owned by one backend and closed by it.
 */
public final class KernelLoader implements AutoCloseable {

    /** Every kernel source, without the {@code .cu}. */
    public static final List<String> OPS = List.of("adamw", "bonus", "cast", "cross_entropy", "elementwise", "embedding",
            "key_prepare", "lora", "norm", "reduce", "token_shift", "wkv7", "wkv7_tc", "wkv7_tc_readout");
    /** Headers the sources include, given to NVRTC by name. */
    public static final List<String> HEADERS = List.of("common.cuh", "wkv7_tc.cuh");

    private static final String RESOURCES = "/dev/gosling/kernels/";

    /** Where a module came from. */
    public enum Origin { FATBIN, NVRTC_COMPILED, NVRTC_CACHED }

    private final int ccMajor;
    private final int ccMinor;
    private final boolean forceNvrtc;
    private final Path cacheDir;
    private final Map<String, CUmod_st> modules = new LinkedHashMap<>();
    private final Map<String, Origin> origins = new LinkedHashMap<>();

    /**
     * @param ccMajor    the device's compute capability, major (NVRTC compiles for it)
     * @param ccMinor    the device's compute capability, minor
     * @param forceNvrtc       skip the fatbins (to check the fallback on a machine that has them)
     * @param cacheDir         where NVRTC output is cached
     */
    public KernelLoader(int ccMajor, int ccMinor, boolean forceNvrtc, Path cacheDir) {
        this.ccMajor = ccMajor;
        this.ccMinor = ccMinor;
        this.forceNvrtc = forceNvrtc;
        this.cacheDir = cacheDir;
    }

    /** {@code $GOSLING_KERNEL_CACHE}, else {@code ~/.cache/gosling/kernels}. */
    public static Path defaultCacheDir() {
        String env = System.getenv("GOSLING_KERNEL_CACHE");
        if (env != null && !env.isBlank()) {
            return Paths.get(env);
        }
        return Paths.get(System.getProperty("user.home"), ".cache", "gosling", "kernels");
    }

    /** True when the jar carries nvcc-built fatbins (the build found nvcc). */
    public static boolean hasFatbins() {
        return KernelLoader.class.getResource(RESOURCES + OPS.get(0) + ".fatbin") != null;
    }

    /** The kernel {@code name} of module {@code op}, loading the module if needed. */
    public Kernel kernel(String op, String name) {
        CUmod_st module = module(op);
        CUfunc_st fn = new CUfunc_st();
        Cuda.checkDriver(cuModuleGetFunction(fn, module, name), "cuModuleGetFunction(" + op + "/" + name + ")");
        return new Kernel(name, fn);
    }

    /** How each loaded module was obtained, in load order. */
    public Map<String, Origin> origins() {
        return new LinkedHashMap<>(origins);
    }

    private CUmod_st module(String op) {
        CUmod_st m = modules.get(op);
        if (m != null) {
            return m;
        }
        if (!OPS.contains(op)) {
            throw new IllegalArgumentException("no kernel source " + op + ".cu");
        }
        byte[] fatbin = forceNvrtc ? null : resourceBytes(op + ".fatbin");
        if (fatbin != null) {
            m = new CUmod_st();
            int code;
            try (BytePointer image = new BytePointer(fatbin)) {
                code = cuModuleLoadData(m, image);
            }
            if (code == 0) {
                modules.put(op, m);
                origins.put(op, Origin.FATBIN);
                return m;
            }
            if (code != CUDA_ERROR_NO_BINARY_FOR_GPU) {
                Cuda.checkDriver(code, "cuModuleLoadData(" + op + ".fatbin)");
            }
        }
        m = loadCompiled(op);
        modules.put(op, m);
        return m;
    }

    // ------------------------------------------------------------------------------------------------ NVRTC

    private CUmod_st loadCompiled(String op) {
        try {
            Loader.load(nvrtc.class);
        } catch (UnsatisfiedLinkError e) {
            throw new CudaException("kernel " + op + ": the jar has no fatbin for this GPU (sm_" + ccMajor + ccMinor
                    + ") and NVRTC could not be loaded (libnvrtc.so.13 not found): install the CUDA 13 toolkit or put"
                    + " its lib64 on LD_LIBRARY_PATH, or build the jar on a machine with nvcc");
        }
        String source = resourceText("cuda/" + op + ".cu");
        List<String> headerText = new ArrayList<>();
        for (String h : HEADERS) {
            headerText.add(resourceText("cuda/" + h));
        }
        int[] version = nvrtcVersion();
        int arch = pickArch();
        boolean cubin = arch == ccMajor * 10 + ccMinor;
        List<String> options = List.of((cubin ? "--gpu-architecture=sm_" : "--gpu-architecture=compute_") + arch,
                "-std=c++17", "-default-device");
        String key = digest(version[0] + "." + version[1], String.join(" ", options), source, headerText);
        Path cached = cacheDir.resolve(op + "-" + (cubin ? "sm_" : "compute_") + arch + "-" + key
                + (cubin ? ".cubin" : ".ptx"));
        byte[] image = null;
        if (Files.isRegularFile(cached)) {
            try {
                image = Files.readAllBytes(cached);
                origins.put(op, Origin.NVRTC_CACHED);
            } catch (IOException e) {
                image = null;
            }
        }
        if (image == null) {
            image = compile(op, source, headerText, options, cubin);
            origins.put(op, Origin.NVRTC_COMPILED);
            store(cached, image);
        }
        CUmod_st m = new CUmod_st();
        // PTX must be NUL-terminated; a cubin ignores the extra byte
        byte[] terminated = java.util.Arrays.copyOf(image, image.length + 1);
        try (BytePointer p = new BytePointer(terminated)) {
            Cuda.checkDriver(cuModuleLoadData(m, p), "cuModuleLoadData(" + op + ", NVRTC " + cached.getFileName() + ")");
        }
        return m;
    }

    /** The newest architecture NVRTC supports that is not newer than the device. */
    private int pickArch() {
        int device = ccMajor * 10 + ccMinor;
        try (IntPointer n = new IntPointer(1)) {
            Cuda.checkNvrtc(nvrtc.nvrtcGetNumSupportedArchs(n), "nvrtcGetNumSupportedArchs");
            try (IntPointer archs = new IntPointer(n.get())) {
                Cuda.checkNvrtc(nvrtc.nvrtcGetSupportedArchs(archs), "nvrtcGetSupportedArchs");
                int best = -1;
                for (int i = 0; i < n.get(); i++) {
                    int a = archs.get(i);
                    if (a <= device && a > best) {
                        best = a;
                    }
                }
                if (best < 0) {
                    throw new CudaException("NVRTC supports no architecture up to this GPU's sm_" + device);
                }
                return best;
            }
        }
    }

    private static int[] nvrtcVersion() {
        try (IntPointer major = new IntPointer(1); IntPointer minor = new IntPointer(1)) {
            Cuda.checkNvrtc(nvrtc.nvrtcVersion(major, minor), "nvrtcVersion");
            return new int[] {major.get(), minor.get()};
        }
    }

    private static byte[] compile(String op, String source, List<String> headers, List<String> options, boolean cubin) {
        _nvrtcProgram program = new _nvrtcProgram();
        int nh = HEADERS.size();
        try (PointerPointer<BytePointer> headerSources = new PointerPointer<>(nh);
             PointerPointer<BytePointer> headerNames = new PointerPointer<>(nh);
             PointerPointer<BytePointer> opts = new PointerPointer<>(options.size())) {
            List<BytePointer> keep = new ArrayList<>();
            for (int i = 0; i < nh; i++) {
                BytePointer s = new BytePointer(headers.get(i), StandardCharsets.UTF_8);
                BytePointer n = new BytePointer(HEADERS.get(i), StandardCharsets.UTF_8);
                keep.add(s);
                keep.add(n);
                headerSources.put(i, s);
                headerNames.put(i, n);
            }
            for (int i = 0; i < options.size(); i++) {
                BytePointer o = new BytePointer(options.get(i), StandardCharsets.UTF_8);
                keep.add(o);
                opts.put(i, o);
            }
            try (BytePointer src = new BytePointer(source, StandardCharsets.UTF_8);
                 BytePointer name = new BytePointer(op + ".cu", StandardCharsets.UTF_8)) {
                Cuda.checkNvrtc(nvrtc.nvrtcCreateProgram(program, src, name, nh, headerSources, headerNames),
                        "nvrtcCreateProgram(" + op + ")");
                try {
                    int code = nvrtc.nvrtcCompileProgram(program, options.size(), opts);
                    if (code != nvrtc.NVRTC_SUCCESS) {
                        throw new CudaException("NVRTC could not compile " + op + ".cu: " + log(program));
                    }
                    try (SizeTPointer size = new SizeTPointer(1)) {
                        Cuda.checkNvrtc(cubin ? nvrtc.nvrtcGetCUBINSize(program, size)
                                : nvrtc.nvrtcGetPTXSize(program, size), "nvrtcGet" + (cubin ? "CUBIN" : "PTX") + "Size");
                        try (BytePointer out = new BytePointer(size.get())) {
                            Cuda.checkNvrtc(cubin ? nvrtc.nvrtcGetCUBIN(program, out) : nvrtc.nvrtcGetPTX(program, out),
                                    "nvrtcGet" + (cubin ? "CUBIN" : "PTX"));
                            byte[] bytes = new byte[(int) size.get()];
                            out.get(bytes);
                            return bytes;
                        }
                    }
                } finally {
                    nvrtc.nvrtcDestroyProgram(program);
                }
            } finally {
                keep.forEach(BytePointer::close);
            }
        }
    }

    private static String log(_nvrtcProgram program) {
        try (SizeTPointer size = new SizeTPointer(1)) {
            if (nvrtc.nvrtcGetProgramLogSize(program, size) != nvrtc.NVRTC_SUCCESS) {
                return "(no log)";
            }
            try (BytePointer text = new BytePointer(size.get())) {
                nvrtc.nvrtcGetProgramLog(program, text);
                return text.getString().strip().replace('\n', ' ');
            }
        }
    }

    /** Writes the cache entry atomically (temporary name, then rename); a read-only cache only costs a recompile. */
    private static void store(Path file, byte[] image) {
        try {
            Files.createDirectories(file.getParent());
            Path tmp = Files.createTempFile(file.getParent(), file.getFileName().toString(), ".tmp");
            Files.write(tmp, image);
            try {
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            System.err.println("[gosling-kernels] cannot cache " + file + ": " + e.getMessage());
        }
    }

    private static String digest(String nvrtcVersion, String options, String source, List<String> headers) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(nvrtcVersion.getBytes(StandardCharsets.UTF_8));
            md.update((byte) 0);
            md.update(options.getBytes(StandardCharsets.UTF_8));
            md.update((byte) 0);
            md.update(source.getBytes(StandardCharsets.UTF_8));
            for (String h : headers) {
                md.update((byte) 0);
                md.update(h.getBytes(StandardCharsets.UTF_8));
            }
            return HexFormat.of().formatHex(md.digest()).substring(0, 16);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static byte[] resourceBytes(String name) {
        try (InputStream in = KernelLoader.class.getResourceAsStream(RESOURCES + name)) {
            return in == null ? null : in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read kernel resource " + name, e);
        }
    }

    /** A kernel source or header from the jar. */
    public static String resourceText(String name) {
        byte[] bytes = resourceBytes(name);
        if (bytes == null) {
            throw new IllegalStateException("kernel resource " + RESOURCES + name + " is missing from the jar");
        }
        return new String(bytes, StandardCharsets.UTF_8);
    }

    /** Unloads every module (the context must still be alive). */
    @Override
    public void close() {
        for (CUmod_st m : modules.values()) {
            cuModuleUnload(m);
        }
        modules.clear();
    }
}
