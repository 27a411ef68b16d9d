package dev.gosling.trainer.backend.cpu;

import static dev.gosling.trainer.backend.BackendChecks.activations;
import static dev.gosling.trainer.backend.BackendChecks.dims;
import static dev.gosling.trainer.backend.BackendChecks.elementwise;
import static dev.gosling.trainer.backend.BackendChecks.heads;
import static dev.gosling.trainer.backend.BackendChecks.indexedNames;
import static dev.gosling.trainer.backend.BackendChecks.mixCount;
import static dev.gosling.trainer.backend.BackendChecks.sequenceDims;
import static dev.gosling.trainer.backend.BackendChecks.vocab;

import dev.gosling.trainer.backend.Activation;
import dev.gosling.trainer.backend.AdamWSegments;
import dev.gosling.trainer.backend.Backend;
import dev.gosling.trainer.backend.DType;
import dev.gosling.trainer.backend.Tensor;
import java.nio.IntBuffer;
import org.bytedeco.openblas.global.openblas;

/**
 * The CPU reference backend. Tensors live off-heap (JavaCPP allocations, read in place by OpenBLAS); ops run in the
 * precision of their tensors: F32 for training (sgemm), F64 for gradient checks (dgemm). Matrix products use
 * OpenBLAS's own threads (as many as the pool); every other op splits rows, heads or channels over a fixed pool so
 * that each output element is computed by one thread in a fixed order — results do not depend on the thread count.
 *
 * <p>This class only checks arguments and dispatches; each op's forward and backward live together in one class
 * ({@link EmbeddingOp}, {@link NormOps}, {@link TokenShiftOp}, {@link LinearOps}, {@link ElementwiseOps},
 * {@link KeyPrepareOp}, {@link Wkv7Op}, {@link BonusOp}, {@link CrossEntropyOp}). Not thread-safe: one caller at a time.
 */
public final class CpuBackend implements Backend {

    private final CpuThreads threads;
    private final Wkv7Op wkv7;

    /** A backend using every available processor. */
    public CpuBackend() {
        this(Runtime.getRuntime().availableProcessors());
    }

    /**
     * A backend with {@code threads} pool threads; it also sets OpenBLAS's thread count to {@code threads}. That
     * setting is process-wide (the last backend made wins): on a shared or oversubscribed machine a multi-threaded
     * GEMM whose spinning workers get descheduled can be 30× slower than one thread, so the count must be chosen.
     */
    public CpuBackend(int threads) {
        this.threads = new CpuThreads(threads);
        this.wkv7 = new Wkv7Op(this.threads);
        openblas.blas_set_num_threads(threads);
    }

    @Override
    public String name() {
        return "cpu(" + threads.threads + " threads)";
    }

    public int threads() {
        return threads.threads;
    }

    @Override
    public void close() {
        threads.close();
    }

    // ------------------------------------------------------------------------------------------------ memory

    @Override
    public Tensor allocate(DType dtype, int... shape) {
        if (dtype == null) {
            throw new IllegalArgumentException("allocate: dtype is null");
        }
        if (dtype == DType.BF16) {
            throw new IllegalArgumentException("allocate: the CPU backend computes in F32 or F64 (BF16 tensors are the"
                    + " CUDA backend's GEMM inputs)");
        }
        return new CpuTensor(this, dtype, shape);
    }

    @Override
    public Tensor view(Tensor base, long offset, int... shape) {
        return new CpuTensor(own(base, "view", "base"), offset, shape);
    }

    @Override
    public void upload(float[] src, Tensor dst) {
        CpuStore s = hostStore(dst, src.length, "upload");
        if (s instanceof CpuStore.F32 f) {
            f.buf.put(0, src);
        } else {
            for (int i = 0; i < src.length; i++) {
                s.set(i, src[i]);
            }
        }
    }

    @Override
    public void upload(double[] src, Tensor dst) {
        CpuStore s = hostStore(dst, src.length, "upload");
        if (s instanceof CpuStore.F64 d) {
            d.buf.put(0, src);
        } else {
            for (int i = 0; i < src.length; i++) {
                s.set(i, src[i]);
            }
        }
    }

    @Override
    public void upload(int[] src, Tensor dst) {
        ids(dst, "upload", "dst", src.length).put(0, src);
    }

