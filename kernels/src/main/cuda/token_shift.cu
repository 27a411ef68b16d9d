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
// k (1 … TS_MAX, uniform over the block) picks one of the compiled bodies CALL(1) … CALL(6), each with its loops over
// the mixes of fixed count.
#define TS_FOR_K(k, CALL) \
    switch (k) { \
        case 1: CALL(1); break; \
        case 2: CALL(2); break; \
        case 3: CALL(3); break; \
        case 4: CALL(4); break; \
        case 5: CALL(5); break; \
        case 6: CALL(6); break; \
        default: break; \
    }

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

// The token-shift mixes for the uniform k (TS_FOR_K).
template <int W, typename O>
__device__ __forceinline__ void forward_k(int k, const float* __restrict__ x, const float* const (&mix)[TS_MAX],
                                          O* const (&out)[TS_MAX], int rows, int T, int C) {
#define TS_CALL(K) mixes_forward<W, K, O>(x, mix, out, rows, T, C)
    TS_FOR_K(k, TS_CALL);
#undef TS_CALL
}

template <int W, typename D>
__device__ __forceinline__ void backward_k(int k, const D* const (&dOut)[TS_MAX], const float* __restrict__ x,
                                           const float* const (&mix)[TS_MAX], float* __restrict__ dx,
                                           float* __restrict__ partial, int rows, int T, int C, int accumulate) {
    __shared__ Vec<W> red[TS_RUNS * 32];
#define TS_CALL(K) mixes_backward<W, K, D>(dOut, x, mix, dx, partial, rows, T, C, accumulate, red)
    TS_FOR_K(k, TS_CALL);
#undef TS_CALL
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

// dMix_j[c] += Σ_{p < slices} partial[(j·slices + p)·C + c] (sum_column_slices); grid (⌈C/32⌉, k), block (32,
// FINISH_ROWS). A null dMix_j is skipped.
extern "C" __global__ void token_shift_mixes_finish(const float* __restrict__ partial, TS_PTRS(dMix, ), int slices,
                                                    int C) {
    int c = blockIdx.x * 32 + threadIdx.x;
    int j = blockIdx.y;
    float* out = j == 0 ? dMix0 : j == 1 ? dMix1 : j == 2 ? dMix2 : j == 3 ? dMix3 : j == 4 ? dMix4 : dMix5;
    if (out == nullptr) return;  // the whole block: j is the block's
    float s = sum_column_slices(partial + (i64)j * slices * C, slices, C, c);
    if (threadIdx.y == 0 && c < C) out[c] += s;
}

// ---------------------------------------------------------------- LayerNorm fused with the mixes of its output
//
// In every block a LayerNorm's output is read only by a token-shift mix op (LN1 → the time mix's six mixes, LN2 →
// the channel mix's one), so these kernels never write it: the forward reads the block input x and writes the mixes
// of LN(x); the backward reads x again (x̂ from the saved mean and rstd) and the mixes' gradients, and writes dx with
// the dMix, dWeight and dBias column partials.
//
// Layout: a block is one row unit of blockDim.x = 32·W threads (W ≤ 16 warps); thread t holds the float4s t,
// t + blockDim.x, … (J of them; those at or past C/4 are zero and never stored) of a row. Block b walks the rows of
// slice b (slice_rows: ⌈rows/gridDim.x⌉ consecutive rows) in order (forward) or backwards (backward), carrying the
// neighbouring row in registers, so x and the dOuts are read once, plus one row at the slice's edge. Row sums meet
// over the warps in shared memory, in warp order (reproducible). C % 4 == 0, C ≤ 512·J, x, dx, weight, bias and the
// mixes 16-byte aligned, bf16 tensors 8-byte aligned (the backend checks; otherwise it composes the unfused ops).

#define LTS_MAX_WARPS 16

// The sums of a and b over the block: every thread gets the same bits. red alternates between two halves (parity),
// so that consecutive calls need one barrier each: a thread writes half p again only after the barrier of the call
// between, which every reader of the earlier call has passed.
__device__ __forceinline__ float2 row_sum2(float a, float b, float2 (&red)[2][LTS_MAX_WARPS], int& parity) {
    a = warp_sum(a);
    b = warp_sum(b);
    int warps = blockDim.x >> 5;
    if (warps == 1) return make_float2(a, b);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) red[parity][warp] = make_float2(a, b);
    __syncthreads();
    float2 s = red[parity][0];
    for (int w = 1; w < warps; w++) {
        s.x += red[parity][w].x;
        s.y += red[parity][w].y;
    }
    parity ^= 1;
    return s;
}

// This thread's float4s of row r of a [rows, C] tensor (zero past the row).
template <int J, typename T>
__device__ __forceinline__ void load_row4(const T* __restrict__ p, i64 r, int C, Vec<4> (&v)[J]) {
#pragma unroll
    for (int j = 0; j < J; j++) {
        int f = threadIdx.x + blockDim.x * j;
        v[j] = f * 4 < C ? vload<4>(p + r * C + f * 4) : vzero<4>();
    }
}

// mean and rstd of a row held as load_row4 left it (biased variance), with one barrier: each warp takes the mean and
// the sum of squared deviations of its own elements (two passes over registers), then the warps' pairs meet in shared
// memory and are merged in warp order (the parallel-variance identity), the same bits in every thread.
// The elements of warp w of a row as load_row4 spreads it: 4 × its float4s w·32 + lane + blockDim.x·j below C/4.
template <int J>
__device__ __forceinline__ int warp_elements(int w, int C4) {
    int n = 0;
#pragma unroll
    for (int j = 0; j < J; j++) n += 4 * min(max(C4 - (w * 32 + (int)blockDim.x * j), 0), 32);
    return n;
}

template <int J>
__device__ __forceinline__ float2 row_stats(const Vec<4> (&v)[J], int C, float eps,
                                            float2 (&red)[2][LTS_MAX_WARPS], int& parity) {
    int warp = threadIdx.x >> 5, warps = blockDim.x >> 5, C4 = C >> 2;
    int n = warp_elements<J>(warp, C4);
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < J; j++) sum += (v[j].v[0] + v[j].v[1]) + (v[j].v[2] + v[j].v[3]);
    float mu = n > 0 ? warp_sum(sum) / n : 0.0f;
    float squares = 0.0f;
#pragma unroll
    for (int j = 0; j < J; j++) {
        if ((threadIdx.x + blockDim.x * j) * 4 < C) {
            float a = v[j].v[0] - mu, b = v[j].v[1] - mu, c = v[j].v[2] - mu, d = v[j].v[3] - mu;
            squares += (a * a + b * b) + (c * c + d * d);
        }
    }
    float m2 = warp_sum(squares);
    if (warps > 1) {
        // mean = Σ n_w·mean_w / C, M2 = Σ M2_w + n_w·(mean_w − mean)² (the warps past the row's end have n_w = 0)
        if ((threadIdx.x & 31) == 0) red[parity][warp] = make_float2(mu, m2);
        __syncthreads();
        float sum = 0.0f;
        for (int w = 0; w < warps; w++) sum += warp_elements<J>(w, C4) * red[parity][w].x;
        float mean = sum / C, total = 0.0f;
        for (int w = 0; w < warps; w++) {
            float2 p = red[parity][w];
            float d = p.x - mean;
            total += p.y + warp_elements<J>(w, C4) * d * d;
        }
        mu = mean;
        m2 = total;
        parity ^= 1;
    }
    return make_float2(mu, 1.0f / sqrtf(m2 / C + eps));
}

