// The optimizer on the device: the global gradient norm (a sum of squares in double, block partials summed on the
// host in order) and one AdamW step over a contiguous parameter buffer split into segments that share a learning
// rate and a weight decay (FusedAdam as dev.gosling.trainer.optim.AdamW writes it). The step's float arithmetic is
// spelled with _rn intrinsics so nothing is fused: it reproduces AdamW.step bit for bit. Given a bf16 copy (not
// null), the step also writes copy[i − copyFrom] = bf16_rn(p_new[i]) for every i ≥ copyFrom, the bits cast_f32_bf16
// writes: the model's bf16 copy of its GEMM weights, refreshed while p_new is in registers instead of cast again.
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
                                      float eps, float gradScale, float bc1, float bc2,
                                      unsigned short* __restrict__ copy, i64 copyFrom) {
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
        float pNew = __fadd_rn(p, -__fmul_rn(lr, update));
        params[i] = pNew;
        if (copy != nullptr && i >= copyFrom) copy[i - copyFrom] = bf16_rn(pNew);
    }
}

// ---------------------------------------------------------------- the same step, the segment found once per tile

// Element i of segment s with lr, decay as adamw_step, the same operations in the same order (bit-identical).
__device__ __forceinline__ void adamw_one(float& p, float gRaw, float& m, float& v, float lr, float decay,
                                          float beta1, float beta2, float oneMinusBeta1, float oneMinusBeta2,
                                          float eps, float gradScale, float bc1, float bc2) {
    float g = __fmul_rn(gRaw, gradScale);
    float mi = __fadd_rn(__fmul_rn(beta1, m), __fmul_rn(oneMinusBeta1, g));
    float vi = __fadd_rn(__fmul_rn(beta2, v), __fmul_rn(__fmul_rn(oneMinusBeta2, g), g));
    m = mi;
    v = vi;
    float denom = __fadd_rn(__fsqrt_rn(__fdiv_rn(vi, bc2)), eps);
    float update = __fadd_rn(__fdiv_rn(__fdiv_rn(mi, bc1), denom), __fmul_rn(decay, p));
    p = __fadd_rn(p, -__fmul_rn(lr, update));
}

// The segment of element i among segments lo … hi (segEnds[hi] > i).
__device__ __forceinline__ int adamw_segment(const i64* __restrict__ segEnds, int lo, int hi, i64 i) {
    while (lo < hi) {
        int mid = (lo + hi) >> 1;
        if (segEnds[mid] > i) hi = mid; else lo = mid + 1;
    }
    return lo;
}

#define ADAMW_THREADS 256

