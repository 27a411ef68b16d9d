// The WKV7 recurrence (rwkv7-reference.md §6.4, §7), fp32 in, out and state. Per (batch, head), state S 64×64
// (rows = value index i, columns = key index j), S = 0 at the start of every sample:
//   ω_j  = exp(−e^{−1/2}·σ(wRaw_j));  sa_i = Σ_j S[i][j]·a_j;  S[i][j] ← S[i][j]·ω_j + sa_i·b_j + v_i·k_j;
//   y_i  = Σ_j S[i][j]·r_j  (the updated state).
// Launch: grid (H, B), block 128 threads: a pair of adjacent lanes per state row i, each holding half of the row's 64
// columns (32 registers instead of 64, so the backward's three 64×64 slices fit without spilling and each step's dot
// products are half as long; the pair sums through one shuffle). Saved for backward, in one fp32 buffer:
//   states [B, H, ⌈T/16⌉, 64, 64]: the state after every 16th step and after the last step, TRANSPOSED
//           (element (j, i) = S[i][j]), so the backward thread i reads column i contiguously;
//   sa     [B·T, H·64] behind it.
// The backward pass is the reference's "backstepping": it walks t down, reloads S from the snapshot at every chunk
// end and otherwise inverts one step exactly, S_{t−1}[j][i] = (S_t[j][i] − v_j·k_i − sa_j·b_i)/ω_i, which is well
// conditioned because ω ≥ e^{−e^{−1/2}} ≈ 0.545; at t = 0 the previous state is exactly 0 and is not inverted.
// Any T ≥ 1 (the last chunk may be short). Gradients accumulate.
#include "common.cuh"

#define N GOSLING_HEAD
#define HALF (N / 2)
#define CHUNK 16
#define W_SCALE (-0.6065306597126334f)

// Sum over the two lanes of a row pair.
__device__ __forceinline__ float pair_sum(float x) { return x + __shfl_xor_sync(0xffffffffu, x, 1); }

extern "C" __global__ void __launch_bounds__(2 * N) wkv7_forward(int T, int H, const float* __restrict__ r_,
        const float* __restrict__ w_, const float* __restrict__ k_, const float* __restrict__ v_,
        const float* __restrict__ a_, const float* __restrict__ b_, float* __restrict__ y_,
        float* __restrict__ s_, float* __restrict__ sa_) {
    int bb = blockIdx.y, hh = blockIdx.x;
    int i = threadIdx.x >> 1, half = threadIdx.x & 1, jb = half * HALF;
    int C = H * N;
    int chunks = (T + CHUNK - 1) / CHUNK;
    float state[HALF];
#pragma unroll
    for (int j = 0; j < HALF; j++) state[j] = 0.0f;
    __shared__ float r[N], w[N], k[N], a[N], b[N];
    i64 ind = (i64)bb * T * C + (i64)hh * N + i;
    // the next step's inputs are loaded while the current step computes
    float rn = r_[ind], wn = w_[ind], kn = k_[ind], vn = v_[ind], an = a_[ind], bn = b_[ind];
    for (int t = 0; t < T; t++, ind += C) {
        __syncthreads();
        if (half == 0) {
            r[i] = rn;
            w[i] = expf(W_SCALE / (1.0f + expf(-wn)));
            k[i] = kn;
            a[i] = an;
            b[i] = bn;
        }
        float v = vn;
        __syncthreads();
        if (t + 1 < T) {
            rn = r_[ind + C]; wn = w_[ind + C]; kn = k_[ind + C]; vn = v_[ind + C]; an = a_[ind + C]; bn = b_[ind + C];
        }
        float sa = 0.0f;
#pragma unroll
        for (int j = 0; j < HALF; j++) sa += a[jb + j] * state[j];
        sa = pair_sum(sa);
        if (half == 0) sa_[ind] = sa;
        float y = 0.0f;
#pragma unroll
        for (int j = 0; j < HALF; j++) {
            float s = state[j] * w[jb + j] + (sa * b[jb + j] + v * k[jb + j]);
            state[j] = s;
            y += s * r[jb + j];
        }
        y = pair_sum(y);
        if (half == 0) y_[ind] = y;
        if ((t + 1) % CHUNK == 0 || t == T - 1) {
            i64 base = (((i64)bb * H + hh) * chunks + t / CHUNK) * (N * N) + i;
#pragma unroll
            for (int j = 0; j < HALF; j++) s_[base + (jb + j) * N] = state[j];
        }
    }
}

