// Token shift with a lerp: out_t = x_t + (x_{t−1} − x_t)⊙mix, x_{−1} = 0 at the start of every sample (§6.4).
#include "common.cuh"

// x, out [B·T, C]; mix [C]. out must not alias x.
extern "C" __global__ void token_shift_forward(const float* __restrict__ x, const float* __restrict__ mix,
                                               float* __restrict__ out, int T, int C, i64 n) {
    GRID_STRIDE(i, n) {
        i64 row = i / C;
        int c = (int)(i - row * C);
        float xc = x[i];
        float prev = (row % T == 0) ? 0.0f : x[i - C];
        out[i] = xc + (prev - xc) * mix[c];
    }
}

// dx_t += dOut_t⊙(1 − mix) + dOut_{t+1}⊙mix.
extern "C" __global__ void token_shift_backward_x(const float* __restrict__ dOut, const float* __restrict__ mix,
                                                  float* __restrict__ dx, int T, int C, i64 n) {
    GRID_STRIDE(i, n) {
        i64 row = i / C;
        int c = (int)(i - row * C);
        float m = mix[c];
        float g = dOut[i] * (1.0f - m);
        if (row % T != T - 1) g += dOut[i + C] * m;
        dx[i] += g;
    }
}

// dMix partials: partial[slice·C + c] = Σ_{rows of the slice} dOut_t⊙(x_{t−1} − x_t). grid (⌈C/32⌉, slices),
// block (32, 8); column_finish adds the slices.
extern "C" __global__ void token_shift_backward_mix(const float* __restrict__ dOut, const float* __restrict__ x,
                                                    float* __restrict__ partial, int rows, int T, int C) {
    __shared__ float acc[8][33];
    int c = blockIdx.x * 32 + threadIdx.x;
    int slices = gridDim.y, slice = blockIdx.y;
    i64 per = ((i64)rows + slices - 1) / slices;
    i64 lo = per * slice, hi = lo + per < rows ? lo + per : rows;
    float s = 0.0f;
    if (c < C)
        for (i64 r = lo + threadIdx.y; r < hi; r += 8) {
            i64 i = r * C + c;
            float xc = x[i];
            float prev = (r % T == 0) ? 0.0f : x[i - C];
            s += dOut[i] * (prev - xc);
        }
    acc[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        float t = 0.0f;
        for (int k = 0; k < 8; k++) t += acc[k][threadIdx.x];
        partial[(i64)slice * C + c] = t;
    }
}
