// The bonus term after ln_x (§6.4): out_h = x_h + (Σ_{i∈h} r_i·k̃_i·r_k[h,i])·v_h. One warp per (row, head).
#include "common.cuh"

// The time mix's output chain in one pass (one warp per (row, head), two channels a lane, as bonus_forward):
// ln_x = GroupNorm(y) (biased variance over the head's 64 channels, eps), plus the bonus, written to lnx unless it is
// null (the fused backward recomputes it); gated = ln_x⊙g, fp32 or (G) bf16 for the output projection's GEMMs; g fp32 or (TG) bf16. mean
// and rstd per (row, head). y, r, k and v fp32 or (TI, _bf16_in: the WKV7 kernel's bf16 inputs and output) bf16.
// grid: ⌈rows·H / 8⌉ blocks of 256 threads.
template <typename G, typename TG, typename TI = float>
__device__ __forceinline__ void lnx_bonus_gate(const TI* __restrict__ y, const float* __restrict__ lnW,
                                               const float* __restrict__ lnB, const TI* __restrict__ r,
                                               const TI* __restrict__ k, const TI* __restrict__ v,
                                               const float* __restrict__ rK, const TG* __restrict__ g,
                                               float* __restrict__ lnx, G* __restrict__ gated,
                                               float* __restrict__ mean, float* __restrict__ rstd, i64 units, int C,
                                               float eps) {
    int lane = threadIdx.x & 31;
    i64 unit = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (unit >= units) return;
    int heads = C / GOSLING_HEAD;
    i64 base = unit * GOSLING_HEAD;
    int c0 = (int)(unit % heads) * GOSLING_HEAD + lane, c1 = c0 + 32;
    i64 i0 = base + lane, i1 = i0 + 32;
    float y0 = ld(y, i0), y1 = ld(y, i1);
    float mu = warp_sum(y0 + y1) / GOSLING_HEAD;
    float d0 = y0 - mu, d1 = y1 - mu;
    float rs = 1.0f / sqrtf(warp_sum(d0 * d0 + d1 * d1) / GOSLING_HEAD + eps);
    if (lane == 0) {
        mean[unit] = mu;
        rstd[unit] = rs;
    }
    float s = warp_sum(ld(r, i0) * ld(k, i0) * rK[c0] + ld(r, i1) * ld(k, i1) * rK[c1]);
    float l0 = d0 * rs * lnW[c0] + lnB[c0] + s * ld(v, i0);
    float l1 = d1 * rs * lnW[c1] + lnB[c1] + s * ld(v, i1);
    if (lnx) {  // null: not kept (the backward recomputes it)
        lnx[i0] = l0;
        lnx[i1] = l1;
    }
    if constexpr (sizeof(G) == 2) {
        gated[i0] = bf16_rn(l0 * ld(g, i0));
        gated[i1] = bf16_rn(l1 * ld(g, i1));
    } else {
        gated[i0] = l0 * ld(g, i0);
        gated[i1] = l1 * ld(g, i1);
    }
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
// grid (H, slices), block 32: one warp walks its head through the slice's rows in order.
template <typename TG, typename TD, typename TDG = float, typename TI = float, typename TY = float>
__device__ __forceinline__ void lnx_bonus_gate_bwd(
    const TDG* __restrict__ dGated, const float* __restrict__ lnB, const TG* __restrict__ g,
    const TI* __restrict__ y, const float* __restrict__ lnW, const float* __restrict__ mean,
    const float* __restrict__ rstd, const TI* __restrict__ r, const TI* __restrict__ k,
    const TI* __restrict__ v, const float* __restrict__ rK, TD* __restrict__ dG, float* __restrict__ dr,
    float* __restrict__ dk, float* __restrict__ dv, TY* __restrict__ dy, float* __restrict__ partialRK,
    float* __restrict__ partialW, float* __restrict__ partialB, int rows, int C) {
    int lane = threadIdx.x;
    int heads = C / GOSLING_HEAD;
    int head = blockIdx.x, slices = gridDim.y, slice = blockIdx.y;
    int channel0 = head * GOSLING_HEAD;
    i64 lo, hi;
    slice_rows(rows, slice, slices, lo, hi);
    float rk[2] = {rK[channel0 + lane], rK[channel0 + lane + 32]};
    float w[2] = {lnW[channel0 + lane], lnW[channel0 + lane + 32]};
    float b[2] = {lnB[channel0 + lane], lnB[channel0 + lane + 32]};
    float accRK[2] = {0.0f, 0.0f}, accW[2] = {0.0f, 0.0f}, accB[2] = {0.0f, 0.0f};
    for (i64 row = lo; row < hi; row++) {
        i64 base = row * C + channel0;
        i64 unit = row * heads + head;
        float dgt[2], dL[2], ri[2], ki[2], vi[2], yi[2];
#pragma unroll
        for (int h = 0; h < 2; h++) {
            i64 i = base + lane + 32 * h;
            dgt[h] = ld(dGated, i);
            dL[h] = dgt[h] * ld(g, i);
            ri[h] = ld(r, i);
            ki[h] = ld(k, i);
            vi[h] = ld(v, i);
            yi[h] = ld(y, i);
        }
        float s = warp_sum(ri[0] * ki[0] * rk[0] + ri[1] * ki[1] * rk[1]);
        float ds = warp_sum(dL[0] * vi[0] + dL[1] * vi[1]);
        float mu = mean[unit], rs = rstd[unit];
        float xh[2] = {(yi[0] - mu) * rs, (yi[1] - mu) * rs};
#pragma unroll
        for (int h = 0; h < 2; h++) {
            i64 i = base + lane + 32 * h;
            float lnx = xh[h] * w[h] + b[h] + s * vi[h];
            if constexpr (sizeof(TD) == 2) dG[i] = bf16_rn(dgt[h] * lnx);
            else dG[i] = dgt[h] * lnx;
        }
        float gh[2] = {dL[0] * w[0], dL[1] * w[1]};
        float meanG = warp_sum(gh[0] + gh[1]) / GOSLING_HEAD;
        float meanGX = warp_sum(gh[0] * xh[0] + gh[1] * xh[1]) / GOSLING_HEAD;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            i64 i = base + lane + 32 * h;
            dv[i] = s * dL[h];
            dr[i] = ds * ki[h] * rk[h];
            dk[i] = ds * ri[h] * rk[h];
            put(dy, i, rs * (gh[h] - meanG - xh[h] * meanGX));
            accRK[h] += ds * ri[h] * ki[h];
            accW[h] += dL[h] * xh[h];
            accB[h] += dL[h];
        }
    }
#pragma unroll
    for (int h = 0; h < 2; h++) {
        i64 c = (i64)slice * C + channel0 + lane + 32 * h;
        partialRK[c] = accRK[h];
        partialW[c] = accW[h];
        partialB[c] = accB[h];
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
