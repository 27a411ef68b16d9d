// LayerNorm (one group of C per row, eps 1e-5) and the per-head GroupNorm ln_x (C/64 groups of 64, eps 64e-5): one
// implementation with a group size, as the CPU backend. Biased variance, affine weight and bias per channel; mean
// and rstd are saved per (row, group). One warp per (row, group); blockDim.x = 256 (8 units per block).
//
// Two forms of each kernel: the plain one (any group, any alignment) reads its row from global memory on every pass;
// the _v4_<J> one (group % 4 == 0, group ≤ 128·J, 16-byte aligned rows) loads the row once, as float4, into registers
// (J float4 per lane) and makes every pass from there — one read of x (and dOut) instead of three.
#include "common.cuh"

extern "C" __global__ void norm_forward(const float* __restrict__ x, const float* __restrict__ weight,
                                        const float* __restrict__ bias, float* __restrict__ out,
                                        float* __restrict__ mean, float* __restrict__ rstd,
                                        i64 units, int group, int C, float eps) {
    int lane = threadIdx.x & 31;
    i64 unit = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (unit >= units) return;
    int groups = C / group;
    const float* xs = x + unit * group;
    int channel0 = (int)(unit % groups) * group;
    float sum = 0.0f;
    for (int i = lane; i < group; i += 32) sum += xs[i];
    float mu = warp_sum(sum) / group;
    float squares = 0.0f;
    for (int i = lane; i < group; i += 32) {
        float d = xs[i] - mu;
        squares += d * d;
    }
    float rs = 1.0f / sqrtf(warp_sum(squares) / group + eps);
    if (lane == 0) {
        mean[unit] = mu;
        rstd[unit] = rs;
    }
    float* o = out + unit * group;
    for (int i = lane; i < group; i += 32) o[i] = (xs[i] - mu) * rs * weight[channel0 + i] + bias[channel0 + i];
}

// dx += rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ⊙x̂)) with ĝ = dOut⊙weight; accumulate 0: dx is written, not read. dxBf16,
// when not null, gets bf16(dx) too (the new dx, for the GEMMs that read it next).
extern "C" __global__ void norm_backward_x(const float* __restrict__ dOut, const float* __restrict__ x,
                                           const float* __restrict__ weight, const float* __restrict__ mean,
                                           const float* __restrict__ rstd, float* __restrict__ dx,
                                           unsigned short* __restrict__ dxBf16, i64 units, int group, int C,
                                           int accumulate) {
    int lane = threadIdx.x & 31;
    i64 unit = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (unit >= units) return;
    int groups = C / group;
    i64 base = unit * group;
    int channel0 = (int)(unit % groups) * group;
    float mu = mean[unit], rs = rstd[unit];
    float sumG = 0.0f, sumGX = 0.0f;
    for (int i = lane; i < group; i += 32) {
        float g = dOut[base + i] * weight[channel0 + i];
        sumG += g;
        sumGX += g * (x[base + i] - mu) * rs;
    }
    float meanG = warp_sum(sumG) / group;
    float meanGX = warp_sum(sumGX) / group;
    for (int i = lane; i < group; i += 32) {
        float g = dOut[base + i] * weight[channel0 + i];
        float xhat = (x[base + i] - mu) * rs;
        float v = rs * (g - meanG - xhat * meanGX);
        if (accumulate) v += dx[base + i];
        dx[base + i] = v;
        if (dxBf16) dxBf16[base + i] = bf16_rn(v);
    }
}

// ---------------------------------------------------------------- register-resident rows, float4

// Lane l holds the float4s l, l + 32, … (J of them, those past the group zero and not stored).
template <int J>
__device__ __forceinline__ void load_row(const float* __restrict__ p, int group, float4 (&v)[J]) {
    int lane = threadIdx.x & 31;
#pragma unroll
    for (int j = 0; j < J; j++) {
        int c = (lane + 32 * j) * 4;
        v[j] = c < group ? *reinterpret_cast<const float4*>(p + c) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
}

template <int J>
__device__ __forceinline__ void norm_forward_v4(const float* __restrict__ x, const float* __restrict__ weight,
                                                const float* __restrict__ bias, float* __restrict__ out,
                                                float* __restrict__ mean, float* __restrict__ rstd, i64 units,
                                                int group, int C, float eps) {
    int lane = threadIdx.x & 31;
    i64 unit = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (unit >= units) return;
    int channel0 = (int)(unit % (C / group)) * group;
    float4 v[J];
    load_row<J>(x + unit * group, group, v);
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < J; j++) sum += (v[j].x + v[j].y) + (v[j].z + v[j].w);
    float mu = warp_sum(sum) / group;
    float squares = 0.0f;
#pragma unroll
    for (int j = 0; j < J; j++) {
        if ((lane + 32 * j) * 4 < group) {
            float a = v[j].x - mu, b = v[j].y - mu, c = v[j].z - mu, d = v[j].w - mu;
            squares += (a * a + b * b) + (c * c + d * d);
        }
    }
    float rs = 1.0f / sqrtf(warp_sum(squares) / group + eps);
    if (lane == 0) {
        mean[unit] = mu;
        rstd[unit] = rs;
    }
    float* o = out + unit * group;
#pragma unroll
    for (int j = 0; j < J; j++) {
        int c = (lane + 32 * j) * 4;
        if (c < group) {
            float4 w = *reinterpret_cast<const float4*>(weight + channel0 + c);
            float4 b = *reinterpret_cast<const float4*>(bias + channel0 + c);
            float4 y;
            y.x = (v[j].x - mu) * rs * w.x + b.x;
            y.y = (v[j].y - mu) * rs * w.y + b.y;
            y.z = (v[j].z - mu) * rs * w.z + b.z;
            y.w = (v[j].w - mu) * rs * w.w + b.w;
            *reinterpret_cast<float4*>(o + c) = y;
        }
    }
}

