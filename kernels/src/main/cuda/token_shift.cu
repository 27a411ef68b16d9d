// Token shift with a lerp, for k = 1 … 6 mixes of one input at once (the time mix's x_r … x_g, the channel mix's
// x_k): out_j,t = x_t + (x_{t−1} − x_t)⊙mix_j, x_{−1} = 0 at the start of every sample (§6.4).
//
// The forward and the backward share one layout: block (32, TS_RUNS), grid (⌈cols/32⌉, slices); the rows are cut into
// `slices` contiguous slices (one per block row) and each slice into TS_RUNS contiguous runs (one per thread row). A
// thread owns one column vector of W floats — W = 4 (float4) when C % 4 == 0 and every pointer is 16-byte aligned,
// else W = 1 — and walks its run of rows, carrying the neighbouring row in registers, so x (forward) and the k dOut
// (backward) are read once and every output is written once. A warp reads 32 adjacent vectors of one row
// (coalesced). The only divisions are per thread (the run's bounds and its first row's position in its sample), none
// per element. Each k has its own compiled body (a switch on the uniform k), so the loops over the mixes unroll and
// a row's loads issue together.
#include "common.cuh"

#define TS_MAX 6
#define TS_RUNS 8
#define TS_UNROLL 4

template <int W>
struct __align__(4 * W) Vec {
    float v[W];
};

template <int W>
__device__ __forceinline__ Vec<W> vload(const float* p) {
    Vec<W> r;
    if constexpr (W == 4) {
        float4 f = *reinterpret_cast<const float4*>(p);
        r.v[0] = f.x;
        r.v[1] = f.y;
        r.v[2] = f.z;
        r.v[3] = f.w;
    } else {
#pragma unroll
        for (int e = 0; e < W; e++) r.v[e] = p[e];
    }
    return r;
}

// W bf16 values widened (gradients written in bf16 by the GEMMs before the backward): 8 bytes at once for W = 4.
template <int W>
__device__ __forceinline__ Vec<W> vload(const unsigned short* p) {
    Vec<W> r;
    if constexpr (W == 4) {
        ushort4 h = *reinterpret_cast<const ushort4*>(p);
        r.v[0] = bf16_f32(h.x);
        r.v[1] = bf16_f32(h.y);
        r.v[2] = bf16_f32(h.z);
        r.v[3] = bf16_f32(h.w);
    } else {
#pragma unroll
        for (int e = 0; e < W; e++) r.v[e] = bf16_f32(p[e]);
    }
    return r;
}

template <int W>
__device__ __forceinline__ void vstore(float* p, const Vec<W>& a) {
    if constexpr (W == 4) {
        float4 f;
        f.x = a.v[0];
        f.y = a.v[1];
        f.z = a.v[2];
        f.w = a.v[3];
        *reinterpret_cast<float4*>(p) = f;
    } else {
#pragma unroll
        for (int e = 0; e < W; e++) p[e] = a.v[e];
    }
}

// The same, rounded to bf16 (outputs only GEMMs read): 8 bytes at once for W = 4.
template <int W>
__device__ __forceinline__ void vstore(unsigned short* p, const Vec<W>& a) {
    if constexpr (W == 4) {
        ushort4 h;
        h.x = bf16_rn(a.v[0]);
        h.y = bf16_rn(a.v[1]);
        h.z = bf16_rn(a.v[2]);
        h.w = bf16_rn(a.v[3]);
        *reinterpret_cast<ushort4*>(p) = h;
    } else {
#pragma unroll
        for (int e = 0; e < W; e++) p[e] = bf16_rn(a.v[e]);
    }
}

template <int W>
__device__ __forceinline__ Vec<W> vzero() {
    Vec<W> r;
#pragma unroll
    for (int e = 0; e < W; e++) r.v[e] = 0.0f;
    return r;
}

