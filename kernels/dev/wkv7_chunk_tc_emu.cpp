// WKV7 as a chunked (DPLR / WY) formulation with tensor-core products, emulated on the CPU for accuracy only (the
// study behind the kernels wkv7_tc.cu and wkv7_tc_readout.cu, which compute the recommended configuration). Per head: (a) the serial recurrence in float64 (reference, forward and backward), (b) the serial
// recurrence in float32 as the current kernels compute it (forward; backward by backstepping from 16-step snapshots,
// as wkv7.cu's column pass), (c) the chunked forward and backward with every matrix product's inputs rounded to
// bf16 / tf32 (or split into 3 products, "x3") and fp32 accumulation, chunk lengths L = 16, 32, 64.
//
//   cd kernels/dev && g++ -std=c++17 -O2 -o /tmp/wkv7_tc wkv7_chunk_tc_emu.cpp && /tmp/wkv7_tc [set] [T] [H] [seed]
//   set: check (inputs as GpuOpChecks.wkv7: r, k, v ~ N(0, 0.5²), wRaw ~ N(0, 2²), κ̂ unit per head, α ~ U(0.05, 0.95)),
//        strong (wRaw ~ 8 + N(0, 1): every decay at the clamp's strongest, ω ≈ 0.545), long (wRaw ~ −8 + N(0, 1):
//        ω ≈ 0.9998, memory of thousands of steps), all (the three). Defaults: check 4096 4 1.
//   Inputs are rounded to bf16 first (the production path's WKV7 inputs are bf16); every variant sees the same values.
//
// Math (row i = value index, column j = key index; rwkv7-reference.md §7, CpuBackend's Wkv7Op):
//   ω = exp(lw), lw = −e^{−1/2}·σ(wRaw) ∈ (−0.6065, 0);  sa_t = S_{t−1} a_t;  S_t = S_{t−1} diag(ω_t) + sa_t b_tᵀ + v_t k_tᵀ;
//   y_t = S_t r_t.  Backward with E_t = dL/dS_t (incl. y_t): E_t = E_{t+1}(diag ω_{t+1} + b_{t+1} a_{t+1}ᵀ) + dy_t r_tᵀ,
//   dsa_t = E_t b_t, dv_t = E_t k_t, dk_t = E_tᵀ v_t, db_t = E_tᵀ sa_t, dr_t = S_tᵀ dy_t, da_t = S_{t−1}ᵀ dsa_t,
//   dlw_t[j] = Σ_i E_t[i][j]·ω_t[j]·S_{t−1}[i][j], dwRaw = dlw·(−e^{−1/2})·σ(1−σ).
//
// Chunk (local steps u = 0..L−1, lg[0] = 0, lg[u+1] = lg[u] + lw_u, so the decay from "after key step s" to "query
// point q" is exp(lg[q] − lg[s+1]) ≤ 1 for s < q):
//   A_ab[u][s] = Σ_j a_u e^{lg[u]−lg[s+1]} b_s (s < u),  A_ak the same with k_s,  A_rb, A_rk with r_u e^{lg[u+1]−…} (s ≤ u)
//   Tinv = (I − A_ab)^{-1} (fp32 forward substitution);  W = Tinv Â (Â_u = a_u e^{lg[u]}),  U = Tinv (A_ak V)
//   SA = W S_cᵀ + U  (L×64: sa of every step of the chunk);  Y = R̂ S_cᵀ + A_rb SA + A_rk V  (R̂_u = r_u e^{lg[u+1]})
//   S_next = S_c diag(e^{lg[L]}) + SAᵀ B̃ + Vᵀ K̃  (B̃_s = b_s e^{lg[L]−lg[s+1]}, K̃ likewise)
// The pair products (A_*) and the decayed readouts of the backward carry e^{lg[q]−lg[s+1]}, split into a query factor
// e^{lg[q]−ref} and a key factor e^{ref−lg[s+1]} so that they become one matrix product. "factored": ref = the chunk
// start, one product per chunk; the key factor then grows to e^{0.6065·L} (1.6e4 at L 16, 1.4e17 at L 64).
// "stable": sub-blocks of 16, ref = the start of the query's sub-block: off-diagonal sub-blocks have both factors ≤ 1,
// the diagonal ones a key factor ≤ e^{0.6065·16}. Groups of products and their precision (a config "intra,state,out",
// or "pairs/wy,state,out" where the two parts of intra differ):
//   intra: the pair products A_* ("pairs") and W, X = A_ak V, U ("wy"; Tinv itself stays fp32), parallel over chunks
//   state: W S_cᵀ, SAᵀB̃, VᵀK̃ (the serial chain; S_c and SA as operands)
//   out:   R̂ S_cᵀ, A_rb SA, A_rk V and the backward's readouts (dr, da, dk, db: outputs only)
// WKV_VARIANTS=diag runs one group at a time instead of the table, =rec the recommended L16 configuration and
// its cheaper neighbours; WKV_WORST=1 prints the step of the worst y error.
// The backward: the E recurrence is the same DPLR recurrence run backwards (a ↔ b swapped, transitions of step t+1,
// injection dy_t r_tᵀ, query k_t gives dv_t, its "sa" is dsa_{t+1}); dr, da (forward states) and dk, db (E states)
// are chunked readouts; dlw is the chunk-local identity
//   dlw_u = Σ_{u'≥u in chunk} (r⊙dr + a_{u'+1}⊙da_{u'+1}[u'<L−1] − b⊙db − k⊙dk)_{u'} + [chunk end] Σ_i Ê[i][j] S_end[i][j],
// Ê = dL/dS_end through later steps only. In float64 the chunked engine matches the serial reference to ~1e-13
// (printed as "chunked f64": it checks the algebra, the identity included).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>
#include <type_traits>
#include <algorithm>

