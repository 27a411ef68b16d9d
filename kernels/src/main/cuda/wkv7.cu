// The WKV7 recurrence (rwkv7-reference.md §6.4, §7), fp32 in, out and state. Per (batch, head), state S 64×64
// (rows = value index i, columns = key index j), S = 0 at the start of every sample:
//   ω_j  = exp(−e^{−1/2}·σ(wRaw_j));  sa_i = Σ_j S[i][j]·a_j;  S[i][j] ← S[i][j]·ω_j + sa_i·b_j + v_i·k_j;
//   y_i  = Σ_j S[i][j]·r_j  (the updated state).
// Launch: grid (H, B), block 64 threads, one thread per state row. Saved for backward, in one fp32 buffer:
//   states [B, H, ⌈T/16⌉, 64, 64]: the state after every 16th step and after the last step, TRANSPOSED
//           (element (j, i) = S[i][j]), so the backward thread i reads column i contiguously;
//   sa     [B·T, H·64] behind it.
// The backward pass is the reference's "backstepping": it walks t down, reloads S from the snapshot at every chunk
// end and otherwise inverts one step exactly, S_{t−1}[j][i] = (S_t[j][i] − v_j·k_i − sa_j·b_i)/ω_i, which is well
// conditioned because ω ≥ e^{−e^{−1/2}} ≈ 0.545. Any T ≥ 1 (the last chunk may be short). Gradients accumulate.
#include "common.cuh"

#define N GOSLING_HEAD
#define CHUNK 16
#define W_SCALE (-0.6065306597126334f)

extern "C" __global__ void __launch_bounds__(N) wkv7_forward(int T, int H, const float* __restrict__ r_,
        const float* __restrict__ w_, const float* __restrict__ k_, const float* __restrict__ v_,
        const float* __restrict__ a_, const float* __restrict__ b_, float* __restrict__ y_,
        float* __restrict__ s_, float* __restrict__ sa_) {
    int bb = blockIdx.y, hh = blockIdx.x, i = threadIdx.x;
    int C = H * N;
    int chunks = (T + CHUNK - 1) / CHUNK;
    float state[N];
#pragma unroll
    for (int j = 0; j < N; j++) state[j] = 0.0f;
    __shared__ float r[N], w[N], k[N], a[N], b[N];
    i64 ind = (i64)bb * T * C + (i64)hh * N + i;
    // the next step's inputs are loaded while the current step computes
    float rn = r_[ind], wn = w_[ind], kn = k_[ind], vn = v_[ind], an = a_[ind], bn = b_[ind];
    for (int t = 0; t < T; t++, ind += C) {
        __syncthreads();
        r[i] = rn;
        w[i] = expf(W_SCALE / (1.0f + expf(-wn)));
        k[i] = kn;
        a[i] = an;
        b[i] = bn;
        float v = vn;
        __syncthreads();
        if (t + 1 < T) {
            rn = r_[ind + C]; wn = w_[ind + C]; kn = k_[ind + C]; vn = v_[ind + C]; an = a_[ind + C]; bn = b_[ind + C];
        }
        float sa = 0.0f;
#pragma unroll
        for (int j = 0; j < N; j++) sa += a[j] * state[j];
        sa_[ind] = sa;
        float y = 0.0f;
#pragma unroll
        for (int j = 0; j < N; j++) {
            float s = state[j] * w[j] + (sa * b[j] + v * k[j]);
            state[j] = s;
            y += s * r[j];
        }
        y_[ind] = y;
        if ((t + 1) % CHUNK == 0 || t == T - 1) {
            i64 base = (((i64)bb * H + hh) * chunks + t / CHUNK) * (N * N) + i;
#pragma unroll
            for (int j = 0; j < N; j++) s_[base + j * N] = state[j];
        }
    }
}

