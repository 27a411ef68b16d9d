// The v5 backward row pass on the CPU (cuda_emu.h): every configuration in the plain and the paired lane layout on
// the same inputs; dv, dsa and dS at the chunk ends must agree to the bit (the layouts sum the same terms in the
// same order).
//   cd kernels/dev && g++ -std=c++17 -O2 -w -o /tmp/wkv7_rows wkv7_rows_emu.cpp && /tmp/wkv7_rows B T H CH
#include "cuda_emu.h"
#include "../src/main/cuda/wkv7.cu"
#include <random>
#include <string>
typedef void (*Rows)(int, int, const float*, const float*, const float*, const float*, const float*, const float*, float*, float*, int, float*);
int main(int argc, char** argv) {
    int B = atoi(argv[1]), T = atoi(argv[2]), H = atoi(argv[3]), CH = atoi(argv[4]);
    int C = H * 64; long n = (long)B * T * C;
    std::mt19937_64 rng(7 + T); std::normal_distribution<double> g(0, 1);
    std::vector<float> r(n), w(n), k(n), a(n), b(n), dy(n), dv0(n);
    for (long i = 0; i < n; i++) { r[i] = g(rng); w[i] = 2 * g(rng); k[i] = g(rng); a[i] = 0.1 * g(rng); b[i] = 0.1 * g(rng); dy[i] = g(rng); dv0[i] = g(rng); }
    long nb = CH > 0 ? (long)B * H * ((T - 1) / CH) * 4096 : 0;
    struct Cfg { Rows f; int rows; };
    Cfg cfgs[2][3] = {{{wkv7_backward_rows_v5_64_2_4, 64}, {wkv7_backward_rows_v5_32_2_8, 32}, {wkv7_backward_rows_v5_16_1_8, 16}},
                      {{wkv7_backward_rows_v5_64_2_4p, 64}, {wkv7_backward_rows_v5_32_2_8p, 32}, {wkv7_backward_rows_v5_16_1_8p, 16}}};
    for (int c = 0; c < 3; c++) {
        std::vector<float> out[2][3];
        for (int p = 0; p < 2; p++) {
            std::vector<float> dv = dv0, dsa(n, NAN), dsb(nb + 1, NAN);
            int rows = cfgs[p][c].rows, G = 64 / rows;
            blockDim = {128, 1, 1};
            for (int by = 0; by < B; by++) for (int bx = 0; bx < H * G; bx++) { blockIdx = {(unsigned)bx, (unsigned)by, 0};
                emu::run_block(128, [&] { cfgs[p][c].f(T, H, r.data(), w.data(), k.data(), a.data(), b.data(), dy.data(), dv.data(), dsa.data(), CH, dsb.data()); }); }
            out[p][0] = dv; out[p][1] = dsa; out[p][2] = dsb;
        }
        long diff = 0, nan = 0;
        for (int q = 0; q < 3; q++) for (size_t i = 0; i < out[0][q].size(); i++) {
            if (q == 2 && i == out[0][q].size() - 1) continue;
            if (memcmp(&out[0][q][i], &out[1][q][i], 4)) diff++; if (!std::isfinite(out[1][q][i])) nan++; }
        printf("rows cfg %d B%d T%d H%d CH%d: differing %ld nonfinite %ld\n", c, B, T, H, CH, diff, nan);
    }
}
