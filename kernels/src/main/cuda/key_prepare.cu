// The time mix's key preparation (§6.4): κ = k⊙k_k; κ̂ = κ_h / max(‖κ_h‖₂, 1e-12) per head (from the ORIGINAL k);
// k̃ = k⊙(1 + (α − 1)⊙k_a); and the WKV inputs a = −κ̂, b = κ̂⊙α. α = σ(alphaPre) is taken here, in fp32, from the α
// LoRA's pre-activation (the LoRA writes a0 + (x_a·a1)·a2 with no pass of its own for the sigmoid); the backward
// returns the gradient of that pre-activation. Forward: eight lanes per (row, head); backward: one warp per head.
#include "common.cuh"

#define L2_EPS 1e-12f

// k and alphaPre fp32 or (the _bf16 entry points) bf16, T; κ̃, a and b fp32 or (_bf16_out: the WKV7 kernel's bf16 inputs)
// bf16, TO. Eight lanes per (row, head), eight adjacent channels a lane (16-byte accesses of bf16; 2-byte ones left the
// kernel at ~60% of HBM bandwidth). grid: ⌈rows·H / 32⌉ blocks of 256 threads.
template <typename T, typename TO = float>
__device__ __forceinline__ void key_prepare_fwd(const T* __restrict__ k, const T* __restrict__ alphaPre,
                                                const float* __restrict__ kK, const float* __restrict__ kA,
                                                TO* __restrict__ kTilde, TO* __restrict__ a,
                                                TO* __restrict__ b, i64 units, int C) {
    i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    i64 unit = t >> 3;
    if (unit >= units) return;  // whole groups of 8 lanes leave together
    int heads = C / GOSLING_HEAD;
    int c = (int)(unit % heads) * GOSLING_HEAD + (int)(t & 7) * 8;
    i64 i = unit * GOSLING_HEAD + (int)(t & 7) * 8;
    bool vec = aligned16(k) && aligned16(alphaPre) && aligned16(kK) && aligned16(kA) && aligned16(kTilde) &&
               aligned16(a) && aligned16(b);
    float kv[8], al[8], kk[8], ka[8], q[8];
    ld8(k, i, kv, vec);
    ld8(alphaPre, i, al, vec);
    ld8(kK, c, kk, vec);
    ld8(kA, c, ka, vec);
    float sq = 0.0f;
#pragma unroll
    for (int j = 0; j < 8; j++) {
        q[j] = kv[j] * kk[j];
        sq += q[j] * q[j];
    }
    float inv = 1.0f / fmaxf(sqrtf(group8_sum(sq)), L2_EPS);
    float kt[8], av[8], bv[8];
#pragma unroll
    for (int j = 0; j < 8; j++) {
        float s = sigmoidf_(al[j]);
        float kappaHat = q[j] * inv;
        kt[j] = kv[j] * (1.0f + (s - 1.0f) * ka[j]);
        av[j] = -kappaHat;
        bv[j] = kappaHat * s;
    }
    put8(kTilde, i, kt, vec);
    put8(a, i, av, vec);
    put8(b, i, bv, vec);
}

