// WKV7 in chunks of 16 steps on the tensor cores: the two kernels that carry a state along T (the forward, and the
// backward's chain of E = dL/dS). The algorithm, its accuracy and the choice of precisions: kernels/NOTES.md, "WKV7
// on the tensor cores"; the CPU emulator kernels/dev/wkv7_chunk_tc_emu.cpp (Engine::run) is the same computation.
// The backward's readouts (dr, da, dk, db, dwRaw), parallel over chunks, are wkv7_tc_readout.cu.
//
// One head (row i = value index, column j = key index), per chunk of steps u = 0..15 with start state S_c,
// lg[0] = 0, lg[u+1] = lg[u] + ln ω_u (fp32 prefix per column), so the decay from after key step s to query point q
// is e^{lg[q] − lg[s+1]}:
//   pairs (bf16):  A_ab[u][s] = Σ_j â_u b̌_s (s < u), A_ak likewise with ǩ_s, A_rb and A_rk with r̂_u (s ≤ u), where
//                  â_u = a_u e^{lg[u]}, r̂_u = r_u e^{lg[u+1]}, b̌_s = b_s e^{−lg[s+1]}, ǩ_s = k_s e^{−lg[s+1]}
//   Tinv = (I − A_ab)^{-1} (fp32 forward substitution);  W = Tinv Â,  U = Tinv (A_ak V)   (bf16)
//   chain (tf32):  SA = U + W S_cᵀ   (sa of every step: SA[u][i] = (S_{u−1} a_u)_i)
//   out (tf32):    Y = R̂ S_cᵀ + A_rb SA + A_rk V
//   chain (tf32):  S_{c+1} = S_c diag(e^{lg[16]}) + SAᵀ B̃ + Vᵀ K̃,  B̃_s = b_s e^{lg[16] − lg[s+1]}, K̃ likewise
// The backward's E chain is the same engine run backwards in time (E_t = E_{t+1}(diag ω_{t+1} + b_{t+1} a_{t+1}ᵀ) +
// dy_t r_tᵀ): engine step u of the chunk of steps t0..t0+15 is t = t0 + 15 − u, with ln ω' = ln ω_{t+1}, a' = b_{t+1},
// b' = a_{t+1} (zero at t + 1 = T), v' = dy_t, k' = r_t and the query r' = k_t; its y is dv_t = E_t k_t, its sa is
// dsa_{t+1} = E_{t+1} b_{t+1}.
//
// Layout: grid (H, B), 512 threads in four groups of 4 warps. Only SA and the state update are serial across
// chunks; everything else of a chunk depends on its inputs alone, or on the chunk's start state and SA. So:
//  * the chain warps (0–3): warp w holds the state rows i = 16w..16w+15 in registers, as the accumulator fragments
//    of S (i × j), and computes SAᵀ = S Wᵀ + Uᵀ and the update, in the transposed orientation, so that S and SAᵀ
//    feed the next products straight from registers: an accumulator fragment's columns (2t, 2t+1) become an A
//    fragment's k positions (t, t+4), and the B operand is read with the same permutation of k (…_perm below).
//  * the output warps (12–15) get the chunk's start state and SA from the chain warps (a handoff in shared memory,
//    each lane its own fragments) and compute Yᵀ = S R̂ᵀ + SAᵀ A_rbᵀ + (A_rk V)ᵀ and every store to global memory.
//  * two prep groups (warps 4–7 and 8–11) take turns: group G prepares chunks G, G + 2, … (inputs staged by cp.async
//    two chunks ahead, decays, pair products, Tinv, W, U, A_rk V) into its own buffer.
//    Named barriers hand the buffers over.
// T must be a multiple of 16 (the launcher uses the serial kernels otherwise).
//
// wkv7_tc_forward: r, wRaw, k, v, a, b bf16 [B·T, H·64] → y bf16, sa bf16 [B·T, H·64] and the state after each
// chunk, fstates bf16 [B, H, T/16, 64, 64] transposed (element (j, i) = S[i][j]): wkv7.cu's saved layout, but bf16
// (rounded to nearest even; the chain itself carries S in fp32), so only wkv7_tc_readout.cu reads it.
// wkv7_tc_backward_chain: r, wRaw, k, a, b, dy bf16 → dv += E_t k_t; dsa_t = E_t b_t (fp32, dsa_0 = 0: unused,
// S_{−1} = 0); estates bf16 [B, H, T/16, 64, 64] transposed, estates[c] = E_{16c+16} (the E chain's start state of
// chunk c, zero for the last; rounded to nearest even as the forward's states).
#include "wkv7_tc.cuh"

