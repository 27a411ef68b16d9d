// The bonus term after ln_x (§6.4): out_h = x_h + (Σ_{i∈h} r_i·k̃_i·r_k[h,i])·v_h. One warp per (row, head).
#include "common.cuh"

// The time mix's output chain in one pass (eight lanes per (row, head), eight adjacent channels a lane: 16-byte accesses
// of bf16, where one warp of 2-byte ones stayed well below bandwidth): ln_x = GroupNorm(y) (biased variance over the
// head's 64 channels, eps), plus the bonus, written to lnx unless it is null (the fused backward recomputes it); gated =
// ln_x⊙g, fp32 or (G) bf16 for the output projection's GEMMs; g fp32 or (TG) bf16. mean and rstd per (row, head). y,
// r, k and v fp32 or (TI, _bf16_in: the WKV7 kernel's bf16 inputs and output) bf16.
// grid: ⌈rows·H / 32⌉ blocks of 256 threads.
template <typename G, typename TG, typename TI = float>
__device__ __forceinline__ void lnx_bonus_gate(const TI* __restrict__ y, const float* __restrict__ lnW,
                                               const float* __restrict__ lnB, const TI* __restrict__ r,
                                               const TI* __restrict__ k, const TI* __restrict__ v,
                                               const float* __restrict__ rK, const TG* __restrict__ g,
                                               float* __restrict__ lnx, G* __restrict__ gated,
                                               float* __restrict__ mean, float* __restrict__ rstd, i64 units, int C,
                                               float eps) {
    i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    i64 unit = t >> 3;
    if (unit >= units) return;  // whole groups of 8 lanes leave together
    int heads = C / GOSLING_HEAD;
    int sub = (int)(t & 7);
    int c = (int)(unit % heads) * GOSLING_HEAD + sub * 8;
    i64 i = unit * GOSLING_HEAD + sub * 8;
    bool vec = aligned16(y) && aligned16(lnW) && aligned16(lnB) && aligned16(r) && aligned16(k) && aligned16(v) &&
               aligned16(rK) && aligned16(g) && aligned16(lnx) && aligned16(gated);
    float yv[8], rv[8], kv[8], vv[8], gv[8], wv[8], bv[8], rk[8];
    ld8(y, i, yv, vec);
    ld8(r, i, rv, vec);
    ld8(k, i, kv, vec);
    ld8(v, i, vv, vec);
    ld8(g, i, gv, vec);
    ld8(lnW, c, wv, vec);
    ld8(lnB, c, bv, vec);
    ld8(rK, c, rk, vec);
    float sy = 0.0f, sb = 0.0f;
#pragma unroll
    for (int j = 0; j < 8; j++) {
        sy += yv[j];
        sb += rv[j] * kv[j] * rk[j];
    }
    float mu = group8_sum(sy) / GOSLING_HEAD;
    float sd = 0.0f;
#pragma unroll
    for (int j = 0; j < 8; j++) sd += (yv[j] - mu) * (yv[j] - mu);
    float rs = 1.0f / sqrtf(group8_sum(sd) / GOSLING_HEAD + eps);
    float s = group8_sum(sb);
    if (sub == 0) {
        mean[unit] = mu;
        rstd[unit] = rs;
    }
    float l[8], o[8];
#pragma unroll
    for (int j = 0; j < 8; j++) {
        l[j] = (yv[j] - mu) * rs * wv[j] + bv[j] + s * vv[j];
        o[j] = l[j] * gv[j];
    }
    if (lnx) put8(lnx, i, l, vec);  // null: not kept (the backward recomputes it)
    put8(gated, i, o, vec);
}

extern "C" __global__ void lnx_bonus_gate_forward(const float* __restrict__ y, const float* __restrict__ lnW,
                                                  const float* __restrict__ lnB, const float* __restrict__ r,
                                                  const float* __restrict__ k, const float* __restrict__ v,
                                                  const float* __restrict__ rK, const float* __restrict__ g,
                                                  float* __restrict__ lnx, float* __restrict__ gated,
                                                  float* __restrict__ mean, float* __restrict__ rstd, i64 units,
                                                  int C, float eps) {
    lnx_bonus_gate<float, float>(y, lnW, lnB, r, k, v, rK, g, lnx, gated, mean, rstd, units, C, eps);
}

extern "C" __global__ void lnx_bonus_gate_forward_bf16(const float* __restrict__ y, const float* __restrict__ lnW,
                                                       const float* __restrict__ lnB, const float* __restrict__ r,
                                                       const float* __restrict__ k, const float* __restrict__ v,
                                                       const float* __restrict__ rK, const float* __restrict__ g,
                                                       float* __restrict__ lnx, unsigned short* __restrict__ gated,
                                                       float* __restrict__ mean, float* __restrict__ rstd, i64 units,
                                                       int C, float eps) {
    lnx_bonus_gate<unsigned short, float>(y, lnW, lnB, r, k, v, rK, g, lnx, gated, mean, rstd, units, C, eps);
}

