package dev.gosling.trainer.backend.cpu;

import dev.gosling.trainer.backend.DType;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import org.bytedeco.openblas.global.openblas;

/**
 * The storage abstraction every CPU op is written against, once, for both precisions.
 *
 * <p>Why this shape: an op reads elements as {@code double} and writes {@code double}; {@link F32} rounds on the
 * store, {@link F64} keeps them. Only these two final subclasses exist, so every call site is mono- or bimorphic and
 * C2 inlines {@code get}/{@code set} down to a direct-buffer access (measured as fast as a {@code float[]} loop).
 * Arithmetic inside an op runs in double registers — on scalar code that costs the same as float — and fp32 mode
 * rounds exactly once per stored value, like the reference's fp32-inside-kernel, bf16-between-kernels numerics.
 * Matrix products go to {@code cblas_sgemm} or {@code cblas_dgemm} by subclass.
 *
 * <p>Elements live off-heap in direct buffers (a JavaCPP allocation): OpenBLAS reads them in place, whereas JavaCPP
 * copies Java arrays on every native call. A direct buffer holds at most 2 GiB, so one op operand (a view) is at most
 * 2 GiB; allocations may be larger.
 */
abstract sealed class CpuStore permits CpuStore.F32, CpuStore.F64 {

    /** Elements in this store. */
    final int length;

    private CpuStore(int length) {
        this.length = length;
    }

    abstract DType dtype();

    abstract double get(int i);

    abstract void set(int i, double v);

    final void add(int i, double v) {
        set(i, get(i) + v);
    }

    /**
     * C = op(A)·op(B) + beta·C, row-major, alpha 1. {@code a}, {@code b} and this store share the dtype (the backend
     * checks it), so the casts in the subclasses cannot fail.
     */
    abstract void gemm(boolean transA, boolean transB, int m, int n, int k,
                       CpuStore a, int lda, CpuStore b, int ldb, double beta, int ldc);

    static int trans(boolean t) {
        return t ? openblas.CblasTrans : openblas.CblasNoTrans;
    }

    static final class F32 extends CpuStore {
        final FloatBuffer buf;

        F32(FloatBuffer buf) {
            super(buf.capacity());
            this.buf = buf;
        }

        @Override
        DType dtype() {
            return DType.F32;
        }

        @Override
        double get(int i) {
            return buf.get(i);
        }

        @Override
        void set(int i, double v) {
            buf.put(i, (float) v);
        }

        @Override
        void gemm(boolean transA, boolean transB, int m, int n, int k,
                  CpuStore a, int lda, CpuStore b, int ldb, double beta, int ldc) {
            openblas.cblas_sgemm(openblas.CblasRowMajor, trans(transA), trans(transB), m, n, k,
                    1f, ((F32) a).buf, lda, ((F32) b).buf, ldb, (float) beta, buf, ldc);
        }
    }

    static final class F64 extends CpuStore {
        final DoubleBuffer buf;

        F64(DoubleBuffer buf) {
            super(buf.capacity());
            this.buf = buf;
        }

        @Override
        DType dtype() {
            return DType.F64;
        }

        @Override
        double get(int i) {
            return buf.get(i);
        }

        @Override
        void set(int i, double v) {
            buf.put(i, v);
        }

        @Override
        void gemm(boolean transA, boolean transB, int m, int n, int k,
                  CpuStore a, int lda, CpuStore b, int ldb, double beta, int ldc) {
            openblas.cblas_dgemm(openblas.CblasRowMajor, trans(transA), trans(transB), m, n, k,
                    1.0, ((F64) a).buf, lda, ((F64) b).buf, ldb, beta, buf, ldc);
        }
    }
}