#define TN 64
#define LDA 68   // 4 mod 32
#define LDW 72   // rows read as float2 pairs along k by the chain: 8 mod 32
#define LDP 20   // 16×16 pair matrices
#define LDQ 24   // 16×16 read as float2 pairs along k
#define TC_THREADS 512

// What the chain warps read of a chunk (one per prep group).
struct TcBuffer {
    float w[TC_L][LDW];     // W = Tinv Â           [u][j]
    float rq[TC_L][LDW];    // R̂                    [u][j]
    float u[TC_L][LDA];     // U = Tinv A_ak V      [u][i]
    float y0[TC_L][LDA];    // A_rk V               [u][i]
    float bt[TC_L][LDA];    // B̃                    [s][j]
    float kt[TC_L][LDA];    // K̃                    [s][j]
    float v[TC_L][LDA];     // V                    [s][i]
    float arb[TC_L][LDQ];   // A_rb                 [u][s]
    float gamma[TN];        // e^{lg[16]}
};

// A prep group's own working space.
struct TcScratch {
    float aq[TC_L][LDA];    // Â                    [u][j]
    float bk[TC_L][LDA];    // b̌                    [s][j]
    float kk[TC_L][LDA];    // ǩ                    [s][j]
    float pair[3][TC_L][LDP];  // A_ab, A_ak, A_rk  [u][s]
    float tinv[TC_L][LDP];
    float x[TC_L][LDA];     // A_ak V               [u][i]
};

// A prep group's inputs of one chunk, copied as they are (tensors: ln ω's wRaw, a, b, k, r, v; the backward's
// engine inputs wRaw, a', b', k', r' from their source rows, and v' = dy).
struct TcStage {
    unsigned short raw[6][TC_L][TN];
};

// Chain warps → output warps: the chunk's start state and SA, as each chain lane's accumulator fragments.
struct TcHandoff {
    float4 s[4][8][32];    // [warp][column tile][lane]
    float4 sa[4][2][32];
};

struct TcShared {
    TcBuffer buf[2];
    TcScratch scratch[2];
    TcStage stage[2];
    TcHandoff handoff[2];
};

// Named barriers (0 is __syncthreads), two of each (one per buffer): FULL (prep group → chain warps, 256 threads),
// EMPTY (chain and output warps → prep group: buffer free, 384), GROUP (within a prep group, 128), READY (chain →
// output warps: handoff written, 256), FREE (output → chain warps: handoff read, 256).
#define BAR_FULL 1
#define BAR_EMPTY 3
#define BAR_GROUP 5
#define BAR_READY 7
#define BAR_FREE 9

__device__ __forceinline__ void bar_sync(int id, int count) {
    asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(count) : "memory");
}
__device__ __forceinline__ void bar_arrive(int id, int count) {
    asm volatile("bar.arrive %0, %1;" ::"r"(id), "r"(count) : "memory");
}

