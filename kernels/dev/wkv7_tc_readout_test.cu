// Check and timing of the chunked WKV7 backward readout kernel (kernels/src/main/cuda/wkv7_tc_readout.cu) against
// the float64 serial recurrence.
//   cd kernels/dev && nvcc -O3 -std=c++17 -arch=sm_90 -I../src/main/cuda -o /tmp/t wkv7_tc_readout_test.cu && /tmp/t
//   /tmp/t cpu   : the CPU checks only (no GPU): the reference against finite differences, and the chunked readout
//                  algebra in float64 (the kernel's formulas, no tf32) against the reference.
// Inputs and the float64 serial reference: wkv7_tc_ref.h (dy rounded to bf16, as the kernel reads it). The reference
// fills fstates / estates / sa (rounded to bf16, as K1 / K2 store them) and dsa (fp32); so the errors include what
// storing the states and sa in bf16 costs. dr's sum and dwRaw are checked in fp32 and, as the model takes them, bf16.
// The whole chain of kernels (forward, E chain, readout) against the same reference: wkv7_tc_e2e_test.cu.
#include "wkv7_tc_readout.cu"
#include "wkv7_tc_ref.h"

#include <algorithm>

// Loss Σ_t dy_t·y_t of the forward (for finite differences); lw from wraw in float64.
static double lossOf(const Head& h) {
    std::vector<double> S(NN, 0.0), Q(NN);
    double L = 0;
    for (int t = 0; t < h.T; t++) {
        for (int i = 0; i < N; i++) {
            double s = 0; for (int j = 0; j < N; j++) s += S[i * N + j] * h.a[t * N + j];
            double y = 0;
            for (int j = 0; j < N; j++) { Q[i * N + j] = S[i * N + j] * std::exp(h.lw[t * N + j]) + s * h.b[t * N + j] + h.v[t * N + i] * h.k[t * N + j]; y += Q[i * N + j] * h.r[t * N + j]; }
            L += y * h.dy[t * N + i];
        }
        S = Q;
    }
    return L;
}

static void fdCheck() {
    std::mt19937_64 rng(7);
    Head h = makeHead("check", 32, rng);
    for (size_t i = 0; i < h.lw.size(); i++) h.lw[i] = W_SCALE / (1 + std::exp(-h.wraw[i]));  // float64 lw for FD
    Ref g = serialRef(h);
    double worst = 0;
    const char* names[] = {"r", "k", "a", "b", "wRaw"};
    std::uniform_int_distribution<int> pick(0, 32 * N - 1);
    for (int which = 0; which < 5; which++) {
        double wq = 0;
        for (int rep = 0; rep < 6; rep++) {
            int idx = rep == 0 ? 31 * N + 5 : rep == 1 ? 16 * N + 3 : pick(rng);
            std::vector<double>* p = which == 0 ? &h.r : which == 1 ? &h.k : which == 2 ? &h.a : which == 3 ? &h.b : &h.wraw;
            const double an = (which == 0 ? g.dr : which == 1 ? g.dk : which == 2 ? g.da : which == 3 ? g.db : g.dw)[idx];
            double x0 = (*p)[idx], eps = 1e-5, lp, lm;
            (*p)[idx] = x0 + eps; if (which == 4) h.lw[idx] = W_SCALE / (1 + std::exp(-(*p)[idx])); lp = lossOf(h);
            (*p)[idx] = x0 - eps; if (which == 4) h.lw[idx] = W_SCALE / (1 + std::exp(-(*p)[idx])); lm = lossOf(h);
            (*p)[idx] = x0; if (which == 4) h.lw[idx] = W_SCALE / (1 + std::exp(-x0));
            double fd = (lp - lm) / (2 * eps), e = std::fabs(fd - an) / std::max(1e-3, std::fabs(an));
            wq = std::max(wq, e);
        }
        printf("  FD check d%-4s: max rel err %.1e (6 elements, T 32)\n", names[which], wq);
        worst = std::max(worst, wq);
    }
    printf("  FD check %s\n", worst < 1e-5 ? "PASS" : "FAIL");
}