// g in bf16 too (the gate projection kept in bf16).
extern "C" __global__ void lnx_bonus_gate_forward_bf16g(const float* __restrict__ y, const float* __restrict__ lnW,
                                                        const float* __restrict__ lnB, const float* __restrict__ r,
                                                        const float* __restrict__ k, const float* __restrict__ v,
                                                        const float* __restrict__ rK,
                                                        const unsigned short* __restrict__ g, float* __restrict__ lnx,
                                                        unsigned short* __restrict__ gated, float* __restrict__ mean,
                                                        float* __restrict__ rstd, i64 units, int C, float eps) {
    lnx_bonus_gate<unsigned short, unsigned short>(y, lnW, lnB, r, k, v, rK, g, lnx, gated, mean, rstd, units, C, eps);
}

// y, r, k and v in bf16 too (g and the gate product bf16).
extern "C" __global__ void lnx_bonus_gate_forward_bf16_in(const unsigned short* __restrict__ y,
                                                          const float* __restrict__ lnW, const float* __restrict__ lnB,
                                                          const unsigned short* __restrict__ r,
                                                          const unsigned short* __restrict__ k,
                                                          const unsigned short* __restrict__ v,
                                                          const float* __restrict__ rK,
                                                          const unsigned short* __restrict__ g, float* __restrict__ lnx,
                                                          unsigned short* __restrict__ gated, float* __restrict__ mean,
                                                          float* __restrict__ rstd, i64 units, int C, float eps) {
    lnx_bonus_gate<unsigned short, unsigned short, unsigned short>(y, lnW, lnB, r, k, v, rK, g, lnx, gated, mean, rstd,
                                                                   units, C, eps);
}

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
    i64 lo, hi;
    slice_rows(rows, slice, slices, lo, hi);
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