// dr, dwRaw, dk, dv, da, db += the exact gradient of wkv7_forward, given dy and the saved buffers.
extern "C" __global__ void __launch_bounds__(N) wkv7_backward(int T, int H, const float* __restrict__ r_,
        const float* __restrict__ w_, const float* __restrict__ k_, const float* __restrict__ v_,
        const float* __restrict__ a_, const float* __restrict__ b_, const float* __restrict__ dy_,
        const float* __restrict__ s_, const float* __restrict__ sa_, float* __restrict__ dr_,
        float* __restrict__ dw_, float* __restrict__ dk_, float* __restrict__ dv_, float* __restrict__ da_,
        float* __restrict__ db_) {
    int bb = blockIdx.y, hh = blockIdx.x, i = threadIdx.x;
    int C = H * N;
    int chunks = (T + CHUNK - 1) / CHUNK;
    // column i of S, row i of dS, column i of dS
    float stateT[N], dstate[N], dstateT[N];
#pragma unroll
    for (int j = 0; j < N; j++) stateT[j] = dstate[j] = dstateT[j] = 0.0f;
    __shared__ float r[N], w[N], k[N], v[N], a[N], b[N], dy[N], sa[N], dsa[N];
    i64 ind = (i64)bb * T * C + (i64)(T - 1) * C + (i64)hh * N + i;
    float rn = r_[ind], wn = w_[ind], kn = k_[ind], vn = v_[ind], an = a_[ind], bn = b_[ind], dyn = dy_[ind],
          san = sa_[ind];
    for (int t = T - 1; t >= 0; t--, ind -= C) {
        __syncthreads();
        float ri = rn, ki = kn, ai = an, bi = bn, dyi = dyn;
        float sig = 1.0f / (1.0f + expf(-wn));
        float wi = expf(W_SCALE * sig);
        r[i] = ri;
        w[i] = wi;
        k[i] = ki;
        v[i] = vn;
        a[i] = ai;
        b[i] = bi;
        dy[i] = dyi;
        sa[i] = san;
        __syncthreads();
        if (t > 0) {
            i64 p = ind - C;
            rn = r_[p]; wn = w_[p]; kn = k_[p]; vn = v_[p]; an = a_[p]; bn = b_[p]; dyn = dy_[p]; san = sa_[p];
        }
        if ((t + 1) % CHUNK == 0 || t == T - 1) {
            const float* snap = s_ + (((i64)bb * H + hh) * chunks + t / CHUNK) * (N * N) + (i64)i * N;
#pragma unroll
            for (int j = 0; j < N; j++) stateT[j] = snap[j];
        }
        float dr = 0.0f;
#pragma unroll
        for (int j = 0; j < N; j++) dr += stateT[j] * dy[j];
        dr_[ind] += dr;
        float iwi = 1.0f / wi;
#pragma unroll
        for (int j = 0; j < N; j++) {
            stateT[j] = (stateT[j] - ki * v[j] - bi * sa[j]) * iwi;
            dstate[j] += dyi * r[j];
            dstateT[j] += ri * dy[j];
        }
        float dw = 0.0f, dk = 0.0f, dv = 0.0f, db = 0.0f, dSb = 0.0f;
#pragma unroll
        for (int j = 0; j < N; j++) {
            dw += dstateT[j] * stateT[j];
            dk += dstateT[j] * v[j];
            dv += dstate[j] * k[j];
            dSb += dstate[j] * b[j];
            db += dstateT[j] * sa[j];
        }
        dw_[ind] += dw * wi * W_SCALE * sig * (1.0f - sig);
        dk_[ind] += dk;
        dv_[ind] += dv;
        db_[ind] += db;
        dsa[i] = dSb;
        __syncthreads();
        float da = 0.0f;
#pragma unroll
        for (int j = 0; j < N; j++) da += stateT[j] * dsa[j];
        da_[ind] += da;
#pragma unroll
        for (int j = 0; j < N; j++) {
            dstate[j] = dstate[j] * w[j] + dSb * a[j];
            dstateT[j] = dstateT[j] * wi + ai * dsa[j];
        }
    }
}