// The kernel's chunked formulas in float64 (no tf32), from the Ref's states, for one head: checks the algebra
// (t-ordered E readouts with the suffix sums G, bnd with dsa_{te+1}) against the serial reference.
static void chunkAlgebra(const Head& h, const Ref& g, std::vector<double>* out /* dr, da, dk, db, dw */) {
    const int T = h.T, nc = T / 16;
    for (int q = 0; q < 5; q++) out[q].assign((size_t)T * N, 0);
    for (int c = 0; c < nc; c++) {
        int t0 = 16 * c; bool nx = c + 1 < nc;
        double lg[17][N], G[16][N], lwN[N];
        for (int j = 0; j < N; j++) {
            lg[0][j] = 0; for (int u = 0; u < 16; u++) lg[u + 1][j] = lg[u][j] + h.lw[(t0 + u) * N + j];
            lwN[j] = nx ? h.lw[(t0 + 16) * N + j] : 0;
            G[15][j] = lwN[j]; for (int u = 14; u >= 0; u--) G[u][j] = G[u + 1][j] + h.lw[(t0 + u + 1) * N + j];
        }
        auto Sc = [&](int i, int j) { return c > 0 ? g.fst[(size_t)(c - 1) * NN + j * N + i] : 0.0; };
        auto Ee = [&](int i, int j) { return nx ? g.est[(size_t)c * NN + j * N + i] : 0.0; };
        auto dsaN = [&](int t, int i) { return t < T ? g.dsa[(size_t)t * N + i] : 0.0; };
        auto aN = [&](int t, int j) { return t < T ? h.a[(size_t)t * N + j] : 0.0; };
        for (int u = 0; u < 16; u++) for (int j = 0; j < N; j++) {
            int t = t0 + u;
            double o[4] = {0, 0, 0, 0};
            for (int i = 0; i < N; i++) {
                o[0] += h.dy[t * N + i] * Sc(i, j); o[1] += g.dsa[t * N + i] * Sc(i, j);
                o[2] += h.v[t * N + i] * Ee(i, j); o[3] += g.sa[t * N + i] * Ee(i, j);
            }
            o[0] *= std::exp(lg[u + 1][j]); o[1] *= std::exp(lg[u][j]); o[2] *= std::exp(G[u][j]); o[3] *= std::exp(G[u][j]);
            for (int s = 0; s < 16; s++) {
                int ts = t0 + s;
                double m[4][2] = {};
                for (int i = 0; i < N; i++) {
                    m[0][0] += h.dy[t * N + i] * g.sa[ts * N + i]; m[0][1] += h.dy[t * N + i] * h.v[ts * N + i];
                    m[1][0] += g.dsa[t * N + i] * g.sa[ts * N + i]; m[1][1] += g.dsa[t * N + i] * h.v[ts * N + i];
                    m[2][0] += h.v[t * N + i] * dsaN(ts + 1, i); m[2][1] += h.v[t * N + i] * h.dy[ts * N + i];
                    m[3][0] += g.sa[t * N + i] * dsaN(ts + 1, i); m[3][1] += g.sa[t * N + i] * h.dy[ts * N + i];
                }
                double ef = std::exp(lg[u + 1][j] - lg[s + 1][j]), ep = std::exp(lg[u][j] - lg[s + 1][j]), er = std::exp(G[u][j] - G[s][j]);
                if (s <= u) o[0] += (m[0][0] * h.b[ts * N + j] + m[0][1] * h.k[ts * N + j]) * ef;
                if (s < u) o[1] += (m[1][0] * h.b[ts * N + j] + m[1][1] * h.k[ts * N + j]) * ep;
                if (s >= u) {
                    o[2] += (m[2][0] * aN(ts + 1, j) + m[2][1] * h.r[ts * N + j]) * er;
                    o[3] += (m[3][0] * aN(ts + 1, j) + m[3][1] * h.r[ts * N + j]) * er;
                }
            }
            for (int q = 0; q < 4; q++) out[q][(size_t)t * N + j] = o[q];
        }
        for (int j = 0; j < N; j++) {
            double p1 = 0, p2 = 0;
            if (nx) for (int i = 0; i < N; i++) { double s = g.fst[(size_t)c * NN + j * N + i]; p1 += Ee(i, j) * s; p2 += dsaN(t0 + 16, i) * s; }
            double acc = std::exp(lwN[j]) * p1 + aN(t0 + 16, j) * p2;
            for (int u = 15; u >= 0; u--) {
                size_t t = (size_t)(t0 + u) * N + j;
                acc += h.r[t] * out[0][t] - h.b[t] * out[3][t] - h.k[t] * out[2][t];
                if (u < 15) acc += h.a[t + N] * out[1][t + N];
                double sg = 1 / (1 + std::exp(-h.wraw[t]));
                out[4][t] = acc * W_SCALE * sg * (1 - sg);
            }
        }
    }
}