// The k permutation of the chain's products: k position t of a fragment is index 2t, position t + 4 is 2t + 1 (what
// an accumulator fragment holds in its columns). B[k][n] read at p[n·ld + k] as one float2 per lane.
// The chain's operands in shared memory are stored already rounded to tf32 (tf32_round), so these loaders only move
// bits.
__device__ __forceinline__ void b_tf32_nk_perm(unsigned (&b)[2], const float* p, int ld, int k0, int n0) {
    const float2 x = *reinterpret_cast<const float2*>(p + (n0 + tc_g()) * ld + k0 + 2 * tc_t());
    b[0] = __float_as_uint(x.x);
    b[1] = __float_as_uint(x.y);
}
// B[k][n] at p[k·ld + n], k permuted.
__device__ __forceinline__ void b_tf32_kn_perm(unsigned (&b)[2], const float* p, int ld, int k0, int n0) {
    const float* q = p + (k0 + 2 * tc_t()) * ld + n0 + tc_g();
    b[0] = __float_as_uint(q[0]);
    b[1] = __float_as_uint(q[ld]);
}
// A[m][k] at p[k·ld + m], k permuted.
__device__ __forceinline__ void a_tf32_km_perm(unsigned (&a)[4], const float* p, int ld, int m0, int k0) {
    const float* q = p + (k0 + 2 * tc_t()) * ld + m0 + tc_g();
    a[0] = __float_as_uint(q[0]);
    a[1] = __float_as_uint(q[8]);
    a[2] = __float_as_uint(q[ld]);
    a[3] = __float_as_uint(q[ld + 8]);
}
// An accumulator fragment (m × 8 columns) as the A fragment of k positions (t, t + 4) = its columns (2t, 2t + 1).
__device__ __forceinline__ void a_from_acc(unsigned (&a)[4], const float (&c)[4]) {
    a[0] = tf32_of(c[0]);
    a[1] = tf32_of(c[2]);
    a[2] = tf32_of(c[1]);
    a[3] = tf32_of(c[3]);
}

// Issues the cp.async copies of chunk c's inputs into a stage (128 threads of a prep group, p = 0..127). Forward:
// rows 16c..16c+15 of wRaw, a, b, k, r, v. Backward (engine row u is step t = 16c + 15 − u, stage row 15 − u): rows
// t + 1 of wRaw, b, a (as ln ω', a', b'; the row past T is not copied), rows t of r, k, dy (as k', r', v').
template <bool REV>
__device__ __forceinline__ void stage_chunk(TcStage& sg, int p, int c, int T, int H, int bb, int h,
                                            const unsigned short* r, const unsigned short* wRaw,
                                            const unsigned short* k, const unsigned short* v,
                                            const unsigned short* a, const unsigned short* b,
                                            const unsigned short* dy) {
    const int stride = H * TN;
    const i64 row0 = (i64)bb * T + 16 * c;
#pragma unroll
    for (int q = 0; q < 6; q++) {
        const int idx = p + 128 * q;
        const int x = idx >> 7, row = (idx >> 3) & 15, part = idx & 7;
        const int shift = REV && x < 3 ? 1 : 0;
        const unsigned short* src = x == 0 ? wRaw : x == 1 ? (REV ? b : a) : x == 2 ? (REV ? a : b)
                                  : x == 3 ? (REV ? r : k) : x == 4 ? (REV ? k : r) : (REV ? dy : v);
        if (16 * c + row + shift < T)
            copy16(&sg.raw[x][row][8 * part], src + (row0 + row + shift) * stride + h * TN + 8 * part);
    }
    copy_commit();
}

// The decays of one column j over engine rows u0..u0+7 (lg prefix across the two half-columns by a shuffle) and the
// decayed operands. last: the backward's first chunk, whose engine row 0 (t = T − 1) has no transition
// (ln ω' = 0, a' = b' = 0; its stage row was not copied).
template <bool REV>
__device__ __forceinline__ void prepare_column(const TcStage& sg, TcBuffer& bf, TcScratch& sc, int u0, int j,
                                               bool last) {
    // every load first: the stores below may alias the stage as far as the compiler knows
    float wv[8], av[8], bv[8], kv[8], rv[8], vv[8];
#pragma unroll
    for (int q = 0; q < 8; q++) {
        const int u = u0 + q, row = REV ? 15 - u : u;
        wv[q] = bf16_f32(sg.raw[0][row][j]);
        av[q] = bf16_f32(sg.raw[1][row][j]);
        bv[q] = bf16_f32(sg.raw[2][row][j]);
        kv[q] = bf16_f32(sg.raw[3][row][j]);
        rv[q] = bf16_f32(sg.raw[4][row][j]);
        vv[q] = bf16_f32(sg.raw[5][row][j]);
    }
    if (REV && last && u0 == 0) wv[0] = av[0] = bv[0] = 0.0f;  // t = T − 1: no transition (the row was not copied)
    float lg1[8], acc = 0.0f;
#pragma unroll
    for (int q = 0; q < 8; q++) {
        acc += REV && last && u0 + q == 0 ? 0.0f : tc_log_decay(wv[q]);
        lg1[q] = acc;  // lg[u + 1] within the half
    }
    const float other = __shfl_xor_sync(0xffffffffu, acc, 16);
    const float base = u0 == 0 ? 0.0f : other, lend = acc + other;
    const float gamma = __expf(lend);
    // e^{lg[u]}, e^{lg[u+1]} and its reciprocal (≤ e^{0.61·16} ≈ 1.6e4); the chain's operands pre-rounded to tf32
    float e0 = __expf(base);
#pragma unroll
    for (int q = 0; q < 8; q++) {
        const int u = u0 + q;
        const float e1 = __expf(base + lg1[q]), key = rcp_approx(e1), tail = gamma * key;
        sc.aq[u][j] = av[q] * e0;
        bf.rq[u][j] = tf32_round(rv[q] * e1);
        sc.bk[u][j] = bv[q] * key;
        sc.kk[u][j] = kv[q] * key;
        bf.bt[u][j] = tf32_round(bv[q] * tail);
        bf.kt[u][j] = tf32_round(kv[q] * tail);
        bf.v[u][j] = tf32_round(vv[q]);
        e0 = e1;
    }
    if (u0 == 0) bf.gamma[j] = gamma;
}

