// Per-row cross-entropy and its gradient with L2Wrap (§5.5): loss = logsumexp − logit[target]; the gradient is
// gradScale·(softmax − onehot(target)) plus L2WRAP·max·gradScale on the row's argmax (lowest index on ties).
// One block of 1024 threads per row (grid-stride over rows); one pass for max and sum (online softmax), and the
// backward's second pass writes the gradient over the logits when they alias. A target outside [0, vocab) is
// recorded in err and makes the row's loss (or gradient) NaN. The fused forward+backward reads the logits twice
// here; cross_entropy_rows_* (below) reads them once where the row fits on chip (the host picks; this kernel is the
// fallback for every other shape). The logits are fp32, or bf16 (the head GEMM writes them so under bf16 GEMMs; the
// *_bf16_logits kernels): each is widened to fp32 as it is read, and everything after (max, Σexp, loss, gradient) is
// fp32; their dLogits are bf16 and may be written over them.
#include "common.cuh"

#define L2WRAP 1e-4f
#define CE_THREADS 1024

struct Stats { float max; float sum; int arg; };

// One logit as fp32: X is float, or unsigned short holding bf16 bits (widened exactly).
__device__ __forceinline__ float ce_x(const float* x, i64 i) { return x[i]; }
__device__ __forceinline__ float ce_x(const unsigned short* x, i64 i) { return bf16_f32(x[i]); }

// Combines two (max, Σexp(x − max), argmax) triples; equal maxima keep the lower index.
__device__ __forceinline__ Stats combine(Stats p, Stats q) {
    if (q.sum == 0.0f && q.max == NEG_INF) return p;
    if (p.sum == 0.0f && p.max == NEG_INF) return q;
    Stats o;
    if (q.max > p.max || (q.max == p.max && q.arg < p.arg)) {
        o.max = q.max; o.arg = q.arg;
    } else {
        o.max = p.max; o.arg = p.arg;
    }
    o.sum = p.sum * expf(p.max - o.max) + q.sum * expf(q.max - o.max);
    return o;
}

template <typename X>
__device__ Stats row_stats(const X* x, int vocab) {
    __shared__ float smax[32], ssum[32];
    __shared__ int sarg[32];
    Stats s = {NEG_INF, 0.0f, 0x7fffffff};
    for (int c = threadIdx.x; c < vocab; c += blockDim.x) {
        float xv = ce_x(x, c);
        if (xv > s.max) {
            s.sum = s.sum * expf(s.max - xv) + 1.0f;
            s.max = xv;
            s.arg = c;
        } else {
            s.sum += expf(xv - s.max);
        }
    }
    for (int o = 16; o > 0; o >>= 1) {
        Stats q;
        q.max = __shfl_xor_sync(0xffffffffu, s.max, o);
        q.sum = __shfl_xor_sync(0xffffffffu, s.sum, o);
        q.arg = __shfl_xor_sync(0xffffffffu, s.arg, o);
        s = combine(s, q);
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) { smax[warp] = s.max; ssum[warp] = s.sum; sarg[warp] = s.arg; }
    __syncthreads();
    if (lane < warps) { s.max = smax[lane]; s.sum = ssum[lane]; s.arg = sarg[lane]; }
    else { s.max = NEG_INF; s.sum = 0.0f; s.arg = 0x7fffffff; }
    for (int o = 16; o > 0; o >>= 1) {
        Stats q;
        q.max = __shfl_xor_sync(0xffffffffu, s.max, o);
        q.sum = __shfl_xor_sync(0xffffffffu, s.sum, o);
        q.arg = __shfl_xor_sync(0xffffffffu, s.arg, o);
        s = combine(s, q);
    }
    return s;
}

// losses[row] = max + log(Σ exp(x − max)) − x[target].
template <typename X>
__device__ __forceinline__ void ce_forward(const X* __restrict__ logits, const int* __restrict__ targets,
                                           float* __restrict__ losses, int rows, int vocab, int* err) {
    for (int row = blockIdx.x; row < rows; row += gridDim.x) {
        const X* x = logits + (i64)row * vocab;
        Stats s = row_stats(x, vocab);
        if (threadIdx.x == 0) {
            int target = targets[row];
            if (target < 0 || target >= vocab) {
                report_bad_id(err, row, target);
                losses[row] = nan_();
            } else {
                losses[row] = s.max + logf(s.sum) - ce_x(x, target);
            }
        }
        __syncthreads();
    }
}

