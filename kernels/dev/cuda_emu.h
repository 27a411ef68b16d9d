// Minimal cooperative CUDA emulation: one block at a time, threads as ucontext coroutines, every barrier or
// shuffle a sync point (all threads must execute the same sequence of them).
#pragma once
#include <ucontext.h>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>
#include <algorithm>
using std::min; using std::max;
#define __device__
#define __global__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
struct Dim3 { unsigned x, y, z; };
inline Dim3 threadIdx, blockIdx, blockDim, gridDim;
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) float2 { float x, y; };
struct alignas(8) uint2 { unsigned x, y; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
inline float2 make_float2(float a, float b) { return {a, b}; }
inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
inline int atomicCAS(int* p, int cmp, int v) { int o = *p; if (o == cmp) *p = v; return o; }

namespace emu {
inline int nt, cur;
inline ucontext_t mainctx;
inline std::vector<ucontext_t> ctx;
inline std::vector<std::vector<char>> stacks;
inline std::vector<char> done;
inline std::function<void()> body;
inline float slots[1024];
inline long syncs;
inline void yield() { syncs++; swapcontext(&ctx[cur], &mainctx); }
inline void tramp() { body(); done[cur] = 1; swapcontext(&ctx[cur], &mainctx); }
inline void run_block(int threads, std::function<void()> f) {
    nt = threads; body = f; ctx.assign(nt, ucontext_t{}); done.assign(nt, 0);
    if ((int)stacks.size() < nt) stacks.resize(nt);
    for (int i = 0; i < nt; i++) {
        stacks[i].resize(1 << 18);
        getcontext(&ctx[i]);
        ctx[i].uc_stack.ss_sp = stacks[i].data(); ctx[i].uc_stack.ss_size = stacks[i].size(); ctx[i].uc_link = nullptr;
        makecontext(&ctx[i], (void (*)())tramp, 0);
    }
    while (true) {
        int alive = 0, fin = 0;
        for (int i = 0; i < nt; i++) {
            if (done[i]) { fin++; continue; }
            alive++; cur = i; threadIdx = {(unsigned)i, 0, 0};
            swapcontext(&mainctx, &ctx[i]);
        }
        if (alive == 0) break;
        int d = 0; for (int i = 0; i < nt; i++) d += done[i];
        if (d != 0 && d != nt) { fprintf(stderr, "emu: divergent sync points (%d of %d threads done)\n", d, nt); exit(3); }
    }
}
}  // namespace emu
inline void __syncthreads() { emu::yield(); }
inline float __shfl_xor_sync(unsigned, float v, int o) {
    int t = threadIdx.x; emu::slots[t] = v; emu::yield();
    int src = (t & ~31) | ((t & 31) ^ o); float r = emu::slots[src]; emu::yield(); return r;
}
inline float __shfl_up_sync(unsigned, float v, int d) {
    int t = threadIdx.x; emu::slots[t] = v; emu::yield();
    int l = t & 31; float r = l >= d ? emu::slots[t - d] : v; emu::yield(); return r;
}
inline float __shfl_sync(unsigned, float v, int src) {
    int t = threadIdx.x; emu::slots[t] = v; emu::yield();
    float r = emu::slots[(t & ~31) | (src & 31)]; emu::yield(); return r;
}
