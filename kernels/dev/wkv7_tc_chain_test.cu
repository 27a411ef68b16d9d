// Device harness of wkv7_tc.cu (the chunked tensor-core WKV7 forward and backward E chain): float64 serial
// recurrences on the CPU as the reference, relative errors ‖Δ‖/‖ref‖ of every output, then timings.
//   nvcc -O3 -std=c++17 -arch=sm_90 -I../src/main/cuda -o /tmp/tc wkv7_tc_chain_test.cu && /tmp/tc
// Inputs as kernels/dev/wkv7_chunk_tc_emu.cpp's sets (check, strong, long), rounded to bf16 (dy too, as the kernel
// reads it). sa and the states are stored in bf16 (their errors include that rounding: "bf16 floor" is the exact
// value's).
#include "wkv7_tc.cu"
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench.h"

static unsigned short bf(float f) { unsigned u; memcpy(&u, &f, 4); u += 0x7fffu + ((u >> 16) & 1u); return (unsigned short)(u >> 16); }
static float fb(unsigned short h) { unsigned u = (unsigned)h << 16; float f; memcpy(&f, &u, 4); return f; }

struct Err { double num = 0, den = 0; long nan = 0; void add(double x, double r) { if (std::isnan(x)) nan++; else { num += (x - r) * (x - r); } den += r * r; } double rel() const { return std::sqrt(num / den); } };

struct Case { int B, T, H; std::string set; };