extern "C" __global__ void __launch_bounds__(CE_THREADS) cross_entropy_forward(const float* __restrict__ logits,
        const int* __restrict__ targets, float* __restrict__ losses, int rows, int vocab, int* err) {
    ce_forward<float>(logits, targets, losses, rows, vocab, err);
}

// bf16 logits (bits in unsigned short).
extern "C" __global__ void __launch_bounds__(CE_THREADS) cross_entropy_forward_bf16_logits(
        const unsigned short* __restrict__ logits, const int* __restrict__ targets, float* __restrict__ losses, int rows,
        int vocab, int* err) {
    ce_forward<unsigned short>(logits, targets, losses, rows, vocab, err);
}

// dLogits = gradScale·softmax, − gradScale at the target, + L2WRAP·max·gradScale at the argmax. WRITES (does not
// accumulate); dLogits may alias logits (each element is read by the thread that then writes it). With losses not
// null it also writes the forward's losses, so the training step reads its logits once less. X (logits) and D
// (dLogits): float, or unsigned short for bf16 (the head's backward GEMMs read dLogits as bf16 operands); fp32 logits
// with bf16 dLogits do not alias, bf16 ones may.
template <typename X, typename D>
__device__ __forceinline__ void ce_backward(const X* logits, const int* __restrict__ targets, D* dLogits, int rows,
                                            int vocab, float gradScale, int* err, float* __restrict__ losses) {
    for (int row = blockIdx.x; row < rows; row += gridDim.x) {
        const X* x = logits + (i64)row * vocab;
        D* d = dLogits + (i64)row * vocab;
        int target = targets[row];
        bool ok = target >= 0 && target < vocab;
        // read before row_stats' barriers: after them the target's logit may already be overwritten (aliasing)
        float xt = losses != nullptr && ok && threadIdx.x == 0 ? ce_x(x, target) : 0.0f;
        Stats s = row_stats(x, vocab);
        if (!ok && threadIdx.x == 0) report_bad_id(err, row, target);
        if (losses != nullptr && threadIdx.x == 0) losses[row] = ok ? s.max + logf(s.sum) - xt : nan_();
        float scale = gradScale / s.sum;
        float wrap = L2WRAP * s.max * gradScale;
        for (int c = threadIdx.x; c < vocab; c += blockDim.x) {
            float g = expf(ce_x(x, c) - s.max) * scale;
            if (c == target) g -= gradScale;
            if (c == s.arg) g += wrap;
            g = ok ? g : nan_();
            if constexpr (sizeof(D) == 2) {
                d[c] = bf16_rn(g);
            } else {
                d[c] = g;
            }
        }
        __syncthreads();
    }
}

extern "C" __global__ void __launch_bounds__(CE_THREADS) cross_entropy_backward(const float* logits,
        const int* __restrict__ targets, float* dLogits, int rows, int vocab, float gradScale, int* err,
        float* __restrict__ losses) {
    ce_backward<float, float>(logits, targets, dLogits, rows, vocab, gradScale, err, losses);
}

extern "C" __global__ void __launch_bounds__(CE_THREADS) cross_entropy_backward_bf16(const float* __restrict__ logits,
        const int* __restrict__ targets, unsigned short* __restrict__ dLogits, int rows, int vocab, float gradScale,
        int* err, float* __restrict__ losses) {
    ce_backward<float, unsigned short>(logits, targets, dLogits, rows, vocab, gradScale, err, losses);
}

// bf16 logits, bf16 dLogits, which may be written over them (no __restrict__ on either).
extern "C" __global__ void __launch_bounds__(CE_THREADS) cross_entropy_backward_bf16_logits(
        const unsigned short* logits, const int* __restrict__ targets, unsigned short* dLogits, int rows, int vocab,
        float gradScale, int* err, float* __restrict__ losses) {
    ce_backward<unsigned short, unsigned short>(logits, targets, dLogits, rows, vocab, gradScale, err, losses);
}