static const int N = 64, NN = N * N;
static const double W_SCALE = -0.6065306597126334;  // −e^{−1/2}

enum Prec { F32, TF32, BF16, TF32X3, BF16X3 };
static const char* precName[] = {"fp32", "tf32", "bf16", "tf32x3", "bf16x3"};

static float roundMant(float f, int dropBits) {  // round to nearest even, dropping the low dropBits of the mantissa
    unsigned u; memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) return f;
    unsigned half = 1u << (dropBits - 1), mask = (1u << dropBits) - 1;
    u += (half - 1) + ((u >> dropBits) & 1u);
    u &= ~mask;
    float r; memcpy(&r, &u, 4); return r;
}
static float bf16(float f) { return roundMant(f, 16); }
static float tf32(float f) { return roundMant(f, 13); }

// C[M×Nc] += A[M×K]·B[K×Nc] (row-major, leading dims given), inputs rounded per p, fp32 accumulation (one FMA chain
// per output in k order). x3: a = ah + al, b = bh + bl in the narrow type, C += ah·bh + ah·bl + al·bh.
template <typename F>
static void mma(int M, int Nc, int K, const F* A, int lda, const F* B, int ldb, F* C, int ldc, Prec p) {
    if (std::is_same<F, double>::value || p == F32) {
        for (int m = 0; m < M; m++) for (int n = 0; n < Nc; n++) {
            F acc = C[m * ldc + n];
            for (int k = 0; k < K; k++) acc = std::fma(A[m * lda + k], B[k * ldb + n], acc);
            C[m * ldc + n] = acc;
        }
        return;
    }
    auto hi = [&](float x) { return (p == BF16 || p == BF16X3) ? bf16(x) : tf32(x); };
    bool x3 = p == TF32X3 || p == BF16X3;
    std::vector<float> ah(M * K), al(M * K), bh(K * Nc), bl(K * Nc);
    for (int m = 0; m < M; m++) for (int k = 0; k < K; k++) { float x = (float)A[m * lda + k]; ah[m * K + k] = hi(x); al[m * K + k] = hi(x - ah[m * K + k]); }
    for (int k = 0; k < K; k++) for (int n = 0; n < Nc; n++) { float x = (float)B[k * ldb + n]; bh[k * Nc + n] = hi(x); bl[k * Nc + n] = hi(x - bh[k * Nc + n]); }
    for (int m = 0; m < M; m++) for (int n = 0; n < Nc; n++) {
        float acc = (float)C[m * ldc + n];
        if (x3) {  // the small terms first, as 3xTF32 does
            for (int k = 0; k < K; k++) acc = fmaf(al[m * K + k], bh[k * Nc + n], acc);
            for (int k = 0; k < K; k++) acc = fmaf(ah[m * K + k], bl[k * Nc + n], acc);
        }
        for (int k = 0; k < K; k++) acc = fmaf(ah[m * K + k], bh[k * Nc + n], acc);
        C[m * ldc + n] = acc;
    }
}

struct Cfg { int L; int sub; Prec intra, state, out, wy; };  // sub = L: factored; sub = 16: stable; wy: W, X, U (= intra unless set)

// One sequence for the chunked engine: per step u (engine time order) lw, a, b, v, k, r ([T][64]), optional
// V-contraction queries: post (S_uᵀ c_u, up to 2) and pre (S_{u−1}ᵀ c_u).
struct Seq {
    int T;
    const double *lw, *a, *b, *v, *k, *r;
    const double* post[2] = {nullptr, nullptr};
    const double* pre = nullptr;
};
template <typename F> struct SeqOut {
    std::vector<F> y, sa, post[2], pre, states;  // states: (T/L + 1) × 64×64, the start state of every chunk, then the final one
};