static void run(const Case& cs, unsigned seed) {
    const int B = cs.B, T = cs.T, H = cs.H, C = H * 64, nc = T / 16;
    const size_t n = (size_t)B * T * C, ns = (size_t)B * H * nc * 4096;
    std::mt19937_64 rng(seed); std::normal_distribution<double> gs(0, 1); std::uniform_real_distribution<double> U(0.05, 0.95);
    std::vector<unsigned short> r(n), w(n), k(n), v(n), a(n), b(n);
    std::vector<unsigned short> dy(n);
    for (size_t row = 0; row < (size_t)B * T; row++) for (int h = 0; h < H; h++) {
        double kap[64], s = 0; for (int j = 0; j < 64; j++) { kap[j] = gs(rng); s += kap[j] * kap[j]; } s = std::sqrt(s);
        for (int j = 0; j < 64; j++) {
            size_t i = row * C + h * 64 + j; double al = U(rng);
            r[i] = bf(0.5 * gs(rng)); k[i] = bf(0.5 * gs(rng)); v[i] = bf(0.5 * gs(rng));
            double wr = cs.set == "strong" ? 8 + gs(rng) : cs.set == "long" ? -8 + gs(rng) : 2.0 * gs(rng);
            w[i] = bf((float)wr); a[i] = bf((float)(-kap[j] / s)); b[i] = bf((float)(kap[j] / s * al)); dy[i] = bf((float)gs(rng));
        }
    }
    // reference, float64
    std::vector<double> y(n), sa(n), dv(n, 0), dsa(n, 0), fst(ns), est(ns);
    for (int bb = 0; bb < B; bb++) for (int h = 0; h < H; h++) {
        auto at = [&](int t, int j) { return ((size_t)bb * T + t) * C + h * 64 + j; };
        auto om = [&](int t, int j) { float x = fb(w[at(t, j)]); return std::exp((double)(TC_W_SCALE * (1.0f / (1.0f + expf(-x))))); };
        size_t sb = ((size_t)bb * H + h) * nc * 4096;
        std::vector<double> S(4096, 0.0), E(4096, 0.0);
        for (int t = 0; t < T; t++) {
            for (int i = 0; i < 64; i++) {
                double s = 0; for (int j = 0; j < 64; j++) s += S[i * 64 + j] * fb(a[at(t, j)]);
                sa[at(t, i)] = s; double yy = 0;
                for (int j = 0; j < 64; j++) { double x = S[i * 64 + j] * om(t, j) + s * fb(b[at(t, j)]) + fb(v[at(t, i)]) * fb(k[at(t, j)]); S[i * 64 + j] = x; yy += x * fb(r[at(t, j)]); }
                y[at(t, i)] = yy;
            }
            if ((t + 1) % 16 == 0) for (int i = 0; i < 64; i++) for (int j = 0; j < 64; j++) fst[sb + (size_t)(t / 16) * 4096 + j * 64 + i] = S[i * 64 + j];
        }
        for (int t = T - 1; t >= 0; t--) {
            if ((t + 1) % 16 == 0) for (int i = 0; i < 64; i++) for (int j = 0; j < 64; j++) est[sb + (size_t)(t / 16) * 4096 + j * 64 + i] = E[i * 64 + j];
            if (t + 1 < T) for (int i = 0; i < 64; i++) {
                double eb = 0; for (int j = 0; j < 64; j++) eb += E[i * 64 + j] * fb(b[at(t + 1, j)]);
                for (int j = 0; j < 64; j++) E[i * 64 + j] = E[i * 64 + j] * om(t + 1, j) + eb * fb(a[at(t + 1, j)]);
            }
            for (int i = 0; i < 64; i++) {
                double ds = 0, d = 0;
                for (int j = 0; j < 64; j++) { double e = E[i * 64 + j] + fb(dy[at(t, i)]) * fb(r[at(t, j)]); E[i * 64 + j] = e; ds += e * fb(b[at(t, j)]); d += e * fb(k[at(t, j)]); }
                dsa[at(t, i)] = t == 0 ? 0.0 : ds; dv[at(t, i)] = d;
            }
        }
    }
    // device
    unsigned short *dr_, *dw_, *dk_, *dv_, *da_, *db_, *dyo, *dsa_, *dst, *dest, *ddy; float *ddv, *dds;
    for (auto* p : {&dr_, &dw_, &dk_, &dv_, &da_, &db_, &dyo, &dsa_, &ddy}) CK(cudaMalloc(p, n * 2));
    for (auto* p : {&ddv, &dds}) CK(cudaMalloc(p, n * 4));
    CK(cudaMalloc(&dst, ns * 2)); CK(cudaMalloc(&dest, ns * 2));
    CK(cudaMemcpy(dr_, r.data(), n * 2, cudaMemcpyHostToDevice)); CK(cudaMemcpy(dw_, w.data(), n * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dk_, k.data(), n * 2, cudaMemcpyHostToDevice)); CK(cudaMemcpy(dv_, v.data(), n * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(da_, a.data(), n * 2, cudaMemcpyHostToDevice)); CK(cudaMemcpy(db_, b.data(), n * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(ddy, dy.data(), n * 2, cudaMemcpyHostToDevice));
    CK(cudaMemset(dyo, 0xff, n * 2)); CK(cudaMemset(dsa_, 0xff, n * 2)); CK(cudaMemset(dst, 0xff, ns * 2));
    CK(cudaMemset(dds, 0xff, n * 4)); CK(cudaMemset(dest, 0xff, ns * 2));
    std::vector<float> one(n, 1.0f); CK(cudaMemcpy(ddv, one.data(), n * 4, cudaMemcpyHostToDevice));
    int smem = sizeof(TcShared);
    CK(cudaFuncSetAttribute(wkv7_tc_forward, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    CK(cudaFuncSetAttribute(wkv7_tc_backward_chain, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    wkv7_tc_forward<<<dim3(H, B), TC_THREADS, smem>>>(T, H, dr_, dw_, dk_, dv_, da_, db_, dyo, dst, dsa_);
    wkv7_tc_backward_chain<<<dim3(H, B), TC_THREADS, smem>>>(T, H, dr_, dw_, dk_, da_, db_, ddy, ddv, dds, dest);
    CK(cudaDeviceSynchronize());
    std::vector<unsigned short> hy(n), hsa(n), hst(ns), hest(ns); std::vector<float> hdv(n), hds(n);
    CK(cudaMemcpy(hy.data(), dyo, n * 2, cudaMemcpyDeviceToHost)); CK(cudaMemcpy(hsa.data(), dsa_, n * 2, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(hst.data(), dst, ns * 2, cudaMemcpyDeviceToHost)); CK(cudaMemcpy(hdv.data(), ddv, n * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(hds.data(), dds, n * 4, cudaMemcpyDeviceToHost)); CK(cudaMemcpy(hest.data(), dest, ns * 2, cudaMemcpyDeviceToHost));
    Err ey, eyb, esa, esab, est_, estb, edv, eds, eest, eestb;
    for (size_t i = 0; i < n; i++) {
        ey.add(fb(hy[i]), y[i]); eyb.add(fb(bf((float)y[i])), y[i]); esa.add(fb(hsa[i]), sa[i]);
        esab.add(fb(bf((float)sa[i])), sa[i]); edv.add(hdv[i] - 1.0, dv[i]); eds.add(hds[i], dsa[i]);
    }
    for (size_t i = 0; i < ns; i++) {
        est_.add(fb(hst[i]), fst[i]); estb.add(fb(bf((float)fst[i])), fst[i]);
        eest.add(fb(hest[i]), est[i]); eestb.add(fb(bf((float)est[i])), est[i]);
    }
    printf("%-6s B%d T%d H%d | y %.2e sa %.2e states %.2e | dv %.2e dsa %.2e estates %.2e | NaN %ld\n",
           cs.set.c_str(), B, T, H, ey.rel(), esa.rel(), est_.rel(), edv.rel(), eds.rel(), eest.rel(),
           ey.nan + esa.nan + est_.nan + edv.nan + eds.nan + eest.nan);
    printf("%-6s   bf16 floor (the exact values rounded) | y %.2e sa %.2e states %.2e | estates %.2e\n", "",
           eyb.rel(), esab.rel(), estb.rel(), eestb.rel());
    for (auto* p : {&dr_, &dw_, &dk_, &dv_, &da_, &db_, &dyo, &dsa_, &dst, &dest, &ddy}) cudaFree(*p);
    for (auto* p : {&ddv, &dds}) cudaFree(*p);
}

static void timing(int B, int T, int H) {
    const size_t n = (size_t)B * T * H * 64, ns = (size_t)B * H * (T / 16) * 4096;
    unsigned short *in, *st; float* f32;
    CK(cudaMalloc(&in, n * 2 * 8)); CK(cudaMalloc(&f32, n * 4 * 3)); CK(cudaMalloc(&st, ns * 2 * 2));
    std::vector<unsigned short> h(n * 7); std::mt19937 rng(1); std::normal_distribution<float> g(0, 0.3f);
    for (auto& x : h) x = bf(g(rng));
    CK(cudaMemcpy(in, h.data(), n * 2 * 7, cudaMemcpyHostToDevice)); CK(cudaMemset(f32, 0, n * 4 * 3));
    int smem = sizeof(TcShared);
    CK(cudaFuncSetAttribute(wkv7_tc_forward, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    CK(cudaFuncSetAttribute(wkv7_tc_backward_chain, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
    for (int which = 0; which < 2; which++) {
        std::vector<float> ms;

        for (int it = 0; it < 12; it++) {
            cudaEventRecord(e0);
            if (which == 0) wkv7_tc_forward<<<dim3(H, B), TC_THREADS, smem>>>(T, H, in, in + n, in + 2 * n, in + 3 * n, in + 4 * n, in + 5 * n, in + 6 * n, st, in + 7 * n);
            else wkv7_tc_backward_chain<<<dim3(H, B), TC_THREADS, smem>>>(T, H, in, in + n, in + 2 * n, in + 4 * n, in + 5 * n, in + 6 * n, f32 + n, f32 + 2 * n, st + ns);
            cudaEventRecord(e1); CK(cudaEventSynchronize(e1)); CK(cudaGetLastError());
            float t; cudaEventElapsedTime(&t, e0, e1); if (it >= 2) ms.push_back(t);
        }

        std::sort(ms.begin(), ms.end());
        printf("timing B%d T%d H%d %-14s median %.3f ms (min %.3f)\n", B, T, H, which ? "backward_chain" : "forward", ms[ms.size() / 2], ms[0]);
    }
    cudaFree(in); cudaFree(f32); cudaFree(st);
}

int main(int argc, char** argv) {
    printf("shared memory %zu bytes\n", sizeof(TcShared));

    for (std::string s : {"check", "strong", "long"}) run({2, 256, 3, s}, 1);
    run({1, 1024, 2, "check"}, 2);
    timing(4, 4096, 32);
    timing(8, 4096, 12);
    return 0;
}
