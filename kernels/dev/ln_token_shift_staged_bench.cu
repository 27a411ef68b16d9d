// The fused LayerNorm + token-shift kernels with staged inputs (token_shift.cu's _staged entry points: cp.async copies
// rows ahead into shared memory) against main's: the backward from bf16 dOuts (ln_token_shift_backward_bf16_j1, the
// one-row register prefetch; the staged kernel and 3 and 4 stages) and the row-step forward with bf16 outputs (main:
// the unstaged row-step kernel and _j1 for saved statistics with k > 1, as main's launcher picks them; the staged
// kernel as the launcher now picks it, always, and with 3 stages). Every output compared bit for bit (dx, its bf16
// copy and the column partials under the same grid; the mixes, mean and rstd) at 10 shapes, k = 6, 1, 3, grids of
// the launcher, 7 and 1, dx added and written; then timed (cudaEvent, median of 20) at rows = 16384 (B 4 × T 4096),
// C = 2048, 1024, 768, k = 6 and 1, each on its launcher-style grid (one wave of occupancy × SMs blocks: at least 8
// rows a block forward, 16 backward), with a copy-only kernel of the same bytes as the ceiling. No GPU in the build
// container: build here, run on the device.
//   nvcc -O3 -std=c++17 -arch=sm_90 -I kernels/src/main/cuda -o /tmp/ltss kernels/dev/ln_token_shift_staged_bench.cu && /tmp/ltss
#include "../src/main/cuda/token_shift.cu"
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bench.h"

static int sms, optin;

struct FArgs {
    const float *x, *w, *b;
    float *mean, *rstd;
    int saved;
    const float* mix[TS_MAX];
    unsigned short* out[TS_MAX];
    int k, rows, T, C;
};

struct BArgs {
    const unsigned short* dOut[TS_MAX];
    const float *x, *w, *b, *mean, *rstd;
    const float* mix[TS_MAX];
    float* dx;
    unsigned short* dxB;
    float* partial;
    int k, rows, T, C, accumulate;
};

template <int J, int U, int S, int MINB>
__global__ void __launch_bounds__(32 * LTS_MAX_WARPS / J, MINB) fwd_kernel(FArgs a) {
    const float* const mix[TS_MAX] = {a.mix[0], a.mix[1], a.mix[2], a.mix[3], a.mix[4], a.mix[5]};
    unsigned short* const out[TS_MAX] = {a.out[0], a.out[1], a.out[2], a.out[3], a.out[4], a.out[5]};
    ln_forward_rows_k<J, U, unsigned short, S>(a.k, a.x, a.w, a.b, a.mean, a.rstd, a.saved, mix, out, a.rows, a.T, a.C,
                                               1e-5f);
}

template <int S>
__global__ void __launch_bounds__(32 * LTS_MAX_WARPS) bwd_kernel(BArgs a) {
    const unsigned short* const dOut[TS_MAX] = {a.dOut[0], a.dOut[1], a.dOut[2], a.dOut[3], a.dOut[4], a.dOut[5]};
    const float* const mix[TS_MAX] = {a.mix[0], a.mix[1], a.mix[2], a.mix[3], a.mix[4], a.mix[5]};
    ln_backward_k<1, unsigned short, false, S>(a.k, dOut, a.x, a.w, a.b, a.mean, a.rstd, mix, a.dx, a.dxB, a.partial,
                                               a.rows, a.T, a.C, a.accumulate);
}

// Copy-only ceilings with the same bytes: the forward's (x read, k bf16 outputs written) and the backward's (x, k
// bf16 dOuts and dx read; dx and its bf16 copy written), grid-stride over float4s, no arithmetic to speak of.
__global__ void ceiling_fwd(const float4* __restrict__ x, FArgs a, i64 n4) {
    GRID_STRIDE(i, n4) {
        float4 v = x[i];
        for (int k = 0; k < a.k; k++) {
            ushort4 h = {bf16_rn(v.x), bf16_rn(v.y), bf16_rn(v.z), bf16_rn(v.w)};
            reinterpret_cast<ushort4*>(a.out[k])[i] = h;
        }
    }
}

