// LayerNorm (one group of C per row, eps 1e-5) and the per-head GroupNorm ln_x (C/64 groups of 64, eps 64e-5): one
// implementation with a group size, as the CPU backend. Biased variance, affine weight and bias per channel; mean
// and rstd are saved per (row, group). One warp per (row, group); blockDim.x = 256 (8 units per block).
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

// dx += rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ⊙x̂)) with ĝ = dOut⊙weight.
extern "C" __global__ void norm_backward_x(const float* __restrict__ dOut, const float* __restrict__ x,
                                           const float* __restrict__ weight, const float* __restrict__ mean,
                                           const float* __restrict__ rstd, float* __restrict__ dx,
                                           i64 units, int group, int C) {
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
        dx[base + i] += rs * (g - meanG - xhat * meanGX);
    }
}

// dWeight and dBias partials over a slice of rows: partialW[slice·C + c] = Σ dOut⊙x̂, partialB = Σ dOut.
// grid (⌈C/32⌉, slices), block (32, 8); column_finish adds the slices.
extern "C" __global__ void norm_backward_params(const float* __restrict__ dOut, const float* __restrict__ x,
                                                const float* __restrict__ mean, const float* __restrict__ rstd,
                                                float* __restrict__ partialW, float* __restrict__ partialB,
                                                int rows, int group, int C) {
    __shared__ float accW[8][33];
    __shared__ float accB[8][33];
    int c = blockIdx.x * 32 + threadIdx.x;
    int slices = gridDim.y, slice = blockIdx.y;
    int groups = C / group;
    i64 per = ((i64)rows + slices - 1) / slices;
    i64 lo = per * slice, hi = lo + per < rows ? lo + per : rows;
    float sw = 0.0f, sb = 0.0f;
    if (c < C)
        for (i64 r = lo + threadIdx.y; r < hi; r += 8) {
            i64 unit = r * groups + c / group;
            float dy = dOut[r * C + c];
            sw += dy * (x[r * C + c] - mean[unit]) * rstd[unit];
            sb += dy;
        }
    accW[threadIdx.y][threadIdx.x] = sw;
    accB[threadIdx.y][threadIdx.x] = sb;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        float tw = 0.0f, tb = 0.0f;
        for (int k = 0; k < 8; k++) {
            tw += accW[k][threadIdx.x];
            tb += accB[k][threadIdx.x];
        }
        partialW[(i64)slice * C + c] = tw;
        partialB[(i64)slice * C + c] = tb;
    }
}