// dκ̂ = −dA + dB⊙α; dκ = (dκ̂ − κ̂(κ̂·dκ̂))/‖κ‖ (dκ̂/1e-12 where the norm is clamped); dk += dK̃⊙(1 + (α−1)⊙k_a) + dκ⊙k_k;
// dAlphaPre += (dB⊙κ̂ + dK̃⊙k⊙k_a)⊙α(1 − α) (α = σ(alphaPre)); and the parameter partials Σ dκ⊙k (k_k) and
// Σ dK̃⊙k⊙(α−1) (k_a) over the slice's rows. accumulate 0: dk and dAlphaPre are written, not read. grid (H, slices),
// block 32: one warp walks its head through the slice's rows in order.
// TD: dk fp32, or bf16 (written, never added to: only the key projection's GEMMs read it); TA: dAlphaPre likewise
// (bf16: only the α LoRA's GEMMs and its bias gradient's column sums read it).
template <typename T, typename TD, typename TA = float>
__device__ __forceinline__ void key_prepare_bwd(const float* __restrict__ dKTilde, const float* __restrict__ dA,
                                                const float* __restrict__ dB, const T* __restrict__ k,
                                                const T* __restrict__ alphaPre, const float* __restrict__ kK,
                                                const float* __restrict__ kA, TD* __restrict__ dk,
                                                TA* __restrict__ dAlphaPre, float* __restrict__ partialKK,
                                                float* __restrict__ partialKA, int rows, int C, int accumulate) {
    int lane = threadIdx.x;
    int head = blockIdx.x, slices = gridDim.y, slice = blockIdx.y;
    int channel0 = head * GOSLING_HEAD;
    i64 lo, hi;
    slice_rows(rows, slice, slices, lo, hi);
    float kk[2] = {kK[channel0 + lane], kK[channel0 + lane + 32]};
    float ka[2] = {kA[channel0 + lane], kA[channel0 + lane + 32]};
    float sKK[2] = {0.0f, 0.0f}, sKA[2] = {0.0f, 0.0f};
    // Software prefetch: the next row's five inputs are loaded before this row's two warp_sums, so one warp keeps a
    // row of loads in flight while it reduces (a warp walking its rows serially was latency-bound, well below
    // bandwidth). The arithmetic per row is unchanged. The last row prefetches itself again (stays in bounds).
    float nk[2], nal[2], nda[2], ndb[2], ndkt[2];
    auto load = [&](i64 row) {
        i64 base = row * C + channel0;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            i64 i = base + lane + 32 * h;
            nk[h] = ld(k, i);
            nal[h] = ld(alphaPre, i);
            nda[h] = dA[i];
            ndb[h] = dB[i];
            ndkt[h] = dKTilde[i];
        }
    };
    if (lo < hi) load(lo);
    for (i64 row = lo; row < hi; row++) {
        i64 base = row * C + channel0;
        float kv[2] = {nk[0], nk[1]}, al[2] = {sigmoidf_(nal[0]), sigmoidf_(nal[1])}, dav[2] = {nda[0], nda[1]};
        float dbv[2] = {ndb[0], ndb[1]}, dktv[2] = {ndkt[0], ndkt[1]};
        load(row + 1 < hi ? row + 1 : row);
        float q[2], dq[2];
#pragma unroll
        for (int h = 0; h < 2; h++) {
            q[h] = kv[h] * kk[h];
            dq[h] = -dav[h] + dbv[h] * al[h];
        }
        float norm = sqrtf(warp_sum(q[0] * q[0] + q[1] * q[1]));
        bool clamped = !(norm > L2_EPS);
        float inv = 1.0f / (clamped ? L2_EPS : norm);
        float kh[2] = {q[0] * inv, q[1] * inv};
        float dot = warp_sum(kh[0] * dq[0] + kh[1] * dq[1]);
        if (clamped) dot = 0.0f;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            i64 i = base + lane + 32 * h;
            float dkt = dktv[h];
            float dKappa = (dq[h] - kh[h] * dot) * inv;
            float gk = dkt * (1.0f + (al[h] - 1.0f) * ka[h]) + dKappa * kk[h];
            float ga = (dbv[h] * kh[h] + dkt * kv[h] * ka[h]) * (al[h] * (1.0f - al[h]));
            if constexpr (sizeof(TD) == 2) dk[i] = bf16_rn(gk);
            else dk[i] = accumulate ? dk[i] + gk : gk;
            if constexpr (sizeof(TA) == 2) dAlphaPre[i] = bf16_rn(ga);
            else dAlphaPre[i] = accumulate ? dAlphaPre[i] + ga : ga;
            sKK[h] += dKappa * kv[h];
            sKA[h] += dkt * kv[h] * (al[h] - 1.0f);
        }
    }