static const char* GN[5] = {"dr", "dwRaw", "dk", "da", "db"};

static void cpuChecks() {
    printf("CPU checks\n");
    fdCheck();
    for (const char* set : {"check", "strong", "long"}) {
        std::mt19937_64 rng(11);
        Head h = makeHead(set, 64, rng);
        Ref g = serialRef(h);
        std::vector<double> o[5];
        chunkAlgebra(h, g, o);
        const std::vector<double>* ref[5] = {&g.dr, &g.da, &g.dk, &g.db, &g.dw};
        const char* nm[5] = {"dr", "da", "dk", "db", "dwRaw"};
        printf("  chunk algebra f64 vs serial, set %-6s T 64:", set);
        for (int q = 0; q < 5; q++) { Err e; accum(e, o[q].data(), ref[q]->data(), 64); printf(" %s %.1e", nm[q], std::sqrt(e.num / e.den)); }
        printf("\n");
    }
}

// ------------------------------------------------------------------------------------------------ GPU
struct Dev {
    unsigned short *r, *w, *k, *v, *a, *b, *dy, *fst, *sa, *est, *dr16, *dw16;
    float *dsa, *dr, *dw, *dk, *da, *db;
};

// G: CTAs along the chunks (each walks ⌈(T/16)/G⌉ of them); smem: RO_SMEM1 (the launch). bf16Out & 1: dr's sum
// (from the fp32 dr) into dr16, else dr in place; & 2: dwRaw into dw16 (overwrite only), else dw.
static void launch(const Dev& d, int B, int H, int T, int overwrite, int bf16Out, int G, int smem, cudaStream_t s = 0) {
    dim3 grid(G, H, B);
    void* drOut = (bf16Out & 1) ? (void*)d.dr16 : (void*)d.dr;
    void* dwOut = (bf16Out & 2) ? (void*)d.dw16 : (void*)d.dw;
    wkv7_tc_readout<<<grid, RO_THREADS, smem, s>>>(T, H, d.r, d.w, d.k, d.v, d.a, d.b, d.dy, d.fst, d.sa, d.est, d.dsa,
                                                    d.dr, drOut, dwOut, d.dk, d.da, d.db, overwrite, bf16Out);
}

static void allocDev(Dev& d, size_t n, size_t ns) {
    for (auto** p : {&d.r, &d.w, &d.k, &d.v, &d.a, &d.b, &d.dy, &d.sa, &d.dr16, &d.dw16}) CK(cudaMalloc(p, n * 2));
    for (auto** p : {&d.dsa, &d.dr, &d.dw, &d.dk, &d.da, &d.db}) CK(cudaMalloc(p, n * 4));
    CK(cudaMalloc(&d.fst, ns * 2)); CK(cudaMalloc(&d.est, ns * 2));
}
static void freeDev(Dev& d) {
    for (void* p : {(void*)d.r, (void*)d.w, (void*)d.k, (void*)d.v, (void*)d.a, (void*)d.b, (void*)d.dy, (void*)d.sa, (void*)d.dsa,
                    (void*)d.dr, (void*)d.dw, (void*)d.dk, (void*)d.da, (void*)d.db, (void*)d.fst, (void*)d.est,
                    (void*)d.dr16, (void*)d.dw16}) cudaFree(p);
}