// Pair product wg of a prep group (K = 64, bf16), masked: A_ab, A_ak strict (s < u); A_rb, A_rk with s ≤ u.
__device__ __forceinline__ void pair_product(TcBuffer& bf, TcScratch& sc, int wg) {
    const float* q = wg < 2 ? &sc.aq[0][0] : &bf.rq[0][0];
    const int ldq = wg < 2 ? LDA : LDW;
    const float* key = (wg & 1) == 0 ? &sc.bk[0][0] : &sc.kk[0][0];
    float c0[4] = {0, 0, 0, 0}, c1[4] = {0, 0, 0, 0};
#pragma unroll
    for (int k0 = 0; k0 < TN; k0 += 16) {
        unsigned fa[4], fb0[2], fb1[2];
        a_bf16_mk(fa, q, ldq, 0, k0);
        b_bf16_nk(fb0, key, LDA, k0, 0);
        b_bf16_nk(fb1, key, LDA, k0, 8);
        mma_bf16(c0, fa, fb0);
        mma_bf16(c1, fa, fb1);
    }
    const int g = tc_g(), t = tc_t();
    const bool strict = wg < 2;
    float* p = wg == 2 ? &bf.arb[0][0] : &sc.pair[wg == 3 ? 2 : wg][0][0];
    const int ld = wg == 2 ? LDQ : LDP;
#pragma unroll
    for (int half = 0; half < 2; half++) {
        const float* c = half ? c1 : c0;
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int m = g + 8 * (e >> 1), s = 8 * half + 2 * t + (e & 1);
            const bool keep = strict ? s < m : s <= m;
            p[m * ld + s] = keep ? (wg == 2 ? tf32_round(c[e]) : c[e]) : 0.0f;
        }
    }
}

// Tinv = (I − A_ab)^{-1} by forward substitution, fp32: lane s (< 16) the column s.
__device__ __forceinline__ void unit_lower_inverse(TcScratch& sc) {
    const int lane = threadIdx.x & 31, s = lane & 15;
    float col[TC_L];
#pragma unroll
    for (int u = 0; u < TC_L; u++) col[u] = u == s ? 1.0f : 0.0f;
#pragma unroll
    for (int u = 1; u < TC_L; u++) {
        float acc0 = 0.0f, acc1 = 0.0f;
#pragma unroll
        for (int m = 0; m < u; m++) {
            const float am = sc.pair[0][u][m];
            if (m & 1) acc1 = fmaf(am, col[m], acc1); else acc0 = fmaf(am, col[m], acc0);
        }
        if (u > s) col[u] = acc0 + acc1;
    }
    if (lane < 16) {
#pragma unroll
        for (int u = 0; u < TC_L; u++) sc.tinv[u][s] = col[u];
    }
}

// c += A (16×16 at a, [m][k]) · B (16 × 8 columns n0.. of b, [k][n]), bf16, one k step.
__device__ __forceinline__ void mma16_bf16(float (&c)[4], const float* a, int lda, const float* b, int ldb, int n0) {
    unsigned fa[4], fb[2];
    a_bf16_mk(fa, a, lda, 0, 0);
    b_bf16_kn(fb, b, ldb, 0, n0);
    mma_bf16(c, fa, fb);
}