template <typename F> struct Engine {
    Cfg c;
    int L;
    std::vector<F> a, b, v, k, r, Aab, Aak, Arb, Ark, Tinv, Ah, W, X, U, SA, Y, Rh, Bt, Kt, Sn, tmp, opX, opY;
    explicit Engine(Cfg cfg) : c(cfg), L(cfg.L) {
        for (auto* p : {&a, &b, &v, &k, &r, &Ah, &W, &X, &U, &SA, &Y, &Rh, &Bt, &Kt}) p->resize(L * N);
        for (auto* p : {&Aab, &Aak, &Arb, &Ark, &Tinv}) p->resize(L * L);
        Sn.resize(NN); tmp.resize(L * N); opX.resize(L * N); opY.resize(L * N);
    }
    // P[u][s] = Σ_j Xq[u][j] e^{lg[q(u)]−lg[s+1]} Ys[s][j] over the mask (s < u strict, or s ≤ u), by sub-block pairs.
    void pair(const std::vector<F>& Xq, int qoff, const std::vector<F>& Ys, bool strict, std::vector<F>& P, Prec p) {
        std::fill(P.begin(), P.end(), F(0));
        int sb = c.sub, nb = L / sb;
        for (int Pb = 0; Pb < nb; Pb++) {
            for (int u = 0; u < sb; u++) { int uu = Pb * sb + u; for (int j = 0; j < N; j++)
                opX[u * N + j] = Xq[uu * N + j] * std::exp(lgc(uu + qoff, j) - lgc(sb * Pb, j)); }
            for (int Qb = 0; Qb <= Pb; Qb++) {
                for (int s = 0; s < sb; s++) { int ss = Qb * sb + s; for (int j = 0; j < N; j++)
                    opY[j * sb + s] = Ys[ss * N + j] * std::exp(lgc(sb * Pb, j) - lgc(ss + 1, j)); }  // K×sb (transposed)
                std::vector<F> blk(sb * sb, F(0));
                mma(sb, sb, N, opX.data(), N, opY.data(), sb, blk.data(), sb, p);
                for (int u = 0; u < sb; u++) for (int s = 0; s < sb; s++) {
                    int uu = Pb * sb + u, ss = Qb * sb + s;
                    if (ss < uu || (!strict && ss == uu)) P[uu * L + ss] = blk[u * sb + s];
                }
            }
        }
    }
    std::vector<F> lgm;  // [L+1][N]
    F lgc(int q, int j) const { return lgm[q * N + j]; }
    // out[u][j] += Σ_s M[u][s] Y[s][j] e^{lg[q(u)]−lg[s+1]}[j] over the mask (M already masked), by sub-block pairs.
    void readout(const std::vector<F>& M, int qoff, const std::vector<F>& Ys, std::vector<F>& out, Prec p) {
        int sb = c.sub, nb = L / sb;
        for (int Pb = 0; Pb < nb; Pb++) for (int Qb = 0; Qb <= Pb; Qb++) {
            for (int s = 0; s < sb; s++) { int ss = Qb * sb + s; for (int j = 0; j < N; j++)
                opY[s * N + j] = Ys[ss * N + j] * std::exp(lgc(sb * Pb, j) - lgc(ss + 1, j)); }
            std::vector<F> blk(sb * N, F(0));
            mma(sb, N, sb, &M[(Pb * sb) * L + Qb * sb], L, opY.data(), N, blk.data(), N, p);
            for (int u = 0; u < sb; u++) { int uu = Pb * sb + u; for (int j = 0; j < N; j++)
                out[uu * N + j] += std::exp(lgc(uu + qoff, j) - lgc(sb * Pb, j)) * blk[u * N + j]; }
        }
    }
    SeqOut<F> run(const Seq& q, const F* S0 = nullptr) {
        int T = q.T, nc = T / L;
        SeqOut<F> o;
        o.y.assign(T * N, 0); o.sa.assign(T * N, 0); o.states.assign((nc + 1) * NN, 0);
        for (int i = 0; i < 2; i++) if (q.post[i]) o.post[i].assign(T * N, 0);
        if (q.pre) o.pre.assign(T * N, 0);
        std::vector<F> S(NN, 0);
        if (S0) std::copy(S0, S0 + NN, S.begin());
        lgm.assign((L + 1) * N, 0);
        std::vector<F> C(L * N), Mm(L * L), Vt(N * L), SAt(N * L);
        for (int ch = 0; ch < nc; ch++) {
            std::copy(S.begin(), S.end(), o.states.begin() + ch * NN);
            int t0 = ch * L;
            for (int u = 0; u < L; u++) for (int j = 0; j < N; j++) {
                int g = (t0 + u) * N + j;
                a[u * N + j] = q.a[g]; b[u * N + j] = q.b[g]; v[u * N + j] = q.v[g]; k[u * N + j] = q.k[g]; r[u * N + j] = q.r[g];
                lgm[(u + 1) * N + j] = lgm[u * N + j] + (F)q.lw[g];  // fp32 running sum of log-decays
            }
            // intra-chunk matrices
            pair(a, 0, b, true, Aab, c.intra);
            pair(a, 0, k, true, Aak, c.intra);
            pair(r, 1, b, false, Arb, c.intra);
            pair(r, 1, k, false, Ark, c.intra);
            // Tinv = (I − Aab)^{-1}: unit lower triangular, fp32 forward substitution
            std::fill(Tinv.begin(), Tinv.end(), F(0));
            for (int u = 0; u < L; u++) {
                Tinv[u * L + u] = 1;
                for (int s = 0; s < u; s++) { F acc = 0; for (int m = s; m < u; m++) acc = std::fma(Aab[u * L + m], Tinv[m * L + s], acc); Tinv[u * L + s] = acc; }
            }
            for (int u = 0; u < L; u++) for (int j = 0; j < N; j++) {
                Ah[u * N + j] = a[u * N + j] * std::exp(lgc(u, j));
                Rh[u * N + j] = r[u * N + j] * std::exp(lgc(u + 1, j));
                F e = std::exp(lgc(L, j) - lgc(u + 1, j));
                Bt[u * N + j] = b[u * N + j] * e; Kt[u * N + j] = k[u * N + j] * e;
            }
            std::fill(W.begin(), W.end(), F(0)); mma(L, N, L, Tinv.data(), L, Ah.data(), N, W.data(), N, c.wy);
            std::fill(X.begin(), X.end(), F(0)); mma(L, N, L, Aak.data(), L, v.data(), N, X.data(), N, c.wy);
            std::fill(U.begin(), U.end(), F(0)); mma(L, N, L, Tinv.data(), L, X.data(), N, U.data(), N, c.wy);
            // the chain: SA = U + W S_cᵀ  (S_cᵀ[j][i] = S[i][j])
            std::vector<F> St(NN); for (int i = 0; i < N; i++) for (int j = 0; j < N; j++) St[j * N + i] = S[i * N + j];
            SA = U; mma(L, N, N, W.data(), N, St.data(), N, SA.data(), N, c.state);
            // outputs
            std::fill(Y.begin(), Y.end(), F(0));
            mma(L, N, L, Ark.data(), L, v.data(), N, Y.data(), N, c.out);
            mma(L, N, L, Arb.data(), L, SA.data(), N, Y.data(), N, c.out);
            mma(L, N, N, Rh.data(), N, St.data(), N, Y.data(), N, c.out);
            for (int u = 0; u < L; u++) for (int j = 0; j < N; j++) { o.y[(t0 + u) * N + j] = Y[u * N + j]; o.sa[(t0 + u) * N + j] = SA[u * N + j]; }
            // V-contraction readouts: S_uᵀ c_u (post) and S_{u−1}ᵀ c_u (pre)
            for (int u = 0; u < L; u++) for (int i = 0; i < N; i++) { Vt[i * L + u] = v[u * N + i]; SAt[i * L + u] = SA[u * N + i]; }
            auto readV = [&](const double* cq, bool preQ, std::vector<F>& outv) {
                int qoff = preQ ? 0 : 1;
                for (int u = 0; u < L; u++) for (int i = 0; i < N; i++) C[u * N + i] = cq[(t0 + u) * N + i];
                std::vector<F> o2(L * N, F(0)), base(L * N, F(0));
                mma(L, N, N, C.data(), N, S.data(), N, base.data(), N, c.out);  // C S_c: (L×V)(V×K)
                for (int u = 0; u < L; u++) for (int j = 0; j < N; j++) o2[u * N + j] = base[u * N + j] * std::exp(lgc(u + qoff, j));
                for (int which = 0; which < 2; which++) {
                    std::fill(Mm.begin(), Mm.end(), F(0));
                    mma(L, L, N, C.data(), N, which ? Vt.data() : SAt.data(), L, Mm.data(), L, c.out);
                    for (int u = 0; u < L; u++) for (int s = 0; s < L; s++) if (s > u || (preQ && s == u)) Mm[u * L + s] = 0;
                    readout(Mm, qoff, which ? k : b, o2, c.out);
                }
                for (int u = 0; u < L; u++) for (int j = 0; j < N; j++) outv[(t0 + u) * N + j] = o2[u * N + j];
            };
            for (int i = 0; i < 2; i++) if (q.post[i]) readV(q.post[i], false, o.post[i]);
            if (q.pre) readV(q.pre, true, o.pre);
            // state update: S ← S diag(γ_L) + SAᵀ B̃ + Vᵀ K̃
            for (int i = 0; i < N; i++) for (int j = 0; j < N; j++) Sn[i * N + j] = S[i * N + j] * std::exp(lgc(L, j));
            mma(N, N, L, Vt.data(), L, Kt.data(), N, Sn.data(), N, c.state);
            mma(N, N, L, SAt.data(), L, Bt.data(), N, Sn.data(), N, c.state);
            S = Sn;
        }
        std::copy(S.begin(), S.end(), o.states.begin() + nc * NN);
        return o;
    }
};

