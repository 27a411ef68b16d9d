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

// y = bf16(act(z + bias)) from the fp32 GEMM output z: a LoRA output kept in bf16 (α, the v gate).
extern "C" __global__ void bias_activate_bf16(const float* __restrict__ z, const float* __restrict__ bias, int act,
                                              unsigned short* __restrict__ y, i64 n, int cols) {
    GRID_STRIDE(i, n) {
        float zi = z[i];
        if (bias) zi += bias[i % cols];
        y[i] = bf16_rn(activate(act, zi));
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