// x̂ = (x − mean)·rstd, then the LayerNorm output x̂·w + b: the same expressions as norm_forward_v4, so the output
// equals the one the unfused LayerNorm wrote.
__device__ __forceinline__ Vec<4> normalized(const Vec<4>& x, float mu, float rs) {
    Vec<4> h;
#pragma unroll
    for (int e = 0; e < 4; e++) h.v[e] = (x.v[e] - mu) * rs;
    return h;
}

__device__ __forceinline__ Vec<4> affine(const Vec<4>& h, const Vec<4>& w, const Vec<4>& b) {
    Vec<4> y;
#pragma unroll
    for (int e = 0; e < 4; e++) y.v[e] = h.v[e] * w.v[e] + b.v[e];
    return y;
}

// A thread's LayerNorm weight and bias (float4 f = threadIdx.x + blockDim.x·j of the row, zero past C), and prev
// zeroed: the prologue of the fused forwards.
template <int J>
__device__ __forceinline__ void ln_params(const float* __restrict__ weight, const float* __restrict__ bias, int C,
                                          Vec<4> (&w)[J], Vec<4> (&b)[J], Vec<4> (&prev)[J]) {
#pragma unroll
    for (int j = 0; j < J; j++) {
        int f = threadIdx.x + blockDim.x * j;
        w[j] = f * 4 < C ? vload<4>(weight + f * 4) : vzero<4>();
        b[j] = f * 4 < C ? vload<4>(bias + f * 4) : vzero<4>();
        prev[j] = vzero<4>();
    }
}

// outs[k] = ln_t + (ln_{t−1} − ln_t)⊙mix_k for k < K, ln = LayerNorm(x) (ln_{−1} = 0 in every sample). saved == 0:
// the row statistics are computed and written to mean and rstd; saved != 0: read from them (the backward pass's
// recomputation; the outputs are the same bits either way, the statistics being the same floats). O: float, or
// unsigned short for bf16 outputs. x is loaded two rows ahead.
template <int J, int K, typename O>
__device__ __forceinline__ void ln_mixes_forward(const float* __restrict__ x, const float* __restrict__ weight,
                                                 const float* __restrict__ bias, float* __restrict__ mean,
                                                 float* __restrict__ rstd, int saved,
                                                 const float* const (&mix)[TS_MAX], O* const (&out)[TS_MAX],
                                                 int rows, int T, int C, float eps) {
    __shared__ float2 red[2][LTS_MAX_WARPS];
    int parity = 0;
    i64 lo, hi;
    slice_rows(rows, blockIdx.x, gridDim.x, lo, hi);
    if (lo >= hi) return;  // uniform over the block
    Vec<4> w[J], b[J], prev[J];  // prev: the LayerNorm output of the row before
    ln_params<J>(weight, bias, C, w, b, prev);
    int t = (int)(lo % T);
    if (t != 0) {
        // the previous slice's last row, normalized again (the same bits as its own block's: same code, same data)
        Vec<4> xp[J];
        load_row4<J>(x, lo - 1, C, xp);
        float2 s = saved ? make_float2(mean[lo - 1], rstd[lo - 1]) : row_stats<J>(xp, C, eps, red, parity);
#pragma unroll
        for (int j = 0; j < J; j++) prev[j] = affine(normalized(xp[j], s.x, s.y), w[j], b[j]);
    }
    // rows r and r + 1 in registers, r + 2 loaded at the top of row r: two rows' loads in flight
    Vec<4> xc[J], xn[J];
    load_row4<J>(x, lo, C, xc);
    if (lo + 1 < hi) load_row4<J>(x, lo + 1, C, xn);
    for (i64 r = lo; r < hi; r++) {
        Vec<4> xnn[J];
        if (r + 2 < hi) {
            load_row4<J>(x, r + 2, C, xnn);
        } else {
#pragma unroll
            for (int j = 0; j < J; j++) xnn[j] = vzero<4>();
        }
        float2 s;
        if (saved) {
            s = make_float2(mean[r], rstd[r]);
        } else {
            s = row_stats<J>(xc, C, eps, red, parity);
            if (threadIdx.x == 0) {
                mean[r] = s.x;
                rstd[r] = s.y;
            }
        }
        if (t == 0) {
#pragma unroll
            for (int j = 0; j < J; j++) prev[j] = vzero<4>();
        }
#pragma unroll
        for (int j = 0; j < J; j++) {
            int f = threadIdx.x + blockDim.x * j;
            Vec<4> cur = affine(normalized(xc[j], s.x, s.y), w[j], b[j]);
            if (f * 4 < C) {
#pragma unroll
                for (int k = 0; k < K; k++) {
                    Vec<4> m = vload<4>(mix[k] + f * 4);
                    Vec<4> o;
#pragma unroll
                    for (int e = 0; e < 4; e++) o.v[e] = cur.v[e] + (prev[j].v[e] - cur.v[e]) * m.v[e];
                    vstore<4>(out[k] + r * C + f * 4, o);
                }
            }
            prev[j] = cur;
            xc[j] = xn[j];
            xn[j] = xnn[j];
        }
        if (++t == T) t = 0;
    }
}

// ln_mixes_forward again, with the row statistics merged by one warp a row, U rows a step and J float4s of a row a
// thread (the _rows entry points: J = 2, U = 1). ln_mixes_forward has every thread of the row merge the warps' pairs
// (two sequential loops over up to 16 warps with a division and a square root, 16 times over at C = 2048), and
// there the statistics-computing calls took 1.5× (k = 6) and 2.4× (k = 1) the time of the ones reading saved
// statistics (H100, rows 16384); merged once a row, 1.1× and 1.5×. The outputs are the same bits as ln_mixes_forward's at J = 1 (a block of
// 32·⌈C/128⌉ threads, whose warp g holds the float4s 32g … 32g + 31 of a row: "group" g): here thread t holds the
// float4s t + blockDim.x·j, so its warp at j covers exactly group g = warp + warps·j, whose mean and squared
// deviations are taken alone (one warp_sum each over the same lanes in the same order), then merged over the groups
// in group order with row_stats's expressions. blockDim.x must be 32·⌈⌈C/128⌉/J⌉ (one warp when C ≤ 128, the one case
// without a merge). x and the saved statistics are loaded two steps ahead.
__device__ __forceinline__ int group_elements(int g, int C4) {
    return 4 * min(max(C4 - g * 32, 0), 32);
}