template <bool REV>
__device__ void tc_prep(int G, int T, int H, int bb, int h, const unsigned short* r, const unsigned short* wRaw,
                        const unsigned short* k, const unsigned short* v, const unsigned short* a,
                        const unsigned short* b, const unsigned short* dy, TcShared& sm) {
    const int p = threadIdx.x - 128 * (1 + G), wg = p >> 5, lane = p & 31;
    const int j = 16 * wg + (lane & 15), u0 = 8 * (lane >> 4);
    const int chunks = T / TC_L;
    TcBuffer& bf = sm.buf[G];
    TcScratch& sc = sm.scratch[G];
    TcStage& sg = sm.stage[G];
    if (G < chunks) stage_chunk<REV>(sg, p, REV ? chunks - 1 - G : G, T, H, bb, h, r, wRaw, k, v, a, b, dy);
    for (int n = G; n < chunks; n += 2) {
        copy_wait();
        if (n >= 2) bar_sync(BAR_EMPTY + G, 384);  // the chain and output warps are done with chunk n − 2
        else bar_sync(BAR_GROUP + G, 128);         // the stage is complete
        prepare_column<REV>(sg, bf, sc, u0, j, n == 0);
        bar_sync(BAR_GROUP + G, 128);  // the stage is read, the operands written
        if (n + 2 < chunks)
            stage_chunk<REV>(sg, p, REV ? chunks - 1 - (n + 2) : n + 2, T, H, bb, h, r, wRaw, k, v, a, b, dy);
        pair_product(bf, sc, wg);
        bar_sync(BAR_GROUP + G, 128);
        if (wg == 0) unit_lower_inverse(sc);
        // X = A_ak V and A_rk V (tf32) over the value columns 16wg..16wg+15
        {
            float x0[4] = {0, 0, 0, 0}, x1[4] = {0, 0, 0, 0};
            mma16_bf16(x0, &sc.pair[1][0][0], LDP, &bf.v[0][0], LDA, 16 * wg);
            mma16_bf16(x1, &sc.pair[1][0][0], LDP, &bf.v[0][0], LDA, 16 * wg + 8);
            c_store(x0, &sc.x[0][0], LDA, 0, 16 * wg);
            c_store(x1, &sc.x[0][0], LDA, 0, 16 * wg + 8);
            float y0[4] = {0, 0, 0, 0}, y1[4] = {0, 0, 0, 0};
#pragma unroll
            for (int k0 = 0; k0 < 16; k0 += 8) {
                unsigned fa[4], fb[2];
                a_tf32_mk(fa, &sc.pair[2][0][0], LDP, 0, k0);
                b_tf32_kn(fb, &bf.v[0][0], LDA, k0, 16 * wg);
                mma_tf32(y0, fa, fb);
                b_tf32_kn(fb, &bf.v[0][0], LDA, k0, 16 * wg + 8);
                mma_tf32(y1, fa, fb);
            }
            c_store(y0, &bf.y0[0][0], LDA, 0, 16 * wg);
            c_store(y1, &bf.y0[0][0], LDA, 0, 16 * wg + 8);
        }
        bar_sync(BAR_GROUP + G, 128);  // Tinv, X
        // W = Tinv Â over the key columns 16wg.., U = Tinv X over the value columns 16wg.. (bf16)
        {
            float w0[4] = {0, 0, 0, 0}, w1[4] = {0, 0, 0, 0}, v0[4] = {0, 0, 0, 0}, v1[4] = {0, 0, 0, 0};
            mma16_bf16(w0, &sc.tinv[0][0], LDP, &sc.aq[0][0], LDA, 16 * wg);
            mma16_bf16(w1, &sc.tinv[0][0], LDP, &sc.aq[0][0], LDA, 16 * wg + 8);
            mma16_bf16(v0, &sc.tinv[0][0], LDP, &sc.x[0][0], LDA, 16 * wg);
            mma16_bf16(v1, &sc.tinv[0][0], LDP, &sc.x[0][0], LDA, 16 * wg + 8);
            for (int e = 0; e < 4; e++) {
                w0[e] = tf32_round(w0[e]);
                w1[e] = tf32_round(w1[e]);
            }
            c_store(w0, &bf.w[0][0], LDW, 0, 16 * wg);
            c_store(w1, &bf.w[0][0], LDW, 0, 16 * wg + 8);
            c_store(v0, &bf.u[0][0], LDA, 0, 16 * wg);
            c_store(v1, &bf.u[0][0], LDA, 0, 16 * wg + 8);
        }
        bar_arrive(BAR_FULL + G, 256);
    }
}