    @Override
    public void download(Tensor src, float[] dst) {
        CpuStore s = hostStore(src, dst.length, "download");
        if (s instanceof CpuStore.F32 f) {
            f.buf.get(0, dst);
        } else {
            for (int i = 0; i < dst.length; i++) {
                dst[i] = (float) s.get(i);
            }
        }
    }

    @Override
    public void download(Tensor src, double[] dst) {
        CpuStore s = hostStore(src, dst.length, "download");
        if (s instanceof CpuStore.F64 d) {
            d.buf.get(0, dst);
        } else {
            for (int i = 0; i < dst.length; i++) {
                dst[i] = s.get(i);
            }
        }
    }

    @Override
    public void download(Tensor src, int[] dst) {
        ids(src, "download", "src", dst.length).get(0, dst);
    }

    @Override
    public void zero(Tensor t) {
        own(t, "zero", "t").zero();
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        CpuTensor s = own(src, "copy", "src");
        CpuTensor d = own(dst, "copy", "dst");
        if (s.dtype != d.dtype || s.numel != d.numel) {
            throw new IllegalArgumentException("copy: src " + s + " and dst " + d + " differ in dtype or size");
        }
        if (s.dtype == DType.I32) {
            ids(dst, "copy", "dst", d.numel).put(0, ids(src, "copy", "src", s.numel), 0, (int) s.numel);
        } else {
            CpuStore from = floating(src, "copy", "src", s.numel, s.dtype);
            CpuStore to = floating(dst, "copy", "dst", d.numel, d.dtype);
            if (from instanceof CpuStore.F32 f) {
                ((CpuStore.F32) to).buf.put(0, f.buf, 0, f.length);
            } else {
                ((CpuStore.F64) to).buf.put(0, ((CpuStore.F64) from).buf, 0, from.length);
            }
        }
    }

    @Override
    public void accumulate(Tensor src, Tensor dst) {
        DType dt = dtypeOf(src, "accumulate", "src");
        long n = ((CpuTensor) src).numel;
        ElementwiseOps.accumulate(threads, floating(src, "accumulate", "src", n, dt),
                floating(dst, "accumulate", "dst", n, dt), (int) n);
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        DType dt = dtypeOf(a, "add", "a");
        long n = ((CpuTensor) a).numel;
        ElementwiseOps.add(threads, floating(a, "add", "a", n, dt), floating(b, "add", "b", n, dt),
                floating(out, "add", "out", n, dt), (int) n);
    }

    // ------------------------------------------------------------------------------------------------ embedding

    @Override
    public void embeddingForward(Tensor tokens, Tensor weight, Tensor out, int rows, int vocab, int C) {
        String op = "embeddingForward";
        dims(op, rows, vocab, C);
        DType dt = dtypeOf(weight, op, "weight");
        EmbeddingOp.forward(threads, ids(tokens, op, "tokens", rows), floating(weight, op, "weight", (long) vocab * C, dt),
                floating(out, op, "out", (long) rows * C, dt), rows, vocab, C);
    }

    @Override
    public void embeddingBackward(Tensor tokens, Tensor dOut, Tensor dWeight, int rows, int vocab, int C) {
        String op = "embeddingBackward";
        dims(op, rows, vocab, C);
        DType dt = dtypeOf(dOut, op, "dOut");
        EmbeddingOp.backward(threads, ids(tokens, op, "tokens", rows), floating(dOut, op, "dOut", (long) rows * C, dt),
                floating(dWeight, op, "dWeight", (long) vocab * C, dt), rows, vocab, C);
    }

    // ------------------------------------------------------------------------------------------------ norms

    @Override
    public void layerNormForward(Tensor x, Tensor weight, Tensor bias, Tensor out, Tensor mean, Tensor rstd,
                                 int rows, int C) {
        normForward("layerNormForward", x, weight, bias, out, mean, rstd, rows, C, C, LAYER_NORM_EPS);
    }

    @Override
    public void layerNormBackward(Tensor dOut, Tensor x, Tensor weight, Tensor mean, Tensor rstd,
                                  Tensor dx, Tensor dWeight, Tensor dBias, int rows, int C) {
        normBackward("layerNormBackward", dOut, x, weight, mean, rstd, dx, dWeight, dBias, rows, C, C);
    }