// mean and rstd of NU rows at once (v[u]: row u as this thread holds it): each warp takes its groups' means and
// squared deviations, lane 0 writes them to red; after a barrier warp u % warps merges row u's groups (in group order,
// the same expressions as row_stats) and writes the statistics to stat (and to mean, rstd at row r + u when r + u <
// hi); after a second barrier every thread reads them (one warp a row merges, not every warp of it: one barrier
// more, 16 times fewer merge instructions at C = 2048). red (2·NU·LTS_MAX_WARPS pairs) and stat (2·NU) are used by halves
// (parity): half p is written again two calls later, after every reader of it has passed the barriers between.
template <int J, int NU>
__device__ __forceinline__ void rows_stats(const Vec<4> (&v)[NU][J], int C, float eps, float2* red, float2* stat,
                                           int& parity, float* __restrict__ mean, float* __restrict__ rstd, i64 r,
                                           i64 hi, float2 (&s)[NU]) {
    int warp = threadIdx.x >> 5, warps = blockDim.x >> 5, C4 = C >> 2;
    int groups = (C4 + 31) >> 5;
    float mu[NU][J], m2[NU][J];
#pragma unroll
    for (int j = 0; j < J; j++) {
        int g = warp + warps * j;
        int n = group_elements(g, C4);
        if (n > 0) {  // uniform over the warp
            bool in = (threadIdx.x + blockDim.x * j) * 4 < C;
#pragma unroll
            for (int u = 0; u < NU; u++) {
                float sum = 0.0f;
                sum += (v[u][j].v[0] + v[u][j].v[1]) + (v[u][j].v[2] + v[u][j].v[3]);
                mu[u][j] = warp_sum(sum) / n;
            }
#pragma unroll
            for (int u = 0; u < NU; u++) {
                float squares = 0.0f;
                if (in) {
                    float a = v[u][j].v[0] - mu[u][j], b = v[u][j].v[1] - mu[u][j], c = v[u][j].v[2] - mu[u][j],
                          d = v[u][j].v[3] - mu[u][j];
                    squares += (a * a + b * b) + (c * c + d * d);
                }
                m2[u][j] = warp_sum(squares);
            }
        } else {
#pragma unroll
            for (int u = 0; u < NU; u++) mu[u][j] = m2[u][j] = 0.0f;
        }
    }
    if (groups == 1) {  // one warp, one group: no merge (as row_stats with one warp)
#pragma unroll
        for (int u = 0; u < NU; u++) {
            s[u] = make_float2(mu[u][0], 1.0f / sqrtf(m2[u][0] / C + eps));
            if (threadIdx.x == 0 && r + u < hi) {
                mean[r + u] = s[u].x;
                rstd[r + u] = s[u].y;
            }
        }
        return;
    }
    float2* half = red + parity * NU * LTS_MAX_WARPS;
    if ((threadIdx.x & 31) == 0) {
#pragma unroll
        for (int j = 0; j < J; j++) {
            int g = warp + warps * j;
            if (g < groups) {
#pragma unroll
                for (int u = 0; u < NU; u++) half[u * LTS_MAX_WARPS + g] = make_float2(mu[u][j], m2[u][j]);
            }
        }
    }
    __syncthreads();
#pragma unroll
    for (int u = 0; u < NU; u++) {
        if (warp == u % warps) {
            const float2* p = half + u * LTS_MAX_WARPS;
            float sum = 0.0f;
            for (int g = 0; g < groups; g++) sum += group_elements(g, C4) * p[g].x;
            float mu = sum / C, total = 0.0f;
            for (int g = 0; g < groups; g++) {
                float2 q = p[g];
                float d = q.x - mu;
                total += q.y + group_elements(g, C4) * d * d;
            }
            float2 st = make_float2(mu, 1.0f / sqrtf(total / C + eps));
            if ((threadIdx.x & 31) == 0) {
                stat[parity * NU + u] = st;
                if (r + u < hi) {
                    mean[r + u] = st.x;
                    rstd[r + u] = st.y;
                }
            }
        }
    }
    __syncthreads();
#pragma unroll
    for (int u = 0; u < NU; u++) s[u] = stat[parity * NU + u];
    parity ^= 1;
}

// rows r … r + NU − 1 of x as this thread holds them (zero at or past hi), with their saved statistics when saved.
template <int J, int NU>
__device__ __forceinline__ void load_rows4(const float* __restrict__ x, const float* __restrict__ mean,
                                           const float* __restrict__ rstd, int saved, i64 r, i64 hi, int C,
                                           Vec<4> (&v)[NU][J], float2 (&s)[NU]) {
#pragma unroll
    for (int u = 0; u < NU; u++) {
        if (r + u < hi) {
            load_row4<J>(x, r + u, C, v[u]);
            s[u] = saved ? make_float2(mean[r + u], rstd[r + u]) : make_float2(0.0f, 0.0f);
        } else {
#pragma unroll
            for (int j = 0; j < J; j++) v[u][j] = vzero<4>();
            s[u] = make_float2(0.0f, 0.0f);
        }
    }
}

// Staged inputs (STAGES > 0, the _staged entry points): the rows STAGES steps ahead are copied into shared memory with
// cp.async (a ring of STAGES + 1 slots of dynamic shared memory) instead of loaded one step ahead into registers,
// where a step's loads were issued after its arithmetic and needed at the next step's start: every step waited for
// memory, worst where a step has little else to do (k = 1) or holds the SM alone (the backward at C = 2048, one
// 512-thread block an SM). A slot is refilled one step after it was read, its values used by then.
template <int N>
__device__ __forceinline__ void copy_wait_pending() {  // at most N of this thread's copy groups still in flight
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

__device__ __forceinline__ void copy4(void* dst, const void* src) {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(shared_address(dst)), "l"(src) : "memory");
#else
    *reinterpret_cast<float*>(dst) = *reinterpret_cast<const float*>(src);
#endif
}

extern __shared__ __align__(16) unsigned char lts_stage[];

// The staged forward: each thread copies its own float4s (and the statistics, when saved), so no barrier guards a
// slot. A slot holds a step's U rows of x [U][J][threads] float4 and their statistics [U][threads] float2.
__device__ __forceinline__ int fwd_slot_bytes(int U, int J, int threads) { return threads * U * (16 * J + 8); }

template <int J, int U>
__device__ __forceinline__ void stage_rows4(unsigned char* slot, const float* __restrict__ x,
                                            const float* __restrict__ mean, const float* __restrict__ rstd, int saved,
                                            i64 r, i64 hi, int C) {
    Vec<4>* v = reinterpret_cast<Vec<4>*>(slot) + threadIdx.x;
    float2* st = reinterpret_cast<float2*>(slot + 16 * U * J * blockDim.x) + threadIdx.x;
#pragma unroll
    for (int u = 0; u < U; u++) {
        if (r + u < hi) {
#pragma unroll
            for (int j = 0; j < J; j++) {
                int f = threadIdx.x + blockDim.x * j;
                if (f * 4 < C) copy16(v + (u * J + j) * blockDim.x, x + (r + u) * C + f * 4);
            }
            if (saved) {
                copy4(&st[u * blockDim.x].x, mean + r + u);
                copy4(&st[u * blockDim.x].y, rstd + r + u);
            }
        }
    }
}

// what load_rows4 gives, from a slot stage_rows4 filled
template <int J, int U>
__device__ __forceinline__ void read_rows4(const unsigned char* slot, int saved, i64 r, i64 hi, int C,
                                           Vec<4> (&v)[U][J], float2 (&s)[U]) {
    const Vec<4>* sv = reinterpret_cast<const Vec<4>*>(slot) + threadIdx.x;
    const float2* st = reinterpret_cast<const float2*>(slot + 16 * U * J * blockDim.x) + threadIdx.x;
#pragma unroll
    for (int u = 0; u < U; u++) {
        bool row = r + u < hi;
#pragma unroll
        for (int j = 0; j < J; j++) {
            int f = threadIdx.x + blockDim.x * j;
            v[u][j] = row && f * 4 < C ? sv[(u * J + j) * blockDim.x] : vzero<4>();
        }
        s[u] = row && saved ? st[u * blockDim.x] : make_float2(0.0f, 0.0f);
    }
}