__global__ void ceiling_bwd(BArgs a, i64 n4) {
    GRID_STRIDE(i, n4) {
        float4 v = reinterpret_cast<const float4*>(a.x)[i], d = reinterpret_cast<const float4*>(a.dx)[i];
        for (int k = 0; k < a.k; k++) {
            ushort4 h = reinterpret_cast<const ushort4*>(a.dOut[k])[i];
            v.x += bf16_f32(h.x);
            v.y += bf16_f32(h.y);
            v.z += bf16_f32(h.z);
            v.w += bf16_f32(h.w);
        }
        d.x += v.x;
        d.y += v.y;
        d.z += v.z;
        d.w += v.w;
        reinterpret_cast<float4*>(a.dx)[i] = d;
        ushort4 h = {bf16_rn(d.x), bf16_rn(d.y), bf16_rn(d.z), bf16_rn(d.w)};
        reinterpret_cast<ushort4*>(a.dxB)[i] = h;
    }
}

static int occupancy(const void* fn, int threads, size_t smem) {
    int n = 0;
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, fn, threads, smem));
    return n;
}

static void allow_smem(const void* fn) {
    cudaFuncAttributes fa;
    CK(cudaFuncGetAttributes(&fa, fn));
    CK(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, optin - (int)fa.sharedSizeBytes));
}

static void describe(const char* name, const void* fn) {
    cudaFuncAttributes fa;
    CK(cudaFuncGetAttributes(&fa, fn));
    printf("%-22s %3d registers, %d B local, %d B static shared\n", name, fa.numRegs, (int)fa.localSizeBytes,
           (int)fa.sharedSizeBytes);
}

static int groups_of(int C) { return (C / 4 + 31) / 32; }

// A kernel under test: run(args, grid) launches it (grid 0: its launcher-style grid), false where it does not apply.
template <typename A>
struct Variant {
    std::string name;
    std::function<bool(const A&, int)> run;
};

// the forward as main's launcher picks it at C <= 2048: the unstaged row-step kernel, _j1 for saved statistics with
// k > 1
static Variant<FArgs> fwd_main() {
    return {"main", [](const FArgs& a, int grid) {
                bool rowsK = !(a.saved && a.k > 1);
                const void* fn = rowsK ? (const void*)ln_token_shift_forward_rows_bf16
                                       : (const void*)ln_token_shift_forward_bf16_j1;
                int nt = 32 * ((groups_of(a.C) + (rowsK ? LTS_ROWS_J : 1) - 1) / (rowsK ? LTS_ROWS_J : 1));
                int ng = grid ? grid : std::max(1, std::min((a.rows + 7) / 8, sms * occupancy(fn, nt, 0)));
#define FWD_ENTRY_ARGS                                                                                                \
    a.x, a.w, a.b, a.mean, a.rstd, a.saved, a.mix[0], a.mix[1], a.mix[2], a.mix[3], a.mix[4], a.mix[5], a.out[0], \
        a.out[1], a.out[2], a.out[3], a.out[4], a.out[5], a.k, a.rows, a.T, a.C, 1e-5f
                if (rowsK)
                    ln_token_shift_forward_rows_bf16<<<ng, nt>>>(FWD_ENTRY_ARGS);
                else
                    ln_token_shift_forward_bf16_j1<<<ng, nt>>>(FWD_ENTRY_ARGS);
                CK(cudaGetLastError());
                return true;
            }};
}

