// WKV7 chunked backward, K3: the READOUT kernel (tensor cores, tf32), parallel over chunks of TC_L = 16 steps. Given
// the forward chunk states and the backward E chain's states (K1, K2), it computes for every step
//   dr_t = S_tᵀ dy_t,  da_t = S_{t−1}ᵀ dsa_t   (readouts of the forward states),
//   dk_t = E_tᵀ v_t,   db_t = E_tᵀ sa_t        (readouts of the E states),
//   dwRaw_t from dlw by the chunk-local identity (kernels/NOTES.md, "WKV7 on the tensor cores"; the emulator
//   kernels/dev/wkv7_chunk_tc_emu.cpp, chunked()), no E⊙S product per step.
// Check and timing: kernels/dev/wkv7_tc_readout_test.cu (against the float64 serial recurrence).
//
// Launch (recommended): grid (T/16, H, B), block 256 (8 warps), dynamic shared memory RO_SMEM1 = 87,824 bytes
// (needs cudaFuncAttributeMaxDynamicSharedMemorySize; 2 CTAs per SM on the H100, __launch_bounds__(256, 2): 128
// registers, ~40 bytes spilled). In general: grid (G, H, B) with 1 ≤ G ≤ T/16; CTA x walks the CPB = ⌈(T/16)/G⌉
// consecutive chunks x·CPB.. (chunks past T/16 are skipped). With RO_SMEM2 = 149,024 bytes the kernel runs two
// stages (the next chunk's operands copied by cp.async while this one is computed); it picks the mode from the
// dynamic shared memory it was given (%dynamic_smem_size). Measured on the H100 (kernels/dev/wkv7_tc_readout_test.cu,
// B4 H32 T4096, overwrite = 1): one stage 1.65 ms at CPB 1, 1.69 at CPB 4 and 16; two stages (1 CTA per SM)
// 2.3-2.4 ms: the kernel is latency-bound (2 warps a scheduler mostly waiting on shared-memory / fixed-latency
// dependencies, ncu), so occupancy beats the in-CTA pipeline. The two-stage mode is a candidate for removal.
// S_te (for bnd) and the gradients' previous values are loaded into registers one chunk ahead (CPB > 1).
//
// Layouts: rows [B·T, H·64] (element (b, t, h, j) at ((b·T + t)·H + h)·64 + j); states fp32 [B, H, T/16, 64, 64]
// transposed (element (j, i) at j·64 + i holds S[i][j]): fstates[c] = S_{16c+15} (S_c, the start of chunk c, is
// fstates[c−1], 0 for c = 0), estates[c] = E_{16c+16} (zero for the last chunk: not read).
// dr, dk are added (+=); da, db, dwRaw are added when overwrite == 0, written when overwrite == 1.
//
// One chunk, steps t0..te (te = t0 + 15), local u = 0..15; row i = value index, column j = key index.
//   Forward side, start S_c, lg[0] = 0, lg[u+1] = lg[u] + lw_{t0+u} (fp32, per column):
//     out[u][j] = e^{lg[u+q]}[j] · ( (C S_c)[u][j] + Σ_{s ≤ u (dr) / s < u (da)} ( (C_u·sa_s) b̂_s[j] + (C_u·v_s) k̂_s[j] ) )
//     with b̂_s = b_s e^{−lg[s+1]}, k̂_s = k_s e^{−lg[s+1]}; C = dy, q = 1 (dr); C = dsa, q = 0 (da).
//   E side (the E recurrence run backwards in time, written in forward step order), start E_{te+1} = estates[c],
//   G[u] = Σ_{t' = t0+u+1 .. te+1} lw_{t'} (fp32, as lg[16] − lg[u+1] + lw_{te+1}):
//     out[u][j] = e^{G[u]}[j] · ( (C E_{te+1})[u][j] + Σ_{s ≥ u} ( (C_u·dsa_{t0+s+1}) â_s[j] + (C_u·dy_{t0+s}) r̂_s[j] ) )
//     with â_s = a_{t0+s+1} e^{−G[s]}, r̂_s = r_{t0+s} e^{−G[s]} (a, dsa, lw at step T are 0); C = v → dk, C = sa → db.
//   Each readout is two warps (columns 0..31, 32..63): (C S) (K = 64), M = [C X1ᵀ | C X2ᵀ] (16×32, K = 64, masked;
//   both warps compute it), then += M·[Ŷ1; Ŷ2] (K = 32) into the same accumulators, scaled by the query factor.
//   Every product's operands are rounded to tf32 (cvt.rna), fp32 accumulation: S_c, dy, sa, dsa in place once
//   per chunk, v and the key-scaled operands where they are written, E_{te+1} per fragment (bnd reads it exact), M in
//   registers. Decays, prefix sums (four threads a column, fp32) on the CUDA cores. The key factors e^{−lg}, e^{−G} are ≤ e^{0.6065·16} ≈ 1.6e4 (the factored form, ref = chunk start).
//   dlw_{t0+u} = Σ_{u' = u..15} (r⊙dr + [u' < 15] a_{u'+1}⊙da_{u'+1} − b⊙db − k⊙dk)_{u'} + bnd, with
//     bnd[j] = Σ_i Ê[i][j] S_te[i][j], Ê = E_{te+1}(diag ω_{te+1} + b_{te+1} a_{te+1}ᵀ), which is
//     bnd[j] = ω_{te+1}[j] Σ_i E_{te+1}[i][j] S_te[i][j] + a_{te+1}[j] Σ_i dsa_{te+1}[i] S_te[i][j]
//     (E_{te+1} b_{te+1} = dsa_{te+1}; both unrounded); S_te = fstates[c] is read into registers (L2: it is also the
//     next chunk's S_c). dwRaw = dlw · (−e^{−1/2}) σ (1 − σ).
#include "wkv7_tc.cuh"