template <int J, int U, int K, typename O, int STAGES = 0>
__device__ __forceinline__ void ln_mixes_forward_rows(const float* __restrict__ x, const float* __restrict__ weight,
                                                      const float* __restrict__ bias, float* __restrict__ mean,
                                                      float* __restrict__ rstd, int saved,
                                                      const float* const (&mix)[TS_MAX], O* const (&out)[TS_MAX],
                                                      int rows, int T, int C, float eps) {
    __shared__ float2 red[2 * U * LTS_MAX_WARPS], stat[2 * U];
    int parity = 0;
    i64 lo, hi;
    slice_rows(rows, blockIdx.x, gridDim.x, lo, hi);
    if (lo >= hi) return;  // uniform over the block
    Vec<4> w[J], b[J], prev[J];  // prev: the LayerNorm output of the row before
    ln_params<J>(weight, bias, C, w, b, prev);
    int t = (int)(lo % T);
    if (t != 0) {
        // the previous slice's last row, normalized again (the same bits as its own block's: same code, same data)
        Vec<4> xp[1][J];
        float2 s[1];
        load_rows4<J, 1>(x, mean, rstd, saved, lo - 1, lo, C, xp, s);
        if (!saved) rows_stats<J, 1>(xp, C, eps, red, stat, parity, mean, rstd, lo - 1, lo - 1, s);
#pragma unroll
        for (int j = 0; j < J; j++) prev[j] = affine(normalized(xp[0][j], s[0].x, s[0].y), w[j], b[j]);
    }
    // steps i and i + 1 in registers, i + 2 loaded at the top of step i (STAGES: step i in slot i % (STAGES + 1),
    // step i + STAGES copied at step i into the slot of step i − 1)
    Vec<4> xc[U][J], xn[U][J];
    float2 sc[U], sn[U];
    const int slotBytes = fwd_slot_bytes(U, J, blockDim.x);
    int slot = 0;
    if constexpr (STAGES > 0) {
        for (int s = 0; s < STAGES; s++) {
            stage_rows4<J, U>(lts_stage + s * slotBytes, x, mean, rstd, saved, lo + s * U, hi, C);
            copy_commit();
        }
    } else {
        load_rows4<J, U>(x, mean, rstd, saved, lo, hi, C, xc, sc);
        load_rows4<J, U>(x, mean, rstd, saved, lo + U, hi, C, xn, sn);
    }
    for (i64 r = lo; r < hi; r += U) {
        Vec<4> xnn[U][J];
        float2 snn[U];
        if constexpr (STAGES > 0) {
            copy_wait_pending<STAGES - 1>();  // of the STAGES + i groups committed, step i's is done
            read_rows4<J, U>(lts_stage + slot * slotBytes, saved, r, hi, C, xc, sc);
            int refill = slot == 0 ? STAGES : slot - 1;
            stage_rows4<J, U>(lts_stage + refill * slotBytes, x, mean, rstd, saved, r + STAGES * U, hi, C);
            copy_commit();
            slot = slot == STAGES ? 0 : slot + 1;
        } else {
            load_rows4<J, U>(x, mean, rstd, saved, r + 2 * U, hi, C, xnn, snn);
        }
        float2 s[U];
        if (saved) {
#pragma unroll
            for (int u = 0; u < U; u++) s[u] = sc[u];
        } else {
            rows_stats<J, U>(xc, C, eps, red, stat, parity, mean, rstd, r, hi, s);
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
            if (r + u < hi) {  // uniform
                if (t == 0) {
#pragma unroll
                    for (int j = 0; j < J; j++) prev[j] = vzero<4>();
                }
#pragma unroll
                for (int j = 0; j < J; j++) {
                    int f = threadIdx.x + blockDim.x * j;
                    Vec<4> cur = affine(normalized(xc[u][j], s[u].x, s[u].y), w[j], b[j]);
                    if (f * 4 < C) {
#pragma unroll
                        for (int k = 0; k < K; k++) {
                            Vec<4> m = vload<4>(mix[k] + f * 4);
                            Vec<4> o;
#pragma unroll
                            for (int e = 0; e < 4; e++) o.v[e] = cur.v[e] + (prev[j].v[e] - cur.v[e]) * m.v[e];
                            vstore<4>(out[k] + (r + u) * C + f * 4, o);
                        }
                    }
                    prev[j] = cur;
                }
                if (++t == T) t = 0;
            }
        }
        if constexpr (STAGES == 0) {
#pragma unroll
            for (int u = 0; u < U; u++) {
                sc[u] = sn[u];
                sn[u] = snn[u];
#pragma unroll
                for (int j = 0; j < J; j++) {
                    xc[u][j] = xn[u][j];
                    xn[u][j] = xnn[u][j];
                }
            }
        }
    }
}

template <int J, int U, typename O, int STAGES = 0>
__device__ __forceinline__ void ln_forward_rows_k(int k, const float* __restrict__ x, const float* __restrict__ weight,
                                                  const float* __restrict__ bias, float* __restrict__ mean,
                                                  float* __restrict__ rstd, int saved,
                                                  const float* const (&mix)[TS_MAX], O* const (&out)[TS_MAX],
                                                  int rows, int T, int C, float eps) {
#define LTS_FWD(K) \
    ln_mixes_forward_rows<J, U, K, O, STAGES>(x, weight, bias, mean, rstd, saved, mix, out, rows, T, C, eps)
    TS_FOR_K(k, LTS_FWD);
#undef LTS_FWD
}

// The backward of ln_mixes_forward. With ln = LayerNorm(x) recomputed from x and the saved mean and rstd:
//   dln_t = Σ_k dOut_k,t⊙(1 − mix_k) + dOut_k,t+1⊙mix_k   (no t+1 term at a sample's last row)
//   dx_t  = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ⊙x̂)), ĝ = dln_t⊙weight   (added to dx, or written: accumulate 0)
// dxBf16, when not null, gets bf16(dx) too. partial (K + 2 rows of gridDim.x slices of C): the slice's column sums
// Σ dOut_k,t⊙(ln_{t−1} − ln_t) at [(k·slices + slice)·C + c], Σ dln⊙x̂ at k = K (dWeight), Σ dln at k = K + 1 (dBias);
// token_shift_mixes_finish and column_finish add the slices. The block walks its slice backwards, carrying
// Σ_k dOut_k,t+1⊙mix_k and the row's x̂; x of row t − 1 is read once (it is the next row's x̂). PREFETCH: the inputs
// of the next row (x of the row before it, the dOuts as stored, dx, the statistics) are loaded while this row is
// reduced, so the row's barrier does not wait for memory (more registers: J = 1 only, which stays under 128); else
// each row loads its own. STAGES > 0 (overrides PREFETCH): the same inputs copied STAGES rows ahead into shared
// memory (BwdSlot below). D: float, or unsigned short for bf16 dOuts (widened as read).
template <typename D>
struct Raw4;  // four elements of a D tensor as loaded
template <>
struct Raw4<float> {
    float4 v;
};
template <>
struct Raw4<unsigned short> {
    ushort4 v;
};