template <int J>
__device__ __forceinline__ void norm_backward_x_v4(const float* __restrict__ dOut, const float* __restrict__ x,
                                                   const float* __restrict__ weight, const float* __restrict__ mean,
                                                   const float* __restrict__ rstd, float* __restrict__ dx,
                                                   unsigned short* __restrict__ dxBf16, i64 units, int group, int C,
                                                   int accumulate) {
    int lane = threadIdx.x & 31;
    i64 unit = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (unit >= units) return;
    int channel0 = (int)(unit % (C / group)) * group;
    i64 base = unit * group;
    float mu = mean[unit], rs = rstd[unit];
    float4 g[J], xh[J];
    load_row<J>(dOut + base, group, g);
    load_row<J>(x + base, group, xh);
    float sumG = 0.0f, sumGX = 0.0f;
#pragma unroll
    for (int j = 0; j < J; j++) {
        int c = (lane + 32 * j) * 4;
        if (c < group) {
            float4 w = *reinterpret_cast<const float4*>(weight + channel0 + c);
            g[j].x *= w.x; g[j].y *= w.y; g[j].z *= w.z; g[j].w *= w.w;
            xh[j].x = (xh[j].x - mu) * rs; xh[j].y = (xh[j].y - mu) * rs;
            xh[j].z = (xh[j].z - mu) * rs; xh[j].w = (xh[j].w - mu) * rs;
            sumG += (g[j].x + g[j].y) + (g[j].z + g[j].w);
            sumGX += (g[j].x * xh[j].x + g[j].y * xh[j].y) + (g[j].z * xh[j].z + g[j].w * xh[j].w);
        }
    }
    float meanG = warp_sum(sumG) / group;
    float meanGX = warp_sum(sumGX) / group;
#pragma unroll
    for (int j = 0; j < J; j++) {
        int c = (lane + 32 * j) * 4;
        if (c < group) {
            float4 d;
            d.x = rs * (g[j].x - meanG - xh[j].x * meanGX);
            d.y = rs * (g[j].y - meanG - xh[j].y * meanGX);
            d.z = rs * (g[j].z - meanG - xh[j].z * meanGX);
            d.w = rs * (g[j].w - meanG - xh[j].w * meanGX);
            float4* p = reinterpret_cast<float4*>(dx + base + c);
            if (accumulate) {
                float4 o = *p;
                d.x += o.x; d.y += o.y; d.z += o.z; d.w += o.w;
            }
            *p = d;
            if (dxBf16) {
                ushort4 h;
                h.x = bf16_rn(d.x); h.y = bf16_rn(d.y); h.z = bf16_rn(d.z); h.w = bf16_rn(d.w);
                *reinterpret_cast<ushort4*>(dxBf16 + base + c) = h;
            }
        }
    }
}

// J = 1, 2, 4, 8, 16: groups of up to 128, 256, 512, 1024, 2048 channels (32 would spill in the backward) (the backend picks the smallest).
#define NORM_V4(J)                                                                                                   \
    extern "C" __global__ void norm_forward_v4_##J(const float* __restrict__ x, const float* __restrict__ weight,   \
                                                   const float* __restrict__ bias, float* __restrict__ out,         \
                                                   float* __restrict__ mean, float* __restrict__ rstd, i64 units,   \
                                                   int group, int C, float eps) {                                   \
        norm_forward_v4<J>(x, weight, bias, out, mean, rstd, units, group, C, eps);                                  \
    }                                                                                                                \
    extern "C" __global__ void norm_backward_x_v4_##J(                                                               \
        const float* __restrict__ dOut, const float* __restrict__ x, const float* __restrict__ weight,               \
        const float* __restrict__ mean, const float* __restrict__ rstd, float* __restrict__ dx,                      \
        unsigned short* __restrict__ dxBf16, i64 units, int group, int C, int accumulate) {                          \
        norm_backward_x_v4<J>(dOut, x, weight, mean, rstd, dx, dxBf16, units, group, C, accumulate);                 \
    }