// The rows [r0, r1) of this thread: slice blockIdx.y of ⌈rows/slices⌉ rows, run threadIdx.y of ⌈slice/TS_RUNS⌉ rows.
__device__ __forceinline__ void ts_run(int rows, i64& r0, i64& r1) {
    i64 per = ((i64)rows + gridDim.y - 1) / gridDim.y;
    i64 lo = per * blockIdx.y;
    i64 hi = lo + per < rows ? lo + per : rows;
    i64 run = (per + TS_RUNS - 1) / TS_RUNS;
    r0 = lo + run * threadIdx.y;
    r1 = r0 + run < hi ? r0 + run : hi;
}

// outs[j] [rows, C] = x + (x_{t−1} − x)⊙mixes[j] for j < K; x [rows, C], mixes[j] [C]. No out aliases x. The rows
// are taken TS_UNROLL at a time, their x loaded before any output is written. O: float, or unsigned short for bf16
// outputs (the mixes are read only by GEMMs, which take bf16 operands).
template <int W, int K, typename O>
__device__ __forceinline__ void mixes_forward(const float* __restrict__ x, const float* const (&mix)[TS_MAX],
                                              O* const (&out)[TS_MAX], int rows, int T, int C) {
    int col = blockIdx.x * 32 + threadIdx.x;
    i64 r0, r1;
    ts_run(rows, r0, r1);
    if (col * W >= C || r0 >= r1) return;
    Vec<W> m[K];
#pragma unroll
    for (int j = 0; j < K; j++) m[j] = vload<W>(mix[j] + col * W);
    int t = (int)(r0 % T);
    i64 at = r0 * C + col * W;
    Vec<W> prev = t == 0 ? vzero<W>() : vload<W>(x + at - C);
    for (i64 r = r0; r < r1; r += TS_UNROLL, at += TS_UNROLL * (i64)C) {
        Vec<W> cur[TS_UNROLL];
#pragma unroll
        for (int u = 0; u < TS_UNROLL; u++) cur[u] = r + u < r1 ? vload<W>(x + at + u * (i64)C) : vzero<W>();
#pragma unroll
        for (int u = 0; u < TS_UNROLL; u++) {
            if (r + u < r1) {
                if (t == 0) prev = vzero<W>();
#pragma unroll
                for (int j = 0; j < K; j++) {
                    Vec<W> o;
#pragma unroll
                    for (int e = 0; e < W; e++) o.v[e] = cur[u].v[e] + (prev.v[e] - cur[u].v[e]) * m[j].v[e];
                    vstore<W>(out[j] + at + u * (i64)C, o);
                }
                prev = cur[u];
                if (++t == T) t = 0;
            }
        }
    }
}