// ------------------------------------------------------------------------------------------------ one read per row
// cross_entropy_rows_<NT>_<R4>_<S4>[_nopipe][_bf16]: the fused forward+backward (as cross_entropy_backward with
// losses) reading each logit once. One block of NT threads per row (grid-stride over rows, one resident block per
// SM); the row stays on chip between the reductions and the gradient: R4 float4s per thread in registers and S4 in
// shared memory (dynamic, [S4][NT] float4s, each slot private to its thread: no barrier guards them), so NT·(R4+S4)·4
// logits at most. The register file alone (64K × 32 bits per SM) cannot hold a 65536-logit row next to the indexing,
// hence the split. Element c = 4·q + j, q = k·NT + threadIdx.x: register chunks k < R4 first, then shared chunks, so a
// thread sees its elements in increasing index order and a strict '>' keeps the lowest index among equal maxima.
// Needs vocab % 4 == 0 and 16-byte-aligned rows (the host checks; other shapes take cross_entropy_backward). Passes:
// max and argmax (one block reduction), e = exp(x − max) kept in place and Σe (a second), then the gradient
// e·gradScale/Σe (− gradScale at the target, + L2WRAP·max·gradScale at the argmax) is written; with PIPE the next
// row's logits are fetched into each chunk right after it is written, so the next row's loads overlap this row's
// stores. Every element is read before any thread of the block writes its row, so dLogits may alias the logits.
// _bf16_logits: bf16 logits (and bf16 dLogits, possibly over them): a thread loads its 4 logits as 8 bytes and widens
// them in registers; a shared slot first receives the 8 raw bytes (cp.async), which the max pass widens and the exp
// pass replaces with the 4 fp32 e values (the slot is 16 bytes and private, so nothing else changes).

extern __shared__ float4 ce_stash[];

// async copies: copy16, copy8, copy_commit, copy_wait (common.cuh)

__device__ __forceinline__ float4 neg_inf4() { return make_float4(NEG_INF, NEG_INF, NEG_INF, NEG_INF); }

// Logits 4q … 4q + 3 of a row: into registers (load4), into a shared slot as fetched (stash), and a fetched slot as
// fp32 (fetched).
__device__ __forceinline__ float4 ce_load4(const float* x, int q) { return reinterpret_cast<const float4*>(x)[q]; }
__device__ __forceinline__ float4 ce_load4(const unsigned short* x, int q) {
    return bf16x4_f32(reinterpret_cast<const uint2*>(x)[q]);
}
__device__ __forceinline__ void ce_stash4(float4* slot, const float* x, int q) {
    copy16(slot, reinterpret_cast<const float4*>(x) + q);
}
__device__ __forceinline__ void ce_stash4(float4* slot, const unsigned short* x, int q) {
    copy8(slot, reinterpret_cast<const uint2*>(x) + q);
}
template <typename X>
__device__ __forceinline__ float4 ce_fetched(const float4* slot) {
    if constexpr (sizeof(X) == 2) {
        return bf16x4_f32(*reinterpret_cast<const uint2*>(slot));
    } else {
        return *slot;
    }
}

__device__ __forceinline__ void max_arg(float v, int c, float& m, int& a) {
    if (v > m) { m = v; a = c; }
}

// The gradient of element c from e = exp(x − max): as ce_backward's.
__device__ __forceinline__ float ce_grad(float e, int c, float scale, int target, int arg, float gradScale, float wrap,
                                         bool ok) {
    float g = e * scale;
    if (c == target) g -= gradScale;
    if (c == arg) g += wrap;
    return ok ? g : nan_();
}

__device__ __forceinline__ void ce_store(float* d, int q, float g0, float g1, float g2, float g3) {
    reinterpret_cast<float4*>(d)[q] = make_float4(g0, g1, g2, g3);
}

__device__ __forceinline__ void ce_store(unsigned short* d, int q, float g0, float g1, float g2, float g3) {
    uint2 u;
    u.x = (unsigned)bf16_rn(g0) | ((unsigned)bf16_rn(g1) << 16);
    u.y = (unsigned)bf16_rn(g2) | ((unsigned)bf16_rn(g3) << 16);
    reinterpret_cast<uint2*>(d)[q] = u;
}