NORM_V4(1)
NORM_V4(2)
NORM_V4(4)
NORM_V4(8)
NORM_V4(16)


// dWeight and dBias partials over a slice of rows: partialW[slice·C + c] = Σ dOut⊙x̂, partialB = Σ dOut.
// grid (⌈C/32⌉, slices), block (32, 8); column_finish adds the slices.
extern "C" __global__ void norm_backward_params(const float* __restrict__ dOut, const float* __restrict__ x,
                                                const float* __restrict__ mean, const float* __restrict__ rstd,
                                                float* __restrict__ partialW, float* __restrict__ partialB,
                                                int rows, int group, int C) {
    int c = blockIdx.x * 32 + threadIdx.x;
    int slices = gridDim.y, slice = blockIdx.y;
    int groups = C / group;
    i64 lo, hi;
    slice_rows(rows, slice, slices, lo, hi);
    float sw = 0.0f, sb = 0.0f;
    if (c < C)
        for (i64 r = lo + threadIdx.y; r < hi; r += 8) {
            i64 unit = r * groups + c / group;
            float dy = dOut[r * C + c];
            sw += dy * (x[r * C + c] - mean[unit]) * rstd[unit];
            sb += dy;
        }
    write_column_partial(sw, partialW, c, C);
    write_column_partial(sb, partialB, c, C);
}

// ---------------------------------------------------------------- LayerNorm backward with the parameter gradients

