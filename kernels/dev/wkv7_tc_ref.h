// The float64 serial reference of the WKV7 tensor-core harnesses (wkv7_tc_readout_test.cu, wkv7_tc_e2e_test.cu):
// inputs as the emulator's makeHeads (kernels/dev/wkv7_chunk_tc_emu.cpp): sets check / strong / long, inputs rounded
// to bf16, dy ~ N(0, 1) rounded to bf16 (the kernels read it so); the serial forward (S, sa, y) and backward (E, dsa,
// dv, dr, da, dk, db, dwRaw with the direct dlw_t = Σ_i E_t ω_t S_{t−1}), and the states every 16 steps as K1 / K2
// save them.
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

static const int N = 64, NN = 64 * 64;
static const double W_SCALE = -0.6065306597126334;

#include "bench.h"

static unsigned short bf16bits(float f) {
    unsigned u; memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}
static float bf16r(double x) { unsigned u = (unsigned)bf16bits((float)x) << 16; float f; memcpy(&f, &u, 4); return f; }
static float lwOf(float w) { return -0.6065306597126334f * (1.0f / (1.0f + expf(-w))); }  // as tc_log_decay

struct Head { int T; std::vector<double> r, wraw, lw, k, v, a, b, dy; };
struct Ref {
    std::vector<double> sa, dsa, dr, dk, da, db, dw, y, dv;  // [T][64]
    std::vector<double> fst, est;                      // [T/16][64][64] transposed ([j][i])
};

static Head makeHead(const std::string& set, int T, std::mt19937_64& rng) {
    std::normal_distribution<double> gs(0, 1); std::uniform_real_distribution<double> U(0.05, 0.95);
    Head h; h.T = T;
    for (auto* p : {&h.r, &h.wraw, &h.lw, &h.k, &h.v, &h.a, &h.b, &h.dy}) p->resize((size_t)T * N);
    for (int t = 0; t < T; t++) {
        double kap[N], s = 0; for (int j = 0; j < N; j++) { kap[j] = gs(rng); s += kap[j] * kap[j]; } s = std::sqrt(s);
        for (int j = 0; j < N; j++) {
            size_t i = (size_t)t * N + j; double al = U(rng);
            h.r[i] = bf16r(0.5 * gs(rng)); h.k[i] = bf16r(0.5 * gs(rng)); h.v[i] = bf16r(0.5 * gs(rng));
            double wr = set == "strong" ? 8 + gs(rng) : set == "long" ? -8 + gs(rng) : 2.0 * gs(rng);
            h.wraw[i] = bf16r(wr);
            h.lw[i] = lwOf((float)h.wraw[i]);
            h.a[i] = bf16r(-kap[j] / s); h.b[i] = bf16r(kap[j] / s * al);
            h.dy[i] = bf16r(gs(rng));
        }
    }
    return h;
}

// Serial float64 forward and backward (as the emulator's serial64). dwRaw = dlw · dlw/dwRaw with σ in float64.
static Ref serialRef(const Head& h) {
    const int T = h.T, nc = T / 16; Ref g;
    std::vector<double> S((size_t)(T + 1) * NN, 0.0);  // S[t+1] = state after step t, [i][j]
    for (auto* p : {&g.sa, &g.dsa, &g.dr, &g.dk, &g.da, &g.db, &g.dw, &g.y, &g.dv}) p->assign((size_t)T * N, 0);
    g.fst.assign((size_t)nc * NN, 0); g.est.assign((size_t)nc * NN, 0);
    for (int t = 0; t < T; t++) {
        const double* P = &S[(size_t)t * NN]; double* Q = &S[(size_t)(t + 1) * NN];
        for (int i = 0; i < N; i++) {
            double s = 0; for (int j = 0; j < N; j++) s += P[i * N + j] * h.a[t * N + j];
            g.sa[t * N + i] = s;
            double y = 0;
            for (int j = 0; j < N; j++) {
                Q[i * N + j] = P[i * N + j] * std::exp(h.lw[t * N + j]) + s * h.b[t * N + j] + h.v[t * N + i] * h.k[t * N + j];
                y += Q[i * N + j] * h.r[t * N + j];
            }
            g.y[t * N + i] = y;
        }
        if (t % 16 == 15) for (int i = 0; i < N; i++) for (int j = 0; j < N; j++) g.fst[(size_t)(t / 16) * NN + j * N + i] = Q[i * N + j];
    }
    std::vector<double> E(NN, 0.0);
    for (int t = T - 1; t >= 0; t--) {
        const double* Sc = &S[(size_t)(t + 1) * NN]; const double* Sp = &S[(size_t)t * NN];
        for (int i = 0; i < N; i++) {
            double ds = 0, dvi = 0;
            for (int j = 0; j < N; j++) {
                double G = E[i * N + j] + h.dy[t * N + i] * h.r[t * N + j]; E[i * N + j] = G;
                ds += G * h.b[t * N + j]; dvi += G * h.k[t * N + j];
                g.dr[t * N + j] += Sc[i * N + j] * h.dy[t * N + i];
                g.dw[t * N + j] += G * Sp[i * N + j];
                g.db[t * N + j] += G * g.sa[t * N + i]; g.dk[t * N + j] += G * h.v[t * N + i];
            }
            g.dsa[t * N + i] = ds; g.dv[t * N + i] = dvi;
            if (t % 16 == 0 && t > 0)  // E_t, t the first step of chunk t/16: estates[t/16 − 1]
                for (int j = 0; j < N; j++) g.est[(size_t)(t / 16 - 1) * NN + j * N + i] = E[i * N + j];
            for (int j = 0; j < N; j++) { g.da[t * N + j] += ds * Sp[i * N + j]; E[i * N + j] = E[i * N + j] * std::exp(h.lw[t * N + j]) + ds * h.a[t * N + j]; }
        }
    }
    for (size_t t = 0; t < (size_t)T * N; t++) { double sg = 1 / (1 + std::exp(-h.wraw[t])); g.dw[t] *= std::exp(h.lw[t]) * W_SCALE * sg * (1 - sg); }
    return g;
}

struct Err { double num = 0, den = 0, worst = 0; long nan = 0; };
static void accum(Err& e, const double* x, const double* ref, int T) {
    for (int t = 0; t < T; t++) {
        double n = 0, d = 0;
        for (int j = 0; j < N; j++) {
            double q = x[t * N + j] - ref[t * N + j];
            if (std::isnan(x[t * N + j])) { e.nan++; continue; }
            n += q * q; d += ref[t * N + j] * ref[t * N + j];
        }
        e.num += n; e.den += d;
        if (d > 1e-20 && std::sqrt(n / d) > e.worst) e.worst = std::sqrt(n / d);
    }
}