__device__ __forceinline__ Raw4<float> raw_load(const float* p) { return {*reinterpret_cast<const float4*>(p)}; }
__device__ __forceinline__ Raw4<unsigned short> raw_load(const unsigned short* p) {
    return {*reinterpret_cast<const ushort4*>(p)};
}
__device__ __forceinline__ Vec<4> widen(const Raw4<float>& r) {
    Vec<4> a;
    a.v[0] = r.v.x;
    a.v[1] = r.v.y;
    a.v[2] = r.v.z;
    a.v[3] = r.v.w;
    return a;
}
__device__ __forceinline__ Vec<4> widen(const Raw4<unsigned short>& r) {
    Vec<4> a;
    a.v[0] = bf16_f32(r.v.x);
    a.v[1] = bf16_f32(r.v.y);
    a.v[2] = bf16_f32(r.v.z);
    a.v[3] = bf16_f32(r.v.w);
    return a;
}

// What row r's step reads from memory: x of row r − 1 with its statistics (valid: hasPrev), the dOuts of row r, and
// the dx it adds to.
template <int J, int K, typename D>
struct RowInputs {
    Vec<4> xp[J];
    float mup, rsp;
    Raw4<D> d[K][J];
    Vec<4> old[J];
};

template <int J, int K, typename D>
__device__ __forceinline__ void load_row_inputs(RowInputs<J, K, D>& in, i64 r, bool hasPrev,
                                                const D* const (&dOut)[TS_MAX], const float* __restrict__ x,
                                                const float* __restrict__ mean, const float* __restrict__ rstd,
                                                const float* __restrict__ dx, int C, int accumulate) {
    in.mup = hasPrev ? mean[r - 1] : 0.0f;
    in.rsp = hasPrev ? rstd[r - 1] : 0.0f;
#pragma unroll
    for (int j = 0; j < J; j++) {
        int f = threadIdx.x + blockDim.x * j;
        bool in_row = f * 4 < C;
        in.xp[j] = hasPrev && in_row ? vload<4>(x + (r - 1) * C + f * 4) : vzero<4>();
        in.old[j] = accumulate && in_row ? vload<4>(dx + r * C + f * 4) : vzero<4>();
#pragma unroll
        for (int k = 0; k < K; k++) {
            if (in_row) in.d[k][j] = raw_load(dOut[k] + r * C + f * 4);
        }
    }
}

// The staged backward (STAGES > 0): a slot holds a step's inputs as they lie in memory (x of row r − 1 [C] fp32, dx
// [C] fp32, the K dOuts [K][C] D, then the statistics of row r − 1), copied 16 bytes at a time by all the block's
// threads (cp.async.cg: not through L1, which keeps the mixes the rows read), so a thread reads pieces others copied:
// slot i + 1 is waited for before step i's barrier and read after it. Each thread copying its own float4 of x and
// dx and 8-byte pieces of the bf16 dOuts (cp.async.ca, through L1) was slower at k = 6 than the one-row prefetch
// (H100, C = 2048: 381 against 368 µs; this layout 346). Needs C·sizeof(D) % 16 == 0 and 16-byte aligned dOuts.
template <int J, int K, typename D>
struct BwdSlot {
    static __device__ __forceinline__ int bytes(int C) { return 8 * C + K * C * (int)sizeof(D) + 16; }
    unsigned char* base;
    int C;
    __device__ __forceinline__ Vec<4>* xp(int j) const {
        return reinterpret_cast<Vec<4>*>(base) + threadIdx.x + blockDim.x * j;
    }
    __device__ __forceinline__ Vec<4>* old(int j) const {
        return reinterpret_cast<Vec<4>*>(base + 4 * C) + threadIdx.x + blockDim.x * j;
    }
    __device__ __forceinline__ Raw4<D>* d(int k, int j) const {
        return reinterpret_cast<Raw4<D>*>(base + 8 * C + k * C * (int)sizeof(D)) + threadIdx.x + blockDim.x * j;
    }
    __device__ __forceinline__ float2* stats() const {
        return reinterpret_cast<float2*>(base + 8 * C + K * C * (int)sizeof(D));
    }
};

template <int J, int K, typename D>
__device__ __forceinline__ void stage_row_inputs(const BwdSlot<J, K, D>& s, i64 r, bool hasPrev,
                                                 const D* const (&dOut)[TS_MAX], const float* __restrict__ x,
                                                 const float* __restrict__ mean, const float* __restrict__ rstd,
                                                 const float* __restrict__ dx, int C, int accumulate) {
    int C4 = C >> 2;
    if (hasPrev) {
        for (int c = threadIdx.x; c < C4; c += blockDim.x) copy16(s.base + 16 * c, x + (r - 1) * C + 4 * c);
        if (threadIdx.x == 0) {
            copy4(&s.stats()->x, mean + r - 1);
            copy4(&s.stats()->y, rstd + r - 1);
        }
    }
    if (accumulate) {
        for (int c = threadIdx.x; c < C4; c += blockDim.x) copy16(s.base + 4 * C + 16 * c, dx + r * C + 4 * c);
    }
    int chunks = C * (int)sizeof(D) / 16;
#pragma unroll
    for (int k = 0; k < K; k++) {
        const unsigned char* src = reinterpret_cast<const unsigned char*>(dOut[k] + r * C);
        unsigned char* dst = s.base + 8 * C + k * C * (int)sizeof(D);
        for (int c = threadIdx.x; c < chunks; c += blockDim.x) copy16(dst + 16 * c, src + 16 * c);
    }
}

// what load_row_inputs gives, from a slot stage_row_inputs filled
template <int J, int K, typename D>
__device__ __forceinline__ void read_row_inputs(RowInputs<J, K, D>& in, const BwdSlot<J, K, D>& s, bool hasPrev,
                                                int C, int accumulate) {
    float2 st = hasPrev ? *s.stats() : make_float2(0.0f, 0.0f);
    in.mup = st.x;
    in.rsp = st.y;
#pragma unroll
    for (int j = 0; j < J; j++) {
        int f = threadIdx.x + blockDim.x * j;
        bool in_row = f * 4 < C;
        in.xp[j] = hasPrev && in_row ? *s.xp(j) : vzero<4>();
        in.old[j] = accumulate && in_row ? *s.old(j) : vzero<4>();
#pragma unroll
        for (int k = 0; k < K; k++) {
            if (in_row) in.d[k][j] = *s.d(k, j);
        }
    }
}