// dx_t += Σ_j dOut_j,t⊙(1 − mix_j) + dOut_j,t+1⊙mix_j (no t+1 term at a sample's last row; accumulate 0: dx_t = …,
// written, not read), and, when partial is not
// null, partial[(j·slices + slice)·C + c] = Σ_{rows of the slice} dOut_j,t⊙(x_{t−1} − x_t) for j < K (the dMix
// column sums, finished by token_shift_mixes_finish). The thread walks its run backwards, carrying
// Σ_j dOut_j,t+1⊙mix_j and x_t. dx aliases neither x nor a dOut. red: TS_RUNS × 32 vectors of shared memory.
// D: float, or unsigned short for bf16 dOuts (widened as read; the sums stay fp32).
template <int W, int K, typename D>
__device__ __forceinline__ void mixes_backward(const D* const (&dOut)[TS_MAX], const float* __restrict__ x,
                                               const float* const (&mix)[TS_MAX], float* __restrict__ dx,
                                               float* __restrict__ partial, int rows, int T, int C, int accumulate,
                                               Vec<W>* red) {
    int col = blockIdx.x * 32 + threadIdx.x;
    i64 r0, r1;
    ts_run(rows, r0, r1);
    Vec<W> acc[K];
#pragma unroll
    for (int j = 0; j < K; j++) acc[j] = vzero<W>();
    if (col * W < C && r0 < r1) {
        Vec<W> m[K];
#pragma unroll
        for (int j = 0; j < K; j++) m[j] = vload<W>(mix[j] + col * W);
        int t = (int)((r1 - 1) % T);
        i64 at = (r1 - 1) * C + col * W;
        // Σ_j dOut_j⊙mix_j of the row after the run, unless the run's last row ends its sample
        Vec<W> carry = vzero<W>();
        if (t != T - 1) {
#pragma unroll
            for (int j = 0; j < K; j++) {
                Vec<W> dn = vload<W>(dOut[j] + at + C);
#pragma unroll
                for (int e = 0; e < W; e++) carry.v[e] += dn.v[e] * m[j].v[e];
            }
        }
        Vec<W> xc = vload<W>(x + at);
        for (i64 r = r1 - 1; r >= r0; r--, at -= C) {
            // x_{t−1}: read once here, it is the next (earlier) row's x_t
            Vec<W> xp = r > r0 || t != 0 ? vload<W>(x + at - C) : vzero<W>();
            Vec<W> d[K];
#pragma unroll
            for (int j = 0; j < K; j++) d[j] = vload<W>(dOut[j] + at);
            Vec<W> old = accumulate ? vload<W>(dx + at) : vzero<W>();
            Vec<W> next = vzero<W>();
#pragma unroll
            for (int e = 0; e < W; e++) {
                float diff = (t == 0 ? 0.0f : xp.v[e]) - xc.v[e];
                float g = carry.v[e];
#pragma unroll
                for (int j = 0; j < K; j++) {
                    g += d[j].v[e] * (1.0f - m[j].v[e]);
                    next.v[e] += d[j].v[e] * m[j].v[e];
                    acc[j].v[e] += d[j].v[e] * diff;
                }
                old.v[e] += g;
            }
            vstore<W>(dx + at, old);
            // row r − 1 belongs to the previous sample when t == 0: nothing carries across
            carry = t == 0 ? vzero<W>() : next;
            xc = xp;
            t = t == 0 ? T - 1 : t - 1;
        }
    }
    if (partial == nullptr) return;  // uniform over the block
    // the slice's column sums: the TS_RUNS runs meet in shared memory and are added in run order
    const float* flat = reinterpret_cast<const float*>(red);
    int lane = threadIdx.y * 32 + threadIdx.x;  // one float of the block's 32·W columns per thread, lane < 32·W
    i64 c = (i64)blockIdx.x * 32 * W + lane;
#pragma unroll
    for (int j = 0; j < K; j++) {
        red[threadIdx.y * 32 + threadIdx.x] = acc[j];
        __syncthreads();
        if (lane < 32 * W && c < C) {
            float s = 0.0f;
#pragma unroll
            for (int q = 0; q < TS_RUNS; q++) s += flat[q * 32 * W + lane];
            partial[((i64)j * gridDim.y + blockIdx.y) * C + c] = s;
        }
        __syncthreads();
    }
}

// k (1 … 6, uniform) picks a compiled body: every loop over the mixes has a fixed count.
template <int W, typename O>
__device__ __forceinline__ void forward_k(int k, const float* __restrict__ x, const float* const (&mix)[TS_MAX],
                                          O* const (&out)[TS_MAX], int rows, int T, int C) {
    switch (k) {
        case 1: mixes_forward<W, 1, O>(x, mix, out, rows, T, C); break;
        case 2: mixes_forward<W, 2, O>(x, mix, out, rows, T, C); break;
        case 3: mixes_forward<W, 3, O>(x, mix, out, rows, T, C); break;
        case 4: mixes_forward<W, 4, O>(x, mix, out, rows, T, C); break;
        case 5: mixes_forward<W, 5, O>(x, mix, out, rows, T, C); break;
        case 6: mixes_forward<W, 6, O>(x, mix, out, rows, T, C); break;
        default: break;
    }
}