// the committed entry points as the launcher picks them (launcher: the staged row-step kernel for statistics of one
// mix, else main's choice) or the staged row-step kernel always (staged)
static Variant<FArgs> fwd_entry(const char* name, bool launcher) {
    return {name, [=](const FArgs& a, int grid) {
                bool staged = !launcher || (!a.saved && a.k == 1);
                bool rowsK = staged || !(a.saved && a.k > 1);
                const void* fn = staged  ? (const void*)ln_token_shift_forward_rows_staged_bf16
                                 : rowsK ? (const void*)ln_token_shift_forward_rows_bf16
                                         : (const void*)ln_token_shift_forward_bf16_j1;
                int nt = 32 * ((groups_of(a.C) + (rowsK ? LTS_ROWS_J : 1) - 1) / (rowsK ? LTS_ROWS_J : 1));
                size_t smem = staged ? (size_t)(LTS_ROWS_STAGES + 1) * nt * (16 * LTS_ROWS_J + 8) : 0;
                int ng = grid ? grid : std::max(1, std::min((a.rows + 7) / 8, sms * occupancy(fn, nt, smem)));
                if (staged)
                    ln_token_shift_forward_rows_staged_bf16<<<ng, nt, smem>>>(FWD_ENTRY_ARGS);
                else if (rowsK)
                    ln_token_shift_forward_rows_bf16<<<ng, nt>>>(FWD_ENTRY_ARGS);
                else
                    ln_token_shift_forward_bf16_j1<<<ng, nt>>>(FWD_ENTRY_ARGS);
                CK(cudaGetLastError());
                return true;
            }};
}

template <int J, int U, int S, int MINB>
static Variant<FArgs> fwd_staged(const char* name) {
    const void* fn = (const void*)fwd_kernel<J, U, S, MINB>;
    allow_smem(fn);
    return {name, [=](const FArgs& a, int grid) {
                int nt = 32 * ((groups_of(a.C) + J - 1) / J);
                if (nt > 32 * LTS_MAX_WARPS / J) return false;
                size_t smem = S > 0 ? (size_t)(S + 1) * nt * U * (16 * J + 8) : 0;
                int occ = occupancy(fn, nt, smem);
                if (occ == 0) return false;
                int ng = grid ? grid : std::max(1, std::min((a.rows + 7) / 8, sms * occ));
                fwd_kernel<J, U, S, MINB><<<ng, nt, smem>>>(a);
                CK(cudaGetLastError());
                return true;
            }};
}

#define BWD_ENTRY_ARGS                                                                                                \
    a.dOut[0], a.dOut[1], a.dOut[2], a.dOut[3], a.dOut[4], a.dOut[5], a.x, a.w, a.b, a.mean, a.rstd, a.mix[0], a.mix[1], \
        a.mix[2], a.mix[3], a.mix[4], a.mix[5], a.dx, a.dxB, a.partial, a.k, a.rows, a.T, a.C, a.accumulate

static int bwd_grid(const void* fn, int nt, size_t smem, int rows) {
    return std::max(1, std::min(1024, std::min((rows + 15) / 16, sms * std::max(1, occupancy(fn, nt, smem)))));
}

static Variant<BArgs> bwd_main() {
    return {"main", [](const BArgs& a, int grid) {
                int nt = 32 * groups_of(a.C);
                int ng = grid ? grid : bwd_grid((const void*)ln_token_shift_backward_bf16_j1, nt, 0, a.rows);
                ln_token_shift_backward_bf16_j1<<<ng, nt>>>(
                    a.dOut[0], a.dOut[1], a.dOut[2], a.dOut[3], a.dOut[4], a.dOut[5], a.x, a.w, a.b, a.mean, a.rstd,
                    a.mix[0], a.mix[1], a.mix[2], a.mix[3], a.mix[4], a.mix[5], a.dx, a.dxB, a.partial, a.k, a.rows,
                    a.T, a.C, a.accumulate);
                CK(cudaGetLastError());
                return true;
            }};
}