template <int J, int K, typename D, bool PREFETCH, int STAGES = 0>
__device__ __forceinline__ void ln_mixes_backward(const D* const (&dOut)[TS_MAX], const float* __restrict__ x,
                                                  const float* __restrict__ weight, const float* __restrict__ bias,
                                                  const float* __restrict__ mean, const float* __restrict__ rstd,
                                                  const float* const (&mix)[TS_MAX], float* __restrict__ dx,
                                                  unsigned short* __restrict__ dxBf16, float* __restrict__ partial,
                                                  int rows, int T, int C, int accumulate) {
    __shared__ float2 red[2][LTS_MAX_WARPS];
    int parity = 0;
    int slices = gridDim.x, slice = blockIdx.x;
    i64 lo, hi;
    slice_rows(rows, slice, slices, lo, hi);
    Vec<4> acc[K + 2][J];
#pragma unroll
    for (int k = 0; k < K + 2; k++)
#pragma unroll
        for (int j = 0; j < J; j++) acc[k][j] = vzero<4>();
    if (lo < hi) {  // uniform over the block
        Vec<4> w[J], b[J];
#pragma unroll
        for (int j = 0; j < J; j++) {
            int f = threadIdx.x + blockDim.x * j;
            w[j] = f * 4 < C ? vload<4>(weight + f * 4) : vzero<4>();
            b[j] = f * 4 < C ? vload<4>(bias + f * 4) : vzero<4>();
        }
        i64 r = hi - 1;
        int t = (int)(r % T);
        // Σ_k dOut_k⊙mix_k of the row after the slice, unless the slice's last row ends its sample
        Vec<4> carry[J];
#pragma unroll
        for (int j = 0; j < J; j++) {
            int f = threadIdx.x + blockDim.x * j;
            carry[j] = vzero<4>();
            if (t != T - 1 && f * 4 < C) {
#pragma unroll
                for (int k = 0; k < K; k++) {
                    Vec<4> d = vload<4>(dOut[k] + (r + 1) * C + f * 4);
                    Vec<4> m = vload<4>(mix[k] + f * 4);
#pragma unroll
                    for (int e = 0; e < 4; e++) carry[j].v[e] += d.v[e] * m.v[e];
                }
            }
        }
        Vec<4> xh[J];
        float rs = rstd[r];
        load_row4<J>(x, r, C, xh);
        {
            float mu = mean[r];
#pragma unroll
            for (int j = 0; j < J; j++) xh[j] = normalized(xh[j], mu, rs);
        }
        // row r − 1's x is needed as this row's ln_{t−1} (t > 0) and as the next step's own row (r > lo)
        RowInputs<J, K, D> in;
        if (PREFETCH && !STAGES) {
            load_row_inputs<J, K, D>(in, r, t != 0 || r > lo, dOut, x, mean, rstd, dx, C, accumulate);
        }
        // STAGES: step i (row hi − 1 − i) in slot i % (STAGES + 1); rows hi − 1 … hi − STAGES copied first
        const int slotBytes = BwdSlot<J, K, D>::bytes(C);
        int slot = 0, ts = t;  // ts: the position in its sample of row rsCopy, the next to copy
        i64 rsCopy = r;
        // copies row rsCopy (if the slice has it) into slot s as one commit group, then steps to the row before
        auto stageNext = [&](int s) {
            if (rsCopy >= lo) {
                BwdSlot<J, K, D> sl{lts_stage + s * slotBytes, C};
                stage_row_inputs<J, K, D>(sl, rsCopy, ts != 0 || rsCopy > lo, dOut, x, mean, rstd, dx, C, accumulate);
            }
            copy_commit();
            rsCopy--;
            ts = ts == 0 ? T - 1 : ts - 1;
        };
        if constexpr (STAGES > 0) {
            for (int s = 0; s < STAGES; s++) stageNext(s);
            copy_wait_pending<STAGES - 1>();  // slot 0 complete and visible
            __syncthreads();
        }
        for (; r >= lo; r--) {
            if constexpr (STAGES > 0) {
                // step i's slot: waited for and made visible at step i − 1 (or before the loop)
                BwdSlot<J, K, D> cur{lts_stage + slot * slotBytes, C};
                read_row_inputs<J, K, D>(in, cur, t != 0 || r > lo, C, accumulate);
                // the slot of the step before (read by every thread before that step's barrier) takes row r − STAGES
                stageNext(slot == 0 ? STAGES : slot - 1);
                slot = slot == STAGES ? 0 : slot + 1;
            } else if (!PREFETCH) {
                load_row_inputs<J, K, D>(in, r, t != 0 || r > lo, dOut, x, mean, rstd, dx, C, accumulate);
            }
            Vec<4> xhp[J], old[J];
            float rsp = in.rsp;
            float sumG = 0.0f, sumGX = 0.0f;
            Vec<4> g[J];
#pragma unroll
            for (int j = 0; j < J; j++) {
                int f = threadIdx.x + blockDim.x * j;
                xhp[j] = normalized(in.xp[j], in.mup, in.rsp);
                old[j] = in.old[j];
                g[j] = vzero<4>();
                if (f * 4 < C) {
                    Vec<4> lnc = affine(xh[j], w[j], b[j]);
                    Vec<4> diff;  // ln_{t−1} − ln_t
                    if (t == 0) {
#pragma unroll
                        for (int e = 0; e < 4; e++) diff.v[e] = -lnc.v[e];
                    } else {
                        Vec<4> lnp = affine(xhp[j], w[j], b[j]);
#pragma unroll
                        for (int e = 0; e < 4; e++) diff.v[e] = lnp.v[e] - lnc.v[e];
                    }
                    Vec<4> dln = carry[j], next = vzero<4>();
#pragma unroll
                    for (int k = 0; k < K; k++) {
                        Vec<4> d = widen(in.d[k][j]);
                        Vec<4> m = vload<4>(mix[k] + f * 4);
#pragma unroll
                        for (int e = 0; e < 4; e++) {
                            dln.v[e] += d.v[e] * (1.0f - m.v[e]);
                            next.v[e] += d.v[e] * m.v[e];
                            acc[k][j].v[e] += d.v[e] * diff.v[e];
                        }
                    }
                    // row t − 1 belongs to the previous sample when t == 0: nothing carries across
                    carry[j] = t == 0 ? vzero<4>() : next;
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        acc[K][j].v[e] += dln.v[e] * xh[j].v[e];
                        acc[K + 1][j].v[e] += dln.v[e];
                        g[j].v[e] = dln.v[e] * w[j].v[e];
                    }
                    sumG += (g[j].v[0] + g[j].v[1]) + (g[j].v[2] + g[j].v[3]);
                    sumGX += (g[j].v[0] * xh[j].v[0] + g[j].v[1] * xh[j].v[1]) +
                             (g[j].v[2] * xh[j].v[2] + g[j].v[3] * xh[j].v[3]);
                }
            }
            int tp = t == 0 ? T - 1 : t - 1;  // row r − 1's position in its sample
            if (PREFETCH && !STAGES && r > lo) {
                load_row_inputs<J, K, D>(in, r - 1, tp != 0 || r - 1 > lo, dOut, x, mean, rstd, dx, C, accumulate);
            }
            if constexpr (STAGES > 0) {
                // of the STAGES + i + 1 groups committed, step i + 1's is complete, visible after the row's barrier
                copy_wait_pending<STAGES - 1>();
                if (blockDim.x == 32) __syncwarp();  // one warp: row_sum2 has no barrier
            }
            float2 sums = row_sum2(sumG, sumGX, red, parity);
            float meanG = sums.x / C, meanGX = sums.y / C;
#pragma unroll
            for (int j = 0; j < J; j++) {
                int f = threadIdx.x + blockDim.x * j;
                if (f * 4 < C) {
                    i64 at = r * C + f * 4;
                    Vec<4> d = old[j];
#pragma unroll
                    for (int e = 0; e < 4; e++) d.v[e] += rs * (g[j].v[e] - meanG - xh[j].v[e] * meanGX);
                    vstore<4>(dx + at, d);
                    if (dxBf16) vstore<4>(dxBf16 + at, d);
                }
                xh[j] = xhp[j];
            }
            rs = rsp;
            t = tp;
        }
    }