template <int W, typename D>
__device__ __forceinline__ void backward_k(int k, const D* const (&dOut)[TS_MAX], const float* __restrict__ x,
                                           const float* const (&mix)[TS_MAX], float* __restrict__ dx,
                                           float* __restrict__ partial, int rows, int T, int C, int accumulate) {
    __shared__ Vec<W> red[TS_RUNS * 32];
    switch (k) {
        case 1: mixes_backward<W, 1, D>(dOut, x, mix, dx, partial, rows, T, C, accumulate, red); break;
        case 2: mixes_backward<W, 2, D>(dOut, x, mix, dx, partial, rows, T, C, accumulate, red); break;
        case 3: mixes_backward<W, 3, D>(dOut, x, mix, dx, partial, rows, T, C, accumulate, red); break;
        case 4: mixes_backward<W, 4, D>(dOut, x, mix, dx, partial, rows, T, C, accumulate, red); break;
        case 5: mixes_backward<W, 5, D>(dOut, x, mix, dx, partial, rows, T, C, accumulate, red); break;
        case 6: mixes_backward<W, 6, D>(dOut, x, mix, dx, partial, rows, T, C, accumulate, red); break;
        default: break;
    }
}

#define TS_PTRS(name, qual) qual float* name##0, qual float* name##1, qual float* name##2, qual float* name##3, \
                            qual float* name##4, qual float* name##5
#define TS_ARRAY(name) {name##0, name##1, name##2, name##3, name##4, name##5}
#define TS_PTRS_BF16(name) unsigned short* name##0, unsigned short* name##1, unsigned short* name##2, \
                           unsigned short* name##3, unsigned short* name##4, unsigned short* name##5
#define TS_PTRS_BF16C(name) const unsigned short* name##0, const unsigned short* name##1, \
                            const unsigned short* name##2, const unsigned short* name##3, \
                            const unsigned short* name##4, const unsigned short* name##5

// The entry points: _v4 for C % 4 == 0 and 16-byte aligned pointers, _v1 for any C. Pointers past k are ignored
// (pass null). Register caps, without spills under nvcc 13: forward 64 (4 blocks per SM; the scalar one 80, 3
// blocks), backward 128 (2 blocks).
extern "C" __global__ void __launch_bounds__(32 * TS_RUNS, 4) token_shift_mixes_forward_v4(
    const float* __restrict__ x, TS_PTRS(mix, const), TS_PTRS(out, ), int k, int rows, int T, int C) {
    const float* const mix[TS_MAX] = TS_ARRAY(mix);
    float* const out[TS_MAX] = TS_ARRAY(out);
    forward_k<4>(k, x, mix, out, rows, T, C);
}

extern "C" __global__ void __launch_bounds__(32 * TS_RUNS, 3) token_shift_mixes_forward_v1(
    const float* __restrict__ x, TS_PTRS(mix, const), TS_PTRS(out, ), int k, int rows, int T, int C) {
    const float* const mix[TS_MAX] = TS_ARRAY(mix);
    float* const out[TS_MAX] = TS_ARRAY(out);
    forward_k<1>(k, x, mix, out, rows, T, C);
}

// The same with bf16 outputs (v4: C % 4 == 0, x and mixes 16-byte, outputs 8-byte aligned).
extern "C" __global__ void __launch_bounds__(32 * TS_RUNS, 4) token_shift_mixes_forward_bf16_v4(
    const float* __restrict__ x, TS_PTRS(mix, const), TS_PTRS_BF16(out), int k, int rows, int T, int C) {
    const float* const mix[TS_MAX] = TS_ARRAY(mix);
    unsigned short* const out[TS_MAX] = TS_ARRAY(out);
    forward_k<4>(k, x, mix, out, rows, T, C);
}

