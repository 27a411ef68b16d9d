// WKV7 chunked backward, K3: the READOUT kernel (tensor cores, tf32), parallel over chunks of TC_L = 16 steps. Given
// the forward chunk states and the backward E chain's states (K1, K2), it computes for every step
//   dr_t = S_tᵀ dy_t,  da_t = S_{t−1}ᵀ dsa_t   (readouts of the forward states),
//   dk_t = E_tᵀ v_t,   db_t = E_tᵀ sa_t        (readouts of the E states),
//   dwRaw_t from dlw by the chunk-local identity (kernels/NOTES.md, "WKV7 on the tensor cores"; the emulator
//   kernels/dev/wkv7_chunk_tc_emu.cpp, chunked()), no E⊙S product per step.
// Check and timing: kernels/dev/wkv7_tc_readout_test.cu (against the float64 serial recurrence).
//
// Launch (recommended): grid (T/16, H, B), block 256 (8 warps), dynamic shared memory RO_SMEM1 = 87,824 bytes (the
// kernel uses RO_SMEM_USED = 86,400 of it; needs cudaFuncAttributeMaxDynamicSharedMemorySize; 2 CTAs per SM on the
// H100, __launch_bounds__(256, 2): 128 registers, 12 bytes spilled). In general: grid (G, H, B) with 1 ≤ G ≤ T/16;
// CTA x walks the CPB = ⌈(T/16)/G⌉ consecutive chunks x·CPB.. (chunks past T/16 are skipped).
// Measured on the H100 (kernels/dev/wkv7_tc_readout_test.cu, median of 20), overwrite = 1 / 0: B4 H32 T4096 0.94 /
// 1.01 ms (2.4 / 2.6 TB/s of the nominal 2.21 / 2.62 GB), B8 H12 T4096 0.71 / 0.76 ms; CPB 4 about the same (0.93 /
// 1.00 ms). With fp32 states and sa (before they were stored in bf16): 1.02 / 1.15 ms, B8 H12 0.76 / 0.86 ms.
// The previous version (scalar fragment loads and cvt, shuffles between the products, expf, shared-memory scans,
// nine barriers) took 1.63 / 1.65 ms: it issued 570 M warp instructions (now ~365 M) and waited on shared memory.
// This one: fragments by ldmatrix from swizzled rows (conflict-free), M's accumulators reused as the next product's
// A fragment, decays as ex2.approx in log2 units with the query factors stored once, the column scans and bnd in
// registers, raw bf16 rows in shared memory (column reads), four barriers a chunk, the previous gradient values
// prefetched into L2 at the start and loaded after the readouts (no registers held through them).
// Tried, no gain: streaming stores (st.global.cs); ldmatrix without the memory clobber; the previous values loaded
// at the start into registers (1.10 vs 1.06 ms at the time). Leaving S_c, E, dy, sa, dsa unrounded (truncated by the
// tensor cores) measured ~0.016 ms faster (in a build with an unrelated bug, so its accuracy is unknown); not done.
//
// Layouts: rows [B·T, H·64] (element (b, t, h, j) at ((b·T + t)·H + h)·64 + j); states bf16 [B, H, T/16, 64, 64]
// transposed (element (j, i) at j·64 + i holds S[i][j]): fstates[c] = S_{16c+15} (S_c, the start of chunk c, is
// fstates[c−1], 0 for c = 0), estates[c] = E_{16c+16} (zero for the last chunk: not read). The states and sa are
// bf16 as wkv7_tc.cu stores them (exact as tf32 operands); dy bf16 (as the official kernel's; exact in tf32); dsa fp32.
// drOut = drIn + the readout (drIn fp32; drOut fp32, may be drIn, or bf16 where bf16Out & 1: rounded once, the
// receptance GEMM's operand); dk is added (+=); da, db, dwRaw are added when overwrite == 0, written when
// overwrite == 1; dwRaw fp32, or bf16 where bf16Out & 2 (overwrite == 1 only: rounded once, the decay LoRA's operand).
//
// One chunk, steps t0..te (te = t0 + 15), local u = 0..15; row i = value index, column j = key index.
//   Forward side, start S_c, L[u] = Σ_{u' ≤ u} lw_{t0+u'} (log2 units: lw·log2 e, fp32, per column):
//     out[u][j] = 2^{L_q(u)}[j] · ( (C S_c)[u][j] + Σ_{s ≤ u (dr) / s < u (da)} ( (C_u·sa_s) b̂_s[j] + (C_u·v_s) k̂_s[j] ) )
//     with b̂_s = b_s 2^{−L[s]}, k̂_s = k_s 2^{−L[s]}; C = dy, L_q(u) = L[u] (dr); C = dsa, L_q(u) = L[u−1] (da, 0 at u = 0).
//   E side (the E recurrence run backwards in time, written in forward step order), start E_{te+1} = estates[c],
//   G[u] = Σ_{t' = t0+u+1 .. te+1} lw_{t'} (as L[15] − L[u] + lw_{te+1}):
//     out[u][j] = 2^{G[u]}[j] · ( (C E_{te+1})[u][j] + Σ_{s ≥ u} ( (C_u·dsa_{t0+s+1}) â_s[j] + (C_u·dy_{t0+s}) r̂_s[j] ) )
//     with â_s = a_{t0+s+1} 2^{−G[s]}, r̂_s = r_{t0+s} 2^{−G[s]} (a, dsa, lw at step T are 0); C = v → dk, C = sa → db.
//   Each readout is two warps (columns 0..31, 32..63): (C S) (K = 64), M = [C X1ᵀ | C X2ᵀ] (16×32, K = 64, masked;
//   both warps compute it), then += M·[Ŷ1; Ŷ2] (K = 32) into the same accumulators, scaled by the query factor.
//   The K = 64 operands are stored k-contiguous ([row][k], 64 floats a row, 16-byte chunks swizzled: ro_sw) and read
//   by ldmatrix (x4: an A fragment, or two k-steps of a B tile). M's C fragment is directly an A fragment of M·Ŷ when
//   the k slots (t, t+4) of M·Ŷ are M's columns (2t, 2t+1) (the same order in A and B, so the sum is unchanged) and
//   M's column n of tile q is step s = 4(n >> 1) + (n & 1) + 2(q & 1), with Ŷ stored transposed ([j][s], s
//   contiguous): one float4 of Ŷ feeds tiles q and q + 1. No shuffles.
//   Every product's operands are tf32 in shared memory: S_c, E_{te+1}, sa and v as their bf16 values (widened, exact),
//   dy, dsa and the key-scaled operands rounded (rna: tf32_round, two integer ops) once; M in registers (cvt.rna).
//   Decays (ex2.approx), prefix sums (four threads a column, registers) on the CUDA cores. The key factors
//   2^{−L}, 2^{−G} are ≤ e^{0.6065·16} ≈ 1.6e4 (the factored form, ref = chunk start).
//   dlw_{t0+u} = Σ_{u' = u..15} (r⊙dr + [u' < 15] a_{u'+1}⊙da_{u'+1} − b⊙db − k⊙dk)_{u'} + bnd, with
//     bnd[j] = Σ_i Ê[i][j] S_te[i][j], Ê = E_{te+1}(diag ω_{te+1} + b_{te+1} a_{te+1}ᵀ), which is
//     bnd[j] = ω_{te+1}[j] Σ_i E_{te+1}[i][j] S_te[i][j] + a_{te+1}[j] Σ_i dsa_{te+1}[i] S_te[i][j]
//     (E_{te+1} b_{te+1} = dsa_{te+1}; E and S as stored, dsa unrounded); S_te = fstates[c] is read into registers
//     (L2: it is also the next chunk's S_c). dwRaw = dlw · (−e^{−1/2}) σ (1 − σ).
// Threads: elementwise work on rows is (row u = tid >> 4, columns c4 = 4·(tid & 15)..+3); column work (the scans,
// bnd, the key-scaled operands, dlw, dwRaw) is (column bj = tid >> 2, rows 4·bq..4·bq+3, bq = tid & 3).
#include "wkv7_tc.cuh"