#pragma unroll
    for (int h = 0; h < 2; h++) {
        partialKK[(i64)slice * C + channel0 + lane + 32 * h] = sKK[h];
        partialKA[(i64)slice * C + channel0 + lane + 32 * h] = sKA[h];
    }
}

extern "C" __global__ void key_prepare_forward(const float* k, const float* alphaPre, const float* kK,
                                               const float* kA, float* kTilde, float* a, float* b, i64 units, int C) {
    key_prepare_fwd<float>(k, alphaPre, kK, kA, kTilde, a, b, units, C);
}

extern "C" __global__ void key_prepare_forward_bf16(const unsigned short* k, const unsigned short* alphaPre,
                                                    const float* kK, const float* kA, float* kTilde, float* a,
                                                    float* b, i64 units, int C) {
    key_prepare_fwd<unsigned short>(k, alphaPre, kK, kA, kTilde, a, b, units, C);
}

// κ̃, a and b written in bf16 too (read only by the WKV7 kernel and the bonus, in bf16).
extern "C" __global__ void key_prepare_forward_bf16_out(const unsigned short* k, const unsigned short* alphaPre,
                                                        const float* kK, const float* kA, unsigned short* kTilde,
                                                        unsigned short* a, unsigned short* b, i64 units, int C) {
    key_prepare_fwd<unsigned short, unsigned short>(k, alphaPre, kK, kA, kTilde, a, b, units, C);
}

extern "C" __global__ void key_prepare_backward(const float* dKTilde, const float* dA, const float* dB, const float* k,
                                                const float* alphaPre, const float* kK, const float* kA, float* dk,
                                                float* dAlphaPre, float* partialKK, float* partialKA, int rows, int C,
                                                int accumulate) {
    key_prepare_bwd<float, float>(dKTilde, dA, dB, k, alphaPre, kK, kA, dk, dAlphaPre, partialKK, partialKA, rows, C,
                                  accumulate);
}

extern "C" __global__ void key_prepare_backward_bf16(const float* dKTilde, const float* dA, const float* dB,
                                                     const unsigned short* k, const unsigned short* alphaPre,
                                                     const float* kK, const float* kA, float* dk, float* dAlphaPre,
                                                     float* partialKK, float* partialKA, int rows, int C,
                                                     int accumulate) {
    key_prepare_bwd<unsigned short, float>(dKTilde, dA, dB, k, alphaPre, kK, kA, dk, dAlphaPre, partialKK, partialKA,
                                           rows, C, accumulate);
}

extern "C" __global__ void key_prepare_backward_bf16_dk(const float* dKTilde, const float* dA, const float* dB,
                                                        const unsigned short* k, const unsigned short* alphaPre,
                                                        const float* kK, const float* kA, unsigned short* dk,
                                                        float* dAlphaPre, float* partialKK, float* partialKA, int rows,
                                                        int C, int accumulate) {
    key_prepare_bwd<unsigned short, unsigned short>(dKTilde, dA, dB, k, alphaPre, kK, kA, dk, dAlphaPre, partialKK,
                                                    partialKA, rows, C, accumulate);
}

// dAlphaPre in bf16 too.
extern "C" __global__ void key_prepare_backward_bf16_dk_da(const float* dKTilde, const float* dA, const float* dB,
                                                           const unsigned short* k, const unsigned short* alphaPre,
                                                           const float* kK, const float* kA, unsigned short* dk,
                                                           unsigned short* dAlphaPre, float* partialKK,
                                                           float* partialKA, int rows, int C, int accumulate) {
    key_prepare_bwd<unsigned short, unsigned short, unsigned short>(dKTilde, dA, dB, k, alphaPre, kK, kA, dk,
                                                                    dAlphaPre, partialKK, partialKA, rows, C,
                                                                    accumulate);
}
