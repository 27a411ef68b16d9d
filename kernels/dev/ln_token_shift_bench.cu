// The fused LayerNorm + token-shift forward (token_shift.cu): the committed kernels (ln_token_shift_forward_rows[_bf16]
// alone, and as CudaBackend.layerNormTokenShiftForward picks them: the _j1 kernel for saved statistics with k > 1) and
// other (J, U, min blocks) instantiations of ln_mixes_forward_rows, against a copy of main's one-row kernel
// (ref_ln_mixes_forward below, before branch lnts-fwd) on the same random inputs: every output compared bit for bit
// (the k mixes in bf16 and fp32, mean and rstd, then the mixes from the saved statistics) at 12 shapes (k = 1 … 6,
// slices starting inside samples, T = 1, C = 4 … 2048, partial groups), then timed (cudaEvent, median of 20) at
// rows = 16384 (B 4 × T 4096), C = 768, 1024, 2048, k = 6 (the time mix) and 1 (the channel mix), statistics computed
// (saved 0: the forward) and read (saved 1: the backward's recomputation). The grid is the launcher's: one wave
// (occupancy × SMs blocks), at least 8 rows a block. No GPU in the build container: build here, run on the device.
//   nvcc -O3 -std=c++17 -arch=sm_90 -I kernels/src/main/cuda -o /tmp/ltsb kernels/dev/ln_token_shift_bench.cu && /tmp/ltsb
#include "../src/main/cuda/token_shift.cu"
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bench.h"

// ---------------------------------------------------------------- the reference: main's one-row kernel, copied
template <int J>
__device__ __forceinline__ int ref_warp_elements(int w, int C4) {
    int n = 0;
#pragma unroll
    for (int j = 0; j < J; j++) n += 4 * min(max(C4 - (w * 32 + (int)blockDim.x * j), 0), 32);
    return n;
}

template <int J>
__device__ __forceinline__ float2 ref_row_stats(const Vec<4> (&v)[J], int C, float eps,
                                                float2 (&red)[2][LTS_MAX_WARPS], int& parity) {
    int warp = threadIdx.x >> 5, warps = blockDim.x >> 5, C4 = C >> 2;
    int n = ref_warp_elements<J>(warp, C4);
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < J; j++) sum += (v[j].v[0] + v[j].v[1]) + (v[j].v[2] + v[j].v[3]);
    float mu = n > 0 ? warp_sum(sum) / n : 0.0f;
    float squares = 0.0f;
#pragma unroll
    for (int j = 0; j < J; j++) {
        if ((threadIdx.x + blockDim.x * j) * 4 < C) {
            float a = v[j].v[0] - mu, b = v[j].v[1] - mu, c = v[j].v[2] - mu, d = v[j].v[3] - mu;
            squares += (a * a + b * b) + (c * c + d * d);
        }
    }
    float m2 = warp_sum(squares);
    if (warps > 1) {
        if ((threadIdx.x & 31) == 0) red[parity][warp] = make_float2(mu, m2);
        __syncthreads();
        float sum = 0.0f;
        for (int w = 0; w < warps; w++) sum += ref_warp_elements<J>(w, C4) * red[parity][w].x;
        float mean = sum / C, total = 0.0f;
        for (int w = 0; w < warps; w++) {
            float2 p = red[parity][w];
            float d = p.x - mean;
            total += p.y + ref_warp_elements<J>(w, C4) * d * d;
        }
        mu = mean;
        m2 = total;
        parity ^= 1;
    }
    return make_float2(mu, 1.0f / sqrtf(m2 / C + eps));
}

template <int J, typename T>
__device__ __forceinline__ void ref_load_row4(const T* __restrict__ p, i64 r, int C, Vec<4> (&v)[J]) {
#pragma unroll
    for (int j = 0; j < J; j++) {
        int f = threadIdx.x + blockDim.x * j;
        v[j] = f * 4 < C ? vload<4>(p + r * C + f * 4) : vzero<4>();
    }
}

