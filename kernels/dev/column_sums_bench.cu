// The bf16 column sums (reduce.cu's column_sums_bf16x8, the LoRA bias gradients from a bf16 dOut) against the path
// they replace (lora.cu's activation_backward_columns2_bf16yd with act 0 and dz null, then column_finish) on the same
// random bf16 matrices: every result against a float64 sum (relative error of the whole vector), the new kernel
// launched twice onto the same start bit for bit (deterministic, tickets set back), then timed (cudaEvent, median of
// 25; three matrices in turn so that L2 holds none of them) at the model's shapes, over (INFLIGHT loads, slices)
// variants; "launcher" marks CudaBackend.columnSumsSlices' choice. No GPU in the build container: build here, run on
// the device:
//   nvcc -O3 -std=c++17 -arch=sm_90 -I kernels/src/main/cuda -o /tmp/csb kernels/dev/column_sums_bench.cu && /tmp/csb
#include "lora.cu"
#include "reduce.cu"
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include "bench.h"

template <int INFLIGHT>
__global__ void __launch_bounds__(256, 4) sums_variant(const unsigned short* __restrict__ m, float* partial,
                                                       unsigned* tickets, float* __restrict__ out, int rows, int C,
                                                       int add) {
    column_sums_bf16x8_<INFLIGHT>(m, partial, tickets, out, rows, C, add);
}

typedef void (*SumsKernel)(const unsigned short*, float*, unsigned*, float*, int, int, int);

static int ceil_div(int a, int b) { return (a + b - 1) / b; }

// CudaBackend.columnSumsSlices
static int launcher_slices(int rows, int C) {
    int groups = ceil_div(C, 256);
    return std::max(1, std::min(ceil_div(256, groups), ceil_div(rows, 64)));
}

// CudaBackend.slices (the old path)
static int old_slices(int rows) { return std::max(1, std::min(256, ceil_div(rows, 64))); }

static unsigned short to_bf16(float f) {
    unsigned u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}

static float from_bf16(unsigned short h) {
    unsigned u = (unsigned)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

struct Buffers {
    int rows, C;
    std::vector<unsigned short*> m;  // device, 3 copies (the same values)
    std::vector<double> ref;          // Σ rows, float64
    std::vector<float> start;         // out before the sums
    float *partial, *out;
    unsigned* tickets;
};

static double rel_error(const std::vector<float>& got, const std::vector<float>& start, const std::vector<double>& ref,
                        int times) {
    double d = 0, r = 0;
    for (size_t i = 0; i < ref.size(); i++) {
        double want = start[i] + times * ref[i];
        double e = got[i] - want;
        d += e * e;
        r += (want - start[i]) * (want - start[i]);
    }
    return std::sqrt(d / r);
}

static Buffers make(int rows, int C, unsigned seed) {
    Buffers b;
    b.rows = rows;
    b.C = C;
    size_t n = (size_t)rows * C;
    std::vector<unsigned short> h(n);
    b.ref.assign(C, 0.0);
    unsigned s = seed;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        float v = ((s >> 8) * (1.0f / 16777216.0f) - 0.5f) * 4.0f + 0.25f;  // mean 0.25: sums far from 0
        h[i] = to_bf16(v);
        b.ref[i % C] += from_bf16(h[i]);
    }
    for (int k = 0; k < 3; k++) {
        unsigned short* d;
        CK(cudaMalloc(&d, n * 2));
        CK(cudaMemcpy(d, h.data(), n * 2, cudaMemcpyHostToDevice));
        b.m.push_back(d);
    }
    b.start.resize(C);
    for (int c = 0; c < C; c++) b.start[c] = 0.5f * std::sin(0.1f * c);
    CK(cudaMalloc(&b.partial, (size_t)512 * C * 4));
    CK(cudaMalloc(&b.out, (size_t)C * 4));
    CK(cudaMalloc(&b.tickets, 4096 * 4));
    CK(cudaMemset(b.tickets, 0, 4096 * 4));
    return b;
}

static void release(Buffers& b) {
    for (auto p : b.m) CK(cudaFree(p));
    CK(cudaFree(b.partial));
    CK(cudaFree(b.out));
    CK(cudaFree(b.tickets));
}

static void launch_new(SumsKernel k, Buffers& b, int which, int slices) {
    k<<<dim3(ceil_div(b.C, 256), slices), dim3(32, 8)>>>(b.m[which], b.partial, b.tickets, b.out, b.rows, b.C, 1);
}

