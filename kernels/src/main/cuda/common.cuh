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

// bf16(lo) in the low half, bf16(hi) in the high half, each rounded to nearest even (NaN payloads aside: bf16_rn).
__device__ __forceinline__ unsigned bf16x2_rn(float lo, float hi) {
#if __CUDA_ARCH__ >= 800
    unsigned d;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(d) : "f"(hi), "f"(lo));
    return d;
#else
    return (unsigned)bf16_rn(lo) | ((unsigned)bf16_rn(hi) << 16);
#endif
}

// bf16 bits → fp32 (exact).
__device__ __forceinline__ float bf16_f32(unsigned short h) { return __uint_as_float((unsigned int)h << 16); }

// Four bf16 (element 0 in the low half of u.x) → fp32 (exact): one 8-byte load's worth.
__device__ __forceinline__ float4 bf16x4_f32(uint2 u) {
    return make_float4(__uint_as_float(u.x << 16), __uint_as_float(u.x & 0xffff0000u), __uint_as_float(u.y << 16),
                       __uint_as_float(u.y & 0xffff0000u));
}

// Element i of an fp32 or a bf16 tensor, as fp32: kernels templated over the storage of saved activations (the
// projections a model keeps in bf16 under bf16 GEMMs: k, v, α, the v gate, g).
__device__ __forceinline__ float ld(const float* p, i64 i) { return p[i]; }
__device__ __forceinline__ float ld(const unsigned short* p, i64 i) { return bf16_f32(p[i]); }

// Element i of an fp32 or a bf16 tensor written (bf16: rounded once), for kernels templated over their outputs' storage.
__device__ __forceinline__ void put(float* p, i64 i, float x) { p[i] = x; }
__device__ __forceinline__ void put(unsigned short* p, i64 i, float x) { p[i] = bf16_rn(x); }

// ------------------------------------------------------------------------------------------------ 8-wide access
// Elements i … i+7 of an fp32 or a bf16 tensor (i a multiple of 8), through 16-byte loads and stores where `vec`
// (every pointer of the kernel 16-byte aligned: aligned16) and one element at a time otherwise; the values are the
// same either way (NaN payloads aside). Elementwise kernels that moved 2 or 4 bytes per access sat well below HBM bandwidth.
__device__ __forceinline__ bool aligned16(const void* p) { return ((unsigned long long)p & 15) == 0; }

__device__ __forceinline__ void ld8(const float* p, i64 i, float* x, bool vec) {
    if (vec) {
        float4 a = *reinterpret_cast<const float4*>(p + i), b = *reinterpret_cast<const float4*>(p + i + 4);
        x[0] = a.x, x[1] = a.y, x[2] = a.z, x[3] = a.w, x[4] = b.x, x[5] = b.y, x[6] = b.z, x[7] = b.w;
    } else {
#pragma unroll
        for (int j = 0; j < 8; j++) x[j] = p[i + j];
    }
}

__device__ __forceinline__ void ld8(const unsigned short* p, i64 i, float* x, bool vec) {
    if (vec) {
        uint4 u = *reinterpret_cast<const uint4*>(p + i);
        float4 a = bf16x4_f32(make_uint2(u.x, u.y)), b = bf16x4_f32(make_uint2(u.z, u.w));
        x[0] = a.x, x[1] = a.y, x[2] = a.z, x[3] = a.w, x[4] = b.x, x[5] = b.y, x[6] = b.z, x[7] = b.w;
    } else {
#pragma unroll
        for (int j = 0; j < 8; j++) x[j] = bf16_f32(p[i + j]);
    }
}

__device__ __forceinline__ void put8(float* p, i64 i, const float* x, bool vec) {
    if (vec) {
        *reinterpret_cast<float4*>(p + i) = make_float4(x[0], x[1], x[2], x[3]);
        *reinterpret_cast<float4*>(p + i + 4) = make_float4(x[4], x[5], x[6], x[7]);
    } else {
#pragma unroll
        for (int j = 0; j < 8; j++) p[i + j] = x[j];
    }
}

// bf16: each rounded to nearest even, as put (a NaN's payload aside: bf16x2_rn).
__device__ __forceinline__ void put8(unsigned short* p, i64 i, const float* x, bool vec) {
    if (vec) {
        *reinterpret_cast<uint4*>(p + i) = make_uint4(bf16x2_rn(x[0], x[1]), bf16x2_rn(x[2], x[3]),
                                                      bf16x2_rn(x[4], x[5]), bf16x2_rn(x[6], x[7]));
    } else {
#pragma unroll
        for (int j = 0; j < 8; j++) p[i + j] = bf16_rn(x[j]);
    }
}