template <int NT, int R4, int S4, typename X>
__device__ __forceinline__ void ce_fetch(const X* x, int v4, float4 (&r)[R4]) {
#pragma unroll
    for (int k = 0; k < R4; k++) {
        int q = k * NT + threadIdx.x;
        r[k] = q < v4 ? ce_load4(x, q) : neg_inf4();
    }
#pragma unroll
    for (int k = 0; k < S4; k++) {
        int q = (R4 + k) * NT + threadIdx.x;
        if (q < v4) ce_stash4(ce_stash + k * NT + threadIdx.x, x, q);
    }
    copy_commit();
}

template <int NT, int R4, int S4, bool PIPE, typename X, typename D>
__device__ __forceinline__ void ce_rows(const X* logits, const int* __restrict__ targets, D* dLogits, int rows,
                                        int vocab, float gradScale, int* err, float* __restrict__ losses) {
    __shared__ float smax[32], ssum[32];
    __shared__ int sarg[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    constexpr int WARPS = NT / 32;
    const int v4 = vocab >> 2;
    float4 r[R4];
    int row = blockIdx.x;
    if (row >= rows) return;
    ce_fetch<NT, R4, S4>(logits + (i64)row * vocab, v4, r);
    for (; row < rows; row += gridDim.x) {
        const X* x = logits + (i64)row * vocab;
        D* d = dLogits + (i64)row * vocab;
        const int next = row + gridDim.x;
        if (!PIPE && row != blockIdx.x) ce_fetch<NT, R4, S4>(x, v4, r);
        const int target = targets[row];
        const bool ok = target >= 0 && target < vocab;
        // read before this row's first write (after both reductions) so that aliasing cannot change it
        float xt = threadIdx.x == 0 && ok ? ce_x(x, target) : 0.0f;
        copy_wait();
        // max and argmax
        float m = NEG_INF;
        int a = 0x7fffffff;
#pragma unroll
        for (int k = 0; k < R4; k++) {
            int c = 4 * (k * NT + threadIdx.x);
            max_arg(r[k].x, c, m, a); max_arg(r[k].y, c + 1, m, a); max_arg(r[k].z, c + 2, m, a); max_arg(r[k].w, c + 3, m, a);
        }
#pragma unroll
        for (int k = 0; k < S4; k++) {
            int q = (R4 + k) * NT + threadIdx.x;
            float4 s = q < v4 ? ce_fetched<X>(ce_stash + k * NT + threadIdx.x) : neg_inf4();
            int c = 4 * q;
            max_arg(s.x, c, m, a); max_arg(s.y, c + 1, m, a); max_arg(s.z, c + 2, m, a); max_arg(s.w, c + 3, m, a);
        }
        for (int o = 16; o > 0; o >>= 1) {
            float qm = __shfl_xor_sync(0xffffffffu, m, o);
            int qa = __shfl_xor_sync(0xffffffffu, a, o);
            if (qm > m || (qm == m && qa < a)) { m = qm; a = qa; }
        }
        if (lane == 0) { smax[warp] = m; sarg[warp] = a; }
        __syncthreads();
        m = lane < WARPS ? smax[lane] : NEG_INF;
        a = lane < WARPS ? sarg[lane] : 0x7fffffff;
        for (int o = 16; o > 0; o >>= 1) {
            float qm = __shfl_xor_sync(0xffffffffu, m, o);
            int qa = __shfl_xor_sync(0xffffffffu, a, o);
            if (qm > m || (qm == m && qa < a)) { m = qm; a = qa; }
        }
        // e = exp(x − max) in place, and its sum (padding is −inf: e = 0)
        float sum = 0.0f;
#pragma unroll
        for (int k = 0; k < R4; k++) {
            r[k].x = expf(r[k].x - m); r[k].y = expf(r[k].y - m); r[k].z = expf(r[k].z - m); r[k].w = expf(r[k].w - m);
            sum += (r[k].x + r[k].y) + (r[k].z + r[k].w);
        }
#pragma unroll
        for (int k = 0; k < S4; k++) {
            int q = (R4 + k) * NT + threadIdx.x;
            if (q < v4) {
                float4 s = ce_fetched<X>(ce_stash + k * NT + threadIdx.x);
                s.x = expf(s.x - m); s.y = expf(s.y - m); s.z = expf(s.z - m); s.w = expf(s.w - m);
                sum += (s.x + s.y) + (s.z + s.w);
                ce_stash[k * NT + threadIdx.x] = s;
            }
        }
        sum = warp_sum(sum);
        if (lane == 0) ssum[warp] = sum;
        __syncthreads();
        sum = warp_sum(lane < WARPS ? ssum[lane] : 0.0f);
        if (threadIdx.x == 0) {
            if (!ok) report_bad_id(err, row, target);
            if (losses != nullptr) losses[row] = ok ? m + logf(sum) - xt : nan_();
        }
        // the gradient, and (PIPE) the next row's logits into each chunk as soon as it is written
        const float scale = gradScale / sum;
        const float wrap = L2WRAP * m * gradScale;
        const bool fetch = PIPE && next < rows;
        const X* xn = logits + (i64)next * vocab;
#pragma unroll
        for (int k = 0; k < R4; k++) {
            int q = k * NT + threadIdx.x, c = 4 * q;
            if (q < v4) {
                ce_store(d, q, ce_grad(r[k].x, c, scale, target, a, gradScale, wrap, ok),
                         ce_grad(r[k].y, c + 1, scale, target, a, gradScale, wrap, ok),
                         ce_grad(r[k].z, c + 2, scale, target, a, gradScale, wrap, ok),
                         ce_grad(r[k].w, c + 3, scale, target, a, gradScale, wrap, ok));
            }
            if (fetch) r[k] = q < v4 ? ce_load4(xn, q) : neg_inf4();
        }
#pragma unroll
        for (int k = 0; k < S4; k++) {
            int q = (R4 + k) * NT + threadIdx.x, c = 4 * q;
            if (q < v4) {
                float4 s = ce_stash[k * NT + threadIdx.x];
                ce_store(d, q, ce_grad(s.x, c, scale, target, a, gradScale, wrap, ok),
                         ce_grad(s.y, c + 1, scale, target, a, gradScale, wrap, ok),
                         ce_grad(s.z, c + 2, scale, target, a, gradScale, wrap, ok),
                         ce_grad(s.w, c + 3, scale, target, a, gradScale, wrap, ok));
                // the slot's old value is in registers and stored (in order) before the copy is issued
                if (fetch) ce_stash4(ce_stash + k * NT + threadIdx.x, xn, q);
            }
        }
        if (fetch) copy_commit();
        // no barrier here: a warp writes smax/sarg of the next row only after passing this row's second barrier,
        // which every warp reaches after reading them; and ssum only after the next row's first barrier
    }
}

#define CE_ROWS(NT, R4, S4, PIPE, SUFFIX)                                                                              \
    extern "C" __global__ void __launch_bounds__(NT, 1) cross_entropy_rows_##NT##_##R4##_##S4##SUFFIX(                 \
            const float* logits, const int* __restrict__ targets, float* dLogits, int rows, int vocab,                 \
            float gradScale, int* err, float* __restrict__ losses) {                                                   \
        ce_rows<NT, R4, S4, PIPE, float, float>(logits, targets, dLogits, rows, vocab, gradScale, err, losses);       \
    }                                                                                                                  \
    extern "C" __global__ void __launch_bounds__(NT, 1) cross_entropy_rows_##NT##_##R4##_##S4##SUFFIX##_bf16(          \
            const float* __restrict__ logits, const int* __restrict__ targets, unsigned short* __restrict__ dLogits,   \
            int rows, int vocab, float gradScale, int* err, float* __restrict__ losses) {                              \
        ce_rows<NT, R4, S4, PIPE, float, unsigned short>(logits, targets, dLogits, rows, vocab, gradScale, err,       \
                                                         losses);                                                      \
    }                                                                                                                  \
    extern "C" __global__ void __launch_bounds__(NT, 1) cross_entropy_rows_##NT##_##R4##_##S4##SUFFIX##_bf16_logits(   \
            const unsigned short* logits, const int* __restrict__ targets, unsigned short* dLogits, int rows,          \
            int vocab, float gradScale, int* err, float* __restrict__ losses) {                                        \
        ce_rows<NT, R4, S4, PIPE, unsigned short, unsigned short>(logits, targets, dLogits, rows, vocab, gradScale,    \
                                                                  err, losses);                                        \
    }

