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
// = Σ_{rows of the slice} dz (fp32, before rounding) for the bias gradient. grid (⌈C/32⌉, slices), block (32, 8) as
// column_partial: the 8 thread rows stride over the slice's rows and meet in shared memory in a fixed order.
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
            dz[i] = bf16_rn(d);
            s += d;
        }
    if (partial != nullptr) write_column_partial(s, partial, c, C);  // uniform over the grid
}

extern "C" __global__ void activation_backward_columns(const float* dy, const float* y, int act, unsigned short* dz,
                                                       float* partial, int rows, int C) {
    activation_backward_cols<float>(dy, y, act, dz, partial, rows, C);
}

extern "C" __global__ void activation_backward_columns_bf16y(const float* dy, const unsigned short* y, int act,
                                                             unsigned short* dz, float* partial, int rows, int C) {
    activation_backward_cols<unsigned short>(dy, y, act, dz, partial, rows, C);
}

// dy in bf16 too (dα, the v gate's gradient: written so by their ops).
extern "C" __global__ void activation_backward_columns_bf16yd(const unsigned short* dy, const unsigned short* y, int act,
                                                              unsigned short* dz, float* partial, int rows, int C) {
    activation_backward_cols<unsigned short, unsigned short>(dy, y, act, dz, partial, rows, C);
}