#define RO_THREADS 256  // block size (the launch)

// Shared memory, in floats. K = 64 operands: [rows][64], swizzled (ro_sw).
#define RO_ST 0                    // S_c transposed [64 j][64 i]; after the readouts with E: the outputs O
#define RO_ET (RO_ST + 64 * 64)    // E_{te+1} transposed [64 j][64 i]
#define RO_DY (RO_ET + 64 * 64)    // dy_{t0+u} [16][64]
#define RO_SA (RO_DY + 16 * 64)    // sa_{t0+u} [16][64]
#define RO_V (RO_SA + 16 * 64)     // v_{t0+u} [16][64]
#define RO_DSA (RO_V + 16 * 64)    // dsa_{t0+u}, u = 0..16 [17][64] (row 16 = dsa_{te+1}, 0 past T)
#define RO_DSAN (RO_DSA + 17 * 64) // dsa_{te+1} unrounded, plain [64] (for bnd)
#define RO_YB (RO_DSAN + 64)       // b̂ transposed [64 j][16 s]
#define RO_YK (RO_YB + 64 * 16)    // k̂
#define RO_YA (RO_YK + 64 * 16)    // â
#define RO_YR (RO_YA + 64 * 16)    // r̂
#define RO_Q (RO_YR + 64 * 16)     // query factors [64 j][RO_QLD]: 2^{L[u]} at 4 + u (1 at 3), 2^{G[u]} at 20 + u
#define RO_QLD 36
#define RO_RAW (RO_Q + 64 * RO_QLD) // bf16 r, k, b, wRaw, a: [5][17][64] (row 16 of wRaw and a: step te + 1), ro_rsw
#define RO_BND (RO_RAW + 5 * 17 * 32)  // bnd [64]
#define RO_END (RO_BND + 64)
#define RO_OLD 72                  // outputs O [4][16][72] (dr, da, dk, db) over S_c and E, ro_osw
#define RO_SMEM_USED (RO_END * 4)  // 86,400
#define RO_SMEM1 87824             // the launch's dynamic shared memory (≥ RO_SMEM_USED)
static_assert(RO_SMEM_USED <= RO_SMEM1, "readout shared memory");
static_assert(4 * 16 * RO_OLD <= 2 * 64 * 64, "outputs over S_c and E");