// Measured on an H100 at 2048 × 65536, bf16 dLogits (kernels/NOTES.md): 1024_8_8 0.312 ms, _nopipe 0.308, 512_16_16
// 0.318; 512_24_8 (0.439), 256_32_32 (0.984) and 256_48_16 (0.738) were slower and are no longer compiled.
// bf16 logits with bf16 dLogits over them (the training step under bf16 GEMMs): 1024_8_8 0.301 ms per call in the
// step's profile, short of the ~0.18 ms floor (NOTES); the packed kernels below take them by default (0.240).
CE_ROWS(1024, 8, 8, true, )
CE_ROWS(1024, 8, 8, false, _nopipe)
CE_ROWS(512, 16, 16, true, )

// ------------------------------------------------------------------------------------------------ bf16 rows, packed
// cross_entropy_rows_<NT>_<R4>_<S4>_packed_bf16_logits: one-read kernels for bf16 logits (bf16 dLogits, possibly
// over them) that keep the row on chip as the packed bf16 it was read as: R4 uint2s (4 logits each) per thread in
// registers and S4 in the shared stash ([S4][NT] uint2s, each slot private to its thread), same element order as
// ce_rows. A 65536-logit row is then 128 KiB, so two blocks fit per SM (__launch_bounds__(NT, 2)) and one block's
// reductions and exp passes can overlap the other's loads and stores (with one block per SM, ce_rows, the SM's loads
// stop for them: kernels/NOTES.md). The price: e = exp(x − max) is not kept but computed twice, for Σe and
// for the gradient, the same expf of the same operands (so the same bits). The max is taken on the packed pairs
// (max.bf16x2 is exact on bf16 and, like '>', passes over NaN); the argmax (lowest index among equal maxima) is
// searched only by the threads whose own maximum is the row's, and reduced with Σe. The gradient is ce_grad's with
// the target and argmax terms applied only in the (one or two) groups of 4 that hold them, rounded to bf16 two at a
// time (cvt.rn.bf16x2, the same round-to-nearest-even as bf16_rn); a bad target's row is bf16_rn(NaN) = 0x7fc0.