#define RO_THREADS 256  // block size (the launch)
#define RO_LD 68  // leading dimension (floats) of the shared operands: 4 mod 32 keeps fragment loads conflict-free

// One stage (what cp.async brings for one chunk), in floats from the stage's start.
#define RO_ST 0                         // S_c transposed [64][68]; after the readouts: dr, da, dk, db [4][16][68]
#define RO_ET (RO_ST + 64 * RO_LD)      // E_{te+1} transposed [64][68]
#define RO_DY (RO_ET + 64 * RO_LD)      // dy_{t0+u} [16][68]
#define RO_SA (RO_DY + 16 * RO_LD)      // sa_{t0+u} [16][68]
#define RO_DSA (RO_SA + 16 * RO_LD)     // dsa_{t0+u}, u = 0..16 [17][68] (row 16 = dsa_{te+1}, 0 past T)
#define RO_RAW (RO_DSA + 17 * RO_LD)    // bf16 r, k, v, b, wRaw, a: [6][17][64] (row 16 of wRaw and a: step te + 1)
#define RO_STAGE (RO_RAW + 6 * 17 * 32) // floats per stage (15,300)
// The working set after the stages, in floats from its start.
#define RO_YB 0                         // b̂ [16][68]
#define RO_YK (RO_YB + 16 * RO_LD)      // k̂
#define RO_YA (RO_YK + 16 * RO_LD)      // â
#define RO_YR (RO_YA + 16 * RO_LD)      // r̂
#define RO_V (RO_YR + 16 * RO_LD)       // v_{t0+u} as fp32 [16][68]
#define RO_LG (RO_V + 16 * RO_LD)       // lg[u+1] [16][64]; later the dlw terms and their suffix sums
#define RO_LWN (RO_LG + 16 * 64)        // lw_{te+1} [64]
#define RO_BND (RO_LWN + 64)            // bnd [64]
#define RO_DSAN (RO_BND + 64)           // dsa_{te+1} before rounding [64] (for bnd)
#define RO_WORK (RO_DSAN + 64)
#define RO_SMEM1 ((RO_STAGE + RO_WORK) * 4)
#define RO_SMEM2 ((2 * RO_STAGE + RO_WORK) * 4)

