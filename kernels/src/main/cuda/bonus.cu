// The bonus term after ln_x (§6.4): out_h = x_h + (Σ_{i∈h} r_i·k̃_i·r_k[h,i])·v_h. One warp per (row, head).
#include "common.cuh"

// out may alias x. grid: ⌈rows·H / 8⌉ blocks of 256 threads.
extern "C" __global__ void bonus_forward(const float* x, const float* __restrict__ r, const float* __restrict__ k,
                                         const float* __restrict__ v, const float* __restrict__ rK, float* out,
                                         i64 units, int C) {
    int lane = threadIdx.x & 31;
    i64 unit = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (unit >= units) return;
    int heads = C / GOSLING_HEAD;
    i64 base = unit * GOSLING_HEAD;
    int channel0 = (int)(unit % heads) * GOSLING_HEAD;
    float s = r[base + lane] * k[base + lane] * rK[channel0 + lane]
            + r[base + lane + 32] * k[base + lane + 32] * rK[channel0 + lane + 32];
    s = warp_sum(s);
    float o0 = x[base + lane] + s * v[base + lane];
    float o1 = x[base + lane + 32] + s * v[base + lane + 32];
    out[base + lane] = o0;
    out[base + lane + 32] = o1;
}

// With s = Σ r⊙k⊙r_k and ds = Σ dOut⊙v over the head: dx += dOut (dx may be null); dv += s·dOut; dr += ds·k⊙r_k;
// dk += ds·r⊙r_k; and the partial Σ_rows ds·r⊙k for dRK. accumulate 0: dr, dk and dv are written, not read.
// grid (H, slices), block 32.
extern "C" __global__ void bonus_backward(const float* __restrict__ dOut, const float* __restrict__ r,
                                          const float* __restrict__ k, const float* __restrict__ v,
                                          const float* __restrict__ rK, float* __restrict__ dx, float* __restrict__ dr,
                                          float* __restrict__ dk, float* __restrict__ dv,
                                          float* __restrict__ partialRK, int rows, int C, int accumulate) {
    int lane = threadIdx.x;
    int head = blockIdx.x, slices = gridDim.y, slice = blockIdx.y;
    int channel0 = head * GOSLING_HEAD;
    i64 per = ((i64)rows + slices - 1) / slices;
    i64 lo = per * slice, hi = lo + per < rows ? lo + per : rows;
    float rk[2] = {rK[channel0 + lane], rK[channel0 + lane + 32]};
    float acc[2] = {0.0f, 0.0f};
    for (i64 row = lo; row < hi; row++) {
        i64 base = row * C + channel0;
        float g[2], ri[2], ki[2], vi[2];
#pragma unroll
        for (int h = 0; h < 2; h++) {
            i64 i = base + lane + 32 * h;
            g[h] = dOut[i];
            ri[h] = r[i];
            ki[h] = k[i];
            vi[h] = v[i];
        }
        float s = warp_sum(ri[0] * ki[0] * rk[0] + ri[1] * ki[1] * rk[1]);
        float ds = warp_sum(g[0] * vi[0] + g[1] * vi[1]);
#pragma unroll
        for (int h = 0; h < 2; h++) {
            i64 i = base + lane + 32 * h;
            if (dx) dx[i] += g[h];
            float gv = s * g[h], gr = ds * ki[h] * rk[h], gk = ds * ri[h] * rk[h];
            dv[i] = accumulate ? dv[i] + gv : gv;
            dr[i] = accumulate ? dr[i] + gr : gr;
            dk[i] = accumulate ? dk[i] + gk : gk;
            acc[h] += ds * ri[h] * ki[h];
        }
    }
    partialRK[(i64)slice * C + channel0 + lane] = acc[0];
    partialRK[(i64)slice * C + channel0 + lane + 32] = acc[1];
}