    @Override
    public void groupNormForward(Tensor x, Tensor weight, Tensor bias, Tensor out, Tensor mean, Tensor rstd,
                                 int rows, int C) {
        heads("groupNormForward", C);
        normForward("groupNormForward", x, weight, bias, out, mean, rstd, rows, C, HEAD_SIZE, GROUP_NORM_EPS);
    }

    @Override
    public void groupNormBackward(Tensor dOut, Tensor x, Tensor weight, Tensor mean, Tensor rstd,
                                  Tensor dx, Tensor dWeight, Tensor dBias, int rows, int C) {
        heads("groupNormBackward", C);
        normBackward("groupNormBackward", dOut, x, weight, mean, rstd, dx, dWeight, dBias, rows, C, HEAD_SIZE);
    }

    private void normForward(String op, Tensor x, Tensor weight, Tensor bias, Tensor out, Tensor mean, Tensor rstd,
                             int rows, int C, int group, double eps) {
        dims(op, rows, C);
        DType dt = dtypeOf(x, op, "x");
        long n = (long) rows * C;
        long stats = (long) rows * (C / group);
        NormOps.forward(threads, floating(x, op, "x", n, dt), floating(weight, op, "weight", C, dt),
                floating(bias, op, "bias", C, dt), floating(out, op, "out", n, dt),
                floating(mean, op, "mean", stats, dt), floating(rstd, op, "rstd", stats, dt), rows, C, group, eps);
    }

    private void normBackward(String op, Tensor dOut, Tensor x, Tensor weight, Tensor mean, Tensor rstd,
                              Tensor dx, Tensor dWeight, Tensor dBias, int rows, int C, int group) {
        dims(op, rows, C);
        DType dt = dtypeOf(x, op, "x");
        long n = (long) rows * C;
        long stats = (long) rows * (C / group);
        NormOps.backward(threads, floating(dOut, op, "dOut", n, dt), floating(x, op, "x", n, dt),
                floating(weight, op, "weight", C, dt), floating(mean, op, "mean", stats, dt),
                floating(rstd, op, "rstd", stats, dt), floating(dx, op, "dx", n, dt),
                optional(dWeight, op, "dWeight", C, dt), optional(dBias, op, "dBias", C, dt), rows, C, group);
    }

    // ------------------------------------------------------------------------------------------------ token shift

    private static final String[] MIXES = indexedNames("mixes");
    private static final String[] OUTS = indexedNames("outs");
    private static final String[] D_OUTS = indexedNames("dOuts");
    private static final String[] D_MIXES = indexedNames("dMixes");

    @Override
    public void tokenShiftMixesForward(Tensor x, Tensor[] mixes, Tensor[] outs, int B, int T, int C) {
        String op = "tokenShiftMixesForward";
        long n = sequenceDims(op, B, T, C);
        int k = mixCount(op, mixes, outs, "outs", null);
        DType dt = dtypeOf(x, op, "x");
        CpuStore[] m = new CpuStore[k];
        CpuStore[] o = new CpuStore[k];
        for (int j = 0; j < k; j++) {
            m[j] = floating(mixes[j], op, MIXES[j], C, dt);
            o[j] = floating(outs[j], op, OUTS[j], n, dt);
        }
        TokenShiftOp.forward(threads, floating(x, op, "x", n, dt), m, o, B, T, C);
    }

    @Override
    public void tokenShiftMixesBackward(Tensor[] dOuts, Tensor x, Tensor[] mixes, Tensor dx, Tensor[] dMixes,
                                        int B, int T, int C) {
        String op = "tokenShiftMixesBackward";
        long n = sequenceDims(op, B, T, C);
        int k = mixCount(op, mixes, dOuts, "dOuts", dMixes);
        DType dt = dtypeOf(x, op, "x");
        CpuStore[] d = new CpuStore[k];
        CpuStore[] m = new CpuStore[k];
        CpuStore[] dm = new CpuStore[k];
        for (int j = 0; j < k; j++) {
            d[j] = floating(dOuts[j], op, D_OUTS[j], n, dt);
            m[j] = floating(mixes[j], op, MIXES[j], C, dt);
            dm[j] = dMixes == null ? null : optional(dMixes[j], op, D_MIXES[j], C, dt);
        }
        TokenShiftOp.backward(threads, d, floating(x, op, "x", n, dt), m, floating(dx, op, "dx", n, dt), dm, B, T, C);
    }

