// Shared helpers for every Gosling kernel. Self-contained (no system headers), so NVRTC compiles it without a CUDA
// include path. Every kernel is extern "C" so the Java loader finds it by its plain name.
#pragma once

typedef long long i64;

#define GOSLING_HEAD 64

// Elements handled by one grid-stride loop: i from the global thread index, stepping by the whole grid.
#define GRID_STRIDE(i, n) for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)gridDim.x * blockDim.x)

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ double warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float sigmoidf_(float z) { return 1.0f / (1.0f + expf(-z)); }

#define NEG_INF __int_as_float((int)0xff800000)

// A quiet NaN, written where an input was invalid so that nothing downstream looks finished.
__device__ __forceinline__ float nan_() { return __int_as_float((int)0x7fc00000); }

// Records the first invalid id: err[0] = 1 + position (0 means no error), err[1] = the id.
__device__ __forceinline__ void report_bad_id(int* err, i64 position, int id) {
    if (atomicCAS(err, 0, (int)(position + 1 > 0x7fffffff ? 0x7fffffff : position + 1)) == 0) err[1] = id;
}

// Sum of one float per thread over a block of up to 1024 threads (blockDim.x a multiple of 32). Every thread gets
// the total. `scratch` holds 32 floats of shared memory; the call ends with the scratch free for reuse.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float t = lane < warps ? scratch[lane] : 0.0f;
    t = warp_sum(t);
    return t;
}

// The column sums that give parameter gradients (dWeight = Σ_rows ...), in two deterministic passes: an op's
// backward kernel writes partial[slice·C + c] for its slice of rows, then column_finish adds the slices in order.

// fp32 → bf16 bits, round to nearest even, as __float2bfloat16_rn (written out so that NVRTC needs no cuda_bf16.h);
// NaN stays a quiet NaN, ±Inf and overflow go to Inf as the hardware conversion. GEMM inputs are stored this way.
__device__ __forceinline__ unsigned short bf16_rn(float f) {
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}

// bf16 bits → fp32 (exact).
__device__ __forceinline__ float bf16_f32(unsigned short h) { return __uint_as_float((unsigned int)h << 16); }

// Element i of an fp32 or a bf16 tensor, as fp32: kernels templated over the storage of saved activations (the
// projections a model keeps in bf16 under bf16 GEMMs: k, v, α, the v gate, g).
__device__ __forceinline__ float ld(const float* p, i64 i) { return p[i]; }
__device__ __forceinline__ float ld(const unsigned short* p, i64 i) { return bf16_f32(p[i]); }