// ------------------------------------------------------------------------------------------------ serial recurrences
struct Head { int T; std::vector<double> r, wraw, lw, k, v, a, b, dy; };
struct Grads { std::vector<double> y, S, dr, dw, dk, dv, da, db; };

static Grads serial64(const Head& h) {
    int T = h.T; Grads g;
    std::vector<double> S((size_t)(T + 1) * NN, 0.0), sa(T * N);  // S[t+1] = state after step t
    g.y.assign(T * N, 0);
    for (int t = 0; t < T; t++) {
        const double* P = &S[(size_t)t * NN]; double* Q = &S[(size_t)(t + 1) * NN];
        for (int i = 0; i < N; i++) {
            double s = 0; for (int j = 0; j < N; j++) s += P[i * N + j] * h.a[t * N + j];
            sa[t * N + i] = s; double y = 0;
            for (int j = 0; j < N; j++) { double x = P[i * N + j] * std::exp(h.lw[t * N + j]) + s * h.b[t * N + j] + h.v[t * N + i] * h.k[t * N + j]; Q[i * N + j] = x; y += x * h.r[t * N + j]; }
            g.y[t * N + i] = y;
        }
    }
    g.S.assign(S.end() - NN, S.end());
    for (auto* p : {&g.dr, &g.dw, &g.dk, &g.dv, &g.da, &g.db}) p->assign(T * N, 0);
    std::vector<double> E(NN, 0.0);
    for (int t = T - 1; t >= 0; t--) {
        const double* Sc = &S[(size_t)(t + 1) * NN]; const double* Sp = &S[(size_t)t * NN];
        for (int i = 0; i < N; i++) {
            double dsa = 0, dv = 0;
            for (int j = 0; j < N; j++) {
                double G = E[i * N + j] + h.dy[t * N + i] * h.r[t * N + j]; E[i * N + j] = G;
                dsa += G * h.b[t * N + j]; dv += G * h.k[t * N + j];
                g.dr[t * N + j] += Sc[i * N + j] * h.dy[t * N + i];
                g.dw[t * N + j] += G * Sp[i * N + j];
                g.db[t * N + j] += G * sa[t * N + i]; g.dk[t * N + j] += G * h.v[t * N + i];
            }
            g.dv[t * N + i] = dv;
            for (int j = 0; j < N; j++) { g.da[t * N + j] += dsa * Sp[i * N + j]; E[i * N + j] = E[i * N + j] * std::exp(h.lw[t * N + j]) + dsa * h.a[t * N + j]; }
        }
    }
    for (int t = 0; t < T * N; t++) { double sg = 1 / (1 + std::exp(-h.wraw[t])); g.dw[t] *= std::exp(h.lw[t]) * W_SCALE * sg * (1 - sg); }
    return g;
}

