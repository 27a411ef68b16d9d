// The fused LayerNorm + token-shift kernels (token_shift.cu, ln_token_shift_*) on the CPU (cuda_emu.h) against a
// float64 reference: the mixes (fp32 and bf16), the statistics, the same mixes again from the saved statistics (must
// be the same bits), and the backward's dx (added to), bf16 copy, dMix, dWeight and dBias (partials summed in slice
// order), at one size per run.
//   cd kernels/dev && g++ -std=c++17 -O2 -w -o /tmp/lts ln_token_shift_emu.cpp && /tmp/lts B T C K J WARPS SLICES
#include "cuda_emu.h"
#undef __launch_bounds__
#define __launch_bounds__(...)
struct alignas(8) ushort4 { unsigned short x, y, z, w; };
#include "../src/main/cuda/token_shift.cu"
#include <random>
#include <vector>

static double rel(const std::vector<double>& a, const std::vector<double>& b) {
    double d = 0, n = 0;
    for (size_t i = 0; i < a.size(); i++) { d += (a[i] - b[i]) * (a[i] - b[i]); n += b[i] * b[i]; }
    return std::sqrt(d / (n > 0 ? n : 1));
}

static long nonfinite(const std::vector<double>& a) {
    long c = 0;
    for (double v : a) c += !std::isfinite(v);
    return c;
}

