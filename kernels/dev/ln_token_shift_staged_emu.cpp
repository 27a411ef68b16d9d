// The staged LayerNorm + token-shift kernels (token_shift.cu: ln_mixes_forward_rows and ln_mixes_backward with STAGES
// > 0) on the CPU (cuda_emu.h; the copies are plain and immediate there) against the unstaged ones, bit for bit: the
// forward's mixes, mean and rstd (statistics computed and saved; J 1 and 2, U 1 and 2, 2 and 3 stages) and the
// backward's dx, bf16 copy and column partials (1 … 4 stages; dx added and written), at shapes with slices starting
// inside samples, one warp a row, partial groups. cuda_emu.h has no dynamic shared memory: the source's extern array
// is made a static one first.
//   cd kernels && sed 's/^extern __shared__ __align__(16) unsigned char lts_stage\[\];/__shared__ __align__(16) unsigned char lts_stage[1 << 20];/' \
//     src/main/cuda/token_shift.cu > /tmp/ts_emu.cu && g++ -std=c++17 -O2 -w -Isrc/main/cuda -o /tmp/ltse dev/ln_token_shift_staged_emu.cpp && /tmp/ltse
#include "cuda_emu.h"
#undef __launch_bounds__
#define __launch_bounds__(...)
struct alignas(8) ushort4 { unsigned short x, y, z, w; };
inline void __syncwarp() {}
#include "/tmp/ts_emu.cu"
#include <random>
#include <vector>
// staged (S) vs unstaged kernels, bit for bit, on the CPU
template <int S>
void bwdS(const unsigned short* const (&d)[6], const float* x, const float* w, const float* b, const float* mu, const float* rs,
          const float* const (&m)[6], float* dx, unsigned short* dxB, float* partial, int K, int rows, int T, int C, int acc) {
    ln_backward_k<1, unsigned short, false, S>(K, d, x, w, b, mu, rs, m, dx, dxB, partial, rows, T, C, acc);
}
template <int J, int U, int S>
void fwdS(const float* x, const float* w, const float* b, float* mu, float* rs, int saved, const float* const (&m)[6],
          unsigned short* const (&o)[6], int K, int rows, int T, int C) {
    ln_forward_rows_k<J, U, unsigned short, S>(K, x, w, b, mu, rs, saved, m, o, rows, T, C, 1e-5f);
}
int fails = 0, comps = 0;
template <typename V> void cmp(const char* what, const V& a, const V& b, int B, int T, int C, int K, int sl) {
    comps++;
    if (memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) != 0) { fails++; printf("MISMATCH %s B%d T%d C%d K%d slices %d\n", what, B, T, C, K, sl); }
}
int main() {
    int shapes[][5] = {{2, 9, 96, 3, 2}, {3, 7, 128, 6, 4}, {1, 1, 128, 1, 1}, {2, 33, 1000, 6, 3}, {1, 40, 256, 2, 1}, {2, 5, 512, 6, 5}, {1, 12, 2048, 6, 2}, {3, 4, 64, 1, 7}, {2, 6, 32, 6, 3}, {1, 30, 1024, 6, 3}};
    for (auto& sh : shapes) {
        int B = sh[0], T = sh[1], C = sh[2], K = sh[3], slices = sh[4], rows = B * T;
        long n = (long)rows * C;
        std::mt19937_64 rng(5 + C); std::normal_distribution<double> g(0, 1); std::uniform_real_distribution<double> u(0, 1);
        std::vector<float> x(n), w(C), b(C), dx0(n);
        std::vector<std::vector<float>> mix(6, std::vector<float>(C));
        std::vector<std::vector<unsigned short>> dOutB(6, std::vector<unsigned short>(n));
        for (auto& v : x) v = g(rng) + 0.3; for (auto& v : w) v = 1 + 0.5 * g(rng); for (auto& v : b) v = 0.5 * g(rng); for (auto& v : dx0) v = g(rng);
        for (int k = 0; k < 6; k++) { for (auto& v : mix[k]) v = u(rng); for (auto& v : dOutB[k]) v = bf16_rn(g(rng)); }
        const float* m[6] = {}; const unsigned short* d[6] = {};
        for (int k = 0; k < K; k++) { m[k] = mix[k].data(); d[k] = dOutB[k].data(); }
        gridDim = {(unsigned)slices, 1, 1};
        auto grid = [&](int threads, std::function<void()> f) { blockDim = {(unsigned)threads, 1, 1}; for (int s = 0; s < slices; s++) { blockIdx = {(unsigned)s, 0, 0}; emu::run_block(threads, f); } };
        int groups = (C / 4 + 31) / 32;
        // forward: J2 U1 unstaged vs staged S = 2, 3 (J2, U1 and U2), J1 S3; statistics computed and saved
        for (int saved = 0; saved < 2; saved++) {
            std::vector<float> mu0(rows, NAN), rs0(rows, NAN);
            std::vector<std::vector<unsigned short>> o0(6, std::vector<unsigned short>(n, 0x7fc0));
            unsigned short* op0[6] = {}; for (int k = 0; k < K; k++) op0[k] = o0[k].data();
            static std::vector<float> muS, rsS;
            if (saved) { mu0 = muS; rs0 = rsS; }
            grid(32 * ((groups + 1) / 2), [&] { fwdS<2, 1, 0>(x.data(), w.data(), b.data(), mu0.data(), rs0.data(), saved, m, op0, K, rows, T, C); });
            if (!saved) { muS = mu0; rsS = rs0; }
            auto variant = [&](const char* name, int threads, std::function<void(float*, float*, unsigned short* const (&)[6])> f) {
                std::vector<float> mu1(rows, NAN), rs1(rows, NAN);
                if (saved) { mu1 = muS; rs1 = rsS; }
                std::vector<std::vector<unsigned short>> o1(6, std::vector<unsigned short>(n, 0x7fc0));
                unsigned short* op1[6] = {}; for (int k = 0; k < K; k++) op1[k] = o1[k].data();
                grid(threads, [&] { f(mu1.data(), rs1.data(), op1); });
                for (int k = 0; k < K; k++) cmp(name, o0[k], o1[k], B, T, C, K, slices);
                cmp(name, mu0, mu1, B, T, C, K, slices); cmp(name, rs0, rs1, B, T, C, K, slices);
            };
            variant("fwd J2U1S2", 32 * ((groups + 1) / 2), [&](float* a, float* r, unsigned short* const (&o)[6]) { fwdS<2, 1, 2>(x.data(), w.data(), b.data(), a, r, saved, m, o, K, rows, T, C); });
            variant("fwd J2U1S3", 32 * ((groups + 1) / 2), [&](float* a, float* r, unsigned short* const (&o)[6]) { fwdS<2, 1, 3>(x.data(), w.data(), b.data(), a, r, saved, m, o, K, rows, T, C); });
            variant("fwd J2U2S3", 32 * ((groups + 1) / 2), [&](float* a, float* r, unsigned short* const (&o)[6]) { fwdS<2, 2, 3>(x.data(), w.data(), b.data(), a, r, saved, m, o, K, rows, T, C); });
            variant("fwd J1U1S3", 32 * groups, [&](float* a, float* r, unsigned short* const (&o)[6]) { fwdS<1, 1, 3>(x.data(), w.data(), b.data(), a, r, saved, m, o, K, rows, T, C); });
        }
        // backward: prefetch kernel vs staged S = 2, 3, 4
        std::vector<float> mu(rows), rs(rows);
        for (int r = 0; r < rows; r++) { mu[r] = 0.3f + 0.01f * (r % 7); rs[r] = 0.9f + 0.02f * (r % 5); }
        for (int acc = 0; acc < 2; acc++) {
            auto run = [&](int S, std::vector<float>& dx, std::vector<unsigned short>& dxB, std::vector<float>& part) {
                dx = dx0; dxB.assign(n, 0x7fc0); part.assign((long)(K + 2) * slices * C, NAN);
                grid(32 * groups, [&] {
                    if (S == 0) ln_backward_k<1, unsigned short, true>(K, d, x.data(), w.data(), b.data(), mu.data(), rs.data(), m, dx.data(), dxB.data(), part.data(), rows, T, C, acc);
                    else if (S == 2) bwdS<2>(d, x.data(), w.data(), b.data(), mu.data(), rs.data(), m, dx.data(), dxB.data(), part.data(), K, rows, T, C, acc);
                    else if (S == 3) bwdS<3>(d, x.data(), w.data(), b.data(), mu.data(), rs.data(), m, dx.data(), dxB.data(), part.data(), K, rows, T, C, acc);
                    else if (S == 4) bwdS<4>(d, x.data(), w.data(), b.data(), mu.data(), rs.data(), m, dx.data(), dxB.data(), part.data(), K, rows, T, C, acc);
                    else bwdS<1>(d, x.data(), w.data(), b.data(), mu.data(), rs.data(), m, dx.data(), dxB.data(), part.data(), K, rows, T, C, acc);
                });
            };
            std::vector<float> dxa, pa, dxb, pb; std::vector<unsigned short> ba, bb;
            run(0, dxa, ba, pa);
            for (int S : {1, 2, 3, 4}) {
                run(S, dxb, bb, pb);
                char nm[32]; snprintf(nm, 32, "bwd S%d acc%d", S, acc);
                cmp(nm, dxa, dxb, B, T, C, K, slices); cmp(nm, ba, bb, B, T, C, K, slices); cmp(nm, pa, pb, B, T, C, K, slices);
            }
        }
    }
    printf("emu: %d comparisons, %d mismatches\n", comps, fails);
    return fails != 0;
}