// float32 as the current kernels: forward with 16-step snapshots and sa; backward by backstepping (wkv7.cu's column pass)
static Grads serial32(const Head& h) {
    int T = h.T; Grads g; std::vector<float> S(NN, 0.f), snap((size_t)((T + 15) / 16) * NN), sa(T * N), w(T * N), iw(T * N);
    for (int t = 0; t < T * N; t++) { w[t] = expf((float)h.lw[t]); iw[t] = 1.f / w[t]; }
    g.y.assign(T * N, 0);
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < N; i++) {
            float s = 0; for (int j = 0; j < N; j++) s = fmaf(S[i * N + j], (float)h.a[t * N + j], s);
            sa[t * N + i] = s; float y = 0;
            for (int j = 0; j < N; j++) { float x = fmaf(S[i * N + j], w[t * N + j], fmaf(s, (float)h.b[t * N + j], (float)h.v[t * N + i] * (float)h.k[t * N + j])); S[i * N + j] = x; y = fmaf(x, (float)h.r[t * N + j], y); }
            g.y[t * N + i] = y;
        }
        if ((t + 1) % 16 == 0) std::copy(S.begin(), S.end(), snap.begin() + (size_t)(t / 16) * NN);
    }
    g.S.assign(S.begin(), S.end());
    for (auto* p : {&g.dr, &g.dw, &g.dk, &g.dv, &g.da, &g.db}) p->assign(T * N, 0);
    std::vector<float> E(NN, 0.f), Sc(NN), Sp(NN), dsa(N);
    for (int t = T - 1; t >= 0; t--) {
        if ((t + 1) % 16 == 0) std::copy(snap.begin() + (size_t)(t / 16) * NN, snap.begin() + (size_t)(t / 16 + 1) * NN, Sc.begin());
        for (int i = 0; i < N; i++) for (int j = 0; j < N; j++)  // backstep: S_{t−1} = (S_t − v kᵀ − sa bᵀ)/ω
            Sp[i * N + j] = (Sc[i * N + j] - (float)h.v[t * N + i] * (float)h.k[t * N + j] - sa[t * N + i] * (float)h.b[t * N + j]) * iw[t * N + j];
        for (int i = 0; i < N; i++) {
            float ds = 0, dv = 0;
            for (int j = 0; j < N; j++) { float G = fmaf((float)h.dy[t * N + i], (float)h.r[t * N + j], E[i * N + j]); E[i * N + j] = G; ds = fmaf(G, (float)h.b[t * N + j], ds); dv = fmaf(G, (float)h.k[t * N + j], dv); }
            dsa[i] = ds; g.dv[t * N + i] = dv;
        }
        for (int j = 0; j < N; j++) {
            float dr = 0, dw = 0, dk = 0, db = 0, da = 0;
            for (int i = 0; i < N; i++) {
                float G = E[i * N + j];
                dr = fmaf(Sc[i * N + j], (float)h.dy[t * N + i], dr); dw = fmaf(G, Sp[i * N + j], dw);
                dk = fmaf(G, (float)h.v[t * N + i], dk); db = fmaf(G, sa[t * N + i], db); da = fmaf(dsa[i], Sp[i * N + j], da);
                E[i * N + j] = fmaf(G, w[t * N + j], dsa[i] * (float)h.a[t * N + j]);
            }
            double sg = 1 / (1 + std::exp(-h.wraw[t * N + j]));
            g.dr[t * N + j] = dr; g.dw[t * N + j] = (double)dw * w[t * N + j] * W_SCALE * sg * (1 - sg);
            g.dk[t * N + j] = dk; g.db[t * N + j] = db; g.da[t * N + j] = da;
        }
        Sc = Sp;
    }
    return g;
}