// An accumulator fragment c (16 rows m × 8 columns n) stored transposed in bf16 (round to nearest even): element
// (m, n) at p[n·ld + m] (p: the tile's element (0, 0); p and ld even). Rows g and g ^ 1 are neighbours in memory and
// lanes 4g + t and (4g + t) ^ 4 hold them, so one shuffle pairs them: lane g even stores column 2t, rows g, g + 1
// (and g + 8, g + 9), lane g odd column 2t + 1, rows g − 1, g (g + 7, g + 8), each as one 4-byte bf16x2 store.
__device__ __forceinline__ void store_acc_t_bf16(const float (&c)[4], unsigned short* p, i64 ld) {
    const int g = tc_g(), t = tc_t();
    const bool odd = g & 1;
    const float r0 = __shfl_xor_sync(0xffffffffu, odd ? c[0] : c[1], 4);
    const float r2 = __shfl_xor_sync(0xffffffffu, odd ? c[2] : c[3], 4);
    unsigned* q = reinterpret_cast<unsigned*>(p + (i64)(2 * t + odd) * ld + (g & ~1));
    q[0] = odd ? bf16x2_rn(r0, c[1]) : bf16x2_rn(c[0], r0);
    q[4] = odd ? bf16x2_rn(r2, c[3]) : bf16x2_rn(c[2], r2);
}

// Writes a warp's 16 state rows (accumulator fragments s[n-tile]) transposed, bf16: element (j, i) at dst[j·64 + i].
__device__ __forceinline__ void save_state(const float (&s)[8][4], int w, unsigned short* dst) {
#pragma unroll
    for (int nt = 0; nt < 8; nt++) store_acc_t_bf16(s[nt], dst + 8 * nt * TN + 16 * w, TN);
}

// acc (i × u, two column tiles) += S Qᵀ: the warp's state rows (accumulator fragments s) times Q [u][j] (ld LDW,
// pre-rounded), K = 64 over j, k permuted as S's columns. SAᵀ (Q = W) on the chain, Yᵀ (Q = R̂) in the output warps.
__device__ __forceinline__ void state_times(float (&acc)[2][4], const float (&s)[8][4], const float* q) {
#pragma unroll
    for (int kt = 0; kt < 8; kt++) {
        unsigned fs[4], fb[2];
        a_from_acc(fs, s[kt]);
#pragma unroll
        for (int nt = 0; nt < 2; nt++) {
            b_tf32_nk_perm(fb, q, LDW, 8 * kt, 8 * nt);
            mma_tf32(acc[nt], fs, fb);
        }
    }
}