#define RO_RAW_R 0
#define RO_RAW_K 1
#define RO_RAW_V 2
#define RO_RAW_B 3
#define RO_RAW_W 4
#define RO_RAW_A 5

// 4 bf16 (a uint2) → 4 floats.
__device__ __forceinline__ void ro_unpack4(const uint2& q, float (&f)[4]) {
    f[0] = __uint_as_float(q.x << 16); f[1] = __uint_as_float(q.x & 0xffff0000u);
    f[2] = __uint_as_float(q.y << 16); f[3] = __uint_as_float(q.y & 0xffff0000u);
}

// One half of a readout by one warp (see the top): acc (columns 32·half + 8·nt.., nt = 0..3, as C fragments) =
// C·Sx + mask(C·X1ᵀ | C·X2ᵀ)·[Y1; Y2]. Sx is the state transposed ([j][i], ld RO_LD), already rounded to tf32 when
// SXR (else rounded per fragment); C, X1, X2, Y1, Y2 are [16][RO_LD], already rounded to tf32.
// mode: 0 keeps s ≤ u, 1 keeps s < u, 2 keeps s ≥ u.
template <bool SXR>
__device__ __forceinline__ void ro_readout(float (&acc)[4][4], const float* C, const float* Sx, const float* X1,
                                           const float* X2, const float* Y1, const float* Y2, int mode, int half) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3, n0 = 32 * half;
    float m[4][4];
#pragma unroll
    for (int q = 0; q < 4; q++) {
        acc[q][0] = acc[q][1] = acc[q][2] = acc[q][3] = 0.0f;
        m[q][0] = m[q][1] = m[q][2] = m[q][3] = 0.0f;
    }
#pragma unroll
    for (int kk = 0; kk < 8; kk++) {
        unsigned af[4], bf[2];
        a_tf32p_mk(af, C, RO_LD, 0, 8 * kk);
#pragma unroll
        for (int nt = 0; nt < 4; nt++) {
            if (SXR) b_tf32p_nk(bf, Sx, RO_LD, 8 * kk, n0 + 8 * nt);
            else b_tf32_nk(bf, Sx, RO_LD, 8 * kk, n0 + 8 * nt);
            mma_tf32(acc[nt], af, bf);
        }
#pragma unroll
        for (int nt = 0; nt < 2; nt++) {
            b_tf32p_nk(bf, X1, RO_LD, 8 * kk, 8 * nt);
            mma_tf32(m[nt], af, bf);
            b_tf32p_nk(bf, X2, RO_LD, 8 * kk, 8 * nt);
            mma_tf32(m[2 + nt], af, bf);
        }
    }
    // mask: element (u, s) of tile q: u = g (c0, c1) / g + 8 (c2, c3), s = 8·(q & 1) + 2t (+1)
#pragma unroll
    for (int q = 0; q < 4; q++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int u = g + (e >> 1) * 8, s = 8 * (q & 1) + 2 * t + (e & 1);
            const bool keep = mode == 0 ? s <= u : mode == 1 ? s < u : s >= u;
            if (!keep) m[q][e] = 0.0f;
        }
    // C fragments → A fragments (tile q is k-step q): a0 = M(g, t), a1 = M(g+8, t), a2 = M(g, t+4), a3 = M(g+8, t+4);
    // M(g, t) sits in lane 4g + (t >> 1), element t & 1.
    const int src1 = (lane & ~3) | (t >> 1), src2 = src1 + 2;
    const bool odd = t & 1;