    // ------------------------------------------------------------------------------------------------ linear

    @Override
    public void linearForward(Tensor x, Tensor weight, Tensor out, int rows, int in, int outDim) {
        String op = "linearForward";
        dims(op, rows, in, outDim);
        DType dt = dtypeOf(x, op, "x");
        LinearOps.linearForward(floating(x, op, "x", (long) rows * in, dt),
                floating(weight, op, "weight", (long) outDim * in, dt),
                floating(out, op, "out", (long) rows * outDim, dt), rows, in, outDim);
    }

    @Override
    public void linearBackward(Tensor dOut, Tensor x, Tensor weight, Tensor dx, Tensor dWeight,
                               int rows, int in, int outDim) {
        String op = "linearBackward";
        dims(op, rows, in, outDim);
        DType dt = dtypeOf(x, op, "x");
        LinearOps.linearBackward(floating(dOut, op, "dOut", (long) rows * outDim, dt),
                floating(x, op, "x", (long) rows * in, dt), floating(weight, op, "weight", (long) outDim * in, dt),
                optional(dx, op, "dx", (long) rows * in, dt), optional(dWeight, op, "dWeight", (long) outDim * in, dt),
                rows, in, outDim);
    }

    @Override
    public void loraForward(Tensor x, Tensor down, Tensor up, Tensor bias, Activation hiddenAct, Activation outAct,
                            Tensor hidden, Tensor out, int rows, int in, int rank, int outDim) {
        String op = "loraForward";
        dims(op, rows, in, rank, outDim);
        activations(op, hiddenAct, outAct);
        DType dt = dtypeOf(x, op, "x");
        LinearOps.loraForward(threads, floating(x, op, "x", (long) rows * in, dt),
                floating(down, op, "down", (long) in * rank, dt), floating(up, op, "up", (long) rank * outDim, dt),
                optional(bias, op, "bias", outDim, dt), hiddenAct, outAct,
                floating(hidden, op, "hidden", (long) rows * rank, dt),
                floating(out, op, "out", (long) rows * outDim, dt), rows, in, rank, outDim);
    }

    @Override
    public void loraBackward(Tensor dOut, Tensor x, Tensor down, Tensor up, Tensor bias, Activation hiddenAct,
                             Activation outAct, Tensor hidden, Tensor out, Tensor dPreScratch, Tensor dHiddenScratch,
                             Tensor dx, Tensor dDown, Tensor dUp, Tensor dBias, int rows, int in, int rank, int outDim) {
        String op = "loraBackward";
        dims(op, rows, in, rank, outDim);
        activations(op, hiddenAct, outAct);
        DType dt = dtypeOf(x, op, "x");
        long outN = (long) rows * outDim;
        CpuStore dPre = outAct == Activation.NONE ? optional(dPreScratch, op, "dPreScratch", outN, dt)
                : floating(dPreScratch, op, "dPreScratch", outN, dt);
        LinearOps.loraBackward(threads, floating(dOut, op, "dOut", outN, dt), floating(x, op, "x", (long) rows * in, dt),
                floating(down, op, "down", (long) in * rank, dt), floating(up, op, "up", (long) rank * outDim, dt),
                optional(bias, op, "bias", outDim, dt), hiddenAct, outAct,
                floating(hidden, op, "hidden", (long) rows * rank, dt), floating(out, op, "out", outN, dt), dPre,
                floating(dHiddenScratch, op, "dHiddenScratch", (long) rows * rank, dt),
                floating(dx, op, "dx", (long) rows * in, dt), optional(dDown, op, "dDown", (long) in * rank, dt),
                optional(dUp, op, "dUp", (long) rank * outDim, dt), optional(dBias, op, "dBias", outDim, dt),
                rows, in, rank, outDim);
    }

    // ------------------------------------------------------------------------------------------------ time mix pieces

    @Override
    public void valueResidualForward(Tensor v, Tensor vFirst, Tensor gatePre, Tensor out, int rows, int C) {
        String op = "valueResidualForward";
        long n = elementwise(op, rows, C);
        DType dt = dtypeOf(v, op, "v");
        ElementwiseOps.valueResidualForward(threads, floating(v, op, "v", n, dt), floating(vFirst, op, "vFirst", n, dt),
                floating(gatePre, op, "gatePre", n, dt), floating(out, op, "out", n, dt), (int) n);
    }