// One pass for dx and the dWeight/dBias partials of a LayerNorm (group == C, C % 4 == 0, 16-byte aligned rows,
// C ≤ 128·J·W). Block b (256 threads, 8 warps) owns the row slice [b·per, min((b + 1)·per, rows)), per =
// ⌈rows / gridDim.x⌉. Its warps form 8/W row units of W consecutive warps; unit u walks the rows lo + u, lo + u + 8/W,
// …; thread t (0 ≤ t < 32·W) of a unit holds the float4s t, t + 32·W, … (J of them) of the row in registers, as
// norm_backward_x_v4, and adds dOut⊙x̂ and dOut into its unit's column accumulators in shared memory (only it touches
// those columns, so the loop needs no barrier). The W warps of a unit meet through shared memory (a named barrier per
// unit, double-buffered by row parity) to sum ĝ and ĝ⊙x̂ in warp order. At the end the units' accumulators are added in
// unit order and partialW/partialB[b·C + c] written; column_finish adds the slices. No atomics: deterministic.
// Dynamic shared memory: (8/W)·2·C floats.
template <int J, int W>
__device__ __forceinline__ void norm_backward_fused(const float* __restrict__ dOut, const float* __restrict__ x,
                                                    const float* __restrict__ weight, const float* __restrict__ mean,
                                                    const float* __restrict__ rstd, float* __restrict__ dx,
                                                    unsigned short* __restrict__ dxBf16,
                                                    float* __restrict__ partialW, float* __restrict__ partialB,
                                                    int rows, int C, int accumulate) {
    constexpr int UNITS = 8 / W;
    extern __shared__ float4 acc4[];
    __shared__ float red[2][8][2];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int unit = warp / W;
    int t = (warp % W) * 32 + lane;
    int C4 = C >> 2;
    float4* accW = acc4 + (i64)unit * 2 * C4;
    float4* accB = accW + C4;
    const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
    for (int j = 0; j < J; j++) {
        int f = t + 32 * W * j;
        if (f < C4) {
            accW[f] = zero;
            accB[f] = zero;
        }
    }
    int slices = gridDim.x, slice = blockIdx.x;
    i64 lo, hi;
    slice_rows(rows, slice, slices, lo, hi);
    const float4* w4 = reinterpret_cast<const float4*>(weight);
    int parity = 0;
    for (i64 r = lo + unit; r < hi; r += UNITS) {
        const float4* d4 = reinterpret_cast<const float4*>(dOut + r * C);
        const float4* x4 = reinterpret_cast<const float4*>(x + r * C);
        float mu = mean[r], rs = rstd[r];
        float4 g[J], xh[J];
#pragma unroll
        for (int j = 0; j < J; j++) {
            int f = t + 32 * W * j;
            g[j] = f < C4 ? d4[f] : zero;
            xh[j] = f < C4 ? x4[f] : zero;
        }
        float sumG = 0.0f, sumGX = 0.0f;
#pragma unroll
        for (int j = 0; j < J; j++) {
            int f = t + 32 * W * j;
            if (f < C4) {
                xh[j].x = (xh[j].x - mu) * rs; xh[j].y = (xh[j].y - mu) * rs;
                xh[j].z = (xh[j].z - mu) * rs; xh[j].w = (xh[j].w - mu) * rs;
                float4 aw = accW[f], ab = accB[f];
                aw.x += g[j].x * xh[j].x; aw.y += g[j].y * xh[j].y; aw.z += g[j].z * xh[j].z; aw.w += g[j].w * xh[j].w;
                ab.x += g[j].x; ab.y += g[j].y; ab.z += g[j].z; ab.w += g[j].w;
                accW[f] = aw;
                accB[f] = ab;
                float4 w = w4[f];
                g[j].x *= w.x; g[j].y *= w.y; g[j].z *= w.z; g[j].w *= w.w;
                sumG += (g[j].x + g[j].y) + (g[j].z + g[j].w);
                sumGX += (g[j].x * xh[j].x + g[j].y * xh[j].y) + (g[j].z * xh[j].z + g[j].w * xh[j].w);
            }
        }
        sumG = warp_sum(sumG);
        sumGX = warp_sum(sumGX);
        if (W > 1) {
            if (lane == 0) {
                red[parity][warp][0] = sumG;
                red[parity][warp][1] = sumGX;
            }
            asm volatile("bar.sync %0, %1;" ::"r"(1 + unit), "r"(32 * W) : "memory");
            sumG = 0.0f;
            sumGX = 0.0f;
#pragma unroll
            for (int k = 0; k < W; k++) {
                sumG += red[parity][unit * W + k][0];
                sumGX += red[parity][unit * W + k][1];
            }
            parity ^= 1;
        }
        float meanG = sumG / C;
        float meanGX = sumGX / C;
        float4* o4 = reinterpret_cast<float4*>(dx + r * C);
#pragma unroll
        for (int j = 0; j < J; j++) {
            int f = t + 32 * W * j;
            if (f < C4) {
                float4 d;
                d.x = rs * (g[j].x - meanG - xh[j].x * meanGX);
                d.y = rs * (g[j].y - meanG - xh[j].y * meanGX);
                d.z = rs * (g[j].z - meanG - xh[j].z * meanGX);
                d.w = rs * (g[j].w - meanG - xh[j].w * meanGX);
                if (accumulate) {
                    float4 o = o4[f];
                    d.x += o.x; d.y += o.y; d.z += o.z; d.w += o.w;
                }
                o4[f] = d;
                if (dxBf16) {
                    ushort4 h;
                    h.x = bf16_rn(d.x); h.y = bf16_rn(d.y); h.z = bf16_rn(d.z); h.w = bf16_rn(d.w);
                    reinterpret_cast<ushort4*>(dxBf16 + r * C)[f] = h;
                }
            }
        }
    }
    __syncthreads();
    float4* pw = reinterpret_cast<float4*>(partialW + (i64)slice * C);
    float4* pb = reinterpret_cast<float4*>(partialB + (i64)slice * C);
    for (int f = threadIdx.x; f < C4; f += blockDim.x) {
        float4 sw = acc4[f], sb = acc4[C4 + f];
#pragma unroll
        for (int u = 1; u < UNITS; u++) {
            float4 aw = acc4[(i64)u * 2 * C4 + f], ab = acc4[(i64)u * 2 * C4 + C4 + f];
            sw.x += aw.x; sw.y += aw.y; sw.z += aw.z; sw.w += aw.w;
            sb.x += ab.x; sb.y += ab.y; sb.z += ab.z; sb.w += ab.w;
        }
        pw[f] = sw;
        pb[f] = sb;
    }
}

// <J, W, MINB>: C ≤ 128·J (one warp a row) for J = 1, 2, 4, 6, 8; C ≤ 2048 and ≤ 4096 with two and four warps a row
// (J = 8). MINB: blocks per SM the registers must allow (3 spills nothing up to J = 6; J = 8 spills under 3).
#define NORM_FUSED(J, W, MINB)                                                                                           \
    extern "C" __global__ void __launch_bounds__(256, MINB) norm_backward_fused_##J##_##W(                           \
        const float* __restrict__ dOut, const float* __restrict__ x, const float* __restrict__ weight,               \
        const float* __restrict__ mean, const float* __restrict__ rstd, float* __restrict__ dx,                      \
        unsigned short* __restrict__ dxBf16, float* __restrict__ partialW, float* __restrict__ partialB, int rows,   \
        int C, int accumulate) {                                                                                     \
        norm_backward_fused<J, W>(dOut, x, weight, mean, rstd, dx, dxBf16, partialW, partialB, rows, C, accumulate); \
    }
NORM_FUSED(1, 1, 3)
NORM_FUSED(2, 1, 3)
NORM_FUSED(4, 1, 3)
NORM_FUSED(6, 1, 3)
NORM_FUSED(8, 1, 2)
NORM_FUSED(8, 2, 2)
NORM_FUSED(8, 4, 2)
