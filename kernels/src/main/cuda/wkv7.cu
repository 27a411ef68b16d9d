// The WKV7 recurrence (rwkv7-reference.md §6.4, §7), fp32 in, out and state. Per (batch, head), state S 64×64
// (rows = value index i, columns = key index j), S = 0 at the start of every sample:
//   ω_j  = exp(−e^{−1/2}·σ(wRaw_j));  sa_i = Σ_j S[i][j]·a_j;  S[i][j] ← S[i][j]·ω_j + sa_i·b_j + v_i·k_j;
//   y_i  = Σ_j S[i][j]·r_j  (the updated state).
// Launch: grid (H, B), block 64·L threads: L adjacent lanes per state row i (L = 2, 4 or 8: kernels wkv7_*_l<L>),
// each holding 64/L of the row's columns, so the backward's three 64×64 slices fit in registers, each step's dot
// products are L times shorter and an SM runs L times more warps; the L lanes sum through shuffles. Shared-memory
// vectors are read 4 floats at a time. Saved for backward, in one fp32 buffer:
//   states [B, H, ⌈T/16⌉, 64, 64]: the state after every 16th step and after the last step, TRANSPOSED
//           (element (j, i) = S[i][j]), so the backward thread i reads column i contiguously;
//   sa     [B·T, H·64] behind it.
// The backward pass is the reference's "backstepping": it walks t down, reloads S from the snapshot at every chunk
// end and otherwise inverts one step exactly, S_{t−1}[j][i] = (S_t[j][i] − v_j·k_i − sa_j·b_i)/ω_i, which is well
// conditioned because ω ≥ e^{−e^{−1/2}} ≈ 0.545; at t = 0 the previous state is exactly 0 and is not inverted.
// Any T ≥ 1 (the last chunk may be short). Gradients accumulate.
#include "common.cuh"

#define N GOSLING_HEAD
#define CHUNK 16
#define W_SCALE (-0.6065306597126334f)