template <int J, int K, typename O>
__device__ __forceinline__ void ref_ln_mixes_forward(const float* __restrict__ x, const float* __restrict__ weight,
                                                     const float* __restrict__ bias, float* __restrict__ mean,
                                                     float* __restrict__ rstd, int saved,
                                                     const float* const (&mix)[TS_MAX], O* const (&out)[TS_MAX],
                                                     int rows, int T, int C, float eps) {
    __shared__ float2 red[2][LTS_MAX_WARPS];
    int parity = 0;
    i64 lo, hi;
    slice_rows(rows, blockIdx.x, gridDim.x, lo, hi);
    if (lo >= hi) return;
    Vec<4> w[J], b[J];
#pragma unroll
    for (int j = 0; j < J; j++) {
        int f = threadIdx.x + blockDim.x * j;
        w[j] = f * 4 < C ? vload<4>(weight + f * 4) : vzero<4>();
        b[j] = f * 4 < C ? vload<4>(bias + f * 4) : vzero<4>();
    }
    int t = (int)(lo % T);
    Vec<4> prev[J];
#pragma unroll
    for (int j = 0; j < J; j++) prev[j] = vzero<4>();
    if (t != 0) {
        Vec<4> xp[J];
        ref_load_row4<J>(x, lo - 1, C, xp);
        float2 s = saved ? make_float2(mean[lo - 1], rstd[lo - 1]) : ref_row_stats<J>(xp, C, eps, red, parity);
#pragma unroll
        for (int j = 0; j < J; j++) prev[j] = affine(normalized(xp[j], s.x, s.y), w[j], b[j]);
    }
    Vec<4> xc[J], xn[J];
    ref_load_row4<J>(x, lo, C, xc);
    if (lo + 1 < hi) ref_load_row4<J>(x, lo + 1, C, xn);
    for (i64 r = lo; r < hi; r++) {
        Vec<4> xnn[J];
        if (r + 2 < hi) {
            ref_load_row4<J>(x, r + 2, C, xnn);
        } else {
#pragma unroll
            for (int j = 0; j < J; j++) xnn[j] = vzero<4>();
        }
        float2 s;
        if (saved) {
            s = make_float2(mean[r], rstd[r]);
        } else {
            s = ref_row_stats<J>(xc, C, eps, red, parity);
            if (threadIdx.x == 0) {
                mean[r] = s.x;
                rstd[r] = s.y;
            }
        }
        if (t == 0) {
#pragma unroll
            for (int j = 0; j < J; j++) prev[j] = vzero<4>();
        }
#pragma unroll
        for (int j = 0; j < J; j++) {
            int f = threadIdx.x + blockDim.x * j;
            Vec<4> cur = affine(normalized(xc[j], s.x, s.y), w[j], b[j]);
            if (f * 4 < C) {
#pragma unroll
                for (int k = 0; k < K; k++) {
                    Vec<4> m = vload<4>(mix[k] + f * 4);
                    Vec<4> o;
#pragma unroll
                    for (int e = 0; e < 4; e++) o.v[e] = cur.v[e] + (prev[j].v[e] - cur.v[e]) * m.v[e];
                    vstore<4>(out[k] + r * C + f * 4, o);
                }
            }
            prev[j] = cur;
            xc[j] = xn[j];
            xn[j] = xnn[j];
        }
        if (++t == T) t = 0;
    }
}

struct Args {
    const float *x, *w, *b;
    float *mean, *rstd;
    int saved;
    const float* mix[TS_MAX];
    void* out[TS_MAX];
    int k, rows, T, C;
    float eps;
};

template <typename O>
__global__ void __launch_bounds__(32 * LTS_MAX_WARPS) ref_kernel(Args a) {
    const float* const mix[TS_MAX] = {a.mix[0], a.mix[1], a.mix[2], a.mix[3], a.mix[4], a.mix[5]};
    O* const out[TS_MAX] = {(O*)a.out[0], (O*)a.out[1], (O*)a.out[2], (O*)a.out[3], (O*)a.out[4], (O*)a.out[5]};
    switch (a.k) {
#define REF(K) ref_ln_mixes_forward<1, K, O>(a.x, a.w, a.b, a.mean, a.rstd, a.saved, mix, out, a.rows, a.T, a.C, a.eps)
        case 1: REF(1); break;
        case 2: REF(2); break;
        case 3: REF(3); break;
        case 4: REF(4); break;
        case 5: REF(5); break;
        case 6: REF(6); break;
#undef REF
    }
}