int main(int argc, char** argv) {
    int B = atoi(argv[1]), T = atoi(argv[2]), C = atoi(argv[3]), K = atoi(argv[4]), J = atoi(argv[5]);
    int warps = atoi(argv[6]), slices = atoi(argv[7]);
    int rows = B * T;
    long n = (long)rows * C;
    std::mt19937_64 rng(11 + C + T);
    std::normal_distribution<double> g(0, 1);
    std::uniform_real_distribution<double> u(0, 1);
    std::vector<float> x(n), w(C), b(C), dx0(n);
    std::vector<std::vector<float>> mix(K, std::vector<float>(C)), dOut(K, std::vector<float>(n));
    std::vector<std::vector<unsigned short>> dOutB(K, std::vector<unsigned short>(n));
    for (auto& v : x) v = g(rng) + 0.3;
    for (auto& v : w) v = 1 + 0.5 * g(rng);
    for (auto& v : b) v = 0.5 * g(rng);
    for (auto& v : dx0) v = g(rng);
    for (int k = 0; k < K; k++) {
        for (auto& v : mix[k]) v = u(rng);
        for (long i = 0; i < n; i++) { dOutB[k][i] = bf16_rn(g(rng)); dOut[k][i] = bf16_f32(dOutB[k][i]); }
    }
    // reference, float64
    std::vector<double> ln(n), xh(n), mu(rows), rs(rows);
    for (int r = 0; r < rows; r++) {
        double s = 0; for (int c = 0; c < C; c++) s += x[(long)r * C + c];
        double m = s / C, q = 0; for (int c = 0; c < C; c++) { double d = x[(long)r * C + c] - m; q += d * d; }
        mu[r] = m; rs[r] = 1 / std::sqrt(q / C + 1e-5);
        for (int c = 0; c < C; c++) { long i = (long)r * C + c; xh[i] = (x[i] - m) * rs[r]; ln[i] = xh[i] * w[c] + b[c]; }
    }
    std::vector<std::vector<double>> outRef(K, std::vector<double>(n));
    std::vector<double> dln(n), dxRef(n), dwRef(C), dbRef(C);
    std::vector<std::vector<double>> dmRef(K, std::vector<double>(C));
    for (int r = 0; r < rows; r++) for (int c = 0; c < C; c++) {
        long i = (long)r * C + c; bool first = r % T == 0, last = r % T == T - 1;
        double prev = first ? 0 : ln[i - C], s = 0;
        for (int k = 0; k < K; k++) {
            outRef[k][i] = ln[i] + (prev - ln[i]) * mix[k][c];
            s += dOut[k][i] * (1 - mix[k][c]) + (last ? 0 : dOut[k][i + C] * mix[k][c]);
            dmRef[k][c] += dOut[k][i] * (prev - ln[i]);
        }
        dln[i] = s; dwRef[c] += s * xh[i]; dbRef[c] += s;
    }
    for (int r = 0; r < rows; r++) {
        double sg = 0, sgx = 0;
        for (int c = 0; c < C; c++) { long i = (long)r * C + c; sg += dln[i] * w[c]; sgx += dln[i] * w[c] * xh[i]; }
        for (int c = 0; c < C; c++) { long i = (long)r * C + c; dxRef[i] = dx0[i] + rs[r] * (dln[i] * w[c] - sg / C - xh[i] * sgx / C); }
    }
    // the kernels
    blockDim = {(unsigned)(32 * warps), 1, 1};
    gridDim = {(unsigned)slices, 1, 1};
    auto grid = [&](std::function<void()> f) {
        for (int s = 0; s < slices; s++) { blockIdx = {(unsigned)s, 0, 0}; emu::run_block(32 * warps, f); }
    };
    std::vector<float> mean(rows, NAN), rstd(rows, NAN);
    std::vector<std::vector<float>> out(K, std::vector<float>(n, NAN)), out2(K, std::vector<float>(n, NAN));
    std::vector<std::vector<unsigned short>> outB(K, std::vector<unsigned short>(n, 0x7fc0));
    float* o[6] = {}; float* o2[6] = {}; unsigned short* ob[6] = {}; const float* m[6] = {};
    const float* d[6] = {}; const unsigned short* db16[6] = {};
    for (int k = 0; k < K; k++) { o[k] = out[k].data(); o2[k] = out2[k].data(); ob[k] = outB[k].data(); m[k] = mix[k].data(); d[k] = dOut[k].data(); db16[k] = dOutB[k].data(); }
    auto fwd = J == 1 ? ln_token_shift_forward_j1 : ln_token_shift_forward_j2;
    auto fwdB = J == 1 ? ln_token_shift_forward_bf16_j1 : ln_token_shift_forward_bf16_j2;
    auto bwd = J == 1 ? ln_token_shift_backward_j1 : ln_token_shift_backward_j2;
    auto bwdB = J == 1 ? ln_token_shift_backward_bf16_j1 : ln_token_shift_backward_bf16_j2;
    grid([&] { fwd(x.data(), w.data(), b.data(), mean.data(), rstd.data(), 0, m[0], m[1], m[2], m[3], m[4], m[5], o[0], o[1], o[2], o[3], o[4], o[5], K, rows, T, C, 1e-5f); });
    std::vector<float> mean2 = mean, rstd2 = rstd;
    grid([&] { fwd(x.data(), w.data(), b.data(), mean2.data(), rstd2.data(), 1, m[0], m[1], m[2], m[3], m[4], m[5], o2[0], o2[1], o2[2], o2[3], o2[4], o2[5], K, rows, T, C, 1e-5f); });
    grid([&] { fwdB(x.data(), w.data(), b.data(), mean2.data(), rstd2.data(), 1, m[0], m[1], m[2], m[3], m[4], m[5], ob[0], ob[1], ob[2], ob[3], ob[4], ob[5], K, rows, T, C, 1e-5f); });
    double worst = 0; long bad = 0, same = 0;
    for (int k = 0; k < K; k++) {
        std::vector<double> got(out[k].begin(), out[k].end()), gotB(n);
        for (long i = 0; i < n; i++) gotB[i] = bf16_f32(outB[k][i]);
        worst = std::max(worst, rel(got, outRef[k]));
        bad += nonfinite(got) + nonfinite(gotB);
        same += memcmp(out[k].data(), out2[k].data(), 4 * n) == 0;
        printf("out%d %.2e  bf16 %.2e\n", k, rel(got, outRef[k]), rel(gotB, outRef[k]));
    }
    std::vector<double> gm(mean.begin(), mean.end()), gr(rstd.begin(), rstd.end());
    printf("mean %.2e rstd %.2e; mixes from the saved statistics bit-identical: %ld of %d; nonfinite %ld\n",
           rel(gm, mu), rel(gr, rs), same, K, bad + nonfinite(gm) + nonfinite(gr));
    for (int bf = 0; bf < 2; bf++) {
        std::vector<float> dx = dx0, partial((long)(K + 2) * slices * C, NAN);
        std::vector<unsigned short> dxB(n, 0x7fc0);
        if (bf) grid([&] { bwdB(db16[0], db16[1], db16[2], db16[3], db16[4], db16[5], x.data(), w.data(), b.data(), mean.data(), rstd.data(), m[0], m[1], m[2], m[3], m[4], m[5], dx.data(), dxB.data(), partial.data(), K, rows, T, C, 1); });
        else grid([&] { bwd(d[0], d[1], d[2], d[3], d[4], d[5], x.data(), w.data(), b.data(), mean.data(), rstd.data(), m[0], m[1], m[2], m[3], m[4], m[5], dx.data(), dxB.data(), partial.data(), K, rows, T, C, 1); });
        std::vector<double> gdx(dx.begin(), dx.end()), gdxB(n);
        for (long i = 0; i < n; i++) gdxB[i] = bf16_f32(dxB[i]);
        printf("%s dOuts: dx %.2e (bf16 copy %.2e)", bf ? "bf16" : "fp32", rel(gdx, dxRef), rel(gdxB, dxRef));
        long nf = nonfinite(gdx) + nonfinite(gdxB);
        for (int k = 0; k < K + 2; k++) {
            std::vector<double> sum(C);
            for (int c = 0; c < C; c++) { float s = 0; for (int p = 0; p < slices; p++) s += partial[((long)k * slices + p) * C + c]; sum[c] = s; }
            nf += nonfinite(sum);
            printf(" %s %.2e", k < K ? "dMix" : k == K ? "dW" : "dB", rel(sum, k < K ? dmRef[k] : k == K ? dwRef : dbRef));
        }
        printf("; nonfinite %ld\n", nf);
    }
}
