// The bf16-input WKV7 kernels (…_bf16) on the CPU (cuda_emu.h) against the fp32 kernels given the same values rounded
// to bf16: the forward's y (rounded once) and its saved states and sa, the row pass's dsa, dv and chunk-end dS, the
// column pass's dr, dwRaw, dk, da, db must agree to the bit (the bf16 kernels widen the inputs as they stage them and
// compute as the fp32 kernels), every output written. Every staging variant: _bf16 (in use: per kernel one of the
// two below; the forwards store y after the update, by the hardware conversion on the GPU), _bf16a (cp.async into a
// double-buffered bf16 area a stage ahead, widened by the copying thread at the last step of the stage before),
// _bf16sh (cp.async into one bf16 area, widened after copy_wait before the stage's barrier: the kernels before).
//   cd kernels/dev && g++ -std=c++17 -O2 -w -o /tmp/wkv7_bf16 wkv7_bf16_emu.cpp && /tmp/wkv7_bf16 B T H CH
#include "cuda_emu.h"
#include "../src/main/cuda/wkv7.cu"
#include <random>
#include <string>
static unsigned short round_bf16(float f) {
    unsigned u; memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}
static float widen(unsigned short h) { unsigned u = (unsigned)h << 16; float f; memcpy(&f, &u, 4); return f; }
static long differing(const std::vector<float>& a, const std::vector<float>& b) {
    long d = 0;
    for (size_t i = 0; i < a.size(); i++) d += memcmp(&a[i], &b[i], 4) != 0 || !std::isfinite(a[i]);
    return d;
}
int main(int argc, char** argv) {
    int B = atoi(argv[1]), T = atoi(argv[2]), H = atoi(argv[3]), CH = atoi(argv[4]);
    int C = H * 64; long n = (long)B * T * C; int chunks = (T + 15) / 16;
    std::mt19937_64 rng(5 + T); std::normal_distribution<double> g(0, 1); std::uniform_real_distribution<double> U(0.05, 0.95);
    std::vector<float> in[6];  // r, w, k, v, a, b (rounded to bf16 values)
    std::vector<unsigned short> h[6];
    for (auto& x : in) x.resize(n);
    for (long i = 0; i < n; i++) { in[0][i] = 0.5 * g(rng); in[1][i] = 2.0 * g(rng); in[2][i] = 0.5 * g(rng); in[3][i] = 0.5 * g(rng); }
    for (long u = 0; u < n / 64; u++) { double kap[64], s = 0; for (int i = 0; i < 64; i++) { kap[i] = g(rng); s += kap[i] * kap[i]; } s = sqrt(s);
        for (int i = 0; i < 64; i++) { in[4][u * 64 + i] = -kap[i] / s; in[5][u * 64 + i] = kap[i] / s * U(rng); } }
    for (int q = 0; q < 6; q++) { h[q].resize(n); for (long i = 0; i < n; i++) { h[q][i] = round_bf16(in[q][i]); in[q][i] = widen(h[q][i]); } }
    std::vector<float> dy(n); for (long i = 0; i < n; i++) dy[i] = g(rng);
    long ns = (long)B * H * chunks * 4096, nb = CH > 0 ? (long)B * H * ((T - 1) / CH) * 4096 : 0;
    bool ok = true;
    struct Row { const char* name; int rows; void (*f32)(int, int, const float*, const float*, const float*, const float*, const float*, const float*, float*, float*, float*);
                 void (*bf)(int, int, const bf16*, const bf16*, const bf16*, const bf16*, const bf16*, const bf16*, bf16*, float*, float*);
                 void (*rf32)(int, int, const float*, const float*, const float*, const float*, const float*, const float*, float*, float*, int, float*);
                 void (*rbf)(int, int, const bf16*, const bf16*, const bf16*, const bf16*, const bf16*, const float*, float*, float*, int, float*); };
#define ROWCFG(c, rows, suf) {#c "_bf16" #suf, rows, wkv7_forward_v5_##c, wkv7_forward_v5_##c##_bf16##suf, wkv7_backward_rows_v5_##c, wkv7_backward_rows_v5_##c##_bf16##suf}
    Row rowsCfg[] = {ROWCFG(64_2_4p, 64, ), ROWCFG(32_2_8p, 32, ), ROWCFG(16_1_8p, 16, ),
                     ROWCFG(64_2_4p, 64, a), ROWCFG(32_2_8p, 32, a), ROWCFG(16_1_8p, 16, a),
                     ROWCFG(64_2_4p, 64, sh), ROWCFG(32_2_8p, 32, sh), ROWCFG(16_1_8p, 16, sh)};
    std::vector<float> saved(ns + n), dsa(n), dsb(nb + 1);
    for (auto& c : rowsCfg) {
        int G = 64 / c.rows;
        std::vector<float> y32(n, NAN), s32(ns + n, NAN), yb(n, NAN), sb(ns + n, NAN);
        std::vector<bf16> y16(n, 0xffff);
        blockDim = {128, 1, 1};
        for (int by = 0; by < B; by++) for (int bx = 0; bx < H * G; bx++) { blockIdx = {(unsigned)bx, (unsigned)by, 0};
            emu::run_block(128, [&] { c.f32(T, H, in[0].data(), in[1].data(), in[2].data(), in[3].data(), in[4].data(), in[5].data(), y32.data(), s32.data(), s32.data() + ns); });
            emu::run_block(128, [&] { c.bf(T, H, h[0].data(), h[1].data(), h[2].data(), h[3].data(), h[4].data(), h[5].data(), y16.data(), sb.data(), sb.data() + ns); }); }
        for (long i = 0; i < n; i++) { yb[i] = widen(y16[i]); y32[i] = widen(round_bf16(y32[i])); }
        long dY = differing(yb, y32), dS = differing(sb, s32);
        // row pass
        std::vector<float> dv32(n, 0.5f), dsa32(n, NAN), dsb32(nb + 1, NAN), dvb(n, 0.5f), dsab(n, NAN), dsbb(nb + 1, NAN);
        dsb32[nb] = dsbb[nb] = 0;
        for (int by = 0; by < B; by++) for (int bx = 0; bx < H * G; bx++) { blockIdx = {(unsigned)bx, (unsigned)by, 0};
            emu::run_block(128, [&] { c.rf32(T, H, in[0].data(), in[1].data(), in[2].data(), in[4].data(), in[5].data(), dy.data(), dv32.data(), dsa32.data(), CH, dsb32.data()); });
            emu::run_block(128, [&] { c.rbf(T, H, h[0].data(), h[1].data(), h[2].data(), h[4].data(), h[5].data(), dy.data(), dvb.data(), dsab.data(), CH, dsbb.data()); }); }
        long dR = differing(dv32, dvb) + differing(dsa32, dsab) + differing(dsb32, dsbb);
        printf("rows %-14s B%d T%d H%d CH%d: y %ld, states+sa %ld, row pass %ld differing or non-finite\n", c.name, B, T, H, CH, dY, dS, dR);
        ok = ok && dY == 0 && dS == 0 && dR == 0;
        saved = s32; dsa = dsa32; dsb = dsb32;
    }
    struct Col { const char* name; int colsb, nt;
                 void (*f32)(int, int, const float*, const float*, const float*, const float*, const float*, const float*, const float*, const float*, const float*, const float*, float*, float*, float*, float*, float*, int, const float*, int);
                 void (*bf)(int, int, const bf16*, const bf16*, const bf16*, const bf16*, const bf16*, const bf16*, const float*, const float*, const float*, const float*, float*, float*, float*, float*, float*, int, const float*, int); };
#define COLCFG(c, colsb, nt, suf) {#c "_bf16" #suf, colsb, nt, wkv7_backward_cols_v5_##c, wkv7_backward_cols_v5_##c##_bf16##suf}
    Col cols[] = {COLCFG(32_1_4p, 32, 128, ), COLCFG(16_1_4p, 16, 64, ), COLCFG(32_1_4p, 32, 128, a),
                  COLCFG(16_1_4p, 16, 64, a), COLCFG(32_1_4p, 32, 128, sh), COLCFG(16_1_4p, 16, 64, sh)};
    int nz = CH > 0 ? (T + CH - 1) / CH : 1;
    for (auto& c : cols) for (int wab = 0; wab < 2; wab++) {
        std::vector<float> o32[5], ob[5];
        for (int q = 0; q < 5; q++) { o32[q].assign(n, wab && (q == 1 || q == 3 || q == 4) ? NAN : 0.25f); ob[q] = o32[q]; }
        int G = 64 / c.colsb;
        blockDim = {(unsigned)c.nt, 1, 1};
        for (int bz = 0; bz < nz; bz++) for (int by = 0; by < B; by++) for (int bx = 0; bx < H * G; bx++) {
            blockIdx = {(unsigned)bx, (unsigned)by, (unsigned)bz};
            emu::run_block(c.nt, [&] { c.f32(T, H, in[0].data(), in[1].data(), in[2].data(), in[3].data(), in[4].data(), in[5].data(), dy.data(), saved.data(), saved.data() + ns, dsa.data(),
                                             o32[0].data(), o32[1].data(), o32[2].data(), o32[3].data(), o32[4].data(), CH, dsb.data(), wab); });
            emu::run_block(c.nt, [&] { c.bf(T, H, h[0].data(), h[1].data(), h[2].data(), h[3].data(), h[4].data(), h[5].data(), dy.data(), saved.data(), saved.data() + ns, dsa.data(),
                                            ob[0].data(), ob[1].data(), ob[2].data(), ob[3].data(), ob[4].data(), CH, dsb.data(), wab); }); }
        long d = 0; for (int q = 0; q < 5; q++) d += differing(o32[q], ob[q]);
        printf("cols %-14s wab%d B%d T%d H%d CH%d: %ld differing or non-finite\n", c.name, wab, B, T, H, CH, d);
        ok = ok && d == 0;
    }
    printf(ok ? "OK\n" : "FAILED\n");
    return ok ? 0 : 1;
}
