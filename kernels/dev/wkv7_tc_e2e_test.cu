// The tensor-core WKV7 end to end: wkv7_tc_forward, wkv7_tc_backward_chain and wkv7_tc_readout as CudaBackend runs
// them (the forward's saved states and sa, the E chain's states in its scratch), every output against the float64
// serial reference (wkv7_tc_ref.h: sets check / strong / long, inputs in bf16, dy ~ N(0, 1) in bf16). Relative error
// ‖Δ‖/‖ref‖ over all heads, and the largest per-step ‖Δ_t‖/‖ref_t‖. Twice per case: the readout's outputs in fp32
// (dr added in place), and as the model calls it (bf16Out = 3: dr's sum from an fp32 share into a bf16 drSum, dwRaw
// written in bf16).
//   cd kernels/dev && nvcc -O3 -std=c++17 -arch=sm_90 -I../src/main/cuda -o /tmp/e2e wkv7_tc_e2e_test.cu && /tmp/e2e
// The kernels are launched through cudaLaunchKernel and the saved buffers sized for fp32, so the harness runs any
// version of the kernels that keeps their argument order (fp32 or bf16 saved layouts alike; the order since dy is
// bf16 and the readout takes drIn, drOut and bf16Out): build it against another kernels/src/main/cuda with -I to
// compare.
#include "wkv7_tc.cu"
#include "wkv7_tc_readout.cu"
#include "wkv7_tc_ref.h"

#include <algorithm>

static void launch(const void* kernel, dim3 grid, int threads, int smem, std::vector<void*> args) {
    CK(cudaLaunchKernel(kernel, grid, dim3(threads), args.data(), smem, 0));
}