// The chain warps: SA and the state update of every chunk; the final state (forward) to fstates[chunks − 1].
template <bool REV>
__device__ void tc_chain(int T, int H, int bb, int h, unsigned short* states, TcShared& sm) {
    const int w = threadIdx.x >> 5, lane = threadIdx.x & 31, t4 = tc_t();
    const int chunks = T / TC_L;
    float s[8][4];
#pragma unroll
    for (int nt = 0; nt < 8; nt++) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
    for (int n = 0; n < chunks; n++) {
        const TcBuffer& bf = sm.buf[n & 1];
        TcHandoff& ho = sm.handoff[n & 1];
        bar_sync(BAR_FULL + (n & 1), 256);
        // SAᵀ (i × u) = Uᵀ + S Wᵀ (tf32, K = 64 over j, k permuted as S's columns)
        float sa[2][4];
#pragma unroll
        for (int nt = 0; nt < 2; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) sa[nt][e] = bf.u[8 * nt + 2 * t4 + (e & 1)][16 * w + tc_g() + 8 * (e >> 1)];
        state_times(sa, s, &bf.w[0][0]);
        if (n >= 2) bar_sync(BAR_FREE + (n & 1), 256);  // the output warps are done with chunk n − 2's handoff
#pragma unroll
        for (int nt = 0; nt < 8; nt++) ho.s[w][nt][lane] = make_float4(s[nt][0], s[nt][1], s[nt][2], s[nt][3]);
#pragma unroll
        for (int nt = 0; nt < 2; nt++) ho.sa[w][nt][lane] = make_float4(sa[nt][0], sa[nt][1], sa[nt][2], sa[nt][3]);
        bar_arrive(BAR_READY + (n & 1), 256);
        // S ← S diag(γ) + SAᵀ B̃ + Vᵀ K̃ (tf32, K = 16 over s)
        unsigned fsa[2][4], fv[2][4];
        a_from_acc(fsa[0], sa[0]);
        a_from_acc(fsa[1], sa[1]);
        a_tf32_km_perm(fv[0], &bf.v[0][0], LDA, 16 * w, 0);
        a_tf32_km_perm(fv[1], &bf.v[0][0], LDA, 16 * w, 8);
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
            const float2 gm = *reinterpret_cast<const float2*>(&bf.gamma[8 * nt + 2 * t4]);
            s[nt][0] *= gm.x; s[nt][1] *= gm.y; s[nt][2] *= gm.x; s[nt][3] *= gm.y;
#pragma unroll
            for (int kt = 0; kt < 2; kt++) {
                unsigned fb[2];
                b_tf32_kn_perm(fb, &bf.bt[0][0], LDA, 8 * kt, 8 * nt);
                mma_tf32(s[nt], fsa[kt], fb);
                b_tf32_kn_perm(fb, &bf.kt[0][0], LDA, 8 * kt, 8 * nt);
                mma_tf32(s[nt], fv[kt], fb);
            }
        }
        if (n + 2 < chunks) bar_arrive(BAR_EMPTY + (n & 1), 384);
    }
    if (!REV) save_state(s, w, states + (((i64)bb * H + h) * chunks + chunks - 1) * TN * TN);
}