#define RO_RAW_R 0
#define RO_RAW_K 1
#define RO_RAW_B 2
#define RO_RAW_W 3
#define RO_RAW_A 4

#define RO_LOG2E 1.4426950408889634f

// Element (row, col) of a swizzled [rows][64] operand: 16-byte chunk c of a row is stored at c ^ ro_f(row), with
// ro_f(row) = (b2, b1 ^ b3, b0) of the row's bits, a bijection on the rows of every 8-row set an ldmatrix reads: 8
// consecutive rows (A, S_x tiles) and M's X tiles {4i + j + 2q + x1off: i < 4, j < 2} (q, x1off ∈ {0, 1}); so every
// ldmatrix phase, and a quarter warp's 16-byte loads of rows 2m, 2m + 1, hit distinct banks.
__device__ __forceinline__ int ro_f(int row) { return (row & 5) | ((row ^ (row >> 2)) & 2); }
__device__ __forceinline__ int ro_sw(int row, int col) { return row * 64 + (col ^ (ro_f(row) << 2)); }
// Element (row, col) of the outputs O [64][RO_OLD] (row = 16·readout + u): columns XOR 8·((row >> 2) & 3), so that
// the column work's reads of rows 4·bq + q hit distinct banks (the fragment stores and row reads stay conflict-free).
__device__ __forceinline__ int ro_osw(int row, int col) { return row * RO_OLD + (col ^ (((row >> 2) & 3) << 3)); }

// Four 8×4 fp32 matrices (8×8 b16) from shared memory: lane L gives the row address of matrix L >> 3, row L & 7;
// register q gets element (row lane >> 2, column lane & 3) of matrix q: the tf32 A / B fragment layouts.
__device__ __forceinline__ void ro_ldsm4(unsigned (&x)[4], unsigned addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(x[0]), "=r"(x[1]), "=r"(x[2]), "=r"(x[3])
                 : "r"(addr)
                 : "memory");
}
// Element (row, col) of raw tensor x (ushort index): 16-byte chunks XOR (row >> 2) & 3, so that the column reads of
// four row quarters hit distinct banks.
__device__ __forceinline__ int ro_rsw(int x, int row, int col) { return (x * 17 + row) * 64 + (col ^ (((row >> 2) & 3) << 3)); }

__device__ __forceinline__ float ro_ex2(float x) {
    float r;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
    return r;
}

__device__ __forceinline__ float4 ro_round4(float4 x) {
    return make_float4(tf32_round(x.x), tf32_round(x.y), tf32_round(x.z), tf32_round(x.w));
}
__device__ __forceinline__ void ro_round_at(float* p) {
    *reinterpret_cast<float4*>(p) = ro_round4(*reinterpret_cast<const float4*>(p));
}
__device__ __forceinline__ float4 ro_lds4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ void ro_zero16(void* d) { *reinterpret_cast<float4*>(d) = make_float4(0.f, 0.f, 0.f, 0.f); }

