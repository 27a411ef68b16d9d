// WKV7 forward kernels on the CPU (cuda_emu.h): y, sa and the snapshots against a float64 recurrence, every output
// NaN-poisoned first. No GPU needed; finds indexing, layout and missing-output bugs (not races, not speed).
//   cd kernels/dev && g++ -std=c++17 -O2 -w -o /tmp/wkv7_fwd wkv7_forward_emu.cpp && /tmp/wkv7_fwd B T H KERNEL
// KERNEL: 64_1_4, 64_2_8, 64_2_4, 32_1_4 (chunked), v5 (32_2_8), v5_64_2_4, v5_16_1_8, v5p_<cfg> (paired).
#include "cuda_emu.h"
#include "../src/main/cuda/wkv7.cu"
#include <random>
#include <string>
typedef void (*Fwd)(int, int, const float*, const float*, const float*, const float*, const float*, const float*, float*, float*, float*);
int main(int argc, char** argv) {
    int B = atoi(argv[1]), T = atoi(argv[2]), H = atoi(argv[3]); std::string which = argv[4];
    int C = H * 64; long n = (long)B * T * C; int chunks = (T + 15) / 16;
    std::mt19937_64 rng(42 + B * 1000 + T * 7 + H); std::normal_distribution<double> g(0, 1); std::uniform_real_distribution<double> U(0.05, 0.95);
    std::vector<float> r(n), w(n), k(n), v(n), a(n), b(n);
    for (long i = 0; i < n; i++) { r[i] = 0.5 * g(rng); w[i] = 2.0 * g(rng); k[i] = 0.5 * g(rng); v[i] = 0.5 * g(rng); }
    for (long u = 0; u < n / 64; u++) { double kap[64], s = 0; for (int i = 0; i < 64; i++) { kap[i] = g(rng); s += kap[i] * kap[i]; } s = sqrt(s);
        for (int i = 0; i < 64; i++) { a[u * 64 + i] = -kap[i] / s; b[u * 64 + i] = kap[i] / s * U(rng); } }
    long ns = (long)B * H * chunks * 4096;
    std::vector<float> y(n, NAN), saved(ns + n, NAN);
    Fwd f; int rows, nthr;
    if (which == "64_1_4") { f = wkv7_forward_chunk_64_1_4; rows = 64; nthr = 256; }
    else if (which == "64_2_8") { f = wkv7_forward_chunk_64_2_8; rows = 64; nthr = 256; }
    else if (which == "64_2_4") { f = wkv7_forward_chunk_64_2_4; rows = 64; nthr = 128; }
    else if (which == "32_1_4") { f = wkv7_forward_chunk_32_1_4; rows = 32; nthr = 128; }
    else if (which == "v5") { f = wkv7_forward_v5_32_2_8; rows = 32; nthr = 128; }
    else if (which == "v5p_32_2_8") { f = wkv7_forward_v5_32_2_8p; rows = 32; nthr = 128; }
    else if (which == "v5p_64_2_4") { f = wkv7_forward_v5_64_2_4p; rows = 64; nthr = 128; }
    else if (which == "v5p_16_1_8") { f = wkv7_forward_v5_16_1_8p; rows = 16; nthr = 128; }
    else if (which == "v5_64_2_4") { f = wkv7_forward_v5_64_2_4; rows = 64; nthr = 128; }
    else if (which == "v5_16_1_8") { f = wkv7_forward_v5_16_1_8; rows = 16; nthr = 128; }
    else { fprintf(stderr, "?\n"); return 2; }
    int G = 64 / rows;
    blockDim = {(unsigned)nthr, 1, 1}; gridDim = {(unsigned)(H * G), (unsigned)B, 1};
    for (int by = 0; by < B; by++) for (int bx = 0; bx < H * G; bx++) {
        blockIdx = {(unsigned)bx, (unsigned)by, 0};
        emu::run_block(nthr, [&] { f(T, H, r.data(), w.data(), k.data(), v.data(), a.data(), b.data(), y.data(), saved.data(), saved.data() + ns); });
    }
    // reference in double
    double ey = 0, ny = 0, es = 0, nsn = 0, ea = 0, na = 0; long bad = 0;
    for (int bb = 0; bb < B; bb++) for (int hh = 0; hh < H; hh++) {
        std::vector<double> S(4096, 0.0);
        for (int t = 0; t < T; t++) {
            long base = (long)bb * T * C + (long)t * C + hh * 64;
            double sa[64], om[64];
            for (int j = 0; j < 64; j++) om[j] = exp(-0.6065306597126334 / (1.0 + exp(-(double)w[base + j])));
            for (int i = 0; i < 64; i++) { double s = 0; for (int j = 0; j < 64; j++) s += S[i * 64 + j] * a[base + j]; sa[i] = s; }
            for (int i = 0; i < 64; i++) for (int j = 0; j < 64; j++) S[i * 64 + j] = S[i * 64 + j] * om[j] + sa[i] * b[base + j] + v[base + i] * k[base + j];
            for (int i = 0; i < 64; i++) { double s = 0; for (int j = 0; j < 64; j++) s += S[i * 64 + j] * r[base + j];
                float gy = y[base + i], gs = saved[ns + base + i]; if (!std::isfinite(gy) || !std::isfinite(gs)) bad++;
                ey += (gy - s) * (gy - s); ny += s * s; ea += (gs - sa[i]) * (gs - sa[i]); na += sa[i] * sa[i]; }
            if ((t + 1) % 16 == 0 || t == T - 1) {
                const float* sn = saved.data() + (((long)bb * H + hh) * chunks + t / 16) * 4096;
                for (int i = 0; i < 64; i++) for (int j = 0; j < 64; j++) { double x = sn[j * 64 + i]; if (!std::isfinite(x)) bad++; es += (x - S[i * 64 + j]) * (x - S[i * 64 + j]); nsn += S[i * 64 + j] * S[i * 64 + j]; }
            }
        }
    }
    printf("%s B%d T%d H%d: y %.3e sa %.3e snap %.3e nonfinite %ld syncs %ld\n", which.c_str(), B, T, H, sqrt(ey / ny), sqrt(ea / na), sqrt(es / nsn), bad, emu::syncs);
    return 0;
}
