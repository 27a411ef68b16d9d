// The v5 backward column pass on the CPU (cuda_emu.h): every configuration in the plain, paired (…p) and quad (…q)
// lane layouts on the same inputs (saved states from the v5 forward, dsa and the chunk-end dS from the row pass);
// dr, dwRaw, dk, da, db must agree to the bit across layouts (the same sums in the same order), every output written.
//   cd kernels/dev && g++ -std=c++17 -O2 -w -o /tmp/wkv7_cols wkv7_cols_emu.cpp && /tmp/wkv7_cols B T H CH
#include "cuda_emu.h"
#include "../src/main/cuda/wkv7.cu"
#include <random>
#include <string>
typedef void (*Cols)(int, int, const float*, const float*, const float*, const float*, const float*, const float*,
                     const float*, const float*, const float*, const float*, float*, float*, float*, float*, float*, int,
                     const float*, int);
int main(int argc, char** argv) {
    int B = atoi(argv[1]), T = atoi(argv[2]), H = atoi(argv[3]), CH = atoi(argv[4]);
    int C = H * 64; long n = (long)B * T * C; int chunks = (T + 15) / 16;
    std::mt19937_64 rng(11 + T); std::normal_distribution<double> g(0, 1); std::uniform_real_distribution<double> U(0.05, 0.95);
    std::vector<float> r(n), w(n), k(n), v(n), a(n), b(n), dy(n), dv(n, 0.0f);
    for (long i = 0; i < n; i++) { r[i] = 0.5 * g(rng); w[i] = 2.0 * g(rng); k[i] = 0.5 * g(rng); v[i] = 0.5 * g(rng); dy[i] = g(rng); }
    for (long u = 0; u < n / 64; u++) { double kap[64], s = 0; for (int i = 0; i < 64; i++) { kap[i] = g(rng); s += kap[i] * kap[i]; } s = sqrt(s);
        for (int i = 0; i < 64; i++) { a[u * 64 + i] = -kap[i] / s; b[u * 64 + i] = kap[i] / s * U(rng); } }
    long ns = (long)B * H * chunks * 4096;
    std::vector<float> y(n), saved(ns + n);
    blockDim = {128, 1, 1};
    for (int by = 0; by < B; by++) for (int bx = 0; bx < H * 2; bx++) { blockIdx = {(unsigned)bx, (unsigned)by, 0};
        emu::run_block(128, [&] { wkv7_forward_v5_32_2_8(T, H, r.data(), w.data(), k.data(), v.data(), a.data(), b.data(), y.data(), saved.data(), saved.data() + ns); }); }
    long nb = CH > 0 ? (long)B * H * ((T - 1) / CH) * 4096 : 0;
    std::vector<float> dsa(n), dsb(nb + 1);
    for (int by = 0; by < B; by++) for (int bx = 0; bx < H; bx++) { blockIdx = {(unsigned)bx, (unsigned)by, 0};
        emu::run_block(128, [&] { wkv7_backward_rows_v5_64_2_4(T, H, r.data(), w.data(), k.data(), a.data(), b.data(), dy.data(), dv.data(), dsa.data(), CH, dsb.data()); }); }
    struct Cfg { Cols f; int colsb, nt; const char* name; };
    Cfg cfgs[3][3] = {{{wkv7_backward_cols_v5_32_1_4, 32, 128, "32_1_4"}, {wkv7_backward_cols_v5_16_1_4, 16, 64, "16_1_4"}, {wkv7_backward_cols_v5_32_2_4, 32, 64, "32_2_4"}},
                      {{wkv7_backward_cols_v5_32_1_4p, 32, 128, "32_1_4p"}, {wkv7_backward_cols_v5_16_1_4p, 16, 64, "16_1_4p"}, {wkv7_backward_cols_v5_32_2_4p, 32, 64, "32_2_4p"}},
                      {{wkv7_backward_cols_v5_32_1_4q, 32, 128, "32_1_4q"}, {wkv7_backward_cols_v5_16_1_4q, 16, 64, "16_1_4q"}, {wkv7_backward_cols_v5_32_2_4q, 32, 64, "32_2_4q"}}};
    int nz = CH > 0 ? (T + CH - 1) / CH : 1;
    for (int wab = 0; wab < 2; wab++) for (int c = 0; c < 3; c++) {
        std::vector<float> ref[5];
        for (int p = 0; p < 3; p++) {
            std::vector<float> out[5];
            for (int q = 0; q < 5; q++) out[q].assign(n, wab && (q == 1 || q == 3 || q == 4) ? NAN : 0.25f);
            Cfg& f = cfgs[p][c]; int G = 64 / f.colsb;
            blockDim = {(unsigned)f.nt, 1, 1};
            for (int bz = 0; bz < nz; bz++) for (int by = 0; by < B; by++) for (int bx = 0; bx < H * G; bx++) {
                blockIdx = {(unsigned)bx, (unsigned)by, (unsigned)bz};
                emu::run_block(f.nt, [&] { f.f(T, H, r.data(), w.data(), k.data(), v.data(), a.data(), b.data(), dy.data(), saved.data(), saved.data() + ns, dsa.data(),
                                                out[0].data(), out[1].data(), out[2].data(), out[3].data(), out[4].data(), CH, dsb.data(), wab); }); }
            long diff = 0, bad = 0;
            for (int q = 0; q < 5; q++) for (long i = 0; i < n; i++) {
                if (!std::isfinite(out[q][i])) bad++;
                if (p > 0 && memcmp(&out[q][i], &ref[q][i], 4)) diff++; }
            printf("cols %-8s wab%d B%d T%d H%d CH%d: nonfinite %ld, differing from plain %ld\n", f.name, wab, B, T, H, CH, bad, diff);
            if (p == 0) for (int q = 0; q < 5; q++) ref[q] = out[q];
        }
    }
}
