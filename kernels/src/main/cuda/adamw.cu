// The optimizer on the device: the global gradient norm (a sum of squares in double, block partials summed on the
// host in order) and one AdamW step over a contiguous parameter buffer split into segments that share a learning
// rate and a weight decay (FusedAdam as dev.gosling.trainer.optim.AdamW writes it). The step's float arithmetic is
// spelled with _rn intrinsics so nothing is fused: it reproduces AdamW.step bit for bit.
#include "common.cuh"

// partial[block] = Σ x² over the block's grid-stride elements, in double. blockDim.x = 256.
extern "C" __global__ void sum_squares_partial(const float* __restrict__ x, i64 n, double* __restrict__ partial) {
    __shared__ double scratch[32];
    double s = 0.0;
    GRID_STRIDE(i, n) {
        double v = x[i];
        s += v * v;
    }
    s = warp_sum_d(s);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    if (lane == 0) scratch[warp] = s;
    __syncthreads();
    if (warp == 0) {
        double t = lane < warps ? scratch[lane] : 0.0;
        t = warp_sum_d(t);
        if (lane == 0) partial[blockIdx.x] = t;
    }
}

// For element i of segment s (segEnds[s−1] ≤ i < segEnds[s], segEnds[−1] = 0):
//   g = grads[i]·gradScale; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g·g;
//   p ← p − lr[s]·((m/bc1)/(sqrt(v/bc2) + eps) + wd[s]·p).
extern "C" __global__ void adamw_step(float* __restrict__ params, const float* __restrict__ grads,
                                      float* __restrict__ m, float* __restrict__ v, i64 n,
                                      const i64* __restrict__ segEnds, const float* __restrict__ segLr,
                                      const float* __restrict__ segDecay, int segments, float beta1, float beta2,
                                      float eps, float gradScale, float bc1, float bc2) {
    float oneMinusBeta1 = __fadd_rn(1.0f, -beta1);
    float oneMinusBeta2 = __fadd_rn(1.0f, -beta2);
    GRID_STRIDE(i, n) {
        int lo = 0, hi = segments - 1;
        while (lo < hi) {
            int mid = (lo + hi) >> 1;
            if (segEnds[mid] > i) hi = mid; else lo = mid + 1;
        }
        float lr = segLr[lo], decay = segDecay[lo];
        float g = __fmul_rn(grads[i], gradScale);
        float mi = __fadd_rn(__fmul_rn(beta1, m[i]), __fmul_rn(oneMinusBeta1, g));
        float vi = __fadd_rn(__fmul_rn(beta2, v[i]), __fmul_rn(__fmul_rn(oneMinusBeta2, g), g));
        m[i] = mi;
        v[i] = vi;
        float denom = __fadd_rn(__fsqrt_rn(__fdiv_rn(vi, bc2)), eps);
        float p = params[i];
        float update = __fadd_rn(__fdiv_rn(__fdiv_rn(mi, bc1), denom), __fmul_rn(decay, p));
        params[i] = __fadd_rn(p, -__fmul_rn(lr, update));
    }
}