// Sum over the 8 lanes of an aligned group (lanes 8g … 8g+7 of a warp; every lane of the group calls it, the other
// groups need not): a fixed tree, so the result is reproducible.
__device__ __forceinline__ float group8_sum(float v) {
    unsigned mask = 0xffu << (threadIdx.x & 24);
    for (int o = 4; o > 0; o >>= 1) v += __shfl_xor_sync(mask, v, o);
    return v;
}

// ------------------------------------------------------------------------------------------------ async copies
// Global → shared, asynchronous on sm_80+ (cp.async; .cg for 16 bytes, .ca for 8, which .cg does not take), a plain
// copy before; made visible to the copying thread by copy_wait() and to the block by a barrier after it.

__device__ __forceinline__ unsigned shared_address(const void* p) {
    unsigned s;
    asm volatile("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(s) : "l"(p));
    return s;
}

// 16 bytes to the shared address dst (as shared_address gives it: kernels that keep shared offsets as integers).
__device__ __forceinline__ void copy16_to(unsigned dst, const void* src) {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src) : "memory");
#else
    asm volatile("{ .reg .u32 x, y, z, w; ld.global.v4.u32 {x, y, z, w}, [%1]; st.shared.v4.u32 [%0], {x, y, z, w}; }\n"
                 ::"r"(dst), "l"(src) : "memory");
#endif
}

__device__ __forceinline__ void copy16(void* dst, const void* src) {
#if __CUDA_ARCH__ >= 800
    copy16_to(shared_address(dst), src);
#else
    *reinterpret_cast<float4*>(dst) = *reinterpret_cast<const float4*>(src);
#endif
}

__device__ __forceinline__ void copy8(void* dst, const void* src) {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(shared_address(dst)), "l"(src) : "memory");
#else
    *reinterpret_cast<uint2*>(dst) = *reinterpret_cast<const uint2*>(src);
#endif
}

__device__ __forceinline__ void copy_commit() {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void copy_wait() {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group 0;\n" ::: "memory");
#endif
}

// ------------------------------------------------------------------------------------------------ column partials
// Rows [lo, hi) of slice `slice` when `rows` are cut into `slices` contiguous slices of ⌈rows/slices⌉ rows (the last
// may be short or empty): the rows a block of a column-partial kernel walks.
__device__ __forceinline__ void slice_rows(int rows, int slice, int slices, i64& lo, i64& hi) {
    i64 per = ((i64)rows + slices - 1) / slices;
    lo = per * slice;
    hi = lo + per < rows ? lo + per : rows;
}

// The column-partial layout (grid (⌈C/32⌉, slices), block (32, 8)): thread (x, y) has summed column c = 32·blockIdx.x
// + x over rows y, y + 8, … of slice blockIdx.y into s; the 8 thread rows meet in shared memory and are added in
// order: partial[slice·C + c] (column_finish then adds the slices). Every thread of the block calls it (barriers);
// calls may follow one another.
__device__ __forceinline__ void write_column_partial(float s, float* __restrict__ partial, int c, int C) {
    __shared__ float acc[8][33];
    __syncthreads();  // a previous call's readers are done with acc
    acc[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        float t = 0.0f;
        for (int k = 0; k < 8; k++) t += acc[k][threadIdx.x];
        partial[(i64)blockIdx.y * C + c] = t;
    }
}

// The second pass (grid ⌈C/32⌉ × anything, block (32, FINISH_ROWS)): Σ_{p < slices} partial[p·C + c] for column c =
// 32·blockIdx.x + x. Thread row y adds slices y, y + FINISH_ROWS, …; the rows meet in shared memory and are added in
// order, so the sum is deterministic; thread row 0 gets it (the others 0). Every thread of the block calls it (a
// barrier). One thread per column walking all slices left the GPU nearly idle (3 blocks at C = 768, 256 dependent
// adds each).
#define FINISH_ROWS 16
__device__ __forceinline__ float sum_column_slices(const float* __restrict__ partial, int slices, int C, int c) {
    __shared__ float acc[FINISH_ROWS][33];
    float s = 0.0f;
    if (c < C)
        for (int p = threadIdx.y; p < slices; p += FINISH_ROWS) s += partial[(i64)p * C + c];
    acc[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    float t = 0.0f;
    if (threadIdx.y == 0)
        for (int k = 0; k < FINISH_ROWS; k++) t += acc[k][threadIdx.x];
    return t;
}