template <int J, int U, typename O, int MINB>
__global__ void __launch_bounds__(32 * LTS_MAX_WARPS / J, MINB) new_kernel(Args a) {
    const float* const mix[TS_MAX] = {a.mix[0], a.mix[1], a.mix[2], a.mix[3], a.mix[4], a.mix[5]};
    O* const out[TS_MAX] = {(O*)a.out[0], (O*)a.out[1], (O*)a.out[2], (O*)a.out[3], (O*)a.out[4], (O*)a.out[5]};
    ln_forward_rows_k<J, U, O>(a.k, a.x, a.w, a.b, a.mean, a.rstd, a.saved, mix, out, a.rows, a.T, a.C, a.eps);
}


typedef void (*KernelFn)(Args);

static int sms;

static int occupancy(const void* fn, int threads) {
    int n = 0;
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, fn, threads, 0));
    return std::max(1, n);
}

static int threads_for(int C, int J) {
    int groups = (C / 4 + 31) / 32;
    return 32 * ((groups + J - 1) / J);
}

// CudaBackend.lnShiftBlocks: one wave, at least 8 rows a block
static int grid_for(const void* fn, int threads, int rows) {
    return std::max(1, std::min((rows + 7) / 8, sms * occupancy(fn, threads)));
}

// A kernel under test: run(args, grid) launches it (grid 0: the launcher's), or returns false where it does not apply.
struct Variant {
    std::string name;
    std::function<bool(const Args&, int)> run;
};

static Variant templ(std::string name, KernelFn fn, int J, int maxThreads) {
    return {name, [=](const Args& a, int grid) {
                int nt = threads_for(a.C, J);
                if (nt > maxThreads) return false;
                fn<<<grid ? grid : grid_for((const void*)fn, nt, a.rows), nt>>>(a);
                CK(cudaGetLastError());
                return true;
            }};
}

