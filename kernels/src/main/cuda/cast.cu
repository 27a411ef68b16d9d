// Casts for the GEMMs' bf16 operands: fp32 → bf16 with round-to-nearest-even (bf16_rn, common.cuh).
#include "common.cuh"


// y[i] = bf16(x[i]). Four elements per step where x is 16-byte and y 8-byte aligned, one at a time otherwise.
extern "C" __global__ void cast_f32_bf16(const float* __restrict__ x, unsigned short* __restrict__ y, i64 n) {
    bool vec = ((reinterpret_cast<unsigned long long>(x) & 15u) == 0) && ((reinterpret_cast<unsigned long long>(y) & 7u) == 0);
    if (vec) {
        i64 quads = n >> 2;
        GRID_STRIDE(q, quads) {
            float4 v = reinterpret_cast<const float4*>(x)[q];
            ushort4 o;
            o.x = bf16_rn(v.x); o.y = bf16_rn(v.y); o.z = bf16_rn(v.z); o.w = bf16_rn(v.w);
            reinterpret_cast<ushort4*>(y)[q] = o;
        }
        i64 tail = n - (quads << 2);
        if (blockIdx.x == 0 && threadIdx.x < tail) y[(quads << 2) + threadIdx.x] = bf16_rn(x[(quads << 2) + threadIdx.x]);
    } else {
        GRID_STRIDE(i, n) y[i] = bf16_rn(x[i]);
    }
}

// y[i] = x[i] widened from bf16 (exact). The WKV7 launcher's slow path: a bf16 gradient for the serial kernels.
extern "C" __global__ void cast_bf16_f32(const unsigned short* __restrict__ x, float* __restrict__ y, i64 n) {
    GRID_STRIDE(i, n) y[i] = bf16_f32(x[i]);
}