struct Cfg { int cpb; int smem; };
static const char* cfgName(const Cfg& c) {
    static char buf[64];
    snprintf(buf, sizeof buf, "CPB %d", c.cpb);
    return buf;
}

static bool gpuCase(const std::string& set, int B, int H, int T, unsigned seed, const std::vector<Cfg>& cfgs) {
    const size_t n = (size_t)B * T * H * N, nc = T / 16, ns = (size_t)B * H * nc * NN;
    std::mt19937_64 rng(seed);
    std::vector<Head> hs; std::vector<Ref> rf;
    for (int q = 0; q < B * H; q++) { hs.push_back(makeHead(set, T, rng)); rf.push_back(serialRef(hs.back())); }
    // pack (head q = bb·H + h)
    std::vector<unsigned short> hr(n), hw(n), hk(n), hv(n), ha(n), hb(n), hdy(n), hsa(n), hfst(ns), hest(ns);
    std::vector<float> hdsa(n);
    for (int bb = 0; bb < B; bb++) for (int h = 0; h < H; h++) {
        const Head& hd = hs[bb * H + h]; const Ref& g = rf[bb * H + h];
        for (int t = 0; t < T; t++) for (int j = 0; j < N; j++) {
            size_t gi = (((size_t)bb * T + t) * H + h) * N + j, li = (size_t)t * N + j;
            hr[gi] = bf16bits((float)hd.r[li]); hw[gi] = bf16bits((float)hd.wraw[li]); hk[gi] = bf16bits((float)hd.k[li]);
            hv[gi] = bf16bits((float)hd.v[li]); ha[gi] = bf16bits((float)hd.a[li]); hb[gi] = bf16bits((float)hd.b[li]);
            hdy[gi] = bf16bits((float)hd.dy[li]); hsa[gi] = bf16bits((float)g.sa[li]); hdsa[gi] = (float)g.dsa[li];
        }
        for (size_t x = 0; x < nc * NN; x++) {
            size_t o = ((size_t)bb * H + h) * nc * NN + x;
            hfst[o] = bf16bits((float)g.fst[x]); hest[o] = bf16bits((float)g.est[x]);
        }
    }
    Dev d; allocDev(d, n, ns);
    CK(cudaMemcpy(d.r, hr.data(), n * 2, cudaMemcpyHostToDevice)); CK(cudaMemcpy(d.w, hw.data(), n * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d.k, hk.data(), n * 2, cudaMemcpyHostToDevice)); CK(cudaMemcpy(d.v, hv.data(), n * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d.a, ha.data(), n * 2, cudaMemcpyHostToDevice)); CK(cudaMemcpy(d.b, hb.data(), n * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d.dy, hdy.data(), n * 2, cudaMemcpyHostToDevice)); CK(cudaMemcpy(d.sa, hsa.data(), n * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d.dsa, hdsa.data(), n * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d.fst, hfst.data(), ns * 2, cudaMemcpyHostToDevice)); CK(cudaMemcpy(d.est, hest.data(), ns * 2, cudaMemcpyHostToDevice));
    std::vector<float> pre(n);
    { std::mt19937 pr(99); std::uniform_real_distribution<float> U(-1, 1); for (auto& x : pre) x = U(pr); }
    bool ok = true;
    // (overwrite, bf16Out): the model's call is (1, 3); bf16 outputs are held to the bf16 band (1e-2: rounded once,
    // dr's sum relative to the readout's share alone)
    const int modes[4][2] = {{1, 0}, {1, 3}, {0, 0}, {0, 1}};
    for (const Cfg& cf : cfgs)
    for (const auto& mode : modes) {
        const int overwrite = mode[0], bf16Out = mode[1];
        float* outs[5] = {d.dr, d.dw, d.dk, d.da, d.db};
        for (int q = 0; q < 5; q++) {
            bool poison = overwrite && (q == 1 || q == 3 || q == 4);
            if (poison) CK(cudaMemset(outs[q], 0xff, n * 4));
            else CK(cudaMemcpy(outs[q], pre.data(), n * 4, cudaMemcpyHostToDevice));
        }
        CK(cudaMemset(d.dr16, 0xff, n * 2)); CK(cudaMemset(d.dw16, 0xff, n * 2));
        const int nc = T / 16, G = (nc + cf.cpb - 1) / cf.cpb;
        launch(d, B, H, T, overwrite, bf16Out, G, cf.smem);
        CK(cudaGetLastError()); CK(cudaDeviceSynchronize());
        printf("  %-6s B%d H%d T%-5d %s ow=%d bf16=%d:", set.c_str(), B, H, T, cfgName(cf), overwrite, bf16Out);
        for (int q = 0; q < 5; q++) {
            bool poison = overwrite && (q == 1 || q == 3 || q == 4);
            const unsigned short* b16 = q == 0 && (bf16Out & 1) ? d.dr16 : q == 1 && (bf16Out & 2) ? d.dw16 : nullptr;
            std::vector<float> got(n);
            if (b16) {
                std::vector<unsigned short> h16(n);
                CK(cudaMemcpy(h16.data(), b16, n * 2, cudaMemcpyDeviceToHost));
                for (size_t i = 0; i < n; i++) { unsigned u = (unsigned)h16[i] << 16; memcpy(&got[i], &u, 4); }
            } else {
                CK(cudaMemcpy(got.data(), outs[q], n * 4, cudaMemcpyDeviceToHost));
            }
            Err e;
            for (int bb = 0; bb < B; bb++) for (int h = 0; h < H; h++) {
                const Ref& g = rf[bb * H + h];
                const std::vector<double>& ref = q == 0 ? g.dr : q == 1 ? g.dw : q == 2 ? g.dk : q == 3 ? g.da : g.db;
                std::vector<double> x((size_t)T * N);
                for (int t = 0; t < T; t++) for (int j = 0; j < N; j++) {
                    size_t gi = (((size_t)bb * T + t) * H + h) * N + j;
                    x[(size_t)t * N + j] = poison ? (double)got[gi] : (double)got[gi] - (double)pre[gi];
                }
                accum(e, x.data(), ref.data(), T);
            }
            double rel = std::sqrt(e.num / e.den);
            if (!(rel <= (b16 ? 1e-2 : 3e-3)) || e.nan) ok = false;
            printf(" | %s%s %.1e (step max %.1e)%s", GN[q], b16 ? "(bf16)" : "", rel, e.worst, e.nan ? " NaN!" : "");
            if (e.nan) printf("[%ld]", e.nan);
        }
        printf("\n");
    }
    freeDev(d);
    return ok;
}

