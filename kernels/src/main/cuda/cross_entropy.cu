// Per-row cross-entropy and its gradient with L2Wrap (§5.5): loss = logsumexp − logit[target]; the gradient is
// gradScale·(softmax − onehot(target)) plus L2WRAP·max·gradScale on the row's argmax (lowest index on ties).
// One block of 1024 threads per row (grid-stride over rows); one pass for max and sum (online softmax), and the
// backward's second pass writes the gradient over the logits when they alias. A target outside [0, vocab) is
// recorded in err and makes the row's loss (or gradient) NaN.
#include "common.cuh"

#define L2WRAP 1e-4f
#define CE_THREADS 1024

struct Stats { float max; float sum; int arg; };

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

__device__ Stats row_stats(const float* x, int vocab) {
    __shared__ float smax[32], ssum[32];
    __shared__ int sarg[32];
    Stats s = {NEG_INF, 0.0f, 0x7fffffff};
    for (int c = threadIdx.x; c < vocab; c += blockDim.x) {
        float xv = x[c];
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
extern "C" __global__ void __launch_bounds__(CE_THREADS) cross_entropy_forward(const float* __restrict__ logits,
        const int* __restrict__ targets, float* __restrict__ losses, int rows, int vocab, int* err) {
    for (int row = blockIdx.x; row < rows; row += gridDim.x) {
        const float* x = logits + (i64)row * vocab;
        Stats s = row_stats(x, vocab);
        if (threadIdx.x == 0) {
            int target = targets[row];
            if (target < 0 || target >= vocab) {
                report_bad_id(err, row, target);
                losses[row] = nan_();
            } else {
                losses[row] = s.max + logf(s.sum) - x[target];
            }
        }
        __syncthreads();
    }
}

// dLogits = gradScale·softmax, − gradScale at the target, + L2WRAP·max·gradScale at the argmax. WRITES (does not
// accumulate); dLogits may alias logits (each element is read by the thread that then writes it). With losses not
// null it also writes the forward's losses, so the training step reads its logits once less. D: float, or unsigned
// short for bf16 gradients (the head's backward GEMMs read them as bf16 operands; then no aliasing).
template <typename D>
__device__ __forceinline__ void ce_backward(const float* logits, const int* __restrict__ targets, D* dLogits, int rows,
                                            int vocab, float gradScale, int* err, float* __restrict__ losses) {
    for (int row = blockIdx.x; row < rows; row += gridDim.x) {
        const float* x = logits + (i64)row * vocab;
        D* d = dLogits + (i64)row * vocab;
        int target = targets[row];
        bool ok = target >= 0 && target < vocab;
        // read before row_stats' barriers: after them the target's logit may already be overwritten (aliasing)
        float xt = losses != nullptr && ok && threadIdx.x == 0 ? x[target] : 0.0f;
        Stats s = row_stats(x, vocab);
        if (!ok && threadIdx.x == 0) report_bad_id(err, row, target);
        if (losses != nullptr && threadIdx.x == 0) losses[row] = ok ? s.max + logf(s.sum) - xt : nan_();
        float scale = gradScale / s.sum;
        float wrap = L2WRAP * s.max * gradScale;
        for (int c = threadIdx.x; c < vocab; c += blockDim.x) {
            float g = expf(x[c] - s.max) * scale;
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
    ce_backward<float>(logits, targets, dLogits, rows, vocab, gradScale, err, losses);
}

extern "C" __global__ void __launch_bounds__(CE_THREADS) cross_entropy_backward_bf16(const float* __restrict__ logits,
        const int* __restrict__ targets, unsigned short* __restrict__ dLogits, int rows, int vocab, float gradScale,
        int* err, float* __restrict__ losses) {
    ce_backward<unsigned short>(logits, targets, dLogits, rows, vocab, gradScale, err, losses);
}