#pragma unroll
    for (int j = 0; j < J; j++) {
        int f = threadIdx.x + blockDim.x * j;
        if (f * 4 < C) {
#pragma unroll
            for (int k = 0; k < K + 2; k++) vstore<4>(partial + ((i64)k * slices + slice) * C + f * 4, acc[k][j]);
        }
    }
}

template <int J, typename O>
__device__ __forceinline__ void ln_forward_k(int k, const float* __restrict__ x, const float* __restrict__ weight,
                                             const float* __restrict__ bias, float* __restrict__ mean,
                                             float* __restrict__ rstd, int saved, const float* const (&mix)[TS_MAX],
                                             O* const (&out)[TS_MAX], int rows, int T, int C, float eps) {
#define TS_CALL(K) ln_mixes_forward<J, K, O>(x, weight, bias, mean, rstd, saved, mix, out, rows, T, C, eps)
    TS_FOR_K(k, TS_CALL);
#undef TS_CALL
}

template <int J, typename D, bool PREFETCH, int STAGES = 0>
__device__ __forceinline__ void ln_backward_k(int k, const D* const (&dOut)[TS_MAX], const float* __restrict__ x,
                                              const float* __restrict__ weight, const float* __restrict__ bias,
                                              const float* __restrict__ mean, const float* __restrict__ rstd,
                                              const float* const (&mix)[TS_MAX], float* __restrict__ dx,
                                              unsigned short* __restrict__ dxBf16, float* __restrict__ partial,
                                              int rows, int T, int C, int accumulate) {
#define LTS_BWD(K) \
    ln_mixes_backward<J, K, D, PREFETCH, STAGES>(dOut, x, weight, bias, mean, rstd, mix, dx, dxBf16, partial, rows, T, C, accumulate)
    TS_FOR_K(k, LTS_BWD);
#undef LTS_BWD
}

// The entry points: _j1 for C ≤ 2048 (one float4 a thread; the backward with PREFETCH), _j2 for C ≤ 4096 (two; the
// backward without, and still spilling some at k = 6 under the 128-register cap); fp32 or bf16 (_bf16) mixes
// (forward) and mix gradients (backward). Pointers past k are ignored (pass null). grid (slices), block (32·W).
extern "C" __global__ void __launch_bounds__(32 * LTS_MAX_WARPS) ln_token_shift_forward_j1(
    const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
    float* __restrict__ mean, float* __restrict__ rstd, int saved, TS_PTRS(mix, const), TS_PTRS(out, ), int k, int rows,
    int T, int C, float eps) {
    const float* const mix[TS_MAX] = TS_ARRAY(mix);
    float* const out[TS_MAX] = TS_ARRAY(out);
    ln_forward_k<1>(k, x, weight, bias, mean, rstd, saved, mix, out, rows, T, C, eps);
}

extern "C" __global__ void __launch_bounds__(32 * LTS_MAX_WARPS) ln_token_shift_forward_bf16_j1(
    const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
    float* __restrict__ mean, float* __restrict__ rstd, int saved, TS_PTRS(mix, const), TS_PTRS_BF16(out), int k, int rows,
    int T, int C, float eps) {
    const float* const mix[TS_MAX] = TS_ARRAY(mix);
    unsigned short* const out[TS_MAX] = TS_ARRAY(out);
    ln_forward_k<1>(k, x, weight, bias, mean, rstd, saved, mix, out, rows, T, C, eps);
}

// The row-step forward (ln_mixes_forward_rows, J = LTS_ROWS_J, U = 1) for C ≤ 2048: block 32·⌈⌈C/128⌉/LTS_ROWS_J⌉
// threads (≤ LTS_ROWS_THREADS), three blocks an SM (80 registers). The same outputs as the _j1 kernels.
#define LTS_ROWS_J 2
#define LTS_ROWS_THREADS (32 * LTS_MAX_WARPS / LTS_ROWS_J)
extern "C" __global__ void __launch_bounds__(LTS_ROWS_THREADS, 3) ln_token_shift_forward_rows(
    const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
    float* __restrict__ mean, float* __restrict__ rstd, int saved, TS_PTRS(mix, const), TS_PTRS(out, ), int k, int rows,
    int T, int C, float eps) {
    const float* const mix[TS_MAX] = TS_ARRAY(mix);
    float* const out[TS_MAX] = TS_ARRAY(out);
    ln_forward_rows_k<LTS_ROWS_J, 1>(k, x, weight, bias, mean, rstd, saved, mix, out, rows, T, C, eps);
}

extern "C" __global__ void __launch_bounds__(LTS_ROWS_THREADS, 3) ln_token_shift_forward_rows_bf16(
    const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
    float* __restrict__ mean, float* __restrict__ rstd, int saved, TS_PTRS(mix, const), TS_PTRS_BF16(out), int k, int rows,
    int T, int C, float eps) {
    const float* const mix[TS_MAX] = TS_ARRAY(mix);
    unsigned short* const out[TS_MAX] = TS_ARRAY(out);
    ln_forward_rows_k<LTS_ROWS_J, 1>(k, x, weight, bias, mean, rstd, saved, mix, out, rows, T, C, eps);
}

// The same with x staged LTS_ROWS_STAGES steps ahead (dynamic shared memory (LTS_ROWS_STAGES + 1)·threads·(16·J + 8)
// bytes, ≤ 30 KiB; 78 registers). Taken for the statistics of one mix (k = 1), whose steps are mostly the two
// barriers of the statistics and little output: H100, rows 16384, C = 2048 119 → 110 µs, C = 1024 and 768 1–2%
// faster. The same as the unstaged kernel at k = 6 (its six outputs' stores are the limit) and 1–7% slower from
// saved statistics (no barrier there, the register prefetch suffices).
#define LTS_ROWS_STAGES 2
extern "C" __global__ void __launch_bounds__(LTS_ROWS_THREADS, 3) ln_token_shift_forward_rows_staged(
    const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
    float* __restrict__ mean, float* __restrict__ rstd, int saved, TS_PTRS(mix, const), TS_PTRS(out, ), int k, int rows,
    int T, int C, float eps) {
    const float* const mix[TS_MAX] = TS_ARRAY(mix);
    float* const out[TS_MAX] = TS_ARRAY(out);
    ln_forward_rows_k<LTS_ROWS_J, 1, float, LTS_ROWS_STAGES>(k, x, weight, bias, mean, rstd, saved, mix, out, rows, T,
                                                             C, eps);
}