#pragma unroll
    for (int q = 0; q < 4; q++) {
        const float x0 = __shfl_sync(0xffffffffu, m[q][0], src1), x1 = __shfl_sync(0xffffffffu, m[q][1], src1);
        const float x2 = __shfl_sync(0xffffffffu, m[q][2], src1), x3 = __shfl_sync(0xffffffffu, m[q][3], src1);
        const float y0 = __shfl_sync(0xffffffffu, m[q][0], src2), y1 = __shfl_sync(0xffffffffu, m[q][1], src2);
        const float y2 = __shfl_sync(0xffffffffu, m[q][2], src2), y3 = __shfl_sync(0xffffffffu, m[q][3], src2);
        unsigned af[4], bf[2];
        af[0] = tf32_of(odd ? x1 : x0);
        af[1] = tf32_of(odd ? x3 : x2);
        af[2] = tf32_of(odd ? y1 : y0);
        af[3] = tf32_of(odd ? y3 : y2);
        const float* Y = q < 2 ? Y1 : Y2;
#pragma unroll
        for (int nt = 0; nt < 4; nt++) {
            b_tf32p_kn(bf, Y, RO_LD, 8 * (q & 1), n0 + 8 * nt);
            mma_tf32(acc[nt], af, bf);
        }
    }
}

__device__ __forceinline__ void ro_zero16(float* d) { *reinterpret_cast<float4*>(d) = make_float4(0.f, 0.f, 0.f, 0.f); }

// The cp.async copies of chunk cc's operands into stage `sg` (every thread calls it; plain zero stores where the
// source does not exist). Visible after copy_wait() and a barrier.
__device__ __forceinline__ void ro_load_stage(float* sg, int cc, int nc, int T, int H, int bb, int h,
                                              const unsigned short* r, const unsigned short* wRaw,
                                              const unsigned short* k, const unsigned short* v, const unsigned short* a,
                                              const unsigned short* b, const float* dy, const float* fstates,
                                              const float* sa, const float* estates, const float* dsa) {
    const int tid = threadIdx.x;
    const i64 rs = (i64)H * GOSLING_HEAD;
    const i64 row0 = ((i64)bb * T + (i64)cc * TC_L) * rs + (i64)h * GOSLING_HEAD;
    const i64 st = ((i64)bb * H + h) * (nc);
    const bool hasNext = cc + 1 < nc;
    for (int q = tid; q < 64 * 16; q += 256) {  // 64 rows × 16 float4
        const int row = q >> 4, col = (q & 15) * 4;
        if (cc > 0) copy16(sg + RO_ST + row * RO_LD + col, fstates + (st + cc - 1) * 4096 + row * 64 + col);
        else ro_zero16(sg + RO_ST + row * RO_LD + col);
        if (hasNext) copy16(sg + RO_ET + row * RO_LD + col, estates + (st + cc) * 4096 + row * 64 + col);
        else ro_zero16(sg + RO_ET + row * RO_LD + col);
    }
    {  // 16 rows × 16 float4, one per thread
        const int row = tid >> 4, col = (tid & 15) * 4;
        const i64 go = row0 + row * rs + col;
        copy16(sg + RO_DY + row * RO_LD + col, dy + go);
        copy16(sg + RO_SA + row * RO_LD + col, sa + go);
        copy16(sg + RO_DSA + row * RO_LD + col, dsa + go);
    }
    if (tid < 16) {
        if (hasNext) copy16(sg + RO_DSA + 16 * RO_LD + tid * 4, dsa + row0 + 16 * rs + tid * 4);
        else ro_zero16(sg + RO_DSA + 16 * RO_LD + tid * 4);
    }
    // bf16 rows: 128 bytes = 8 × 16 bytes; r, k, v, b 16 rows, wRaw and a 17 rows
    unsigned short* raw = reinterpret_cast<unsigned short*>(sg + RO_RAW);
    const unsigned short* src[6] = {r, k, v, b, wRaw, a};
#pragma unroll
    for (int x = 0; x < 6; x++) {
        const int rows = x >= RO_RAW_W ? 17 : 16;
        for (int q = tid; q < rows * 8; q += 256) {
            const int row = q >> 3, col = (q & 7) * 8;
            unsigned short* d = raw + (x * 17 + row) * 64 + col;
            if (row < 16 || hasNext) copy16(d, src[x] + row0 + row * rs + col);
            else ro_zero16(reinterpret_cast<float*>(d));
        }
    }
}