// the staged backward template with S stages, or the committed entry point (entry); C % 8 == 0 only
template <int S>
static Variant<BArgs> bwd_staged(const char* name, bool entry) {
    const void* fn = entry ? (const void*)ln_token_shift_backward_bf16_j1_staged : (const void*)bwd_kernel<S>;
    allow_smem(fn);
    return {name, [=](const BArgs& a, int grid) {
                int nt = 32 * groups_of(a.C);
                if (a.C % 8 != 0) return false;
                size_t smem = (size_t)(S + 1) * (8 * a.C + 2 * a.k * a.C + 16);
                if (occupancy(fn, nt, smem) == 0) return false;
                int ng = grid ? grid : bwd_grid(fn, nt, smem, a.rows);
                if (entry)
                    ln_token_shift_backward_bf16_j1_staged<<<ng, nt, smem>>>(BWD_ENTRY_ARGS);
                else
                    bwd_kernel<S><<<ng, nt, smem>>>(a);
                CK(cudaGetLastError());
                return true;
            }};
}

static Variant<FArgs> fwd_ceiling() {
    return {"copy-only", [](const FArgs& a, int grid) {
                if (grid) return false;
                ceiling_fwd<<<sms * 8, 256>>>(reinterpret_cast<const float4*>(a.x), a, (i64)a.rows * a.C / 4);
                CK(cudaGetLastError());
                return true;
            }};
}

static Variant<BArgs> bwd_ceiling() {
    return {"copy-only", [](const BArgs& a, int grid) {
                if (grid) return false;
                ceiling_bwd<<<sms * 8, 256>>>(a, (i64)a.rows * a.C / 4);
                CK(cudaGetLastError());
                return true;
            }};
}

static unsigned long long rng = 88172645463325252ull;
static float urand() {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 16777216.0));
}

static unsigned short to_bf16(float f) {
    unsigned u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}

template <typename T>
static T* upload(const std::vector<T>& h) {
    T* d;
    CK(cudaMalloc(&d, h.size() * sizeof(T)));
    CK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}

struct Problem {
    int B, T, C, rows;
    size_t n;
    float *x, *w, *b, *mix[TS_MAX], *mean, *rstd, *dx0, *dx, *partial;
    unsigned short *out[TS_MAX], *dOut[TS_MAX], *dxB;
    Problem(int B_, int T_, int C_) : B(B_), T(T_), C(C_), rows(B_ * T_), n((size_t)B_ * T_ * C_) {
        std::vector<float> h(n);
        for (int r = 0; r < rows; r++) {
            float off = 4.0f * (urand() - 0.5f), sc = 0.2f + 3.0f * urand();
            for (int c = 0; c < C; c++) h[(size_t)r * C + c] = off + sc * (urand() + urand() + urand() - 1.5f);
        }
        x = upload(h);
        for (auto& v : h) v = 2.0f * (urand() - 0.5f);
        dx0 = upload(h);
        CK(cudaMalloc(&dx, n * 4));
        std::vector<float> p(C);
        for (int c = 0; c < C; c++) p[c] = 1.0f + 0.2f * (urand() - 0.5f);
        w = upload(p);
        for (int c = 0; c < C; c++) p[c] = 0.2f * (urand() - 0.5f);
        b = upload(p);
        std::vector<unsigned short> hb(n);
        for (int k = 0; k < TS_MAX; k++) {
            for (int c = 0; c < C; c++) p[c] = urand();
            mix[k] = upload(p);
            CK(cudaMalloc(&out[k], n * 2));
            for (auto& v : hb) v = to_bf16(2.0f * (urand() - 0.5f));
            dOut[k] = upload(hb);
        }
        CK(cudaMalloc(&dxB, n * 2));
        CK(cudaMalloc(&partial, (size_t)(TS_MAX + 2) * 1024 * C * 4));
        CK(cudaMalloc(&mean, rows * 4));
        CK(cudaMalloc(&rstd, rows * 4));
    }
    ~Problem() {
        for (void* p : {(void*)x, (void*)w, (void*)b, (void*)mean, (void*)rstd, (void*)dx0, (void*)dx, (void*)partial,
                        (void*)dxB})
            cudaFree(p);
        for (int k = 0; k < TS_MAX; k++) {
            cudaFree(mix[k]);
            cudaFree(out[k]);
            cudaFree(dOut[k]);
        }
    }
    FArgs fargs(int k, int saved) const {
        FArgs a;
        a.x = x;
        a.w = w;
        a.b = b;
        a.mean = mean;
        a.rstd = rstd;
        a.saved = saved;
        for (int j = 0; j < TS_MAX; j++) {
            a.mix[j] = j < k ? mix[j] : nullptr;
            a.out[j] = j < k ? out[j] : nullptr;
        }
        a.k = k;
        a.rows = rows;
        a.T = T;
        a.C = C;
        return a;
    }
    BArgs bargs(int k, int accumulate) const {
        BArgs a;
        for (int j = 0; j < TS_MAX; j++) {
            a.dOut[j] = j < k ? dOut[j] : nullptr;
            a.mix[j] = j < k ? mix[j] : nullptr;
        }
        a.x = x;
        a.w = w;
        a.b = b;
        a.mean = mean;
        a.rstd = rstd;
        a.dx = dx;
        a.dxB = dxB;
        a.partial = partial;
        a.k = k;
        a.rows = rows;
        a.T = T;
        a.C = C;
        a.accumulate = accumulate;
        return a;
    }
};