extern "C" __global__ void __launch_bounds__(LTS_ROWS_THREADS, 3) ln_token_shift_forward_rows_staged_bf16(
    const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
    float* __restrict__ mean, float* __restrict__ rstd, int saved, TS_PTRS(mix, const), TS_PTRS_BF16(out), int k, int rows,
    int T, int C, float eps) {
    const float* const mix[TS_MAX] = TS_ARRAY(mix);
    unsigned short* const out[TS_MAX] = TS_ARRAY(out);
    ln_forward_rows_k<LTS_ROWS_J, 1, unsigned short, LTS_ROWS_STAGES>(k, x, weight, bias, mean, rstd, saved, mix, out,
                                                                      rows, T, C, eps);
}

extern "C" __global__ void __launch_bounds__(32 * LTS_MAX_WARPS) ln_token_shift_forward_j2(
    const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
    float* __restrict__ mean, float* __restrict__ rstd, int saved, TS_PTRS(mix, const), TS_PTRS(out, ), int k, int rows,
    int T, int C, float eps) {
    const float* const mix[TS_MAX] = TS_ARRAY(mix);
    float* const out[TS_MAX] = TS_ARRAY(out);
    ln_forward_k<2>(k, x, weight, bias, mean, rstd, saved, mix, out, rows, T, C, eps);
}

extern "C" __global__ void __launch_bounds__(32 * LTS_MAX_WARPS) ln_token_shift_forward_bf16_j2(
    const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
    float* __restrict__ mean, float* __restrict__ rstd, int saved, TS_PTRS(mix, const), TS_PTRS_BF16(out), int k, int rows,
    int T, int C, float eps) {
    const float* const mix[TS_MAX] = TS_ARRAY(mix);
    unsigned short* const out[TS_MAX] = TS_ARRAY(out);
    ln_forward_k<2>(k, x, weight, bias, mean, rstd, saved, mix, out, rows, T, C, eps);
}

extern "C" __global__ void __launch_bounds__(32 * LTS_MAX_WARPS) ln_token_shift_backward_j1(
    TS_PTRS(dOut, const), const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
    const float* __restrict__ mean, const float* __restrict__ rstd, TS_PTRS(mix, const), float* __restrict__ dx,
    unsigned short* __restrict__ dxBf16, float* __restrict__ partial, int k, int rows, int T, int C, int accumulate) {
    const float* const dOut[TS_MAX] = TS_ARRAY(dOut);
    const float* const mix[TS_MAX] = TS_ARRAY(mix);
    ln_backward_k<1, float, true>(k, dOut, x, weight, bias, mean, rstd, mix, dx, dxBf16, partial, rows, T, C,
                                                   accumulate);
}

extern "C" __global__ void __launch_bounds__(32 * LTS_MAX_WARPS) ln_token_shift_backward_bf16_j1(
    TS_PTRS_BF16C(dOut), const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
    const float* __restrict__ mean, const float* __restrict__ rstd, TS_PTRS(mix, const), float* __restrict__ dx,
    unsigned short* __restrict__ dxBf16, float* __restrict__ partial, int k, int rows, int T, int C, int accumulate) {
    const unsigned short* const dOut[TS_MAX] = TS_ARRAY(dOut);
    const float* const mix[TS_MAX] = TS_ARRAY(mix);
    ln_backward_k<1, unsigned short, true>(k, dOut, x, weight, bias, mean, rstd, mix, dx, dxBf16, partial, rows, T, C,
                                                   accumulate);
}

extern "C" __global__ void __launch_bounds__(32 * LTS_MAX_WARPS) ln_token_shift_backward_j2(
    TS_PTRS(dOut, const), const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
    const float* __restrict__ mean, const float* __restrict__ rstd, TS_PTRS(mix, const), float* __restrict__ dx,
    unsigned short* __restrict__ dxBf16, float* __restrict__ partial, int k, int rows, int T, int C, int accumulate) {
    const float* const dOut[TS_MAX] = TS_ARRAY(dOut);
    const float* const mix[TS_MAX] = TS_ARRAY(mix);
    ln_backward_k<2, float, false>(k, dOut, x, weight, bias, mean, rstd, mix, dx, dxBf16, partial, rows, T, C,
                                                   accumulate);
}

extern "C" __global__ void __launch_bounds__(32 * LTS_MAX_WARPS) ln_token_shift_backward_bf16_j2(
    TS_PTRS_BF16C(dOut), const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
    const float* __restrict__ mean, const float* __restrict__ rstd, TS_PTRS(mix, const), float* __restrict__ dx,
    unsigned short* __restrict__ dxBf16, float* __restrict__ partial, int k, int rows, int T, int C, int accumulate) {
    const unsigned short* const dOut[TS_MAX] = TS_ARRAY(dOut);
    const float* const mix[TS_MAX] = TS_ARRAY(mix);
    ln_backward_k<2, unsigned short, false>(k, dOut, x, weight, bias, mean, rstd, mix, dx, dxBf16, partial, rows, T, C,
                                                   accumulate);
}

// The J = 1 bf16 backward without the next row's loads in flight (each row loads its own; 102 registers instead of
// 128, three blocks per SM instead of two at C = 768): -Dgosling.lnShiftPrefetch=false, for measurements.
extern "C" __global__ void __launch_bounds__(32 * LTS_MAX_WARPS) ln_token_shift_backward_bf16_j1_serial(
    TS_PTRS_BF16C(dOut), const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
    const float* __restrict__ mean, const float* __restrict__ rstd, TS_PTRS(mix, const), float* __restrict__ dx,
    unsigned short* __restrict__ dxBf16, float* __restrict__ partial, int k, int rows, int T, int C, int accumulate) {
    const unsigned short* const dOut[TS_MAX] = TS_ARRAY(dOut);
    const float* const mix[TS_MAX] = TS_ARRAY(mix);
    ln_backward_k<1, unsigned short, false>(k, dOut, x, weight, bias, mean, rstd, mix, dx, dxBf16, partial, rows, T,
                                            C, accumulate);
}

// The J = 1 bf16 backward with staged inputs (ln_mixes_backward, STAGES = LTS_BWD_STAGES) for C ≤ 2048, C % 8 == 0
// and 16-byte aligned dOuts: dynamic shared memory (LTS_BWD_STAGES + 1)·(8C + 2kC + 16) bytes (120 KiB at C = 2048,
// k = 6: opted in past 48 KiB). The same outputs as ln_token_shift_backward_bf16_j1; H100, rows 16384, C = 2048: k = 6
// 368 → 346 µs, k = 1 254 → 205 µs (3 stages: 377 and 214; 4: 459 and 223, the shared memory taken from L1).
#define LTS_BWD_STAGES 2
extern "C" __global__ void __launch_bounds__(32 * LTS_MAX_WARPS) ln_token_shift_backward_bf16_j1_staged(
    TS_PTRS_BF16C(dOut), const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
    const float* __restrict__ mean, const float* __restrict__ rstd, TS_PTRS(mix, const), float* __restrict__ dx,
    unsigned short* __restrict__ dxBf16, float* __restrict__ partial, int k, int rows, int T, int C, int accumulate) {
    const unsigned short* const dOut[TS_MAX] = TS_ARRAY(dOut);
    const float* const mix[TS_MAX] = TS_ARRAY(mix);
    ln_backward_k<1, unsigned short, false, LTS_BWD_STAGES>(k, dOut, x, weight, bias, mean, rstd, mix, dx, dxBf16,
                                                            partial, rows, T, C, accumulate);
}