extern "C" __global__ void __launch_bounds__(256, 2) wkv7_tc_readout(
    int T, int H, const unsigned short* r, const unsigned short* wRaw, const unsigned short* k,
    const unsigned short* v, const unsigned short* a, const unsigned short* b, const float* dy, const float* fstates,
    const float* sa, const float* estates, const float* dsa, float* dr, float* dwRaw, float* dk, float* da, float* db,
    int overwrite) {
    extern __shared__ __align__(16) float sm[];
    unsigned dynSmem;
    asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(dynSmem));
    const bool two = dynSmem >= RO_SMEM2;
    float* W = sm + (two ? 2 : 1) * RO_STAGE;  // the working set
    const int h = blockIdx.y, bb = blockIdx.z, nc = T / TC_L, tid = threadIdx.x;
    const int cpb = (nc + gridDim.x - 1) / gridDim.x;
    const int cBeg = blockIdx.x * cpb, cEnd = min(nc, cBeg + cpb);
    if (cBeg >= cEnd) return;
    const i64 rs = (i64)H * GOSLING_HEAD;
    const i64 st = ((i64)bb * H + h) * nc;
    const int warp = tid >> 5, lane = tid & 31, g = lane >> 2, tq = lane & 3;
    const int rd = warp >> 1, half = warp & 1;    // readout (dr, da, dk, db) and its column half
    const int u = tid >> 4, c4 = (tid & 15) * 4;  // elementwise ownership: row u, columns c4..c4+3
    const int bj = tid >> 2, bq = tid & 3;        // column scans and bnd: column bj, quarter bq (rows / i 16·bq..)
    const int bi0 = bq * 16;

    // Registers loaded one chunk ahead (their global latency hides behind a chunk's work): S_te's quarter column for
    // bnd and the gradients' previous values (da, db, dwRaw in accumulate mode only).
    float4 ste[4], pdr, pdk, pda, pdb, pdw;
    auto loadAhead = [&](int cc, float4 (&s4)[4], float4& xr, float4& xk, float4& xa, float4& xb, float4& xw) {
        const float4* p = reinterpret_cast<const float4*>(fstates + (st + cc) * 4096 + bj * 64 + bi0);
        const bool nx = cc + 1 < nc;
#pragma unroll
        for (int q = 0; q < 4; q++) s4[q] = nx ? __ldg(p + q) : make_float4(0.f, 0.f, 0.f, 0.f);
        const i64 e = ((i64)bb * T + (i64)cc * TC_L + u) * rs + (i64)h * GOSLING_HEAD + c4;
        xr = *reinterpret_cast<const float4*>(dr + e);
        xk = *reinterpret_cast<const float4*>(dk + e);
        if (!overwrite) {
            xa = *reinterpret_cast<const float4*>(da + e);
            xb = *reinterpret_cast<const float4*>(db + e);
            xw = *reinterpret_cast<const float4*>(dwRaw + e);
        } else xa = xb = xw = make_float4(0.f, 0.f, 0.f, 0.f);
    };
    loadAhead(cBeg, ste, pdr, pdk, pda, pdb, pdw);

    if (two) {
        ro_load_stage(sm, cBeg, nc, T, H, bb, h, r, wRaw, k, v, a, b, dy, fstates, sa, estates, dsa);
        copy_commit();
    }
    for (int c = cBeg; c < cEnd; c++) {
        float* S = sm + (two ? ((c - cBeg) & 1) * RO_STAGE : 0);  // this chunk's stage
        const bool hasNext = c + 1 < nc;
        const i64 eo = ((i64)bb * T + (i64)c * TC_L + u) * rs + (i64)h * GOSLING_HEAD + c4;
        if (!two) {
            __syncthreads();  // the previous chunk is done with the stage
            ro_load_stage(S, c, nc, T, H, bb, h, r, wRaw, k, v, a, b, dy, fstates, sa, estates, dsa);
            copy_commit();
        }
        copy_wait();
        __syncthreads();  // the stage is complete; the previous chunk is done with the other stage and the working set
        if (two && c + 1 < cEnd) {
            ro_load_stage(sm + ((c + 1 - cBeg) & 1) * RO_STAGE, c + 1, nc, T, H, bb, h, r, wRaw, k, v, a, b, dy, fstates,
                          sa, estates, dsa);
            copy_commit();
        }
        float4 nste[4], npdr, npdk, npda, npdb, npdw;
        if (c + 1 < cEnd) loadAhead(c + 1, nste, npdr, npdk, npda, npdb, npdw);
        const unsigned short* raw = reinterpret_cast<const unsigned short*>(S + RO_RAW);
        auto rawq = [&](int x, int row) { return *reinterpret_cast<const uint2*>(raw + (x * 17 + row) * 64 + c4); };

        // ---- round the mma operands in place (S_c, dy, sa, dsa; E stays exact for bnd and is rounded per fragment);
        //      v as tf32 into the working set, raw lw, lw_{te+1}, dsa_{te+1} unrounded for bnd
        {
            auto round4 = [](float* p) {
                float4 x = *reinterpret_cast<float4*>(p);
                *reinterpret_cast<float4*>(p) = make_float4(tf32_round(x.x), tf32_round(x.y), tf32_round(x.z), tf32_round(x.w));
            };
#pragma unroll
            for (int q = 0; q < 4; q++) {
                const int e = tid + 256 * q;
                round4(S + RO_ST + (e >> 4) * RO_LD + (e & 15) * 4);
            }
            const int o = (tid >> 4) * RO_LD + (tid & 15) * 4;
            round4(S + RO_DY + o);
            round4(S + RO_SA + o);
            round4(S + RO_DSA + o);
            if (tid < 16) {
                float* p = S + RO_DSA + 16 * RO_LD + 4 * tid;
                *reinterpret_cast<float4*>(W + RO_DSAN + 4 * tid) = *reinterpret_cast<const float4*>(p);
                round4(p);
            }
            float f[4];
            ro_unpack4(rawq(RO_RAW_V, u), f);
            *reinterpret_cast<float4*>(W + RO_V + u * RO_LD + c4) =
                make_float4(tf32_round(f[0]), tf32_round(f[1]), tf32_round(f[2]), tf32_round(f[3]));
            ro_unpack4(rawq(RO_RAW_W, u), f);
            *reinterpret_cast<float4*>(W + RO_LG + u * 64 + c4) =
                make_float4(tc_log_decay(f[0]), tc_log_decay(f[1]), tc_log_decay(f[2]), tc_log_decay(f[3]));
            if (tid < 64) W[RO_LWN + tid] = hasNext ? tc_log_decay(bf16_f32(raw[(RO_RAW_W * 17 + 16) * 64 + tid])) : 0.0f;
        }
        __syncthreads();
        // ---- prefix sums per column, lg[u+1]: four threads a column (rows 4·bq..4·bq+3), fp32
        {
            float x[4];
#pragma unroll
            for (int q = 0; q < 4; q++) x[q] = W[RO_LG + (4 * bq + q) * 64 + bj];
            x[1] += x[0]; x[2] += x[1]; x[3] += x[2];
            float incl = x[3], n = __shfl_up_sync(0xffffffffu, incl, 1);
            if (bq >= 1) incl += n;
            n = __shfl_up_sync(0xffffffffu, incl, 2);
            if (bq >= 2) incl += n;
            const float excl = incl - x[3];
#pragma unroll
            for (int q = 0; q < 4; q++) W[RO_LG + (4 * bq + q) * 64 + bj] = excl + x[q];
        }
        __syncthreads();
        // ---- the key-scaled operands (tf32); G[u] = lg[16] − lg[u+1] + lw_{te+1}
        {
            float fr[4], fk[4], fb[4], fa[4];
            ro_unpack4(rawq(RO_RAW_R, u), fr); ro_unpack4(rawq(RO_RAW_K, u), fk);
            ro_unpack4(rawq(RO_RAW_B, u), fb); ro_unpack4(rawq(RO_RAW_A, u + 1), fa);
            float yb[4], yk[4], ya[4], yr[4];
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int j = c4 + e;
                const float lgu = W[RO_LG + u * 64 + j];
                const float gu = (W[RO_LG + 15 * 64 + j] - lgu) + W[RO_LWN + j];
                const float kf = expf(-lgu), kg = expf(-gu);
                yb[e] = tf32_round(fb[e] * kf); yk[e] = tf32_round(fk[e] * kf);
                ya[e] = tf32_round(fa[e] * kg); yr[e] = tf32_round(fr[e] * kg);
            }
            *reinterpret_cast<float4*>(W + RO_YB + u * RO_LD + c4) = make_float4(yb[0], yb[1], yb[2], yb[3]);
            *reinterpret_cast<float4*>(W + RO_YK + u * RO_LD + c4) = make_float4(yk[0], yk[1], yk[2], yk[3]);
            *reinterpret_cast<float4*>(W + RO_YA + u * RO_LD + c4) = make_float4(ya[0], ya[1], ya[2], ya[3]);
            *reinterpret_cast<float4*>(W + RO_YR + u * RO_LD + c4) = make_float4(yr[0], yr[1], yr[2], yr[3]);
        }
        __syncthreads();

        // ---- the four readouts, two warps each
        float acc[4][4];
        if (rd == 0) ro_readout<true>(acc, S + RO_DY, S + RO_ST, S + RO_SA, W + RO_V, W + RO_YB, W + RO_YK, 0, half);       // dr
        else if (rd == 1) ro_readout<true>(acc, S + RO_DSA, S + RO_ST, S + RO_SA, W + RO_V, W + RO_YB, W + RO_YK, 1, half); // da
        else if (rd == 2) ro_readout<false>(acc, W + RO_V, S + RO_ET, S + RO_DSA + RO_LD, S + RO_DY, W + RO_YA, W + RO_YR, 2, half); // dk
        else ro_readout<false>(acc, S + RO_SA, S + RO_ET, S + RO_DSA + RO_LD, S + RO_DY, W + RO_YA, W + RO_YR, 2, half);    // db
        // query factors: e^{lg[u+1]} (dr), e^{lg[u]} (da), e^{G[u]} (dk, db)
