// The elementwise halves of the LoRA chains (the matrix products go to cuBLAS): bias + activation after a GEMM, and
// the activation's derivative taken from the saved output. act: 0 none, 1 tanh, 2 sigmoid (Activation.ordinal()).
#include "common.cuh"

__device__ __forceinline__ float activate(int act, float z) {
    if (act == 1) return tanhf(z);
    if (act == 2) return sigmoidf_(z);
    return z;
}

// y = act(y + bias) in place; bias [cols] may be null.
extern "C" __global__ void bias_activate(float* y, const float* __restrict__ bias, int act, i64 n, int cols) {
    GRID_STRIDE(i, n) {
        float z = y[i];
        if (bias) z += bias[i % cols];
        y[i] = activate(act, z);
    }
}

// dz = dy⊙act'(z), with act' written through y = act(z): tanh' = 1 − y², σ' = y(1 − y). dz may alias dy.
extern "C" __global__ void activation_backward(const float* dy, const float* __restrict__ y, int act, float* dz, i64 n) {
    GRID_STRIDE(i, n) {
        float yi = y[i];
        float slope = act == 1 ? 1.0f - yi * yi : act == 2 ? yi * (1.0f - yi) : 1.0f;
        dz[i] = dy[i] * slope;
    }
}

// y = act(y) in place (the LoRA hidden, fp32: its backward reads it) and its bf16 copy for the GEMM that reads it next
// (under bf16 GEMMs; the same rounding as a cast after bias_activate).
extern "C" __global__ void activate_bf16_copy(float* y, int act, unsigned short* __restrict__ copy, i64 n) {
    GRID_STRIDE(i, n) {
        float a = activate(act, y[i]);
        y[i] = a;
        copy[i] = bf16_rn(a);
    }
}

// activation_backward with dz written in bf16 (the LoRA hidden's gradient: only the two GEMMs after it read it).
extern "C" __global__ void activation_backward_bf16dz(const float* __restrict__ dy, const float* __restrict__ y, int act,
                                                      unsigned short* __restrict__ dz, i64 n) {
    GRID_STRIDE(i, n) {
        float yi = y[i];
        float slope = act == 1 ? 1.0f - yi * yi : act == 2 ? yi * (1.0f - yi) : 1.0f;
        dz[i] = bf16_rn(dy[i] * slope);
    }
}

// y = bf16(act(z + bias)) from the fp32 GEMM output z: a LoRA output kept in bf16 (α, the v gate). Four values a
// thread where cols is a multiple of 4 and the pointers allow it (n = rows·cols, so no tail): one 64-bit modulo per
// four values, not per value.
extern "C" __global__ void bias_activate_bf16(const float* __restrict__ z, const float* __restrict__ bias, int act,
                                              unsigned short* __restrict__ y, i64 n, int cols) {
    bool vec = (cols & 3) == 0 && (reinterpret_cast<unsigned long long>(z) & 15u) == 0
            && (reinterpret_cast<unsigned long long>(y) & 7u) == 0
            && (reinterpret_cast<unsigned long long>(bias) & 15u) == 0;
    if (vec) {
        int colQuads = cols >> 2;
        GRID_STRIDE(q, n >> 2) {
            float4 v = reinterpret_cast<const float4*>(z)[q];
            if (bias) {
                float4 b = reinterpret_cast<const float4*>(bias)[q % colQuads];
                v.x += b.x; v.y += b.y; v.z += b.z; v.w += b.w;
            }
            ushort4 o;
            o.x = bf16_rn(activate(act, v.x)); o.y = bf16_rn(activate(act, v.y));
            o.z = bf16_rn(activate(act, v.z)); o.w = bf16_rn(activate(act, v.w));
            reinterpret_cast<ushort4*>(y)[q] = o;
        }
    } else {
        GRID_STRIDE(i, n) {
            float zi = z[i];
            if (bias) zi += bias[i % cols];
            y[i] = bf16_rn(activate(act, zi));
        }
    }
}

// activation_backward with y in bf16.
extern "C" __global__ void activation_backward_bf16y(const float* dy, const unsigned short* __restrict__ y, int act,
                                                     float* dz, i64 n) {
    GRID_STRIDE(i, n) {
        float yi = bf16_f32(y[i]);
        float slope = act == 1 ? 1.0f - yi * yi : act == 2 ? yi * (1.0f - yi) : 1.0f;
        dz[i] = dy[i] * slope;
    }
}

// The LoRA output's backward under bf16 GEMMs in one pass: dz = dy⊙act'(y) (dy fp32 or bf16, TDY; y fp32 or bf16, TY; null when act is
// none: dz = dy) written in bf16 for the two GEMMs that read it, and, when partial is not null, partial[slice·C + c]
// = Σ_{rows of the slice} dz (fp32, before rounding) for the bias gradient. dz null (act none, a bf16 dy: the GEMMs
// read dy itself): only the column sums. grid (⌈C/32⌉, slices), block (32, 8) as column_partial: the 8 thread rows
// stride over the slice's rows and meet in shared memory in a fixed order.
template <typename TY, typename TDY = float>
__device__ __forceinline__ void activation_backward_cols(const TDY* __restrict__ dy, const TY* __restrict__ y,
                                                         int act, unsigned short* __restrict__ dz,
                                                         float* __restrict__ partial, int rows, int C) {
    int c = blockIdx.x * 32 + threadIdx.x;
    int slices = gridDim.y, slice = blockIdx.y;
    i64 lo, hi;
    slice_rows(rows, slice, slices, lo, hi);
    float s = 0.0f;
    if (c < C)
        for (i64 r = lo + threadIdx.y; r < hi; r += 8) {
            i64 i = r * C + c;
            float slope = 1.0f;
            if (act != 0) {
                float yi = ld(y, i);
                slope = act == 1 ? 1.0f - yi * yi : yi * (1.0f - yi);
            }
            float d = ld(dy, i) * slope;
            if (dz != nullptr) dz[i] = bf16_rn(d);  // uniform over the grid
            s += d;
        }
    if (partial != nullptr) write_column_partial(s, partial, c, C);  // uniform over the grid
}