// Sum over the L lanes of a row (adjacent lanes of one warp).
template <int L>
__device__ __forceinline__ float lane_sum(float x) {
#pragma unroll
    for (int o = 1; o < L; o <<= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

// Four consecutive floats of a shared vector (16-byte aligned).
__device__ __forceinline__ void ld4(const float* v, int at, float (&o)[4]) {
    float4 t = *reinterpret_cast<const float4*>(v + at);
    o[0] = t.x; o[1] = t.y; o[2] = t.z; o[3] = t.w;
}

template <int L>
__device__ __forceinline__ void forward(int T, int H, const float* __restrict__ r_, const float* __restrict__ w_,
        const float* __restrict__ k_, const float* __restrict__ v_, const float* __restrict__ a_,
        const float* __restrict__ b_, float* __restrict__ y_, float* __restrict__ s_, float* __restrict__ sa_) {
    constexpr int COLS = N / L;
    int bb = blockIdx.y, hh = blockIdx.x;
    int i = threadIdx.x / L, part = threadIdx.x % L, jb = part * COLS;
    int C = H * N;
    int chunks = (T + CHUNK - 1) / CHUNK;
    float state[COLS];
#pragma unroll
    for (int j = 0; j < COLS; j++) state[j] = 0.0f;
    __shared__ __align__(16) float r[N], w[N], k[N], a[N], b[N];
    i64 ind = (i64)bb * T * C + (i64)hh * N + i;
    // the next step's inputs are loaded while the current step computes
    float rn = r_[ind], wn = w_[ind], kn = k_[ind], vn = v_[ind], an = a_[ind], bn = b_[ind];
    for (int t = 0; t < T; t++, ind += C) {
        __syncthreads();
        if (part == 0) {
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
        for (int q = 0; q < COLS / 4; q++) {
            float a4[4];
            ld4(a, jb + 4 * q, a4);
#pragma unroll
            for (int c = 0; c < 4; c++) sa += a4[c] * state[4 * q + c];
        }
        sa = lane_sum<L>(sa);
        if (part == 0) sa_[ind] = sa;
        float y = 0.0f;
#pragma unroll
        for (int q = 0; q < COLS / 4; q++) {
            float w4[4], b4[4], k4[4], r4[4];
            ld4(w, jb + 4 * q, w4);
            ld4(b, jb + 4 * q, b4);
            ld4(k, jb + 4 * q, k4);
            ld4(r, jb + 4 * q, r4);
#pragma unroll
            for (int c = 0; c < 4; c++) {
                float s = state[4 * q + c] * w4[c] + (sa * b4[c] + v * k4[c]);
                state[4 * q + c] = s;
                y += s * r4[c];
            }
        }
        y = lane_sum<L>(y);
        if (part == 0) y_[ind] = y;
        if ((t + 1) % CHUNK == 0 || t == T - 1) {
            i64 base = (((i64)bb * H + hh) * chunks + t / CHUNK) * (N * N) + i;
#pragma unroll
            for (int j = 0; j < COLS; j++) s_[base + (jb + j) * N] = state[j];
        }
    }
}

template <int L>
__device__ __forceinline__ void backward(int T, int H, const float* __restrict__ r_, const float* __restrict__ w_,
        const float* __restrict__ k_, const float* __restrict__ v_, const float* __restrict__ a_,
        const float* __restrict__ b_, const float* __restrict__ dy_, const float* __restrict__ s_,
        const float* __restrict__ sa_, float* __restrict__ dr_, float* __restrict__ dw_, float* __restrict__ dk_,
        float* __restrict__ dv_, float* __restrict__ da_, float* __restrict__ db_) {
    constexpr int COLS = N / L;
    int bb = blockIdx.y, hh = blockIdx.x;
    int i = threadIdx.x / L, part = threadIdx.x % L, jb = part * COLS;
    int C = H * N;
    int chunks = (T + CHUNK - 1) / CHUNK;
    // this lane's columns of column i of S, of row i of dS and of column i of dS
    float stateT[COLS], dstate[COLS], dstateT[COLS];
#pragma unroll
    for (int j = 0; j < COLS; j++) stateT[j] = dstate[j] = dstateT[j] = 0.0f;
    __shared__ __align__(16) float r[N], w[N], k[N], v[N], a[N], b[N], dy[N], sa[N], dsa[N];
    i64 ind = (i64)bb * T * C + (i64)(T - 1) * C + (i64)hh * N + i;
    float rn = r_[ind], wn = w_[ind], kn = k_[ind], vn = v_[ind], an = a_[ind], bn = b_[ind], dyn = dy_[ind],
          san = sa_[ind];
    // the gradients accumulate (+=): their old values are fetched a step ahead too, so no step waits on a load
    float gr = 0.0f, gw = 0.0f, gk = 0.0f, gv = 0.0f, ga = 0.0f, gb = 0.0f;
    if (part == 0) {
        gr = dr_[ind]; gw = dw_[ind]; gk = dk_[ind]; gv = dv_[ind]; ga = da_[ind]; gb = db_[ind];
    }
    for (int t = T - 1; t >= 0; t--, ind -= C) {
        float gr0 = gr, gw0 = gw, gk0 = gk, gv0 = gv, ga0 = ga, gb0 = gb;
        __syncthreads();
        float ri = rn, ki = kn, ai = an, bi = bn, dyi = dyn;
        float sig = 1.0f / (1.0f + expf(-wn));
        float wi = expf(W_SCALE * sig);
        if (part == 0) {
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
            if (part == 0) {
                gr = dr_[p]; gw = dw_[p]; gk = dk_[p]; gv = dv_[p]; ga = da_[p]; gb = db_[p];
            }
        }
        if ((t + 1) % CHUNK == 0 || t == T - 1) {
            const float4* snap = reinterpret_cast<const float4*>(
                    s_ + (((i64)bb * H + hh) * chunks + t / CHUNK) * (N * N) + (i64)i * N + jb);
#pragma unroll
            for (int q = 0; q < COLS / 4; q++) {
                float4 x = snap[q];
                stateT[4 * q] = x.x; stateT[4 * q + 1] = x.y; stateT[4 * q + 2] = x.z; stateT[4 * q + 3] = x.w;
            }
        }
        float iwi = 1.0f / wi;
        float dr = 0.0f, dw = 0.0f, dk = 0.0f, dv = 0.0f, db = 0.0f, dSb = 0.0f;
#pragma unroll
        for (int q = 0; q < COLS / 4; q++) {
            float v4[4], sa4[4], r4[4], dy4[4], k4[4], b4[4];
            ld4(v, jb + 4 * q, v4);
            ld4(sa, jb + 4 * q, sa4);
            ld4(r, jb + 4 * q, r4);
            ld4(dy, jb + 4 * q, dy4);
            ld4(k, jb + 4 * q, k4);
            ld4(b, jb + 4 * q, b4);
#pragma unroll
            for (int c = 0; c < 4; c++) {
                int j = 4 * q + c;
                dr += stateT[j] * dy4[c];
                stateT[j] = t == 0 ? 0.0f : (stateT[j] - ki * v4[c] - bi * sa4[c]) * iwi;
                dstate[j] += dyi * r4[c];
                dstateT[j] += ri * dy4[c];
                dw += dstateT[j] * stateT[j];
                dk += dstateT[j] * v4[c];
                dv += dstate[j] * k4[c];
                dSb += dstate[j] * b4[c];
                db += dstateT[j] * sa4[c];
            }
        }
        dr = lane_sum<L>(dr);
        dw = lane_sum<L>(dw);
        dk = lane_sum<L>(dk);
        dv = lane_sum<L>(dv);
        dSb = lane_sum<L>(dSb);
        db = lane_sum<L>(db);
        if (part == 0) {
            dr_[ind] = gr0 + dr;
            dw_[ind] = gw0 + dw * wi * W_SCALE * sig * (1.0f - sig);
            dk_[ind] = gk0 + dk;
            dv_[ind] = gv0 + dv;
            db_[ind] = gb0 + db;
            dsa[i] = dSb;
        }
        __syncthreads();
        float da = 0.0f;
#pragma unroll
        for (int q = 0; q < COLS / 4; q++) {
            float dsa4[4], w4[4], a4[4];
            ld4(dsa, jb + 4 * q, dsa4);
            ld4(w, jb + 4 * q, w4);
            ld4(a, jb + 4 * q, a4);
#pragma unroll
            for (int c = 0; c < 4; c++) {
                int j = 4 * q + c;
                da += stateT[j] * dsa4[c];
                dstate[j] = dstate[j] * w4[c] + dSb * a4[c];
                dstateT[j] = dstateT[j] * wi + ai * dsa4[c];
            }
        }
        da = lane_sum<L>(da);
        if (part == 0) da_[ind] = ga0 + da;
    }
}

#define WKV7_VARIANT(L)                                                                                              \
    extern "C" __global__ void __launch_bounds__(N * L) wkv7_forward_l##L(int T, int H, const float* r_,           \
            const float* w_, const float* k_, const float* v_, const float* a_, const float* b_, float* y_,        \
            float* s_, float* sa_) {                                                                               \
        forward<L>(T, H, r_, w_, k_, v_, a_, b_, y_, s_, sa_);                                                     \
    }                                                                                                              \
    extern "C" __global__ void __launch_bounds__(N * L) wkv7_backward_l##L(int T, int H, const float* r_,          \
            const float* w_, const float* k_, const float* v_, const float* a_, const float* b_, const float* dy_,  \
            const float* s_, const float* sa_, float* dr_, float* dw_, float* dk_, float* dv_, float* da_,         \
            float* db_) {                                                                                          \
        backward<L>(T, H, r_, w_, k_, v_, a_, b_, dy_, s_, sa_, dr_, dw_, dk_, dv_, da_, db_);                     \
    }

// dr, dwRaw, dk, dv, da, db += the exact gradient of wkv7_forward_l<L>, given dy and the saved buffers.
WKV7_VARIANT(2)
WKV7_VARIANT(4)
WKV7_VARIANT(8)