// Block b updates the tile [b·TILE, min((b + 1)·TILE, n)), TILE = ADAMW_THREADS·4·VEC elements. Its threads find the
// tile's first segment once (a binary search over the same addresses: broadcast loads); a tile inside one segment —
// all but the tiles that hold a segment boundary — is updated with one lr and decay, as float4 (VEC per thread, all
// loads first) when vec4 (every buffer 16-byte aligned; a copy 8-byte aligned with copyFrom a multiple of 4) and the
// tile is whole, else element by element; a tile with a boundary searches each element's segment among the tile's
// few. blockDim.x = ADAMW_THREADS; grid ⌈n / TILE⌉.
template <int VEC>
__device__ __forceinline__ void adamw_tile(float* __restrict__ params, const float* __restrict__ grads,
                                           float* __restrict__ m, float* __restrict__ v, i64 n,
                                           const i64* __restrict__ segEnds, const float* __restrict__ segLr,
                                           const float* __restrict__ segDecay, int segments, float beta1,
                                           float beta2, float eps, float gradScale, float bc1, float bc2,
                                           unsigned short* __restrict__ copy, i64 copyFrom, int vec4) {
    constexpr int TILE = ADAMW_THREADS * 4 * VEC;
    float oneMinusBeta1 = __fadd_rn(1.0f, -beta1);
    float oneMinusBeta2 = __fadd_rn(1.0f, -beta2);
    i64 lo = (i64)blockIdx.x * TILE;
    i64 hi = lo + TILE < n ? lo + TILE : n;
    int s = adamw_segment(segEnds, 0, segments - 1, lo);
    if (segEnds[s] >= hi) {
        float lr = segLr[s], decay = segDecay[s];
        if (vec4 && hi - lo == TILE) {
            float4* p4 = reinterpret_cast<float4*>(params + lo);
            const float4* g4 = reinterpret_cast<const float4*>(grads + lo);
            float4* m4 = reinterpret_cast<float4*>(m + lo);
            float4* v4 = reinterpret_cast<float4*>(v + lo);
            float4 P[VEC], G[VEC], M[VEC], V[VEC];
#pragma unroll
            for (int k = 0; k < VEC; k++) {
                int f = threadIdx.x + ADAMW_THREADS * k;
                G[k] = g4[f];
                M[k] = m4[f];
                V[k] = v4[f];
                P[k] = p4[f];
            }
#pragma unroll
            for (int k = 0; k < VEC; k++) {
                adamw_one(P[k].x, G[k].x, M[k].x, V[k].x, lr, decay, beta1, beta2, oneMinusBeta1, oneMinusBeta2, eps,
                          gradScale, bc1, bc2);
                adamw_one(P[k].y, G[k].y, M[k].y, V[k].y, lr, decay, beta1, beta2, oneMinusBeta1, oneMinusBeta2, eps,
                          gradScale, bc1, bc2);
                adamw_one(P[k].z, G[k].z, M[k].z, V[k].z, lr, decay, beta1, beta2, oneMinusBeta1, oneMinusBeta2, eps,
                          gradScale, bc1, bc2);
                adamw_one(P[k].w, G[k].w, M[k].w, V[k].w, lr, decay, beta1, beta2, oneMinusBeta1, oneMinusBeta2, eps,
                          gradScale, bc1, bc2);
                int f = threadIdx.x + ADAMW_THREADS * k;
                m4[f] = M[k];
                v4[f] = V[k];
                p4[f] = P[k];
                // copyFrom is a multiple of 4 on this path: the four elements are all copied or none
                i64 i = lo + 4 * (i64)f;
                if (copy != nullptr && i >= copyFrom) {
                    ushort4 c;
                    c.x = bf16_rn(P[k].x); c.y = bf16_rn(P[k].y); c.z = bf16_rn(P[k].z); c.w = bf16_rn(P[k].w);
                    *reinterpret_cast<ushort4*>(copy + (i - copyFrom)) = c;
                }
            }
        } else {
            for (i64 i = lo + threadIdx.x; i < hi; i += ADAMW_THREADS) {
                float p = params[i], mi = m[i], vi = v[i];
                adamw_one(p, grads[i], mi, vi, lr, decay, beta1, beta2, oneMinusBeta1, oneMinusBeta2, eps, gradScale,
                          bc1, bc2);
                m[i] = mi;
                v[i] = vi;
                params[i] = p;
                if (copy != nullptr && i >= copyFrom) copy[i - copyFrom] = bf16_rn(p);
            }
        }
    } else {
        int last = adamw_segment(segEnds, s, segments - 1, hi - 1);
        for (i64 i = lo + threadIdx.x; i < hi; i += ADAMW_THREADS) {
            int si = adamw_segment(segEnds, s, last, i);
            float p = params[i], mi = m[i], vi = v[i];
            adamw_one(p, grads[i], mi, vi, segLr[si], segDecay[si], beta1, beta2, oneMinusBeta1, oneMinusBeta2, eps,
                      gradScale, bc1, bc2);
            m[i] = mi;
            v[i] = vi;
            params[i] = p;
            if (copy != nullptr && i >= copyFrom) copy[i - copyFrom] = bf16_rn(p);
        }
    }
}

// adamw_step_tiles_<VEC>: tiles of 1024·VEC elements (the backend launches VEC = 4 unless told otherwise).
#define ADAMW_TILES(VEC)                                                                                             \
    extern "C" __global__ void __launch_bounds__(ADAMW_THREADS) adamw_step_tiles_##VEC(                             \
        float* __restrict__ params, const float* __restrict__ grads, float* __restrict__ m, float* __restrict__ v,   \
        i64 n, const i64* __restrict__ segEnds, const float* __restrict__ segLr, const float* __restrict__ segDecay, \
        int segments, float beta1, float beta2, float eps, float gradScale, float bc1, float bc2,                    \
        unsigned short* __restrict__ copy, i64 copyFrom, int vec4) {                                                 \
        adamw_tile<VEC>(params, grads, m, v, n, segEnds, segLr, segDecay, segments, beta1, beta2, eps, gradScale,    \
                        bc1, bc2, copy, copyFrom, vec4);                                                             \
    }
ADAMW_TILES(1)
ADAMW_TILES(2)
ADAMW_TILES(4)