static void launch_old(Buffers& b, int which) {
    int slices = old_slices(b.rows);
    activation_backward_columns2_bf16yd<<<dim3(ceil_div(b.C, 64), slices), dim3(32, 8)>>>(
        b.m[which], nullptr, 0, nullptr, b.partial, b.rows, b.C);
    column_finish<<<ceil_div(b.C, 32), dim3(32, FINISH_ROWS)>>>(b.partial, b.out, slices, b.C, 1);
}

static std::vector<float> run_twice(Buffers& b, const std::function<void(int)>& launch, std::vector<float>* once) {
    CK(cudaMemcpy(b.out, b.start.data(), b.C * 4, cudaMemcpyHostToDevice));
    launch(0);
    CK(cudaDeviceSynchronize());
    once->resize(b.C);
    CK(cudaMemcpy(once->data(), b.out, b.C * 4, cudaMemcpyDeviceToHost));
    launch(1);
    CK(cudaDeviceSynchronize());
    std::vector<float> twice(b.C);
    CK(cudaMemcpy(twice.data(), b.out, b.C * 4, cudaMemcpyDeviceToHost));
    return twice;
}

static double time_us(Buffers& b, const std::function<void(int)>& launch) {
    return 1000.0 * median_ms([&](int i) { launch(i % 3); }, 6, 25);
}

int main() {
    bool ok = true;
    // accuracy and determinism: the model's shape, odd rows, a partial column group, fewer rows than thread rows
    int shapes[][2] = {{16384, 2048}, {4097, 2048}, {1000, 776}, {7, 512}, {333, 8}, {8192, 768}, {65, 264}};
    printf("accuracy (float64 reference; launched twice onto the same start):\n");
    for (auto& sh : shapes) {
        Buffers b = make(sh[0], sh[1], 12345u + sh[0] + sh[1]);
        int slices = launcher_slices(b.rows, b.C);
        std::vector<float> once, onceAgain, onceOld;
        std::vector<float> twice = run_twice(b, [&](int w) { launch_new(column_sums_bf16x8, b, w, slices); }, &once);
        std::vector<float> twiceAgain = run_twice(b, [&](int w) { launch_new(column_sums_bf16x8, b, w, slices); },
                                                  &onceAgain);
        std::vector<float> twiceOld = run_twice(b, [&](int w) { launch_old(b, w); }, &onceOld);
        double e1 = rel_error(once, b.start, b.ref, 1), e2 = rel_error(twice, b.start, b.ref, 2);
        double eo = rel_error(onceOld, b.start, b.ref, 1);
        bool same = memcmp(twice.data(), twiceAgain.data(), b.C * 4) == 0 && memcmp(once.data(), onceAgain.data(), b.C * 4) == 0;
        bool pass = e1 < 1e-5 && e2 < 1e-5 && same;
        ok &= pass;
        printf("  rows %5d C %4d slices %3d: once %.2e, twice %.2e, repeat %s (old path %.2e)  %s\n", b.rows, b.C,
               slices, e1, e2, same ? "bit-identical" : "DIFFERS", eo, pass ? "ok" : "FAIL");
        release(b);
    }
    printf("\ntimings (us, median of 25; TB/s of the bf16 matrix):\n");
    int timed[][2] = {{16384, 2048}, {32768, 1024}, {8192, 768}, {32768, 768}};
    SumsKernel variants[] = {sums_variant<4>, sums_variant<8>, sums_variant<16>};
    int inflight[] = {4, 8, 16};
    for (auto& sh : timed) {
        Buffers b = make(sh[0], sh[1], 777u);
        double bytes = 2.0 * b.rows * b.C;
        double old = time_us(b, [&](int w) { launch_old(b, w); });
        printf("  rows %5d C %4d: old path (columns2_bf16yd + column_finish) %7.1f us %5.2f TB/s\n", b.rows, b.C, old,
               bytes / old / 1e6);
        int ls = launcher_slices(b.rows, b.C);
        for (int v = 0; v < 3; v++)
            for (int slices : {16, 32, 64, 128, 256, 512}) {
                if (slices > ceil_div(b.rows, 64)) continue;
                double us = time_us(b, [&](int w) { launch_new(variants[v], b, w, slices); });
                printf("    inflight %2d slices %3d (%4d blocks): %7.1f us %5.2f TB/s%s\n", inflight[v], slices,
                       slices * ceil_div(b.C, 256), us, bytes / us / 1e6,
                       inflight[v] == 8 && slices == ls ? "  <- launcher" : "");
            }
        release(b);
    }
    printf(ok ? "COLUMN SUMS PASS\n" : "COLUMN SUMS FAIL\n");
    return ok ? 0 : 1;
}