    @Override
    public void valueResidualBackward(Tensor dOut, Tensor v, Tensor vFirst, Tensor gatePre,
                                      Tensor dv, Tensor dvFirst, Tensor dGatePre, int rows, int C) {
        String op = "valueResidualBackward";
        long n = elementwise(op, rows, C);
        DType dt = dtypeOf(v, op, "v");
        ElementwiseOps.valueResidualBackward(threads, floating(dOut, op, "dOut", n, dt), floating(v, op, "v", n, dt),
                floating(vFirst, op, "vFirst", n, dt), floating(gatePre, op, "gatePre", n, dt),
                floating(dv, op, "dv", n, dt), floating(dvFirst, op, "dvFirst", n, dt),
                floating(dGatePre, op, "dGatePre", n, dt), (int) n);
    }

    @Override
    public void keyPrepareForward(Tensor k, Tensor alphaPre, Tensor kK, Tensor kA, Tensor kTilde, Tensor a, Tensor b,
                                  int rows, int C) {
        String op = "keyPrepareForward";
        long n = elementwise(op, rows, C);
        heads(op, C);
        DType dt = dtypeOf(k, op, "k");
        KeyPrepareOp.forward(threads, floating(k, op, "k", n, dt), floating(alphaPre, op, "alphaPre", n, dt),
                floating(kK, op, "kK", C, dt), floating(kA, op, "kA", C, dt), floating(kTilde, op, "kTilde", n, dt),
                floating(a, op, "a", n, dt), floating(b, op, "b", n, dt), rows, C);
    }

    @Override
    public void keyPrepareBackward(Tensor dKTilde, Tensor dA, Tensor dB, Tensor k, Tensor alphaPre, Tensor kK,
                                   Tensor kA, Tensor dk, Tensor dAlphaPre, Tensor dKK, Tensor dKA, int rows, int C) {
        String op = "keyPrepareBackward";
        long n = elementwise(op, rows, C);
        heads(op, C);
        DType dt = dtypeOf(k, op, "k");
        KeyPrepareOp.backward(threads, floating(dKTilde, op, "dKTilde", n, dt), floating(dA, op, "dA", n, dt),
                floating(dB, op, "dB", n, dt), floating(k, op, "k", n, dt), floating(alphaPre, op, "alphaPre", n, dt),
                floating(kK, op, "kK", C, dt), floating(kA, op, "kA", C, dt), floating(dk, op, "dk", n, dt),
                floating(dAlphaPre, op, "dAlphaPre", n, dt), optional(dKK, op, "dKK", C, dt),
                optional(dKA, op, "dKA", C, dt), rows, C);
    }

    @Override
    public long wkv7SavedElements(int B, int T, int H) {
        dims("wkv7SavedElements", B, T, H);
        return Wkv7Op.savedElements(B, T, H);
    }

    @Override
    public void wkv7Forward(Tensor r, Tensor wRaw, Tensor k, Tensor v, Tensor a, Tensor b, Tensor out, Tensor saved,
                            int B, int T, int H) {
        String op = "wkv7Forward";
        long n = sequenceDims(op, B, T, H * HEAD_SIZE);
        DType dt = dtypeOf(r, op, "r");
        wkv7.forward(floating(r, op, "r", n, dt), floating(wRaw, op, "wRaw", n, dt), floating(k, op, "k", n, dt),
                floating(v, op, "v", n, dt), floating(a, op, "a", n, dt), floating(b, op, "b", n, dt),
                floating(out, op, "out", n, dt), floating(saved, op, "saved", Wkv7Op.savedElements(B, T, H), dt),
                B, T, H);
    }

    @Override
    public void wkv7Backward(Tensor dOut, Tensor r, Tensor wRaw, Tensor k, Tensor v, Tensor a, Tensor b, Tensor saved,
                             Tensor dr, Tensor dwRaw, Tensor dk, Tensor dv, Tensor da, Tensor db, int B, int T, int H) {
        String op = "wkv7Backward";
        long n = sequenceDims(op, B, T, H * HEAD_SIZE);
        DType dt = dtypeOf(r, op, "r");
        wkv7.backward(floating(dOut, op, "dOut", n, dt), floating(r, op, "r", n, dt),
                floating(wRaw, op, "wRaw", n, dt), floating(k, op, "k", n, dt), floating(v, op, "v", n, dt),
                floating(a, op, "a", n, dt), floating(b, op, "b", n, dt),
                floating(saved, op, "saved", Wkv7Op.savedElements(B, T, H), dt), floating(dr, op, "dr", n, dt),
                floating(dwRaw, op, "dwRaw", n, dt), floating(dk, op, "dk", n, dt), floating(dv, op, "dv", n, dt),
                floating(da, op, "da", n, dt), floating(db, op, "db", n, dt), B, T, H);
    }