static void e2eCase(const std::string& set, int B, int H, int T, unsigned seed) {
    const size_t n = (size_t)B * T * H * N, nc = T / 16, ns = (size_t)B * H * nc * NN;
    std::mt19937_64 rng(seed);
    std::vector<Head> hs; std::vector<Ref> rf;
    for (int q = 0; q < B * H; q++) { hs.push_back(makeHead(set, T, rng)); rf.push_back(serialRef(hs.back())); }
    std::vector<unsigned short> in[6];
    for (auto& x : in) x.resize(n);
    std::vector<unsigned short> hdy(n);
    for (int bb = 0; bb < B; bb++) for (int h = 0; h < H; h++) {
        const Head& hd = hs[bb * H + h];
        for (int t = 0; t < T; t++) for (int j = 0; j < N; j++) {
            size_t gi = (((size_t)bb * T + t) * H + h) * N + j, li = (size_t)t * N + j;
            in[0][gi] = bf16bits((float)hd.r[li]); in[1][gi] = bf16bits((float)hd.wraw[li]);
            in[2][gi] = bf16bits((float)hd.k[li]); in[3][gi] = bf16bits((float)hd.v[li]);
            in[4][gi] = bf16bits((float)hd.a[li]); in[5][gi] = bf16bits((float)hd.b[li]);
            hdy[gi] = bf16bits((float)hd.dy[li]);
        }
    }
    unsigned short* din[6];
    for (int x = 0; x < 6; x++) {
        CK(cudaMalloc(&din[x], n * 2));
        CK(cudaMemcpy(din[x], in[x].data(), n * 2, cudaMemcpyHostToDevice));
    }
    unsigned short* y; void *fst, *sa, *est, *dr16, *dw16; unsigned short* dy; float *dsa, *g[6];  // dr, dwRaw, dk, dv, da, db
    CK(cudaMalloc(&y, n * 2)); CK(cudaMalloc(&fst, ns * 4)); CK(cudaMalloc(&sa, n * 4)); CK(cudaMalloc(&est, ns * 4));
    CK(cudaMalloc(&dy, n * 2)); CK(cudaMalloc(&dsa, n * 4)); CK(cudaMalloc(&dr16, n * 2)); CK(cudaMalloc(&dw16, n * 2));
    for (auto*& p : g) CK(cudaMalloc(&p, n * 4));
    CK(cudaMemcpy(dy, hdy.data(), n * 2, cudaMemcpyHostToDevice));
    std::vector<float> pre(n);
    { std::mt19937 pr(99); std::uniform_real_distribution<float> U(-1, 1); for (auto& x : pre) x = U(pr); }
    for (int bf16Out : {0, 3}) {
        for (void* p : {(void*)y, fst, sa, est, (void*)dsa}) CK(cudaMemset(p, 0xff, p == (void*)y ? n * 2 : p == fst || p == est ? ns * 4 : n * 4));
        CK(cudaMemset(dr16, 0xff, n * 2)); CK(cudaMemset(dw16, 0xff, n * 2));
        // dr (or its share), dk, dv add onto these; dwRaw, da, db are written (poisoned)
        for (int q = 0; q < 6; q++) {
            if (q == 1 || q == 4 || q == 5) CK(cudaMemset(g[q], 0xff, n * 4));
            else CK(cudaMemcpy(g[q], pre.data(), n * 4, cudaMemcpyHostToDevice));
        }
        int Ti = T, Hi = H, ow = 1, bo = bf16Out;
        void* drOut = bf16Out & 1 ? dr16 : (void*)g[0];
        void* dwOut = bf16Out & 2 ? dw16 : (void*)g[1];
        const int smem = sizeof(TcShared);
        launch((const void*)wkv7_tc_forward, dim3(H, B), TC_THREADS, smem,
               {&Ti, &Hi, &din[0], &din[1], &din[2], &din[3], &din[4], &din[5], &y, &fst, &sa});
        launch((const void*)wkv7_tc_backward_chain, dim3(H, B), TC_THREADS, smem,
               {&Ti, &Hi, &din[0], &din[1], &din[2], &din[4], &din[5], &dy, &g[3], &dsa, &est});
        launch((const void*)wkv7_tc_readout, dim3(T / 16, H, B), RO_THREADS, RO_SMEM1,
               {&Ti, &Hi, &din[0], &din[1], &din[2], &din[3], &din[4], &din[5], &dy, &fst, &sa, &est, &dsa, &g[0], &drOut,
                &dwOut, &g[2], &g[4], &g[5], &ow, &bo});
        CK(cudaGetLastError()); CK(cudaDeviceSynchronize());
        std::vector<unsigned short> hy(n);
        CK(cudaMemcpy(hy.data(), y, n * 2, cudaMemcpyDeviceToHost));
        static const char* names[7] = {"y", "dr", "dwRaw", "dk", "dv", "da", "db"};
        printf("  %-6s B%d H%d T%-5d bf16Out=%d:", set.c_str(), B, H, T, bf16Out);
        for (int q = 0; q < 7; q++) {
            std::vector<double> got(n);
            const void* b16 = q == 1 && (bf16Out & 1) ? dr16 : q == 2 && (bf16Out & 2) ? dw16 : nullptr;
            if (q == 0 || b16) {
                if (b16) CK(cudaMemcpy(hy.data(), b16, n * 2, cudaMemcpyDeviceToHost));
                const bool added = q == 1;
                for (size_t i = 0; i < n; i++) {
                    unsigned u = (unsigned)hy[i] << 16; float f; memcpy(&f, &u, 4);
                    got[i] = added ? (double)f - (double)pre[i] : f;
                }
            } else {
                std::vector<float> x(n);
                CK(cudaMemcpy(x.data(), g[q - 1], n * 4, cudaMemcpyDeviceToHost));
                const bool added = q == 1 || q == 3 || q == 4;
                for (size_t i = 0; i < n; i++) got[i] = added ? (double)x[i] - (double)pre[i] : (double)x[i];
            }
            Err e;
            for (int bb = 0; bb < B; bb++) for (int h = 0; h < H; h++) {
                const Ref& r = rf[bb * H + h];
                const std::vector<double>& ref = q == 0 ? r.y : q == 1 ? r.dr : q == 2 ? r.dw : q == 3 ? r.dk : q == 4 ? r.dv
                                               : q == 5 ? r.da : r.db;
                std::vector<double> x((size_t)T * N);
                for (int t = 0; t < T; t++) for (int j = 0; j < N; j++) x[(size_t)t * N + j] = got[(((size_t)bb * T + t) * H + h) * N + j];
                accum(e, x.data(), ref.data(), T);
            }
            printf(" | %s%s %.1e (%.1e)%s", names[q], b16 ? "(bf16)" : "", std::sqrt(e.num / e.den), e.worst,
                   e.nan ? " NaN!" : "");
        }
        printf("\n");
    }
    for (auto* p : din) cudaFree(p);
    for (void* p : {(void*)y, fst, sa, est, (void*)dy, (void*)dsa, dr16, dw16}) cudaFree(p);
    for (auto* p : g) cudaFree(p);
}

int main() {
    CK(cudaFuncSetAttribute(wkv7_tc_forward, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sizeof(TcShared)));
    CK(cudaFuncSetAttribute(wkv7_tc_backward_chain, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sizeof(TcShared)));
    CK(cudaFuncSetAttribute(wkv7_tc_readout, cudaFuncAttributeMaxDynamicSharedMemorySize, RO_SMEM1));
    printf("forward + E chain + readout vs float64 serial: relative error (largest per-step error)\n");
    for (const char* set : {"check", "strong", "long"}) e2eCase(set, 2, 3, 256, 1);
    for (const char* set : {"check", "strong", "long"}) e2eCase(set, 1, 2, 4096, 2);
    return 0;
}