// ------------------------------------------------------------------------------------------------ chunked backward
template <typename F> static Grads chunked(const Head& h, Cfg c) {
    int T = h.T, L = c.L, nc = T / L; Grads g;
    Engine<F> fe(c), re(c);
    Seq fq{T, h.lw.data(), h.a.data(), h.b.data(), h.v.data(), h.k.data(), h.r.data()};
    SeqOut<F> fo = fe.run(fq);
    g.y.assign(fo.y.begin(), fo.y.end()); g.S.assign(fo.states.end() - NN, fo.states.end());
    // reverse sequence: u = T−1−t; transitions of step t+1 (none after T−1), a' = b_{t+1}, b' = a_{t+1}; inject dy_t r_tᵀ; query k_t
    std::vector<double> rlw(T * N, 0), ra(T * N, 0), rb(T * N, 0), rv(T * N), rk(T * N), rr(T * N), pv(T * N), psa(T * N);
    for (int t = 0; t < T; t++) { int u = T - 1 - t; for (int j = 0; j < N; j++) {
        if (t + 1 < T) { rlw[u * N + j] = h.lw[(t + 1) * N + j]; ra[u * N + j] = h.b[(t + 1) * N + j]; rb[u * N + j] = h.a[(t + 1) * N + j]; }
        rv[u * N + j] = h.dy[t * N + j]; rk[u * N + j] = h.r[t * N + j]; rr[u * N + j] = h.k[t * N + j];
        pv[u * N + j] = h.v[t * N + j]; psa[u * N + j] = (double)fo.sa[t * N + j]; } }
    Seq rq{T, rlw.data(), ra.data(), rb.data(), rv.data(), rk.data(), rr.data()};
    rq.post[0] = pv.data(); rq.post[1] = psa.data();
    SeqOut<F> ro = re.run(rq);
    std::vector<double> dsa(T * N, 0), dyv(h.dy);
    for (auto* p : {&g.dr, &g.dw, &g.dk, &g.dv, &g.da, &g.db}) p->assign(T * N, 0);
    for (int t = 0; t < T; t++) { int u = T - 1 - t; for (int j = 0; j < N; j++) {
        g.dv[t * N + j] = ro.y[u * N + j]; g.dk[t * N + j] = ro.post[0][u * N + j]; g.db[t * N + j] = ro.post[1][u * N + j];
        if (t >= 1) dsa[t * N + j] = ro.sa[(T - t) * N + j]; } }  // sa' at u = T−t is E_t b_t
    Seq fq2 = fq; fq2.post[0] = dyv.data(); fq2.pre = dsa.data();
    SeqOut<F> fo2 = fe.run(fq2);
    for (int i = 0; i < T * N; i++) { g.dr[i] = fo2.post[0][i]; g.da[i] = fo2.pre[i]; }
    // dlw by the chunk-local identity (fp32 on the CUDA cores in a kernel)
    for (int ch = 0; ch < nc; ch++) {
        int t0 = ch * L, te = t0 + L - 1;
        F bnd[N];
        for (int j = 0; j < N; j++) bnd[j] = 0;
        if (te + 1 < T) {
            // Ê = E_{te+1} (diag ω_{te+1} + b_{te+1} a_{te+1}ᵀ); E_{te+1} is the start state of the reverse chunk u0 = T−1−(te+1)+1
            int rc = (T - 1 - te) / L;  // reverse chunk whose start state is E_{te+1}
            const F* E = &ro.states[(size_t)rc * NN]; const F* Se = &fo.states[(size_t)(ch + 1) * NN];
            int t1 = te + 1;
            for (int i = 0; i < N; i++) {
                F eb = 0; for (int j = 0; j < N; j++) eb = std::fma(E[i * N + j], (F)h.b[t1 * N + j], eb);
                for (int j = 0; j < N; j++) { F Eh = std::fma(E[i * N + j], std::exp((F)h.lw[t1 * N + j]), eb * (F)h.a[t1 * N + j]); bnd[j] = std::fma(Eh, Se[i * N + j], bnd[j]); }
            }
        }
        for (int j = 0; j < N; j++) {
            F acc = bnd[j];
            for (int u = L - 1; u >= 0; u--) {
                int t = t0 + u;
                F term = (F)h.r[t * N + j] * (F)g.dr[t * N + j] - (F)h.b[t * N + j] * (F)g.db[t * N + j] - (F)h.k[t * N + j] * (F)g.dk[t * N + j];
                if (u < L - 1) term += (F)h.a[(t + 1) * N + j] * (F)g.da[(t + 1) * N + j];
                acc += term;
                double sg = 1 / (1 + std::exp(-h.wraw[t * N + j]));
                g.dw[t * N + j] = (double)acc * W_SCALE * sg * (1 - sg);
            }
        }
    }
    return g;
}