extern "C" __global__ void __launch_bounds__(256, 2) wkv7_tc_readout(
    int T, int H, const unsigned short* r, const unsigned short* wRaw, const unsigned short* k,
    const unsigned short* v, const unsigned short* a, const unsigned short* b, const unsigned short* dy,
    const unsigned short* fstates, const unsigned short* sa, const unsigned short* estates, const float* dsa,
    const float* drIn, void* drOut, void* dwRaw, float* dk, float* da, float* db, int overwrite, int bf16Out) {
    extern __shared__ __align__(16) float sm[];
    const int h = blockIdx.y, bb = blockIdx.z, nc = T / TC_L, tid = threadIdx.x;
    const int cpb = (nc + gridDim.x - 1) / gridDim.x;
    const int cBeg = blockIdx.x * cpb, cEnd = min(nc, cBeg + cpb);
    const i64 rs = (i64)H * GOSLING_HEAD;
    const i64 st = ((i64)bb * H + h) * nc;
    const int warp = tid >> 5, lane = tid & 31, g = lane >> 2, tq = lane & 3;
    const int rd = warp >> 1, half = warp & 1;    // readout (dr, da, dk, db) and its column half
    const int u = tid >> 4, c4 = (tid & 15) * 4;  // row work: row u, columns c4..c4+3
    const int bj = tid >> 2, bq = tid & 3;        // column work: column bj, rows 4·bq..4·bq+3
    unsigned short* raw = reinterpret_cast<unsigned short*>(sm + RO_RAW);
    const unsigned sb = shared_address(sm);
    // column work's raw rows 4·bq + q (q = 0..3: swizzle bq; q = 4: row 4·bq + 4, swizzle (bq + 1) & 3; row 16: 0)
    const unsigned short* rawA = raw + 4 * bq * 64 + (bj ^ (bq << 3));
    const unsigned short* rawB = raw + (4 * bq + 4) * 64 + (bj ^ (((bq + 1) & 3) << 3));
    auto rawq = [&](int x, int q) { return bf16_f32(q < 4 ? rawA[(x * 17 + q) * 64] : rawB[x * 17 * 64]); };
    auto raw16 = [&](int x) { return bf16_f32(raw[(x * 17 + 16) * 64 + bj]); };

    for (int c = cBeg; c < cEnd; c++) {
        const bool hasNext = c + 1 < nc;
        const i64 row0 = ((i64)bb * T + (i64)c * TC_L) * rs + (i64)h * GOSLING_HEAD;  // element (t0, h, 0)
        if (c > cBeg) __syncthreads();  // the previous chunk is done with shared memory
        // ---- loads: the bf16 states and sa into registers (widened into shared memory below), the rest by cp.async
        //      into shared memory; zeros where the source does not exist
        // states: this thread's 4 elements of rows (tid >> 4) + 16·p, at (tid & 15)·4 (swizzle the same for every p)
        uint2 sq[4], eq[4];
        {
            const uint2 zero = make_uint2(0u, 0u);
            const uint2* sc = reinterpret_cast<const uint2*>(fstates + (st + c - 1) * 4096) + tid;
            const uint2* ecp = reinterpret_cast<const uint2*>(estates + (st + c) * 4096) + tid;
#pragma unroll
            for (int p = 0; p < 4; p++) {
                sq[p] = c > 0 ? __ldg(sc + 256 * p) : zero;
                eq[p] = hasNext ? __ldg(ecp + 256 * p) : zero;
            }
        }
        const uint2 saq = __ldg(reinterpret_cast<const uint2*>(sa + row0 + u * rs + c4));
        {
            const i64 go = row0 + u * rs + c4;
            const unsigned ro = sb + 4u * ro_sw(u, c4);
            copy16_to(ro + 4u * RO_DSA, dsa + go);
            if (tid < 16) {
                const float* src = dsa + row0 + 16 * rs + 4 * tid;
                if (hasNext) {
                    copy16_to(sb + 4u * (RO_DSA + ro_sw(16, 4 * tid)), src);
                    copy16_to(sb + 4u * (RO_DSAN + 4 * tid), src);
                } else {
                    ro_zero16(sm + RO_DSA + ro_sw(16, 4 * tid));
                    ro_zero16(sm + RO_DSAN + 4 * tid);
                }
            }
            // bf16 rows (128 bytes = 8 chunks of 16): threads 0..127 r, k, b; 128..255 wRaw, a; 0..7 row 16 of wRaw, a
            const int row = (tid & 127) >> 3, col = (tid & 7) * 8;
            const i64 o = row0 + row * rs + col;
            const unsigned rd0 = sb + 4u * RO_RAW + 2u * ro_rsw(0, row, col);
            if (tid < 128) {
                copy16_to(rd0 + 2u * (RO_RAW_R * 17 * 64), r + o);
                copy16_to(rd0 + 2u * (RO_RAW_K * 17 * 64), k + o);
                copy16_to(rd0 + 2u * (RO_RAW_B * 17 * 64), b + o);
            } else {
                copy16_to(rd0 + 2u * (RO_RAW_W * 17 * 64), wRaw + o);
                copy16_to(rd0 + 2u * (RO_RAW_A * 17 * 64), a + o);
            }
            if (tid < 8) {
                const i64 o16 = row0 + 16 * rs + col;
                if (hasNext) {
                    copy16_to(sb + 4u * RO_RAW + 2u * ro_rsw(RO_RAW_W, 16, col), wRaw + o16);
                    copy16_to(sb + 4u * RO_RAW + 2u * ro_rsw(RO_RAW_A, 16, col), a + o16);
                } else {
                    ro_zero16(raw + ro_rsw(RO_RAW_W, 16, col));
                    ro_zero16(raw + ro_rsw(RO_RAW_A, 16, col));
                }
            }
            copy_commit();
        }
        // ---- registers: v and dy (row work), S_te's quarter column (bnd), the gradients' previous values
        const i64 eo = row0 + u * rs + c4;        // row work's element
        const i64 ec = row0 + (4 * bq) * rs + bj;  // column work's first element (rows + q·rs)
        const uint2 vq = *reinterpret_cast<const uint2*>(v + eo);
        const uint2 dyq = *reinterpret_cast<const uint2*>(dy + eo);
        uint2 ste[4];  // S_te[i][bj], i = 16·bq + 4·((q + bq) & 3).. (the rotation keeps bnd's shared loads conflict-free)
        {
            const uint2* p = reinterpret_cast<const uint2*>(fstates + (st + c) * 4096 + bj * 64 + 16 * bq);
#pragma unroll
            for (int q = 0; q < 4; q++) ste[q] = hasNext ? __ldg(p + ((q + bq) & 3)) : make_uint2(0u, 0u);
        }
        // the gradients' previous values: into L2 now (no registers held through the readouts), loaded after them
        if ((tid & 7) == 0) {
            asm volatile("prefetch.global.L2 [%0];" ::"l"(drIn + eo));
            asm volatile("prefetch.global.L2 [%0];" ::"l"(dk + eo));
            if (!overwrite) {
                asm volatile("prefetch.global.L2 [%0];" ::"l"(da + eo));
                asm volatile("prefetch.global.L2 [%0];" ::"l"(db + eo));
                asm volatile("prefetch.global.L2 [%0];" ::"l"(static_cast<const float*>(dwRaw) + eo));
            }
        }
        {
            const int so = ro_sw(tid >> 4, 4 * (tid & 15));
#pragma unroll
            for (int p = 0; p < 4; p++) {
                *reinterpret_cast<float4*>(sm + RO_ST + so + 1024 * p) = bf16x4_f32(sq[p]);
                *reinterpret_cast<float4*>(sm + RO_ET + so + 1024 * p) = bf16x4_f32(eq[p]);
            }
        }
        copy_wait();
        __syncthreads();

        // ---- phase 1. Column work: decays, prefix sums, key-scaled operands, query factors, bnd. Row work: dsa
        //      rounded in place, sa, v and dy widened (bf16: exact in tf32).
        {
            float x[4];
#pragma unroll
            for (int q = 0; q < 4; q++)
                x[q] = (TC_W_SCALE * RO_LOG2E) * rcp_approx(1.0f + __expf(-rawq(RO_RAW_W, q)));
            const float lwn = hasNext ? (TC_W_SCALE * RO_LOG2E) * rcp_approx(1.0f + __expf(-raw16(RO_RAW_W))) : 0.0f;
            x[1] += x[0]; x[2] += x[1]; x[3] += x[2];
            float incl = x[3], n = __shfl_up_sync(0xffffffffu, incl, 1);
            if (bq >= 1) incl += n;
            n = __shfl_up_sync(0xffffffffu, incl, 2);
            if (bq >= 2) incl += n;
            const float excl = incl - x[3];
            const float l15 = __shfl_sync(0xffffffffu, incl, lane | 3);
            float yb[4], yk[4], ya[4], yr[4], qr[4], qg[4];
#pragma unroll
            for (int q = 0; q < 4; q++) {
                const float L = excl + x[q], G = (l15 - L) + lwn;
                const float kf = ro_ex2(-L), kg = ro_ex2(-G);
                qr[q] = ro_ex2(L); qg[q] = ro_ex2(G);
                yb[q] = tf32_round(rawq(RO_RAW_B, q) * kf);
                yk[q] = tf32_round(rawq(RO_RAW_K, q) * kf);
                ya[q] = tf32_round(rawq(RO_RAW_A, q + 1) * kg);
                yr[q] = tf32_round(rawq(RO_RAW_R, q) * kg);
            }
            const int yo = bj * 16 + 4 * bq;
            *reinterpret_cast<float4*>(sm + RO_YB + yo) = make_float4(yb[0], yb[1], yb[2], yb[3]);
            *reinterpret_cast<float4*>(sm + RO_YK + yo) = make_float4(yk[0], yk[1], yk[2], yk[3]);
            *reinterpret_cast<float4*>(sm + RO_YA + yo) = make_float4(ya[0], ya[1], ya[2], ya[3]);
            *reinterpret_cast<float4*>(sm + RO_YR + yo) = make_float4(yr[0], yr[1], yr[2], yr[3]);
            float* qp = sm + RO_Q + bj * RO_QLD;
            *reinterpret_cast<float4*>(qp + 4 + 4 * bq) = make_float4(qr[0], qr[1], qr[2], qr[3]);
            *reinterpret_cast<float4*>(qp + 20 + 4 * bq) = make_float4(qg[0], qg[1], qg[2], qg[3]);
            if (bq == 0) qp[3] = 1.0f;
            // bnd: this thread's i = 16·bq.. of column bj (row bj of E, S_te transposed)
            float p1 = 0.0f, p2 = 0.0f;
#pragma unroll
            for (int q = 0; q < 4; q++) {
                const int col = 16 * bq + 4 * ((q + bq) & 3);
                const float4 e4 = ro_lds4(sm + RO_ET + ro_sw(bj, col)), d4 = ro_lds4(sm + RO_DSAN + col);
                const float4 s = bf16x4_f32(ste[q]);
                p1 = fmaf(e4.x, s.x, p1); p1 = fmaf(e4.y, s.y, p1); p1 = fmaf(e4.z, s.z, p1); p1 = fmaf(e4.w, s.w, p1);
                p2 = fmaf(d4.x, s.x, p2); p2 = fmaf(d4.y, s.y, p2); p2 = fmaf(d4.z, s.z, p2); p2 = fmaf(d4.w, s.w, p2);
            }
            p1 += __shfl_xor_sync(0xffffffffu, p1, 1);
            p2 += __shfl_xor_sync(0xffffffffu, p2, 1);
            p1 += __shfl_xor_sync(0xffffffffu, p1, 2);
            p2 += __shfl_xor_sync(0xffffffffu, p2, 2);
            if (bq == 0) sm[RO_BND + bj] = ro_ex2(lwn) * p1 + raw16(RO_RAW_A) * p2;  // a_{te+1}: 0 past T
            // row work (physical order: rounding is elementwise)
            ro_round_at(sm + RO_DSA + 4 * tid);
            if (tid < 16) ro_round_at(sm + RO_DSA + 16 * 64 + 4 * tid);
            *reinterpret_cast<float4*>(sm + RO_SA + ro_sw(u, c4)) = bf16x4_f32(saq);
            *reinterpret_cast<float4*>(sm + RO_V + ro_sw(u, c4)) = bf16x4_f32(vq);
            *reinterpret_cast<float4*>(sm + RO_DY + ro_sw(u, c4)) = bf16x4_f32(dyq);
        }
        __syncthreads();

        // ---- the four readouts, two warps each (warp-uniform operand choice)
        float acc[4][4];
        {
            const bool fwd = rd < 2;
            const float* C = sm + (rd == 0 ? RO_DY : rd == 1 ? RO_DSA : rd == 2 ? RO_V : RO_SA);
            const float* Sx = sm + (fwd ? RO_ST : RO_ET);
            const int x1off = fwd ? 0 : 1;  // X1 = sa (rows s) or dsa (rows s + 1)
            const float* X1 = sm + (fwd ? RO_SA : RO_DSA);
            const float* X2 = sm + (fwd ? RO_V : RO_DY);
            const float* Y1 = sm + (fwd ? RO_YB : RO_YA);
            const float* Y2 = sm + (fwd ? RO_YK : RO_YR);
            const float* Qp = sm + RO_Q + (rd == 0 ? 4 : rd == 1 ? 3 : 20);
            const int mode = rd < 2 ? rd : 2;  // 0: s ≤ u, 1: s < u, 2: s ≥ u
            const int n0 = 32 * half;
            // ldmatrix row addresses. A (C, rows 0..15): matrix q = rows 8·(q & 1).., k chunk 2·kk + (q >> 1).
            // B (S_x rows n0 + 8·nt.., or X rows of M's tiles): matrix q = k chunk 4·p + q (two k-steps).
            // Chunk ch of row w is at 4·(ch ^ f), f = ro_f(w) < 8; for ch = 4p + m (m < 4): 16p + 4·((m ^ f) & 3) ± 16·(f >> 2)
            // (+ for even p): two bases a row (even / odd p) and immediate offsets.
            const int lr = lane & 7, lm = lane >> 3;
            auto rowAddr = [&](const float* base, int w, int m, unsigned& ev, unsigned& od) {
                const int fw = ro_f(w), o = w * 64 + 4 * ((m ^ fw) & 3), d = 16 * ((fw >> 2) & 1);
                ev = sb + 4u * (unsigned)(base - sm + o + d);
                od = sb + 4u * (unsigned)(base - sm + o - d);
            };
            unsigned aE, aO, a2E, a2O, sE[2], sO[2], x1E[2], x1O[2], x2E[2], x2O[2];
            {
                const int w = lr + 8 * (lm & 1), m = lm >> 1;  // A: chunk 2·kk + m = 4·(kk >> 1) + 2·(kk & 1) + m
                rowAddr(C, w, m, aE, aO);
                rowAddr(C, w, m + 2, a2E, a2O);
            }
            rowAddr(Sx, n0 + lr, lm, sE[0], sO[0]);      // tiles nt = 0, 2 (rows + 16: the same swizzle)
            rowAddr(Sx, n0 + 8 + lr, lm, sE[1], sO[1]);  // tiles nt = 1, 3
#pragma unroll
            for (int q = 0; q < 2; q++) {
                const int srow = 4 * (lr >> 1) + (lr & 1) + 2 * q;  // M's column lr of tile q (q + 2): step srow
                rowAddr(X1, srow + x1off, lm, x1E[q], x1O[q]);
                rowAddr(X2, srow, lm, x2E[q], x2O[q]);
            }
            float m[4][4];
#pragma unroll
            for (int q = 0; q < 4; q++) {
                acc[q][0] = acc[q][1] = acc[q][2] = acc[q][3] = 0.0f;
                m[q][0] = m[q][1] = m[q][2] = m[q][3] = 0.0f;
            }
#pragma unroll
            for (int p = 0; p < 4; p++) {
                const unsigned po = 64u * p;  // bytes
                unsigned a0[4], a1[4], bs[4][4], bx[4][4];
                // A for k-steps 2p, 2p + 1: chunks 4p + {0, 1} and 4p + {2, 3}: m = lm >> 1 plus 0 / 2
                ro_ldsm4(a0, ((p & 1) ? aO : aE) + po);
                ro_ldsm4(a1, ((p & 1) ? a2O : a2E) + po);
#pragma unroll
                for (int nt = 0; nt < 4; nt++) ro_ldsm4(bs[nt], ((p & 1) ? sO[nt & 1] : sE[nt & 1]) + po + 4096u * (nt >> 1));
                ro_ldsm4(bx[0], ((p & 1) ? x1O[0] : x1E[0]) + po);
                ro_ldsm4(bx[1], ((p & 1) ? x1O[1] : x1E[1]) + po);
                ro_ldsm4(bx[2], ((p & 1) ? x2O[0] : x2E[0]) + po);
                ro_ldsm4(bx[3], ((p & 1) ? x2O[1] : x2E[1]) + po);
#pragma unroll
                for (int nt = 0; nt < 4; nt++) {
                    mma_tf32(acc[nt], a0, {bs[nt][0], bs[nt][1]});
                    mma_tf32(acc[nt], a1, {bs[nt][2], bs[nt][3]});
                }
#pragma unroll
                for (int q = 0; q < 4; q++) {
                    mma_tf32(m[q], a0, {bx[q][0], bx[q][1]});
                    mma_tf32(m[q], a1, {bx[q][2], bx[q][3]});
                }
            }
            // mask: element e of tile q is (u, s) = (g + 8·(e >> 1), 4·tq + 2·(q & 1) + (e & 1))
#pragma unroll
            for (int q = 0; q < 4; q++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int uu = g + (e >> 1) * 8, s = 4 * tq + 2 * (q & 1) + (e & 1);
                    const bool keep = mode == 2 ? s >= uu : s + mode <= uu;
                    if (!keep) m[q][e] = 0.0f;
                }
            // += M·[Ŷ1; Ŷ2]: tile q is a k-step (slots t, t+4 = steps 4t + 2(q & 1) + 0, 1)
            float4 y[2][4];
#pragma unroll
            for (int nt = 0; nt < 4; nt++) {
                y[0][nt] = ro_lds4(Y1 + (n0 + 8 * nt + g) * 16 + 4 * tq);
                y[1][nt] = ro_lds4(Y2 + (n0 + 8 * nt + g) * 16 + 4 * tq);
            }
#pragma unroll
            for (int q = 0; q < 4; q++) {
                const unsigned af[4] = {tf32_of(m[q][0]), tf32_of(m[q][2]), tf32_of(m[q][1]), tf32_of(m[q][3])};
#pragma unroll
                for (int nt = 0; nt < 4; nt++) {
                    const float4& yy = y[q >> 1][nt];
                    const unsigned bf[2] = {__float_as_uint((q & 1) ? yy.z : yy.x), __float_as_uint((q & 1) ? yy.w : yy.y)};
                    mma_tf32(acc[nt], af, {bf[0], bf[1]});
                }
            }
            // query factors
#pragma unroll
            for (int nt = 0; nt < 4; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int uu = g + (e >> 1) * 8, j = n0 + 8 * nt + 2 * tq + (e & 1);
                    acc[nt][e] *= Qp[j * RO_QLD + uu];
                }
        }
        float4 pdr, pdk, pda = make_float4(0.f, 0.f, 0.f, 0.f), pdb = pda;
        float pdw[4] = {0.f, 0.f, 0.f, 0.f};
        pdr = *reinterpret_cast<const float4*>(drIn + eo);
        pdk = *reinterpret_cast<const float4*>(dk + eo);
        if (!overwrite) {
            pda = *reinterpret_cast<const float4*>(da + eo);
            pdb = *reinterpret_cast<const float4*>(db + eo);
#pragma unroll
            for (int q = 0; q < 4; q++) pdw[q] = static_cast<const float*>(dwRaw)[ec + q * rs];
        }
        __syncthreads();  // every warp is done with S_c and E
        float* O = sm + RO_ST;  // [4][16][RO_OLD]: dr, da, dk, db
        {
#pragma unroll
            for (int nt = 0; nt < 4; nt++) {
                const int j = 32 * half + 8 * nt + 2 * tq;
                *reinterpret_cast<float2*>(O + ro_osw(16 * rd + g, j)) = make_float2(acc[nt][0], acc[nt][1]);
                *reinterpret_cast<float2*>(O + ro_osw(16 * rd + g + 8, j)) = make_float2(acc[nt][2], acc[nt][3]);
            }
        }
        __syncthreads();
        // ---- row work: the gradients to global (overwrite: pda, pdb are 0)
        {
            const int ou = ro_osw(u, c4);  // + 16·RO_OLD a readout
            const float4 odr = ro_lds4(O + ou), oda = ro_lds4(O + 16 * RO_OLD + ou);
            const float4 odk = ro_lds4(O + 32 * RO_OLD + ou), odb = ro_lds4(O + 48 * RO_OLD + ou);
            const float4 sdr = make_float4(pdr.x + odr.x, pdr.y + odr.y, pdr.z + odr.z, pdr.w + odr.w);
            if (bf16Out & 1)
                *reinterpret_cast<uint2*>(static_cast<unsigned short*>(drOut) + eo) =
                    make_uint2(bf16x2_rn(sdr.x, sdr.y), bf16x2_rn(sdr.z, sdr.w));
            else
                *reinterpret_cast<float4*>(static_cast<float*>(drOut) + eo) = sdr;
            *reinterpret_cast<float4*>(dk + eo) = make_float4(pdk.x + odk.x, pdk.y + odk.y, pdk.z + odk.z, pdk.w + odk.w);
            *reinterpret_cast<float4*>(da + eo) = make_float4(pda.x + oda.x, pda.y + oda.y, pda.z + oda.z, pda.w + oda.w);
            *reinterpret_cast<float4*>(db + eo) = make_float4(pdb.x + odb.x, pdb.y + odb.y, pdb.z + odb.z, pdb.w + odb.w);
        }
        // ---- column work: dlw = bnd + the reverse cumulative sum of the terms (fp32), dwRaw (overwrite: pdw is 0)
        {
            float x[4];
#pragma unroll
            for (int q = 0; q < 4; q++) {
                const int uu = 4 * bq + q;
                const float* oc = O + ro_osw(uu, bj);
                float t = rawq(RO_RAW_R, q) * oc[0] - rawq(RO_RAW_B, q) * oc[48 * RO_OLD] -
                          rawq(RO_RAW_K, q) * oc[32 * RO_OLD];
                if (uu < 15) t += rawq(RO_RAW_A, q + 1) * O[16 * RO_OLD + ro_osw(uu + 1, bj)];
                x[q] = t;
            }
            x[2] += x[3]; x[1] += x[2]; x[0] += x[1];
            float incl = x[0], n = __shfl_down_sync(0xffffffffu, incl, 1);
            if (bq <= 2) incl += n;
            n = __shfl_down_sync(0xffffffffu, incl, 2);
            if (bq <= 1) incl += n;
            const float excl = (incl - x[0]) + sm[RO_BND + bj];
#pragma unroll
            for (int q = 0; q < 4; q++) {
                const float sg = rcp_approx(1.0f + __expf(-rawq(RO_RAW_W, q)));
                const float dw = pdw[q] + (excl + x[q]) * (TC_W_SCALE * sg * (1.0f - sg));
                if (bf16Out & 2) static_cast<unsigned short*>(dwRaw)[ec + q * rs] = bf16_rn(dw);
                else static_cast<float*>(dwRaw)[ec + q * rs] = dw;
            }
        }
    }
}