// The committed entry points as CudaBackend.layerNormTokenShiftForward picks them at C <= 2048: the row-step kernel
// (block 32·⌈groups/LTS_ROWS_J⌉) except for saved statistics with k > 1, there the _j1 kernel (block 32·groups).
template <typename O>
static Variant entry(std::string name, bool launcher) {
    return {name, [=](const Args& a, int grid) {
                bool rowsK = !launcher || !(a.saved && a.k > 1);
                bool bf16 = sizeof(O) == 2;
                const void* fn = rowsK ? (bf16 ? (const void*)ln_token_shift_forward_rows_bf16
                                               : (const void*)ln_token_shift_forward_rows)
                                       : (bf16 ? (const void*)ln_token_shift_forward_bf16_j1
                                               : (const void*)ln_token_shift_forward_j1);
                int nt = threads_for(a.C, rowsK ? LTS_ROWS_J : 1);
                int ng = grid ? grid : grid_for(fn, nt, a.rows);
                O* o[TS_MAX];
                for (int j = 0; j < TS_MAX; j++) o[j] = (O*)a.out[j];
#define ENTRY_ARGS                                                                                                 \
    a.x, a.w, a.b, a.mean, a.rstd, a.saved, a.mix[0], a.mix[1], a.mix[2], a.mix[3], a.mix[4], a.mix[5], o[0], o[1], \
        o[2], o[3], o[4], o[5], a.k, a.rows, a.T, a.C, a.eps
                if constexpr (sizeof(O) == 2) {
                    if (rowsK) ln_token_shift_forward_rows_bf16<<<ng, nt>>>(ENTRY_ARGS);
                    else ln_token_shift_forward_bf16_j1<<<ng, nt>>>(ENTRY_ARGS);
                } else {
                    if (rowsK) ln_token_shift_forward_rows<<<ng, nt>>>(ENTRY_ARGS);
                    else ln_token_shift_forward_j1<<<ng, nt>>>(ENTRY_ARGS);
                }
#undef ENTRY_ARGS
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

struct Problem {
    int B, T, C, rows;
    float *x, *w, *b, *mix[TS_MAX];
    void* out[TS_MAX];
    float *mean, *rstd;
    Problem(int B_, int T_, int C_) : B(B_), T(T_), C(C_), rows(B_ * T_) {
        size_t n = (size_t)rows * C;
        std::vector<float> h(n);
        for (int r = 0; r < rows; r++) {
            float off = 4.0f * (urand() - 0.5f), sc = 0.2f + 3.0f * urand();
            for (int c = 0; c < C; c++) h[(size_t)r * C + c] = off + sc * (urand() + urand() + urand() - 1.5f);
        }
        CK(cudaMalloc(&x, n * 4));
        CK(cudaMemcpy(x, h.data(), n * 4, cudaMemcpyHostToDevice));
        std::vector<float> p(C);
        for (int c = 0; c < C; c++) p[c] = 1.0f + 0.2f * (urand() - 0.5f);
        CK(cudaMalloc(&w, C * 4));
        CK(cudaMemcpy(w, p.data(), C * 4, cudaMemcpyHostToDevice));
        for (int c = 0; c < C; c++) p[c] = 0.2f * (urand() - 0.5f);
        CK(cudaMalloc(&b, C * 4));
        CK(cudaMemcpy(b, p.data(), C * 4, cudaMemcpyHostToDevice));
        for (int k = 0; k < TS_MAX; k++) {
            for (int c = 0; c < C; c++) p[c] = urand();
            CK(cudaMalloc(&mix[k], C * 4));
            CK(cudaMemcpy(mix[k], p.data(), C * 4, cudaMemcpyHostToDevice));
            CK(cudaMalloc(&out[k], n * 4));  // room for fp32 outputs
        }
        CK(cudaMalloc(&mean, rows * 4));
        CK(cudaMalloc(&rstd, rows * 4));
    }
    ~Problem() {
        cudaFree(x);
        cudaFree(w);
        cudaFree(b);
        for (int k = 0; k < TS_MAX; k++) {
            cudaFree(mix[k]);
            cudaFree(out[k]);
        }
        cudaFree(mean);
        cudaFree(rstd);
    }
    Args args(int k, int saved) const {
        Args a;
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
        a.eps = 1e-5f;
        return a;
    }
};

// every output of a run, as bytes: the k outputs, then mean and rstd
static std::vector<unsigned char> snapshot(const Problem& p, int k, size_t esize) {
    size_t n = (size_t)p.rows * p.C * esize;
    std::vector<unsigned char> h(n * k + 8 * (size_t)p.rows);
    for (int j = 0; j < k; j++) CK(cudaMemcpy(h.data() + n * j, p.out[j], n, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(h.data() + n * k, p.mean, 4 * p.rows, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(h.data() + n * k + 4 * p.rows, p.rstd, 4 * p.rows, cudaMemcpyDeviceToHost));
    return h;
}

static void poison(const Problem& p, int k, int saved) {
    size_t n = (size_t)p.rows * p.C * 4;
    for (int j = 0; j < k; j++) CK(cudaMemset(p.out[j], 0x7f, n));
    if (!saved) {
        CK(cudaMemset(p.mean, 0x7f, 4 * p.rows));
        CK(cudaMemset(p.rstd, 0x7f, 4 * p.rows));
    }
}

static int failures = 0, comparisons = 0;

// ref vs variant on p, k mixes, both statistics modes; grid 0: the launcher's
static void check(Problem& p, int k, const Variant& v, const Variant& ref, size_t esize, int grid) {
    for (int saved = 0; saved < 2; saved++) {
        // saved = 1 reads the statistics the reference wrote at saved = 0 (left in place by that run)
        poison(p, k, saved);
        ref.run(p.args(k, saved), grid);
        CK(cudaDeviceSynchronize());
        std::vector<unsigned char> a = snapshot(p, k, esize);
        poison(p, k, saved);
        if (!v.run(p.args(k, saved), grid)) return;
        CK(cudaDeviceSynchronize());
        std::vector<unsigned char> b = snapshot(p, k, esize);
        comparisons++;
        if (a != b) {
            size_t diff = 0;
            for (size_t i = 0; i < a.size(); i++) diff += a[i] != b[i];
            printf("MISMATCH %s B%d T%d C%d k%d saved%d grid %d: %zu bytes differ\n", v.name.c_str(), p.B, p.T, p.C,
                   k, saved, grid, diff);
            failures++;
        }
        if (!saved) {  // restore the reference statistics for the saved run
            ref.run(p.args(k, 0), grid);
            CK(cudaDeviceSynchronize());
        }
    }
}

// median of 20 timed launches (after 3), in ms; < 0 where the variant does not apply
static float time_ms(const Variant& v, const Args& a) {
    if (!v.run(a, 0)) return -1.0f;
    return median_ms([&](int) { v.run(a, 0); }, 2, 20);
}

#define V(J, U, MINB) templ("J" #J "U" #U "m" #MINB, new_kernel<J, U, unsigned short, MINB>, J, 32 * LTS_MAX_WARPS / J)
#define VF(J, U, MINB) templ("f32 J" #J "U" #U "m" #MINB, new_kernel<J, U, float, MINB>, J, 32 * LTS_MAX_WARPS / J)

int main() {
    CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    printf("%s, %d SMs\n", prop.name, sms);
    // the committed kernels first (the launcher's choice, the row-step kernel alone), then other (J, U, min blocks)
    std::vector<Variant> vs = {entry<unsigned short>("launcher", true), entry<unsigned short>("rows", false),
                               V(1, 2, 1), V(1, 1, 2), V(2, 2, 1)};
    std::vector<Variant> vf = {entry<float>("f32 launcher", true), entry<float>("f32 rows", false), VF(1, 2, 1)};
    Variant refB = templ("ref", ref_kernel<unsigned short>, 1, 512), refF = templ("ref f32", ref_kernel<float>, 1, 512);
    for (const void* f : {(const void*)ln_token_shift_forward_rows_bf16, (const void*)ln_token_shift_forward_rows,
                          (const void*)ref_kernel<unsigned short>}) {
        cudaFuncAttributes fa;
        CK(cudaFuncGetAttributes(&fa, f));
        printf("%3d registers, %d B local\n", fa.numRegs, (int)fa.localSizeBytes);
    }
    // bit identity
    int shapes[][3] = {{4, 4096, 2048}, {4, 4096, 1024}, {4, 4096, 768}, {3, 7, 96},  {2, 50, 1000}, {1, 1, 2048},
                       {5, 1, 512},     {1, 3, 128},     {2, 333, 2048}, {1, 2, 4},  {7, 13, 1536}, {2, 100, 2044}};
    for (auto& s : shapes) {
        Problem p(s[0], s[1], s[2]);
        bool big = p.rows >= 16384;
        for (int k : {6, 1, 3, 2, 4, 5}) {
            if (big && k != 6 && k != 1) continue;
            for (auto& v : vs) {
                check(p, k, v, refB, 2, 0);
                if (!big) {
                    check(p, k, v, refB, 2, 7);
                    check(p, k, v, refB, 2, 1);
                }
            }
            for (auto& v : vf) {
                check(p, k, v, refF, 4, 0);
                if (!big) check(p, k, v, refF, 4, 5);
            }
        }
    }
    printf("bit identity: %d comparisons, %d mismatches\n", comparisons, failures);
    // timings
    for (int C : {768, 1024, 2048}) {
        Problem p(4, 4096, C);
        for (int k : {6, 1}) {
            for (int saved = 0; saved < 2; saved++) {
                if (saved) {  // valid statistics to read
                    refB.run(p.args(k, 0), 0);
                    CK(cudaDeviceSynchronize());
                }
                double bytes = (double)p.rows * C * (4 + 2 * k) + 8.0 * p.rows;
                float tr = time_ms(refB, p.args(k, saved));
                printf("C %4d k %d saved %d  %-9s %7.1f us  %5.2f TB/s\n", C, k, saved, "ref", 1e3 * tr,
                       bytes / tr / 1e9);
                for (auto& v : vs) {
                    float tn = time_ms(v, p.args(k, saved));
                    if (tn < 0) continue;
                    printf("C %4d k %d saved %d  %-9s %7.1f us  %5.2f TB/s  %.3fx\n", C, k, saved, v.name.c_str(),
                           1e3 * tn, bytes / tn / 1e9, tr / tn);
                }
            }
        }
    }
    return failures != 0;
}