// dr, dwRaw, dk, dv, da, db += the exact gradient of wkv7_forward, given dy and the saved buffers.
extern "C" __global__ void __launch_bounds__(2 * N) wkv7_backward(int T, int H, const float* __restrict__ r_,
        const float* __restrict__ w_, const float* __restrict__ k_, const float* __restrict__ v_,
        const float* __restrict__ a_, const float* __restrict__ b_, const float* __restrict__ dy_,
        const float* __restrict__ s_, const float* __restrict__ sa_, float* __restrict__ dr_,
        float* __restrict__ dw_, float* __restrict__ dk_, float* __restrict__ dv_, float* __restrict__ da_,
        float* __restrict__ db_) {
    int bb = blockIdx.y, hh = blockIdx.x;
    int i = threadIdx.x >> 1, half = threadIdx.x & 1, jb = half * HALF;
    int C = H * N;
    int chunks = (T + CHUNK - 1) / CHUNK;
    // this lane's half of column i of S, of row i of dS and of column i of dS
    float stateT[HALF], dstate[HALF], dstateT[HALF];
#pragma unroll
    for (int j = 0; j < HALF; j++) stateT[j] = dstate[j] = dstateT[j] = 0.0f;
    __shared__ float r[N], w[N], k[N], v[N], a[N], b[N], dy[N], sa[N], dsa[N];
    i64 ind = (i64)bb * T * C + (i64)(T - 1) * C + (i64)hh * N + i;
    float rn = r_[ind], wn = w_[ind], kn = k_[ind], vn = v_[ind], an = a_[ind], bn = b_[ind], dyn = dy_[ind],
          san = sa_[ind];
    for (int t = T - 1; t >= 0; t--, ind -= C) {
        __syncthreads();
        float ri = rn, ki = kn, ai = an, bi = bn, dyi = dyn;
        float sig = 1.0f / (1.0f + expf(-wn));
        float wi = expf(W_SCALE * sig);
        if (half == 0) {
            r[i] = ri;
            w[i] = wi;
            k[i] = ki;
            v[i] = vn;
            a[i] = ai;
            b[i] = bi;
            dy[i] = dyi;
            sa[i] = san;
        }
        __syncthreads();
        if (t > 0) {
            i64 p = ind - C;
            rn = r_[p]; wn = w_[p]; kn = k_[p]; vn = v_[p]; an = a_[p]; bn = b_[p]; dyn = dy_[p]; san = sa_[p];
        }
        if ((t + 1) % CHUNK == 0 || t == T - 1) {
            const float* snap = s_ + (((i64)bb * H + hh) * chunks + t / CHUNK) * (N * N) + (i64)i * N + jb;
#pragma unroll
            for (int j = 0; j < HALF; j++) stateT[j] = snap[j];
        }
        float dr = 0.0f;
#pragma unroll
        for (int j = 0; j < HALF; j++) dr += stateT[j] * dy[jb + j];
        dr = pair_sum(dr);
        if (half == 0) dr_[ind] += dr;
        float iwi = 1.0f / wi;
#pragma unroll
        for (int j = 0; j < HALF; j++) {
            stateT[j] = t == 0 ? 0.0f : (stateT[j] - ki * v[jb + j] - bi * sa[jb + j]) * iwi;
            dstate[j] += dyi * r[jb + j];
            dstateT[j] += ri * dy[jb + j];
        }
        float dw = 0.0f, dk = 0.0f, dv = 0.0f, db = 0.0f, dSb = 0.0f;
#pragma unroll
        for (int j = 0; j < HALF; j++) {
            dw += dstateT[j] * stateT[j];
            dk += dstateT[j] * v[jb + j];
            dv += dstate[j] * k[jb + j];
            dSb += dstate[j] * b[jb + j];
            db += dstateT[j] * sa[jb + j];
        }
        dw = pair_sum(dw);
        dk = pair_sum(dk);
        dv = pair_sum(dv);
        dSb = pair_sum(dSb);
        db = pair_sum(db);
        if (half == 0) {
            dw_[ind] += dw * wi * W_SCALE * sig * (1.0f - sig);
            dk_[ind] += dk;
            dv_[ind] += dv;
            db_[ind] += db;
            dsa[i] = dSb;
        }
        __syncthreads();
        float da = 0.0f;
#pragma unroll
        for (int j = 0; j < HALF; j++) da += stateT[j] * dsa[jb + j];
        da = pair_sum(da);
        if (half == 0) da_[ind] += da;
#pragma unroll
        for (int j = 0; j < HALF; j++) {
            dstate[j] = dstate[j] * w[jb + j] + dSb * a[jb + j];
            dstateT[j] = dstateT[j] * wi + ai * dsa[jb + j];
        }
    }
}