// ------------------------------------------------------------------------------------------------ driver
static float roundIn(double x) { return bf16((float)x); }

static std::vector<Head> makeHeads(const std::string& set, int T, int H, unsigned seed) {
    std::mt19937_64 rng(seed); std::normal_distribution<double> gs(0, 1); std::uniform_real_distribution<double> U(0.05, 0.95);
    std::vector<Head> hs(H);
    for (auto& h : hs) {
        h.T = T;
        for (auto* p : {&h.r, &h.wraw, &h.lw, &h.k, &h.v, &h.a, &h.b, &h.dy}) p->resize(T * N);
        for (int t = 0; t < T; t++) {
            double kap[N], s = 0; for (int j = 0; j < N; j++) { kap[j] = gs(rng); s += kap[j] * kap[j]; } s = std::sqrt(s);
            for (int j = 0; j < N; j++) {
                int i = t * N + j; double al = U(rng);
                h.r[i] = roundIn(0.5 * gs(rng)); h.k[i] = roundIn(0.5 * gs(rng)); h.v[i] = roundIn(0.5 * gs(rng));
                double wr = set == "strong" ? 8 + gs(rng) : set == "long" ? -8 + gs(rng) : 2.0 * gs(rng);
                h.wraw[i] = roundIn(wr);
                h.lw[i] = (float)(W_SCALE / (1 + std::exp(-h.wraw[i])));  // ln ω in fp32, as a kernel would make it
                h.a[i] = roundIn(-kap[j] / s); h.b[i] = roundIn(kap[j] / s * al);
                h.dy[i] = gs(rng);
            }
        }
    }
    return hs;
}

struct Err { double num = 0, den = 0, dot = 0, nb = 0, worst = 0; int worstT = -1; };
static void acc(Err& e, const std::vector<double>& x, const std::vector<double>& ref, int T) {
    for (size_t i = 0; i < x.size(); i++) { double d = x[i] - ref[i]; e.num += d * d; e.den += ref[i] * ref[i]; e.dot += x[i] * ref[i]; e.nb += x[i] * x[i]; }
    if ((int)x.size() == T * N) for (int t = 0; t < T; t++) {
        double n = 0, d = 0; for (int j = 0; j < N; j++) { double q = x[t * N + j] - ref[t * N + j]; n += q * q; d += ref[t * N + j] * ref[t * N + j]; }
        if (d > 0 && std::sqrt(n / d) > e.worst) { e.worst = std::sqrt(n / d); e.worstT = t; }
    }
}
static double rel(const Err& e) { return std::sqrt(e.num / e.den); }

static void report(const char* name, const std::vector<Grads>& gs, const std::vector<Grads>& ref, int T) {
    Err e[8];
    for (size_t h = 0; h < gs.size(); h++) {
        const Grads& a = gs[h]; const Grads& b = ref[h];
        acc(e[0], a.y, b.y, T); acc(e[1], a.S, b.S, T); acc(e[2], a.dr, b.dr, T); acc(e[3], a.dw, b.dw, T);
        acc(e[4], a.dk, b.dk, T); acc(e[5], a.dv, b.dv, T); acc(e[6], a.da, b.da, T); acc(e[7], a.db, b.db, T);
    }
    double mincos = 1; for (int q = 2; q < 8; q++) mincos = std::min(mincos, e[q].dot / std::sqrt(e[q].den * e[q].nb));
    if (getenv("WKV_WORST")) printf("  worst y step %d\n", e[0].worstT);
    printf("%-34s %8.1e %8.1e %8.1e | %8.1e %8.1e %8.1e %8.1e %8.1e %8.1e | %.6f\n", name, rel(e[0]), e[0].worst, rel(e[1]),
           rel(e[2]), rel(e[3]), rel(e[4]), rel(e[5]), rel(e[6]), rel(e[7]), mincos);
    fflush(stdout);
}