__global__ void fillKernel(float* p, size_t n, unsigned seed, float scale) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        unsigned x = (unsigned)i * 2654435761u ^ seed; x ^= x >> 13; x *= 0x5bd1e995u; x ^= x >> 15;
        p[i] = scale * ((x & 0xffffff) / 16777216.0f - 0.5f);
    }
}
__global__ void fillBf16(unsigned short* p, size_t n, unsigned seed, float scale) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        unsigned x = (unsigned)i * 2654435761u ^ seed; x ^= x >> 13; x *= 0x5bd1e995u; x ^= x >> 15;
        p[i] = bf16_rn(scale * ((x & 0xffffff) / 16777216.0f - 0.5f));
    }
}

static void timeCase(int B, int H, int T, const Cfg& cf) {
    const size_t n = (size_t)B * T * H * N, ns = (size_t)B * H * (T / 16) * NN;
    Dev d; allocDev(d, n, ns);
    unsigned sd = 1;
    for (auto* p : {d.r, d.w, d.k, d.v, d.a, d.b}) fillBf16<<<1024, 256>>>(p, n, sd++, 2.0f);
    for (auto* p : {d.sa, d.dy}) fillBf16<<<1024, 256>>>(p, n, sd++, 1.0f);
    for (auto* p : {d.dsa, d.dr, d.dw, d.dk, d.da, d.db}) fillKernel<<<1024, 256>>>(p, n, sd++, 1.0f);
    fillBf16<<<1024, 256>>>(d.fst, ns, sd++, 0.5f); fillBf16<<<1024, 256>>>(d.est, ns, sd++, 0.5f);
    CK(cudaDeviceSynchronize());
    cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
    const int G = (T / 16 + cf.cpb - 1) / cf.cpb;
    for (int overwrite : {1, 0}) {
        const int bf16Out = overwrite ? 3 : 0;  // as the model calls it (overwrite), fp32 outputs (adding)
        for (int i = 0; i < 3; i++) launch(d, B, H, T, overwrite, bf16Out, G, cf.smem);
        std::vector<float> ms;
        for (int i = 0; i < 20; i++) {
            cudaEventRecord(e0); launch(d, B, H, T, overwrite, bf16Out, G, cf.smem); cudaEventRecord(e1); cudaEventSynchronize(e1);
            float x; cudaEventElapsedTime(&x, e0, e1); ms.push_back(x);
        }
        CK(cudaGetLastError());
        std::sort(ms.begin(), ms.end());
        // read: bf16 r, wRaw, k, v, a, b, dy, sa; fp32 dsa, dr's share, dk (also written); da, db written (read when
        // adding); dr's sum and dwRaw written bf16 (overwrite) or fp32 (dwRaw read too when adding); 2 bf16 states
        double bytes = (double)n * (8 * 2 + 4 * 4 + 2 * 4 + (overwrite ? 2 * 2 : 2 * 4 + 3 * 4)) + 2.0 * ns * 2;
        printf("  time B%d H%d T%d %s (grid %d×%d×%d) overwrite=%d: median %.3f ms (min %.3f), %.2f GB nominal → %.0f GB/s\n", B, H,
               T, cfgName(cf), G, H, B, overwrite, ms[10], ms[0], bytes / 1e9, bytes / 1e6 / ms[10]);
    }
    freeDev(d);
}

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "";  // cpu: CPU checks only; time: timing only
    if (mode != "time") cpuChecks();
    if (mode == "cpu") return 0;
    CK(cudaFuncSetAttribute(wkv7_tc_readout, cudaFuncAttributeMaxDynamicSharedMemorySize, RO_SMEM1));
    const std::vector<Cfg> timed = {{1, RO_SMEM1}, {4, RO_SMEM1}};
    if (mode == "time") {
        for (const Cfg& c : timed) timeCase(4, 32, 4096, c);
        for (const Cfg& c : timed) timeCase(8, 12, 4096, c);
        return 0;
    }
    for (int smem : {RO_SMEM1}) {
        int occ = 0; cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, wkv7_tc_readout, RO_THREADS, smem);
        printf("GPU: grid (⌈(T/16)/CPB⌉, H, B), block %d, dynamic smem %d B: %d CTAs/SM\n", RO_THREADS, smem, occ);
    }
    printf("relative error ‖Δ‖/‖ref‖ vs float64 serial (step max = max over steps of ‖Δ_t‖/‖ref_t‖)\n");
    bool ok = true;
    // T 256: 16 chunks; CPB 1 (the launch), 3 (uneven: 3,3,3,3,3,1), 16
    const std::vector<Cfg> small = {{1, RO_SMEM1}, {3, RO_SMEM1}, {16, RO_SMEM1}};
    for (const char* set : {"check", "strong", "long"}) ok &= gpuCase(set, 2, 3, 256, 1, small);
    for (const char* set : {"check", "strong", "long"}) ok &= gpuCase(set, 1, 2, 4096, 2, {{1, RO_SMEM1}});
    // the bar: storing the states and sa in bf16 costs up to 2.5e-3 (dwRaw, set long; 8e-4 with fp32 states)
    printf("accuracy %s (bar: every gradient ≤ 3e-3, the bf16 outputs ≤ 1e-2, no NaN)\n", ok ? "PASS" : "FAIL");
    for (const Cfg& c : timed) timeCase(4, 32, 4096, c);
    for (const Cfg& c : timed) timeCase(8, 12, 4096, c);
    return ok ? 0 : 1;
}