// The output warps: Yᵀ of every chunk and all stores: y and sa (bf16), or dv += and dsa (fp32; the engine's sa at
// step t is dsa_{t+1}; dsa_0 is written 0), and the saved states (bf16; forward: the start state of chunk c is
// fstates[c − 1]; backward: estates[c]).
template <bool REV>
__device__ void tc_output(int T, int H, int bb, int h, unsigned short* y, unsigned short* sa16, float* dv,
                          float* dsa, unsigned short* states, TcShared& sm) {
    const int w = (threadIdx.x >> 5) - 12, lane = threadIdx.x & 31, g = tc_g(), t4 = tc_t();
    const int chunks = T / TC_L, stride = H * TN;
    unsigned short* st = states + ((i64)bb * H + h) * chunks * TN * TN;
    for (int n = 0; n < chunks; n++) {
        const int c = REV ? chunks - 1 - n : n;
        const TcBuffer& bf = sm.buf[n & 1];
        const TcHandoff& ho = sm.handoff[n & 1];
        // this lane's outputs: engine row u = 8·nt + 2t + (e & 1), value row i = 16w + g + 8·(e >> 1)
        float dvOld[2][4];
        if (REV) {
#pragma unroll
            for (int nt = 0; nt < 2; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int u = 8 * nt + 2 * t4 + (e & 1), i = 16 * w + g + 8 * (e >> 1);
                    dvOld[nt][e] = dv[((i64)bb * T + 16 * c + 15 - u) * stride + h * TN + i];
                }
        }
        bar_sync(BAR_READY + (n & 1), 256);
        float s[8][4], sa[2][4], yt[2][4];
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
            const float4 x = ho.s[w][nt][lane];
            s[nt][0] = x.x; s[nt][1] = x.y; s[nt][2] = x.z; s[nt][3] = x.w;
        }
#pragma unroll
        for (int nt = 0; nt < 2; nt++) {
            const float4 x = ho.sa[w][nt][lane];
            sa[nt][0] = x.x; sa[nt][1] = x.y; sa[nt][2] = x.z; sa[nt][3] = x.w;
        }
        if (n + 2 < chunks) bar_arrive(BAR_FREE + (n & 1), 256);
#pragma unroll
        for (int nt = 0; nt < 2; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) yt[nt][e] = bf.y0[8 * nt + 2 * t4 + (e & 1)][16 * w + g + 8 * (e >> 1)];
        // Yᵀ += S R̂ᵀ (K = 64) + SAᵀ A_rbᵀ (K = 16)
        state_times(yt, s, &bf.rq[0][0]);
#pragma unroll
        for (int kt = 0; kt < 2; kt++) {
            unsigned fa[4];
            a_from_acc(fa, sa[kt]);
#pragma unroll
            for (int nt = 0; nt < 2; nt++) {
                unsigned fb[2];
                b_tf32_nk_perm(fb, &bf.arb[0][0], LDQ, 8 * kt, 8 * nt);
                mma_tf32(yt[nt], fa, fb);
            }
        }
        if (n + 2 < chunks) bar_arrive(BAR_EMPTY + (n & 1), 384);
        if (!REV) {
            // Yᵀ and SAᵀ tiles (i × u): element (i, u) at row 16c + u, column i, as bf16 pairs of neighbouring i
#pragma unroll
            for (int nt = 0; nt < 2; nt++) {
                const i64 at = ((i64)bb * T + 16 * c + 8 * nt) * stride + h * TN + 16 * w;
                store_acc_t_bf16(yt[nt], y + at, stride);
                store_acc_t_bf16(sa[nt], sa16 + at, stride);
            }
        } else {
#pragma unroll
            for (int nt = 0; nt < 2; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int u = 8 * nt + 2 * t4 + (e & 1), i = 16 * w + g + 8 * (e >> 1);
                    const int tt = 16 * c + 15 - u;
                    const i64 at = ((i64)bb * T + tt) * stride + h * TN + i;
                    dv[at] = dvOld[nt][e] + yt[nt][e];
                    if (tt + 1 < T) dsa[at + stride] = sa[nt][e];
                    if (tt == 0) dsa[at] = 0.0f;
                }
        }
        if (REV) save_state(s, w, st + (i64)c * TN * TN);
        else if (c > 0) save_state(s, w, st + (i64)(c - 1) * TN * TN);
    }
}

template <bool REV>
__device__ void tc_kernel(int T, int H, const unsigned short* r, const unsigned short* wRaw, const unsigned short* k,
                          const unsigned short* v, const unsigned short* a, const unsigned short* b,
                          const unsigned short* dy, unsigned short* y, unsigned short* sa16, float* dv, float* dsa,
                          unsigned short* states) {
    extern __shared__ float4 tc_smem[];
    TcShared& sm = *reinterpret_cast<TcShared*>(tc_smem);
    unsigned dynamicBytes;
    asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(dynamicBytes));
    if (dynamicBytes < sizeof(TcShared)) __trap();  // the launcher's size is out of date
    const int h = blockIdx.x, bb = blockIdx.y, role = threadIdx.x >> 7;
    if (role == 0) tc_chain<REV>(T, H, bb, h, states, sm);
    else if (role == 3) tc_output<REV>(T, H, bb, h, y, sa16, dv, dsa, states, sm);
    else tc_prep<REV>(role - 1, T, H, bb, h, r, wRaw, k, v, a, b, dy, sm);
}

extern "C" __global__ void __launch_bounds__(TC_THREADS) wkv7_tc_forward(
    int T, int H, const unsigned short* r, const unsigned short* wRaw, const unsigned short* k, const unsigned short* v,
    const unsigned short* a, const unsigned short* b, unsigned short* y, unsigned short* states, unsigned short* sa) {
    tc_kernel<false>(T, H, r, wRaw, k, v, a, b, nullptr, y, sa, nullptr, nullptr, states);
}

extern "C" __global__ void __launch_bounds__(TC_THREADS) wkv7_tc_backward_chain(
    int T, int H, const unsigned short* r, const unsigned short* wRaw, const unsigned short* k, const unsigned short* a,
    const unsigned short* b, const unsigned short* dy, float* dv, float* dsa, unsigned short* estates) {
    tc_kernel<true>(T, H, r, wRaw, k, nullptr, a, b, dy, nullptr, nullptr, dv, dsa, estates);
}