#pragma unroll
        for (int nt = 0; nt < 4; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int uu = g + (e >> 1) * 8, j = 32 * half + 8 * nt + 2 * tq + (e & 1);
                float lq;
                if (rd == 0) lq = W[RO_LG + uu * 64 + j];
                else if (rd == 1) lq = uu > 0 ? W[RO_LG + (uu - 1) * 64 + j] : 0.0f;
                else lq = (W[RO_LG + 15 * 64 + j] - W[RO_LG + uu * 64 + j]) + W[RO_LWN + j];
                acc[nt][e] *= expf(lq);
            }
        __syncthreads();  // every warp is done with S_c

        // ---- outputs to shared (S_c's space), and the chunk-boundary term bnd
        float* O = S + RO_ST;  // [4][16][RO_LD]: dr, da, dk, db
#pragma unroll
        for (int nt = 0; nt < 4; nt++) c_store(acc[nt], O + rd * 16 * RO_LD, RO_LD, 0, 32 * half + 8 * nt);
        {
            float p1 = 0.0f, p2 = 0.0f;
#pragma unroll
            for (int q = 0; q < 4; q++) {
                const float4 s = ste[q];
                const float* e4 = S + RO_ET + bj * RO_LD + bi0 + 4 * q;
                const float* d4 = W + RO_DSAN + bi0 + 4 * q;
                p1 = fmaf(e4[0], s.x, p1); p1 = fmaf(e4[1], s.y, p1); p1 = fmaf(e4[2], s.z, p1); p1 = fmaf(e4[3], s.w, p1);
                p2 = fmaf(d4[0], s.x, p2); p2 = fmaf(d4[1], s.y, p2); p2 = fmaf(d4[2], s.z, p2); p2 = fmaf(d4[3], s.w, p2);
            }
            p1 += __shfl_xor_sync(0xffffffffu, p1, 1);
            p2 += __shfl_xor_sync(0xffffffffu, p2, 1);
            p1 += __shfl_xor_sync(0xffffffffu, p1, 2);
            p2 += __shfl_xor_sync(0xffffffffu, p2, 2);
            if (bq == 0) {
                const float an = bf16_f32(raw[(RO_RAW_A * 17 + 16) * 64 + bj]);  // 0 past T (zero-filled)
                W[RO_BND + bj] = expf(W[RO_LWN + bj]) * p1 + an * p2;
            }
        }
        __syncthreads();

        // ---- the gradients to global (coalesced rows), the dlw terms to shared
        {
            const float* Odr = O + u * RO_LD + c4;
            const float* Oda = O + 16 * RO_LD + u * RO_LD + c4;
            const float* Odk = O + 32 * RO_LD + u * RO_LD + c4;
            const float* Odb = O + 48 * RO_LD + u * RO_LD + c4;
            float fr[4], fk[4], fb[4], fa[4], term[4];
            ro_unpack4(rawq(RO_RAW_R, u), fr); ro_unpack4(rawq(RO_RAW_K, u), fk);
            ro_unpack4(rawq(RO_RAW_B, u), fb); ro_unpack4(rawq(RO_RAW_A, u + 1), fa);
#pragma unroll
            for (int e = 0; e < 4; e++) {
                term[e] = fr[e] * Odr[e] - fb[e] * Odb[e] - fk[e] * Odk[e];
                if (u < 15) term[e] += fa[e] * Oda[RO_LD + e];
            }
            *reinterpret_cast<float4*>(W + RO_LG + u * 64 + c4) = make_float4(term[0], term[1], term[2], term[3]);
            // overwrite: pda, pdb are 0
            *reinterpret_cast<float4*>(dr + eo) = make_float4(pdr.x + Odr[0], pdr.y + Odr[1], pdr.z + Odr[2], pdr.w + Odr[3]);
            *reinterpret_cast<float4*>(dk + eo) = make_float4(pdk.x + Odk[0], pdk.y + Odk[1], pdk.z + Odk[2], pdk.w + Odk[3]);
            *reinterpret_cast<float4*>(da + eo) = make_float4(pda.x + Oda[0], pda.y + Oda[1], pda.z + Oda[2], pda.w + Oda[3]);
            *reinterpret_cast<float4*>(db + eo) = make_float4(pdb.x + Odb[0], pdb.y + Odb[1], pdb.z + Odb[2], pdb.w + Odb[3]);
        }
        __syncthreads();
        // ---- dlw = bnd + the reverse cumulative sum of the terms (fp32): four threads a column, as the prefix sums
        {
            float x[4];
#pragma unroll
            for (int q = 0; q < 4; q++) x[q] = W[RO_LG + (4 * bq + q) * 64 + bj];
            x[2] += x[3]; x[1] += x[2]; x[0] += x[1];
            float incl = x[0], n = __shfl_down_sync(0xffffffffu, incl, 1);
            if (bq <= 2) incl += n;
            n = __shfl_down_sync(0xffffffffu, incl, 2);
            if (bq <= 1) incl += n;
            const float excl = (incl - x[0]) + W[RO_BND + bj];
#pragma unroll
            for (int q = 0; q < 4; q++) W[RO_LG + (4 * bq + q) * 64 + bj] = excl + x[q];
        }
        __syncthreads();
        // ---- dwRaw = dlw · (−e^{−1/2}) σ (1 − σ)   (overwrite: pdw is 0)
        {
            float fw[4], o[4];
            ro_unpack4(rawq(RO_RAW_W, u), fw);
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const float sg = 1.0f / (1.0f + expf(-fw[e]));
                o[e] = W[RO_LG + u * 64 + c4 + e] * (TC_W_SCALE * sg * (1.0f - sg));
            }
            *reinterpret_cast<float4*>(dwRaw + eo) = make_float4(pdw.x + o[0], pdw.y + o[1], pdw.z + o[2], pdw.w + o[3]);
        }
        if (c + 1 < cEnd) {
#pragma unroll
            for (int q = 0; q < 4; q++) ste[q] = nste[q];
            pdr = npdr; pdk = npdk; pda = npda; pdb = npdb; pdw = npdw;
        }
        // the next iteration's first barrier orders these reads of the working set and the stage before their reuse
    }
}