int main(int argc, char** argv) {
    std::string set = argc > 1 ? argv[1] : "check";
    int T = argc > 2 ? atoi(argv[2]) : 4096, H = argc > 3 ? atoi(argv[3]) : 4;
    unsigned seed = argc > 4 ? atoi(argv[4]) : 1;
    std::vector<std::string> sets = set == "all" ? std::vector<std::string>{"check", "strong", "long"} : std::vector<std::string>{set};
    for (auto& st : sets) {
        auto heads = makeHeads(st, T, H, seed);
        std::vector<Grads> ref, g32;
        for (auto& h : heads) ref.push_back(serial64(h));
        printf("\nset %s, T %d, %d heads (seed %u): relative error ‖Δ‖/‖ref‖ vs the float64 serial recurrence\n", st.c_str(), T, H, seed);
        printf("%-34s %8s %8s %8s | %8s %8s %8s %8s %8s %8s | %s\n", "variant (L sub intra,state,out)", "y", "y worst", "S_T",
               "dr", "dwRaw", "dk", "dv", "da", "db", "min cos");
        { std::vector<Grads> yb; for (size_t h = 0; h < heads.size(); h++) { Grads q = ref[h]; for (auto& x : q.y) x = bf16((float)x); yb.push_back(q); }
          Err e; for (size_t h = 0; h < heads.size(); h++) acc(e, yb[h].y, ref[h].y, T);
          printf("%-34s %8.1e %8.1e   (y rounded to bf16 once: the floor of any bf16-output kernel)\n", "ref y stored as bf16", rel(e), e.worst); }
        for (auto& h : heads) g32.push_back(serial32(h));
        report("serial fp32 (current kernels)", g32, ref, T);
        { std::vector<Grads> gc; for (auto& h : heads) gc.push_back(chunked<double>(h, Cfg{64, 16, F32, F32, F32, F32}));
          report("chunked f64 L64 sub16 (algebra)", gc, ref, T); }
        struct V { int L, sub; Prec i, s, o, w = (Prec)-1; };
        std::vector<V> vs;
        const char* only = getenv("WKV_VARIANTS");  // e.g. "diag": the per-group diagnosis instead of the table
        if (only && std::string(only) == "diag") {
            for (int L : {16, 64}) {
                vs.push_back({L, 16, BF16, F32, F32}); vs.push_back({L, 16, F32, BF16, F32}); vs.push_back({L, 16, F32, F32, BF16});
                vs.push_back({L, 16, F32, BF16X3, BF16X3}); vs.push_back({L, 16, BF16, BF16X3, BF16X3}); vs.push_back({L, 16, TF32, TF32X3, TF32});
                vs.push_back({L, 16, BF16, F32, F32, F32}); vs.push_back({L, 16, F32, F32, F32, BF16}); vs.push_back({L, 16, BF16, BF16X3, BF16, TF32});
                vs.push_back({L, 16, BF16, BF16X3, BF16, BF16X3});
            }
        } else if (only && std::string(only) == "rec") {  // the recommended L16 configuration and its cheaper neighbours
            vs.push_back({16, 16, BF16, BF16X3, BF16X3}); vs.push_back({16, 16, BF16, BF16X3, TF32}); vs.push_back({16, 16, BF16, TF32, TF32});
            vs.push_back({16, 16, BF16, BF16, TF32});
        } else for (int L : {16, 32, 64}) {
            vs.push_back({L, 16, F32, F32, F32});
            vs.push_back({L, 16, TF32, TF32, TF32});
            vs.push_back({L, 16, BF16, BF16, BF16});
            vs.push_back({L, 16, BF16, BF16X3, BF16});
            vs.push_back({L, 16, BF16, BF16X3, BF16X3});
            if (L > 16) vs.push_back({L, L, BF16, BF16, BF16});
        }
        for (auto& v : vs) {
            Prec wy = (int)v.w < 0 ? v.i : v.w;
            char name[80]; snprintf(name, sizeof name, "chunk L%d %s %s%s%s,%s,%s", v.L, v.sub == v.L && v.L > 16 ? "factored" : "sub16",
                                     precName[v.i], wy != v.i ? "/" : "", wy != v.i ? precName[wy] : "", precName[v.s], precName[v.o]);
            std::vector<Grads> gc; for (auto& h : heads) gc.push_back(chunked<float>(h, Cfg{v.L, v.sub, v.i, v.s, v.o, wy}));
            report(name, gc, ref, T);
        }
    }
}