static std::vector<unsigned char> fetch(const void* p, size_t bytes) {
    std::vector<unsigned char> h(bytes);
    CK(cudaMemcpy(h.data(), p, bytes, cudaMemcpyDeviceToHost));
    return h;
}

static int failures = 0, comparisons = 0;

static void report(bool same, const std::string& what, const Problem& p, int k, int mode, int grid) {
    comparisons++;
    if (!same) {
        failures++;
        printf("MISMATCH %s B%d T%d C%d k%d mode %d grid %d\n", what.c_str(), p.B, p.T, p.C, k, mode, grid);
    }
}

// forward: outputs, mean, rstd of a run (outputs and, unless saved, the statistics poisoned first)
static std::vector<unsigned char> fwd_run(const Problem& p, const Variant<FArgs>& v, int k, int saved, int grid,
                                          bool* ran) {
    for (int j = 0; j < k; j++) CK(cudaMemset(p.out[j], 0x7f, p.n * 2));
    if (!saved) {
        CK(cudaMemset(p.mean, 0x7f, 4 * p.rows));
        CK(cudaMemset(p.rstd, 0x7f, 4 * p.rows));
    }
    *ran = v.run(p.fargs(k, saved), grid);
    CK(cudaDeviceSynchronize());
    std::vector<unsigned char> h;
    for (int j = 0; j < k; j++) {
        auto o = fetch(p.out[j], p.n * 2);
        h.insert(h.end(), o.begin(), o.end());
    }
    auto m = fetch(p.mean, 4 * p.rows), r = fetch(p.rstd, 4 * p.rows);
    h.insert(h.end(), m.begin(), m.end());
    h.insert(h.end(), r.begin(), r.end());
    return h;
}

static void fwd_check(Problem& p, int k, const Variant<FArgs>& v, const Variant<FArgs>& ref, int grid) {
    bool ran;
    for (int saved = 0; saved < 2; saved++) {
        // saved = 1 reads the statistics the reference wrote (recomputed before each run)
        if (saved) fwd_run(p, ref, k, 0, grid, &ran);
        auto a = fwd_run(p, ref, k, saved, grid, &ran);
        if (saved) fwd_run(p, ref, k, 0, grid, &ran);
        auto b = fwd_run(p, v, k, saved, grid, &ran);
        if (ran) report(a == b, "fwd " + v.name, p, k, saved, grid);
    }
}