extern "C" __global__ void __launch_bounds__(32 * TS_RUNS, 3) token_shift_mixes_forward_bf16_v1(
    const float* __restrict__ x, TS_PTRS(mix, const), TS_PTRS_BF16(out), int k, int rows, int T, int C) {
    const float* const mix[TS_MAX] = TS_ARRAY(mix);
    unsigned short* const out[TS_MAX] = TS_ARRAY(out);
    forward_k<1>(k, x, mix, out, rows, T, C);
}

extern "C" __global__ void __launch_bounds__(32 * TS_RUNS, 2) token_shift_mixes_backward_v4(
    TS_PTRS(dOut, const), const float* __restrict__ x, TS_PTRS(mix, const), float* __restrict__ dx,
    float* __restrict__ partial, int k, int rows, int T, int C, int accumulate) {
    const float* const dOut[TS_MAX] = TS_ARRAY(dOut);
    const float* const mix[TS_MAX] = TS_ARRAY(mix);
    backward_k<4>(k, dOut, x, mix, dx, partial, rows, T, C, accumulate);
}

extern "C" __global__ void __launch_bounds__(32 * TS_RUNS, 2) token_shift_mixes_backward_v1(
    TS_PTRS(dOut, const), const float* __restrict__ x, TS_PTRS(mix, const), float* __restrict__ dx,
    float* __restrict__ partial, int k, int rows, int T, int C, int accumulate) {
    const float* const dOut[TS_MAX] = TS_ARRAY(dOut);
    const float* const mix[TS_MAX] = TS_ARRAY(mix);
    backward_k<1>(k, dOut, x, mix, dx, partial, rows, T, C, accumulate);
}

// The same from bf16 dOuts: the mixes' gradients, written in bf16 by the projections' GEMMs under bf16 GEMMs (v4: C %
// 4 == 0, x and dx 16-byte, the dOuts 8-byte aligned). 20 bytes an element of dx at k = 6 instead of 32.
extern "C" __global__ void __launch_bounds__(32 * TS_RUNS, 2) token_shift_mixes_backward_bf16_v4(
    TS_PTRS_BF16C(dOut), const float* __restrict__ x, TS_PTRS(mix, const), float* __restrict__ dx,
    float* __restrict__ partial, int k, int rows, int T, int C, int accumulate) {
    const unsigned short* const dOut[TS_MAX] = TS_ARRAY(dOut);
    const float* const mix[TS_MAX] = TS_ARRAY(mix);
    backward_k<4>(k, dOut, x, mix, dx, partial, rows, T, C, accumulate);
}

extern "C" __global__ void __launch_bounds__(32 * TS_RUNS, 2) token_shift_mixes_backward_bf16_v1(
    TS_PTRS_BF16C(dOut), const float* __restrict__ x, TS_PTRS(mix, const), float* __restrict__ dx,
    float* __restrict__ partial, int k, int rows, int T, int C, int accumulate) {
    const unsigned short* const dOut[TS_MAX] = TS_ARRAY(dOut);
    const float* const mix[TS_MAX] = TS_ARRAY(mix);
    backward_k<1>(k, dOut, x, mix, dx, partial, rows, T, C, accumulate);
}

// dMix_j[c] += Σ_{p < slices} partial[(j·slices + p)·C + c], slices in order; grid (⌈C/blockDim.x⌉, k). A null
// dMix_j is skipped.
extern "C" __global__ void token_shift_mixes_finish(const float* __restrict__ partial, TS_PTRS(dMix, ), int slices,
                                                    int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    int j = blockIdx.y;
    float* out = j == 0 ? dMix0 : j == 1 ? dMix1 : j == 2 ? dMix2 : j == 3 ? dMix3 : j == 4 ? dMix4 : dMix5;
    if (out == nullptr || c >= C) return;
    const float* p = partial + (i64)j * slices * C + c;
    float s = 0.0f;
    for (int q = 0; q < slices; q++) s += p[(i64)q * C];
    out[c] += s;
}