// The backward of lnx_bonus_gate_forward in one pass, everything written (not added to): with dL = dGated⊙g (the
// gradient of ln_x with the bonus), dG = dGated⊙lnx, lnx recomputed from y, its mean and rstd, lnW, lnB and the
// bonus (as the forward computes it; nothing reads a stored lnx); the bonus's dv, dr, dk as bonus_backward; dy = GroupNorm's
// backward of dL (norm_backward_x). Column partials over the slice's rows: Σ ds·r⊙k (dRK), Σ dL⊙x̂ (dWeight), Σ dL
// (dBias). g fp32 or (TG, the _bf16 entry points) bf16; dG fp32 or (TD) bf16 (only the gate LoRA's GEMMs read it);
// dGated fp32 or (TDG) bf16 (written so by the output projection's GEMM); y, r, k, v fp32 or (TI) bf16; dy fp32 or
// (TY, the _dy entry points) bf16, rounded once (only the tensor-core WKV7 backward reads it).
// grid (H, slices), block 32: the warp's four groups of 8 lanes take every fourth row of the slice (group q rows lo+q,
// lo+q+4, …), eight adjacent channels a lane (16-byte accesses of bf16: a warp of 2-byte ones, one row at a time,
// stayed well below bandwidth); the groups' column sums meet in a fixed tree at the end.
template <typename TG, typename TD, typename TDG = float, typename TI = float, typename TY = float>
__device__ __forceinline__ void lnx_bonus_gate_bwd(
    const TDG* __restrict__ dGated, const float* __restrict__ lnB, const TG* __restrict__ g,
    const TI* __restrict__ y, const float* __restrict__ lnW, const float* __restrict__ mean,
    const float* __restrict__ rstd, const TI* __restrict__ r, const TI* __restrict__ k,
    const TI* __restrict__ v, const float* __restrict__ rK, TD* __restrict__ dG, float* __restrict__ dr,
    float* __restrict__ dk, float* __restrict__ dv, TY* __restrict__ dy, float* __restrict__ partialRK,
    float* __restrict__ partialW, float* __restrict__ partialB, int rows, int C) {
    int lane = threadIdx.x, group = lane >> 3, sub = lane & 7;
    int heads = C / GOSLING_HEAD;
    int head = blockIdx.x, slices = gridDim.y, slice = blockIdx.y;
    int c = head * GOSLING_HEAD + sub * 8;
    i64 lo, hi;
    slice_rows(rows, slice, slices, lo, hi);
    bool vec = aligned16(dGated) && aligned16(lnB) && aligned16(g) && aligned16(y) && aligned16(lnW) &&
               aligned16(r) && aligned16(k) && aligned16(v) && aligned16(rK) && aligned16(dG) && aligned16(dr) &&
               aligned16(dk) && aligned16(dv) && aligned16(dy) && aligned16(partialRK) && aligned16(partialW) &&
               aligned16(partialB);
    float rk[8], w[8], b[8];
    ld8(rK, c, rk, vec);
    ld8(lnW, c, w, vec);
    ld8(lnB, c, b, vec);
    float accRK[8], accW[8], accB[8];
#pragma unroll
    for (int j = 0; j < 8; j++) accRK[j] = accW[j] = accB[j] = 0.0f;
    for (i64 row = lo + group; row < hi; row += 4) {
        i64 i = row * C + c;
        i64 unit = row * heads + head;
        float dgt[8], gv[8], ri[8], ki[8], vi[8], yi[8];
        ld8(dGated, i, dgt, vec);
        ld8(g, i, gv, vec);
        ld8(r, i, ri, vec);
        ld8(k, i, ki, vec);
        ld8(v, i, vi, vec);
        ld8(y, i, yi, vec);
        float mu = mean[unit], rs = rstd[unit];
        float dL[8], xh[8], gh[8], s = 0.0f, ds = 0.0f;
#pragma unroll
        for (int j = 0; j < 8; j++) {
            dL[j] = dgt[j] * gv[j];
            xh[j] = (yi[j] - mu) * rs;
            gh[j] = dL[j] * w[j];
            s += ri[j] * ki[j] * rk[j];
            ds += dL[j] * vi[j];
        }
        s = group8_sum(s);
        ds = group8_sum(ds);
        float sg = 0.0f, sgx = 0.0f;
#pragma unroll
        for (int j = 0; j < 8; j++) {
            sg += gh[j];
            sgx += gh[j] * xh[j];
        }
        float meanG = group8_sum(sg) / GOSLING_HEAD;
        float meanGX = group8_sum(sgx) / GOSLING_HEAD;
        float o[8];
#pragma unroll
        for (int j = 0; j < 8; j++) o[j] = dgt[j] * (xh[j] * w[j] + b[j] + s * vi[j]);  // dG = dGated⊙lnx
        put8(dG, i, o, vec);
#pragma unroll
        for (int j = 0; j < 8; j++) o[j] = s * dL[j];
        put8(dv, i, o, vec);
#pragma unroll
        for (int j = 0; j < 8; j++) o[j] = ds * ki[j] * rk[j];
        put8(dr, i, o, vec);
#pragma unroll
        for (int j = 0; j < 8; j++) o[j] = ds * ri[j] * rk[j];
        put8(dk, i, o, vec);
#pragma unroll
        for (int j = 0; j < 8; j++) o[j] = rs * (gh[j] - meanG - xh[j] * meanGX);
        put8(dy, i, o, vec);
#pragma unroll
        for (int j = 0; j < 8; j++) {
            accRK[j] += ds * ri[j] * ki[j];
            accW[j] += dL[j] * xh[j];
            accB[j] += dL[j];
        }
    }
    // the four groups' sums, added in a fixed tree; group 0 writes them
#pragma unroll
    for (int j = 0; j < 8; j++) {
        for (int o = 8; o < 32; o <<= 1) {
            accRK[j] += __shfl_xor_sync(0xffffffffu, accRK[j], o);
            accW[j] += __shfl_xor_sync(0xffffffffu, accW[j], o);
            accB[j] += __shfl_xor_sync(0xffffffffu, accB[j], o);
        }
    }
    if (group == 0) {
        i64 p = (i64)slice * C + c;
        put8(partialRK, p, accRK, vec);
        put8(partialW, p, accW, vec);
        put8(partialB, p, accB, vec);
    }
}

extern "C" __global__ void lnx_bonus_gate_backward(
    const float* dGated, const float* lnB, const float* g, const float* y, const float* lnW, const float* mean,
    const float* rstd, const float* r, const float* k, const float* v, const float* rK, float* dG, float* dr,
    float* dk, float* dv, float* dy, float* partialRK, float* partialW, float* partialB, int rows, int C) {
    lnx_bonus_gate_bwd<float, float>(dGated, lnB, g, y, lnW, mean, rstd, r, k, v, rK, dG, dr, dk, dv, dy, partialRK,
                              partialW, partialB, rows, C);
}

extern "C" __global__ void lnx_bonus_gate_backward_bf16(
    const float* dGated, const float* lnB, const unsigned short* g, const float* y, const float* lnW,
    const float* mean, const float* rstd, const float* r, const float* k, const float* v, const float* rK, float* dG,
    float* dr, float* dk, float* dv, float* dy, float* partialRK, float* partialW, float* partialB, int rows, int C) {
    lnx_bonus_gate_bwd<unsigned short, float>(dGated, lnB, g, y, lnW, mean, rstd, r, k, v, rK, dG, dr, dk, dv, dy,
                                              partialRK, partialW, partialB, rows, C);
}