// backward: dx (from dx0 when accumulating, poisoned otherwise), its bf16 copy and the grid's column partials
static std::vector<unsigned char> bwd_run(const Problem& p, const Variant<BArgs>& v, int k, int acc, int grid,
                                          bool* ran) {
    if (acc) CK(cudaMemcpy(p.dx, p.dx0, p.n * 4, cudaMemcpyDeviceToDevice));
    else CK(cudaMemset(p.dx, 0x7f, p.n * 4));
    CK(cudaMemset(p.dxB, 0x7f, p.n * 2));
    CK(cudaMemset(p.partial, 0x7f, (size_t)(k + 2) * grid * p.C * 4));
    *ran = v.run(p.bargs(k, acc), grid);
    CK(cudaDeviceSynchronize());
    std::vector<unsigned char> h = fetch(p.dx, p.n * 4), b = fetch(p.dxB, p.n * 2),
                               q = fetch(p.partial, (size_t)(k + 2) * grid * p.C * 4);
    h.insert(h.end(), b.begin(), b.end());
    h.insert(h.end(), q.begin(), q.end());
    return h;
}

static void bwd_check(Problem& p, int k, const Variant<BArgs>& v, const Variant<BArgs>& ref, int grid) {
    bool ran;
    for (int acc = 0; acc < 2; acc++) {
        auto a = bwd_run(p, ref, k, acc, grid, &ran);
        auto b = bwd_run(p, v, k, acc, grid, &ran);
        if (ran) report(a == b, "bwd " + v.name, p, k, acc, grid);
    }
}

// median of 20 timed launches (after 3), in ms; < 0 where the variant does not apply
template <typename A>
static float time_ms(const Variant<A>& v, const A& a) {
    if (!v.run(a, 0)) return -1.0f;
    return median_ms([&](int) { v.run(a, 0); }, 2, 20);
}