__device__ __forceinline__ unsigned bf16x2_max(unsigned a, unsigned b) {
#if __CUDA_ARCH__ >= 800
    unsigned d;
    asm("max.bf16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
    return d;
#else
    float lo = fmaxf(__uint_as_float(a << 16), __uint_as_float(b << 16));
    float hi = fmaxf(__uint_as_float(a & 0xffff0000u), __uint_as_float(b & 0xffff0000u));
    return (__float_as_uint(lo) >> 16) | (__float_as_uint(hi) & 0xffff0000u);
#endif
}

// Logits 4q … 4q + 3 as fp32 e = exp(x − m), summed as ce_rows sums them.
__device__ __forceinline__ float ce_exp_sum4(uint2 u, float m) {
    float4 f = bf16x4_f32(u);
    return (expf(f.x - m) + expf(f.y - m)) + (expf(f.z - m) + expf(f.w - m));
}

// The lowest c among logits 4q … 4q + 3 equal to m, else a.
__device__ __forceinline__ int ce_first4(uint2 u, int c, float m, int a) {
    float4 f = bf16x4_f32(u);
    int b = f.w == m ? c + 3 : 0x7fffffff;
    b = f.z == m ? c + 2 : b;
    b = f.y == m ? c + 1 : b;
    b = f.x == m ? c : b;
    return min(a, b);
}

// The gradient of logits c … c + 3 (c = 4q) as bf16: ce_grad with e = exp(x − m).
__device__ __forceinline__ uint2 ce_grad4(uint2 u, int c, float m, float scale, int target, int arg, float gradScale,
                                          float wrap, bool ok) {
    float4 f = bf16x4_f32(u);
    float g0 = expf(f.x - m) * scale, g1 = expf(f.y - m) * scale, g2 = expf(f.z - m) * scale,
          g3 = expf(f.w - m) * scale;
    if ((unsigned)target - (unsigned)c < 4u || (unsigned)arg - (unsigned)c < 4u) {
        if (c == target) g0 -= gradScale;
        if (c + 1 == target) g1 -= gradScale;
        if (c + 2 == target) g2 -= gradScale;
        if (c + 3 == target) g3 -= gradScale;
        if (c == arg) g0 += wrap;
        if (c + 1 == arg) g1 += wrap;
        if (c + 2 == arg) g2 += wrap;
        if (c + 3 == arg) g3 += wrap;
    }
    return ok ? make_uint2(bf16x2_rn(g0, g1), bf16x2_rn(g2, g3)) : make_uint2(0x7fc07fc0u, 0x7fc07fc0u);
}

// Issues the loads of a row: registers (−inf past its end), then the stash (its slots past the end are not
// touched), as one cp.async group. sEnd: the stash chunks holding logits of this thread.
template <int NT, int R4, int S4>
__device__ __forceinline__ void ce_packed_fetch(const unsigned short* logits, int row, int vocab, int sEnd,
                                                uint2 (&r)[R4], uint2* stash) {
    const uint2* x = reinterpret_cast<const uint2*>(logits + (i64)row * vocab);
    const int v4 = vocab >> 2;
#pragma unroll
    for (int k = 0; k < R4; k++) {
        int q = k * NT + threadIdx.x;
        r[k] = q < v4 ? x[q] : make_uint2(0xff80ff80u, 0xff80ff80u);
    }
    // partly unrolled: fully unrolled, ptxas keeps many chunks' loads in flight in registers and spills
#pragma unroll 4
    for (int k = 0; k < sEnd; k++) copy8(stash + k * NT + threadIdx.x, x + (R4 + k) * NT + threadIdx.x);
    copy_commit();
}

// One row whose loads (ce_packed_fetch) have landed in r and, for this thread, in its stash slots: max, Σe and the
// argmax, the loss, the gradient over the row.
template <int NT, int R4, int S4>
__device__ __forceinline__ void ce_packed_row(const unsigned short* logits, const int* __restrict__ targets,
                                              unsigned short* dLogits, int row, int vocab, int sEnd, float gradScale,
                                              int* err, float* __restrict__ losses, const uint2 (&r)[R4],
                                              const uint2* stash) {
    __shared__ float smax[32], ssum[32];
    __shared__ int sarg[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    constexpr int WARPS = NT / 32;
    const int v4 = vocab >> 2;
    uint2* d = reinterpret_cast<uint2*>(dLogits + (i64)row * vocab);
    const int target = targets[row];
    const bool ok = target >= 0 && target < vocab;
    // read before this row's first write (after both reductions) so that aliasing cannot change it
    float xt = threadIdx.x == 0 && ok ? bf16_f32(logits[(i64)row * vocab + target]) : 0.0f;
    // the maximum: this thread's on packed pairs, then the block's
    unsigned hm = 0xff80ff80u;
#pragma unroll
    for (int k = 0; k < R4; k++) hm = bf16x2_max(hm, bf16x2_max(r[k].x, r[k].y));
#pragma unroll 4
    for (int k = 0; k < sEnd; k++) {
        uint2 s = stash[k * NT + threadIdx.x];
        hm = bf16x2_max(hm, bf16x2_max(s.x, s.y));
    }
    const float tm = fmaxf(__uint_as_float(hm << 16), __uint_as_float(hm & 0xffff0000u));
    float m = tm;
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    if (lane == 0) smax[warp] = m;
    __syncthreads();
    m = lane < WARPS ? smax[lane] : NEG_INF;
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    // where this thread holds the maximum, its first index; and Σ exp(x − max) (padding is −inf: e = 0)
    int a = 0x7fffffff;
    if (tm == m) {
#pragma unroll
        for (int k = 0; k < R4; k++) a = ce_first4(r[k], 4 * (k * NT + threadIdx.x), m, a);
        for (int k = 0; k < sEnd; k++) a = ce_first4(stash[k * NT + threadIdx.x], 4 * ((R4 + k) * NT + threadIdx.x), m, a);
    }
    float sum = 0.0f;
#pragma unroll
    for (int k = 0; k < R4; k++) sum += ce_exp_sum4(r[k], m);
#pragma unroll 4
    for (int k = 0; k < sEnd; k++) sum += ce_exp_sum4(stash[k * NT + threadIdx.x], m);
    for (int o = 16; o > 0; o >>= 1) {
        sum += __shfl_xor_sync(0xffffffffu, sum, o);
        a = min(a, __shfl_xor_sync(0xffffffffu, a, o));
    }
    if (lane == 0) { ssum[warp] = sum; sarg[warp] = a; }
    __syncthreads();
    sum = lane < WARPS ? ssum[lane] : 0.0f;
    a = lane < WARPS ? sarg[lane] : 0x7fffffff;
    for (int o = 16; o > 0; o >>= 1) {
        sum += __shfl_xor_sync(0xffffffffu, sum, o);
        a = min(a, __shfl_xor_sync(0xffffffffu, a, o));
    }
    if (threadIdx.x == 0) {
        if (!ok) report_bad_id(err, row, target);
        if (losses != nullptr) losses[row] = ok ? m + logf(sum) - xt : nan_();
    }
    // the gradient
    const float scale = gradScale / sum;
    const float wrap = L2WRAP * m * gradScale;
#pragma unroll
    for (int k = 0; k < R4; k++) {
        int q = k * NT + threadIdx.x;
        if (q < v4) d[q] = ce_grad4(r[k], 4 * q, m, scale, target, a, gradScale, wrap, ok);
    }
#pragma unroll 4
    for (int k = 0; k < sEnd; k++) {
        int q = (R4 + k) * NT + threadIdx.x;
        d[q] = ce_grad4(stash[k * NT + threadIdx.x], 4 * q, m, scale, target, a, gradScale, wrap, ok);
    }
    // no barrier at the end: as in ce_rows (smax is rewritten only past the next barrier every warp reaches after
    // reading it, ssum and sarg only past the next row's first barrier); the stash slots are private
}

template <int NT, int R4, int S4>
__device__ __forceinline__ void ce_rows_packed(const unsigned short* logits, const int* __restrict__ targets,
                                               unsigned short* dLogits, int rows, int vocab, float gradScale, int* err,
                                               float* __restrict__ losses) {
    uint2* stash = reinterpret_cast<uint2*>(ce_stash);
    const int v4 = vocab >> 2;
    const int sEnd = min(S4, max(0, (v4 - (int)threadIdx.x + NT - 1) / NT - R4));
    uint2 r[R4];
    for (int row = blockIdx.x; row < rows; row += gridDim.x) {
        ce_packed_fetch<NT, R4, S4>(logits, row, vocab, sEnd, r, stash);
        copy_wait();
        ce_packed_row<NT, R4, S4>(logits, targets, dLogits, row, vocab, sEnd, gradScale, err, losses, r, stash);
    }
}

#define CE_ROWS_PACKED(NT, R4, S4)                                                                                     \
    extern "C" __global__ void __launch_bounds__(NT, 2) cross_entropy_rows_##NT##_##R4##_##S4##_packed_bf16_logits(    \
            const unsigned short* logits, const int* __restrict__ targets, unsigned short* dLogits, int rows,          \
            int vocab, float gradScale, int* err, float* __restrict__ losses) {                                        \
        ce_rows_packed<NT, R4, S4>(logits, targets, dLogits, rows, vocab, gradScale, err, losses);                     \
    }

// 65536 logits each, two blocks per SM. Measured on an H100 at 2048 × 65536 (kernels/NOTES.md): 512_8_24 (32 KiB in
// registers + 96 KiB shared a block, 64 registers, no spill; the default for bf16 logits) 0.257 ms, 0.240 per call in
// the step's profile; 256_16_48 (the same split, 8 warps a block) 0.253, 0.245 in the step. 512_4_28 (16 + 112 KiB)
// 0.261 and one block per SM with two row buffers, the next row's loads issued before this row's passes (1024_4_12,
// 512_8_24: 0.283, 0.286) were slower and are no longer compiled; 1024 threads: two blocks are over sm_86/89's 1536
// threads per SM, and 32 registers spilled.
CE_ROWS_PACKED(512, 8, 24)
CE_ROWS_PACKED(256, 16, 48)