// Two adjacent columns a thread (c, c + 1 with c even): 4- or 8-byte loads and a packed bf16x2 store, where the
// one-column version's 2-byte accesses left the kernel well below bandwidth. grid (⌈C/64⌉, slices), block (32, 8);
// the launcher picks it where C is even and dy, y and dz are aligned to a pair. Each column's sum runs over the same
// rows in the same order as in activation_backward_cols, and write_column_partial adds the 8 thread rows of column c,
// then of c + 1, so the partials are the same bits.
__device__ __forceinline__ float2 ld2(const float* p, i64 i) { return *reinterpret_cast<const float2*>(p + i); }
__device__ __forceinline__ float2 ld2(const unsigned short* p, i64 i) {
    unsigned int w = *reinterpret_cast<const unsigned int*>(p + i);
    return make_float2(__uint_as_float(w << 16), __uint_as_float(w & 0xffff0000u));
}

template <typename TY, typename TDY = float>
__device__ __forceinline__ void activation_backward_cols2(const TDY* __restrict__ dy, const TY* __restrict__ y,
                                                          int act, unsigned short* __restrict__ dz,
                                                          float* __restrict__ partial, int rows, int C) {
    int c = blockIdx.x * 64 + 2 * threadIdx.x;  // C even: c < C implies c + 1 < C
    int slices = gridDim.y, slice = blockIdx.y;
    i64 lo, hi;
    slice_rows(rows, slice, slices, lo, hi);
    float s0 = 0.0f, s1 = 0.0f;
    if (c < C)
#pragma unroll 4
        for (i64 r = lo + threadIdx.y; r < hi; r += 8) {
            i64 i = r * C + c;
            float2 slope = make_float2(1.0f, 1.0f);
            if (act != 0) {
                float2 yi = ld2(y, i);
                slope.x = act == 1 ? 1.0f - yi.x * yi.x : yi.x * (1.0f - yi.x);
                slope.y = act == 1 ? 1.0f - yi.y * yi.y : yi.y * (1.0f - yi.y);
            }
            float2 g = ld2(dy, i);
            float d0 = g.x * slope.x, d1 = g.y * slope.y;
            if (dz != nullptr)  // uniform over the grid
                *reinterpret_cast<unsigned int*>(dz + i) = (unsigned int)bf16_rn(d0) | ((unsigned int)bf16_rn(d1) << 16);
            s0 += d0;
            s1 += d1;
        }
    if (partial != nullptr) {  // uniform over the grid
        write_column_partial(s0, partial, c, C);
        write_column_partial(s1, partial, c + 1, C);
    }
}

extern "C" __global__ void activation_backward_columns(const float* dy, const float* y, int act, unsigned short* dz,
                                                       float* partial, int rows, int C) {
    activation_backward_cols<float>(dy, y, act, dz, partial, rows, C);
}

extern "C" __global__ void activation_backward_columns_bf16y(const float* dy, const unsigned short* y, int act,
                                                             unsigned short* dz, float* partial, int rows, int C) {
    activation_backward_cols<unsigned short>(dy, y, act, dz, partial, rows, C);
}

// dy in bf16 too (the gradients of the α and v-gate pre-activations, written so by the key preparation and the value
// residual; dz null there: their LoRAs have no output activation, so only the bias gradient's column sums are made).
extern "C" __global__ void activation_backward_columns_bf16yd(const unsigned short* dy, const unsigned short* y, int act,
                                                              unsigned short* dz, float* partial, int rows, int C) {
    activation_backward_cols<unsigned short, unsigned short>(dy, y, act, dz, partial, rows, C);
}

extern "C" __global__ void activation_backward_columns2(const float* dy, const float* y, int act, unsigned short* dz,
                                                        float* partial, int rows, int C) {
    activation_backward_cols2<float>(dy, y, act, dz, partial, rows, C);
}

extern "C" __global__ void activation_backward_columns2_bf16y(const float* dy, const unsigned short* y, int act,
                                                              unsigned short* dz, float* partial, int rows, int C) {
    activation_backward_cols2<unsigned short>(dy, y, act, dz, partial, rows, C);
}

extern "C" __global__ void activation_backward_columns2_bf16yd(const unsigned short* dy, const unsigned short* y,
                                                               int act, unsigned short* dz, float* partial, int rows,
                                                               int C) {
    activation_backward_cols2<unsigned short, unsigned short>(dy, y, act, dz, partial, rows, C);
}