    @Override
    public void bonusForward(Tensor x, Tensor r, Tensor k, Tensor v, Tensor rK, Tensor out, int rows, int C) {
        String op = "bonusForward";
        long n = elementwise(op, rows, C);
        heads(op, C);
        DType dt = dtypeOf(x, op, "x");
        BonusOp.forward(threads, floating(x, op, "x", n, dt), floating(r, op, "r", n, dt), floating(k, op, "k", n, dt),
                floating(v, op, "v", n, dt), floating(rK, op, "rK", C, dt), floating(out, op, "out", n, dt), rows, C);
    }

    @Override
    public void bonusBackward(Tensor dOut, Tensor r, Tensor k, Tensor v, Tensor rK,
                              Tensor dx, Tensor dr, Tensor dk, Tensor dv, Tensor dRK, int rows, int C) {
        String op = "bonusBackward";
        long n = elementwise(op, rows, C);
        heads(op, C);
        DType dt = dtypeOf(r, op, "r");
        BonusOp.backward(threads, floating(dOut, op, "dOut", n, dt), floating(r, op, "r", n, dt),
                floating(k, op, "k", n, dt), floating(v, op, "v", n, dt), floating(rK, op, "rK", C, dt),
                optional(dx, op, "dx", n, dt), floating(dr, op, "dr", n, dt), floating(dk, op, "dk", n, dt),
                floating(dv, op, "dv", n, dt), optional(dRK, op, "dRK", C, dt), rows, C);
    }

    @Override
    public void gateForward(Tensor x, Tensor gate, Tensor out, int rows, int C) {
        String op = "gateForward";
        long n = elementwise(op, rows, C);
        DType dt = dtypeOf(x, op, "x");
        ElementwiseOps.gateForward(threads, floating(x, op, "x", n, dt), floating(gate, op, "gate", n, dt),
                floating(out, op, "out", n, dt), (int) n);
    }

    @Override
    public void gateBackward(Tensor dOut, Tensor x, Tensor gate, Tensor dx, Tensor dGate, int rows, int C) {
        String op = "gateBackward";
        long n = elementwise(op, rows, C);
        DType dt = dtypeOf(x, op, "x");
        ElementwiseOps.gateBackward(threads, floating(dOut, op, "dOut", n, dt), floating(x, op, "x", n, dt),
                floating(gate, op, "gate", n, dt), floating(dx, op, "dx", n, dt), floating(dGate, op, "dGate", n, dt),
                (int) n);
    }

    // ------------------------------------------------------------------------------------------------ channel mix

    @Override
    public void reluSquaredForward(Tensor x, Tensor out, int rows, int C) {
        String op = "reluSquaredForward";
        long n = elementwise(op, rows, C);
        DType dt = dtypeOf(x, op, "x");
        ElementwiseOps.reluSquaredForward(threads, floating(x, op, "x", n, dt), floating(out, op, "out", n, dt), (int) n);
    }

    @Override
    public void reluSquaredBackwardOverwriting(Tensor dAct, Tensor act, Tensor dPre, int rows, int C) {
        String op = "reluSquaredBackwardOverwriting";
        long n = elementwise(op, rows, C);
        DType dt = dtypeOf(act, op, "act");
        ElementwiseOps.reluSquaredBackward(threads, floating(dAct, op, "dAct", n, dt), floating(act, op, "act", n, dt),
                floating(dPre, op, "dPre", n, dt), (int) n);
    }

    // ------------------------------------------------------------------------------------------------ loss

    @Override
    public void crossEntropyForward(Tensor logits, Tensor targets, Tensor losses, int rows, int vocab) {
        String op = "crossEntropyForward";
        dims(op, rows, vocab);
        vocab(op, vocab);
        DType dt = dtypeOf(logits, op, "logits");
        CrossEntropyOp.forward(threads, floating(logits, op, "logits", (long) rows * vocab, dt),
                ids(targets, op, "targets", rows), floating(losses, op, "losses", rows, dt), rows, vocab);
    }

