package dev.gosling.trainer.model;

import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * {@code torch.nn.init.orthogonal_}: a Gaussian matrix, its QR decomposition, Q's columns multiplied by sign(diag R),
 * times gain (rwkv7-reference.md §6.5 step 3). The result has orthonormal rows or columns, whichever are fewer,
 * scaled by gain. Householder QR in double (LAPACK geqr2 + org2r), column-major; the reflector updates of large
 * matrices run in parallel over columns, each column computed alone, so the result does not depend on the thread count.
 */
public final class Orthogonal {
    /** Below this many scalar updates per reflector, threads cost more than they save. */
    private static final long PARALLEL_WORK = 1L << 17;

    private Orthogonal() {
    }

    /**
     * Fills {@code dst[offset …]} with a rows×cols (row-major) orthogonal matrix times {@code gain}, drawing the Gaussian
     * matrix from {@code random}. sign(0) is taken as +1 (torch would zero the column; it has probability 0).
     */
    public static void fill(SplittableRandom random, int rows, int cols, double gain, float[] dst, int offset) {
        boolean transposed = rows < cols;
        int m = transposed ? cols : rows;
        int n = transposed ? rows : cols;
        double[] a = new double[ParameterLayout.checkedLength((long) m * n, "an orthogonal init scratch matrix")];
        fillGaussian(random, a);
        double[] tau = new double[n];
        double[] diagR = new double[n];
        factor(a, m, n, tau, diagR);
        formQ(a, m, n, tau);
        for (int i = 0; i < rows; i++) {
            int row = offset + i * cols;
            for (int j = 0; j < cols; j++) {
                // W = Q (rows ≥ cols) or Qᵀ; Q[r][c] is a[c·m + r], column c scaled by sign(R[c][c])·gain.
                int qRow = transposed ? j : i;
                int qCol = transposed ? i : j;
                double scale = diagR[qCol] < 0 ? -gain : gain;
                dst[row + j] = (float) (a[qCol * m + qRow] * scale);
            }
        }
    }

    /** Standard normal deviates by Box–Muller from the generator's doubles (its algorithm is fixed, unlike nextGaussian's). */
    static void fillGaussian(SplittableRandom random, double[] a) {
        for (int i = 0; i < a.length; i += 2) {
            double u1 = 1.0 - random.nextDouble();
            double u2 = random.nextDouble();
            double radius = Math.sqrt(-2.0 * Math.log(u1));
            a[i] = radius * Math.cos(2.0 * Math.PI * u2);
            if (i + 1 < a.length) {
                a[i + 1] = radius * Math.sin(2.0 * Math.PI * u2);
            }
        }
    }

    /** geqr2: A = QR with Householder vectors v_k = [1; a[k+1.., k]] below the diagonal, tau_k, and diag(R). */
    private static void factor(double[] a, int m, int n, double[] tau, double[] diagR) {
        for (int k = 0; k < n; k++) {
            int ck = k * m;
            double alpha = a[ck + k];
            double tailNorm2 = 0;
            for (int i = k + 1; i < m; i++) {
                tailNorm2 += a[ck + i] * a[ck + i];
            }
            if (tailNorm2 == 0) {
                tau[k] = 0;
                diagR[k] = alpha;
                continue;
            }
            double beta = -Math.copySign(Math.sqrt(alpha * alpha + tailNorm2), alpha);
            tau[k] = (beta - alpha) / beta;
            double scale = 1.0 / (alpha - beta);
            for (int i = k + 1; i < m; i++) {
                a[ck + i] *= scale;
            }
            a[ck + k] = beta;
            diagR[k] = beta;
            applyReflector(a, m, k, tau[k], k + 1, n);
        }
    }

    /** org2r: overwrite the reflectors with the thin Q (m×n), accumulating backwards. */
    private static void formQ(double[] a, int m, int n, double[] tau) {
        for (int k = n - 1; k >= 0; k--) {
            int ck = k * m;
            if (k < n - 1) {
                applyReflector(a, m, k, tau[k], k + 1, n);
            }
            for (int i = k + 1; i < m; i++) {
                a[ck + i] *= -tau[k];
            }
            a[ck + k] = 1.0 - tau[k];
            for (int i = 0; i < k; i++) {
                a[ck + i] = 0;
            }
        }
    }

    /** Columns [from, to) ← (I − tau·v·vᵀ)·columns on rows k…m−1, v = [1; a[k+1.., k]]. */
    private static void applyReflector(double[] a, int m, int k, double tau, int from, int to) {
        if (tau == 0 || from >= to) {
            return;
        }
        if ((long) (m - k) * (to - from) >= PARALLEL_WORK) {
            IntStream.range(from, to).parallel().forEach(j -> applyToColumn(a, m, k, tau, j));
        } else {
            for (int j = from; j < to; j++) {
                applyToColumn(a, m, k, tau, j);
            }
        }
    }

    private static void applyToColumn(double[] a, int m, int k, double tau, int j) {
        int ck = k * m;
        int cj = j * m;
        // Four partial sums let the JIT overlap the additions (a fixed order, so still deterministic).
        double s0 = 0;
        double s1 = 0;
        double s2 = 0;
        double s3 = 0;
        int i = k + 1;
        for (; i + 3 < m; i += 4) {
            s0 += a[ck + i] * a[cj + i];
            s1 += a[ck + i + 1] * a[cj + i + 1];
            s2 += a[ck + i + 2] * a[cj + i + 2];
            s3 += a[ck + i + 3] * a[cj + i + 3];
        }
        for (; i < m; i++) {
            s0 += a[ck + i] * a[cj + i];
        }
        double s = (a[cj + k] + (s0 + s1)) + (s2 + s3);
        s *= tau;
        a[cj + k] -= s;
        for (int r = k + 1; r < m; r++) {
            a[cj + r] -= s * a[ck + r];
        }
    }
}