int main(int argc, char** argv) {
    bool quick = argc > 1 && !strcmp(argv[1], "quick");  // timings only
    CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    CK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0));
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    printf("%s, %d SMs, %d B shared a block at most\n", prop.name, sms, optin);
    std::vector<Variant<FArgs>> fv = {fwd_entry("launcher", true), fwd_entry("staged", false),
                                      fwd_staged<LTS_ROWS_J, 1, 3, 3>("staged S3")};
    std::vector<Variant<BArgs>> bv = {bwd_staged<LTS_BWD_STAGES>("staged", true), bwd_staged<3>("staged S3", false),
                                      bwd_staged<4>("staged S4", false)};
    Variant<FArgs> fref = fwd_main();
    Variant<BArgs> bref = bwd_main();
    describe("fwd rows (main)", (const void*)ln_token_shift_forward_rows_bf16);
    describe("fwd rows (staged)", (const void*)ln_token_shift_forward_rows_staged_bf16);
    describe("fwd j1", (const void*)ln_token_shift_forward_bf16_j1);
    describe("bwd j1 (main)", (const void*)ln_token_shift_backward_bf16_j1);
    describe("bwd staged", (const void*)ln_token_shift_backward_bf16_j1_staged);
    if (!quick) {
        int shapes[][3] = {{4, 4096, 2048}, {4, 4096, 768}, {2, 333, 2048}, {3, 7, 96}, {2, 50, 1000},
                           {1, 1, 2048},    {5, 1, 512},    {1, 3, 128},    {1, 2, 4},  {7, 13, 1536}};
        for (auto& s : shapes) {
            Problem p(s[0], s[1], s[2]);
            bool big = p.rows >= 16384;
            int lg = bwd_grid((const void*)ln_token_shift_backward_bf16_j1, 32 * groups_of(p.C), 0, p.rows);
            for (int k : {6, 1, 3}) {
                if (big && k == 3) continue;
                for (auto& v : fv) {
                    fwd_check(p, k, v, fref, 0);
                    if (!big) {
                        fwd_check(p, k, v, fref, 7);
                        fwd_check(p, k, v, fref, 1);
                    }
                }
                for (auto& v : bv) {
                    bwd_check(p, k, v, bref, lg);
                    if (!big) {
                        bwd_check(p, k, v, bref, 7);
                        bwd_check(p, k, v, bref, 1);
                    }
                }
            }
        }
        printf("bit identity: %d comparisons, %d mismatches\n", comparisons, failures);
    }
    // timings; the step's sum: 24 calls each of the forward k = 6 and 1 with statistics, the recomputation k = 6
    // (saved), the backward k = 6 and 1 (L24-D2048 at --keep 3)
    for (int C : {2048, 1024, 768}) {
        Problem p(4, 4096, C);
        bool ran;
        fwd_run(p, fref, 6, 0, 0, &ran);  // valid statistics
        // main's time and the best variant's for: fwd k6, fwd k1 (statistics computed), recomputation k6, k1 (saved),
        // bwd k6, k1
        double best[6], mainT[6];
        int slot = 0;
        for (int k : {6, 1}) {
            for (int saved = 0; saved < 2; saved++) {
                double bytes = (double)p.rows * C * (4 + 2 * k) + 8.0 * p.rows;
                float tr = time_ms(fref, p.fargs(k, saved));
                printf("fwd C %4d k %d saved %d  %-10s %7.1f us  %5.2f TB/s\n", C, k, saved, "main", 1e3 * tr,
                       bytes / tr / 1e9);
                float tc = time_ms(fwd_ceiling(), p.fargs(k, 0));
                printf("fwd C %4d k %d saved %d  %-10s %7.1f us  %5.2f TB/s\n", C, k, saved, "copy-only", 1e3 * tc,
                       bytes / tc / 1e9);
                mainT[slot] = best[slot] = tr;
                for (auto& v : fv) {
                    float tn = time_ms(v, p.fargs(k, saved));
                    if (tn < 0) continue;
                    printf("fwd C %4d k %d saved %d  %-10s %7.1f us  %5.2f TB/s  %.3fx\n", C, k, saved, v.name.c_str(),
                           1e3 * tn, bytes / tn / 1e9, tr / tn);
                    best[slot] = std::min(best[slot], (double)tn);
                }
                slot++;
            }
        }
        for (int k : {6, 1}) {
            double bytes = (double)p.rows * C * (4 + 2 * k + 4 + 4 + 2) + 8.0 * p.rows;
            float tr = time_ms(bref, p.bargs(k, 1));
            printf("bwd C %4d k %d  %-10s %7.1f us  %5.2f TB/s\n", C, k, "main", 1e3 * tr, bytes / tr / 1e9);
            float tc = time_ms(bwd_ceiling(), p.bargs(k, 1));
            printf("bwd C %4d k %d  %-10s %7.1f us  %5.2f TB/s\n", C, k, "copy-only", 1e3 * tc, bytes / tc / 1e9);
            mainT[slot] = best[slot] = tr;
            for (auto& v : bv) {
                float tn = time_ms(v, p.bargs(k, 1));
                if (tn < 0) continue;
                printf("bwd C %4d k %d  %-10s %7.1f us  %5.2f TB/s  %.3fx\n", C, k, v.name.c_str(), 1e3 * tn,
                       bytes / tn / 1e9, tr / tn);
                best[slot] = std::min(best[slot], (double)tn);
            }
            slot++;
        }
        // L24-D2048 at --keep 3: 24 calls each of fwd k6, fwd k1, recomputation k6, bwd k6, bwd k1 (no saved k1)
        double sm = 0, sb = 0;
        for (int i : {0, 1, 2, 4, 5}) {
            sm += 24 * mainT[i];
            sb += 24 * best[i];
        }
        printf("C %4d: 24 x (fwd k6, fwd k1, recompute k6, bwd k6, bwd k1): main %.2f ms, best variants %.2f ms\n", C,
               sm, sb);
    }
    return failures != 0;
}