    @Override
    public void crossEntropyBackward(Tensor logits, Tensor targets, Tensor dLogits, int rows, int vocab,
                                     double gradScale) {
        String op = "crossEntropyBackward";
        dims(op, rows, vocab);
        vocab(op, vocab);
        DType dt = dtypeOf(logits, op, "logits");
        long n = (long) rows * vocab;
        CrossEntropyOp.backward(threads, floating(logits, op, "logits", n, dt), ids(targets, op, "targets", rows),
                floating(dLogits, op, "dLogits", n, dt), rows, vocab, gradScale);
    }

    // ------------------------------------------------------------------------------------------------ optimizer

    @Override
    public double sumOfSquares(Tensor t) {
        String op = "sumOfSquares";
        CpuTensor c = own(t, op, "t");
        return OptimizerOps.sumOfSquares(f32(t, op, "t", c.numel));
    }

    @Override
    public void adamwStep(Tensor params, Tensor grads, Tensor m, Tensor v, long[] segmentEnds, float[] segmentLr,
                          float[] segmentDecay, float beta1, float beta2, float eps, float gradScale, float bc1,
                          float bc2) {
        String op = "adamwStep";
        long n = own(params, op, "params").numel;
        AdamWSegments.check(n, segmentEnds, segmentLr, segmentDecay);
        OptimizerOps.adamwStep(threads, f32(params, op, "params", n), f32(grads, op, "grads", n), f32(m, op, "m", n),
                f32(v, op, "v", n), segmentEnds, segmentLr, segmentDecay, beta1, beta2, eps, gradScale, bc1, bc2);
    }

    private CpuStore.F32 f32(Tensor t, String op, String name, long numel) {
        return (CpuStore.F32) floating(t, op, name, numel, DType.F32);
    }

    // ------------------------------------------------------------------------------------------------ argument checks

    private CpuTensor own(Tensor t, String op, String name) {
        if (t == null) {
            throw new IllegalArgumentException(op + ": " + name + " is null");
        }
        if (!(t instanceof CpuTensor c) || c.owner != this) {
            throw new IllegalArgumentException(op + ": " + name + " belongs to another backend: " + t);
        }
        if (c.isClosed()) {
            throw new IllegalArgumentException(op + ": " + name + " was closed: " + t);
        }
        return c;
    }

    private DType dtypeOf(Tensor t, String op, String name) {
        CpuTensor c = own(t, op, name);
        if (!c.dtype.isFloating()) {
            throw new IllegalArgumentException(op + ": " + name + " must be F32 or F64, got " + c.dtype);
        }
        return c.dtype;
    }

    /** A floating operand with exactly {@code numel} elements of {@code dtype}. */
    private CpuStore floating(Tensor t, String op, String name, long numel, DType dtype) {
        CpuTensor c = own(t, op, name);
        if (c.dtype != dtype || c.numel != numel) {
            throw new IllegalArgumentException(op + ": " + name + " is " + c.numel + " × " + c.dtype + ", expected "
                    + numel + " × " + dtype);
        }
        if (c.store == null) {
            throw new IllegalArgumentException(op + ": " + name + " (" + c.numel * c.dtype.bytes
                    + " bytes) is over the CPU backend's 2 GiB operand limit; pass views of it");
        }
        return c.store;
    }

    private CpuStore optional(Tensor t, String op, String name, long numel, DType dtype) {
        return t == null ? null : floating(t, op, name, numel, dtype);
    }

    private IntBuffer ids(Tensor t, String op, String name, long numel) {
        CpuTensor c = own(t, op, name);
        if (c.dtype != DType.I32 || c.numel != numel) {
            throw new IllegalArgumentException(op + ": " + name + " is " + c.numel + " × " + c.dtype + ", expected "
                    + numel + " × I32");
        }
        if (c.ints == null) {
            throw new IllegalArgumentException(op + ": " + name + " is over the CPU backend's 2 GiB operand limit");
        }
        return c.ints;
    }

    private CpuStore hostStore(Tensor t, int length, String op) {
        DType dt = dtypeOf(t, op, "tensor");
        return floating(t, op, "tensor", length, dt);
    }
}