extern "C" __global__ void lnx_bonus_gate_backward_bf16_dg(
    const float* dGated, const float* lnB, const unsigned short* g, const float* y, const float* lnW,
    const float* mean, const float* rstd, const float* r, const float* k, const float* v, const float* rK,
    unsigned short* dG, float* dr, float* dk, float* dv, float* dy, float* partialRK, float* partialW,
    float* partialB, int rows, int C) {
    lnx_bonus_gate_bwd<unsigned short, unsigned short>(dGated, lnB, g, y, lnW, mean, rstd, r, k, v, rK, dG, dr, dk,
                                                       dv, dy, partialRK, partialW, partialB, rows, C);
}

// dGated in bf16 too (the output projection's dx, written in bf16 by its GEMM).
extern "C" __global__ void lnx_bonus_gate_backward_bf16_dg_dgated(
    const unsigned short* dGated, const float* lnB, const unsigned short* g, const float* y, const float* lnW,
    const float* mean, const float* rstd, const float* r, const float* k, const float* v, const float* rK,
    unsigned short* dG, float* dr, float* dk, float* dv, float* dy, float* partialRK, float* partialW,
    float* partialB, int rows, int C) {
    lnx_bonus_gate_bwd<unsigned short, unsigned short, unsigned short>(dGated, lnB, g, y, lnW, mean, rstd, r, k, v,
                                                                       rK, dG, dr, dk, dv, dy, partialRK, partialW,
                                                                       partialB, rows, C);
}

// y, r, k and v in bf16 too (the WKV7 kernel's bf16 inputs and output).
extern "C" __global__ void lnx_bonus_gate_backward_bf16_in(
    const unsigned short* dGated, const float* lnB, const unsigned short* g, const unsigned short* y, const float* lnW,
    const float* mean, const float* rstd, const unsigned short* r, const unsigned short* k, const unsigned short* v,
    const float* rK, unsigned short* dG, float* dr, float* dk, float* dv, float* dy, float* partialRK, float* partialW,
    float* partialB, int rows, int C) {
    lnx_bonus_gate_bwd<unsigned short, unsigned short, unsigned short, unsigned short>(
        dGated, lnB, g, y, lnW, mean, rstd, r, k, v, rK, dG, dr, dk, dv, dy, partialRK, partialW, partialB, rows, C);
}

// The same from an fp32 dGated (-Dgosling.gemmGradients=f32: the output projection's dx in fp32).
extern "C" __global__ void lnx_bonus_gate_backward_bf16_in_dgated_f32(
    const float* dGated, const float* lnB, const unsigned short* g, const unsigned short* y, const float* lnW,
    const float* mean, const float* rstd, const unsigned short* r, const unsigned short* k, const unsigned short* v,
    const float* rK, unsigned short* dG, float* dr, float* dk, float* dv, float* dy, float* partialRK, float* partialW,
    float* partialB, int rows, int C) {
    lnx_bonus_gate_bwd<unsigned short, unsigned short, float, unsigned short>(
        dGated, lnB, g, y, lnW, mean, rstd, r, k, v, rK, dG, dr, dk, dv, dy, partialRK, partialW, partialB, rows, C);
}

// dy in bf16 too (read only by the tensor-core WKV7 backward), from a bf16 or (_dgated_f32) an fp32 dGated.
extern "C" __global__ void lnx_bonus_gate_backward_bf16_in_dy(
    const unsigned short* dGated, const float* lnB, const unsigned short* g, const unsigned short* y, const float* lnW,
    const float* mean, const float* rstd, const unsigned short* r, const unsigned short* k, const unsigned short* v,
    const float* rK, unsigned short* dG, float* dr, float* dk, float* dv, unsigned short* dy, float* partialRK,
    float* partialW, float* partialB, int rows, int C) {
    lnx_bonus_gate_bwd<unsigned short, unsigned short, unsigned short, unsigned short, unsigned short>(
        dGated, lnB, g, y, lnW, mean, rstd, r, k, v, rK, dG, dr, dk, dv, dy, partialRK, partialW, partialB, rows, C);
}

extern "C" __global__ void lnx_bonus_gate_backward_bf16_in_dgated_f32_dy(
    const float* dGated, const float* lnB, const unsigned short* g, const unsigned short* y, const float* lnW,
    const float* mean, const float* rstd, const unsigned short* r, const unsigned short* k, const unsigned short* v,
    const float* rK, unsigned short* dG, float* dr, float* dk, float* dv, unsigned short* dy, float* partialRK,
    float* partialW, float* partialB, int rows, int C) {
    lnx_bonus_gate_bwd<unsigned short, unsigned short, float, unsigned short, unsigned short>(
        dGated, lnB, g, y, lnW, mean, rstd, r, k, v, rK, dG, dr, dk, dv, dy, partialRK, partialW, partialB, rows, C);
}
