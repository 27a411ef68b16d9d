// Pointwise ops, each forward beside its backward: residual add, gradient accumulate, the output gate, the value
// residual and the channel mix's relu². Backward kernels accumulate (+=) into their gradients, as the Backend says.
#include "common.cuh"

// out = a + b (out may alias a or b).
extern "C" __global__ void add_f32(const float* a, const float* b, float* out, i64 n) {
    GRID_STRIDE(i, n) out[i] = a[i] + b[i];
}

// dst += src.
extern "C" __global__ void accumulate_f32(const float* __restrict__ src, float* __restrict__ dst, i64 n) {
    GRID_STRIDE(i, n) dst[i] += src[i];
}

// t = value everywhere (test poisoning and fills).
extern "C" __global__ void fill_f32(float* t, float value, i64 n) {
    GRID_STRIDE(i, n) t[i] = value;
}

// out = x⊙gate (out may alias x).
extern "C" __global__ void gate_forward(const float* x, const float* gate, float* out, i64 n) {
    GRID_STRIDE(i, n) out[i] = x[i] * gate[i];
}

// out = bf16(x⊙gate): the gate product is only read by the output projection's GEMMs.
extern "C" __global__ void gate_forward_bf16(const float* __restrict__ x, const float* __restrict__ gate,
                                             unsigned short* __restrict__ out, i64 n) {
    GRID_STRIDE(i, n) out[i] = bf16_rn(x[i] * gate[i]);
}

// dx += dOut⊙gate; dGate += dOut⊙x (accumulate 0: both written, not read).
extern "C" __global__ void gate_backward(const float* __restrict__ dOut, const float* __restrict__ x,
                                         const float* __restrict__ gate, float* __restrict__ dx,
                                         float* __restrict__ dGate, i64 n, int accumulate) {
    GRID_STRIDE(i, n) {
        float g = dOut[i];
        float a = g * gate[i], b = g * x[i];
        dx[i] = accumulate ? dx[i] + a : a;
        dGate[i] = accumulate ? dGate[i] + b : b;
    }
}

// out = v + (vFirst − v)⊙σ(gatePre): the v gate's sigmoid is taken here, in fp32, from its LoRA's pre-activation
// (v0 + (x_v·v1)·v2; the LoRA has no pass of its own for it). v and gatePre fp32 or (the _bf16 entry points) bf16, T;
// vFirst and out likewise, TF (_bf16_all: the WKV7 kernel's v in bf16).
template <typename T, typename TF = float>
__device__ __forceinline__ void value_residual_fwd(const T* __restrict__ v, const TF* __restrict__ vFirst,
                                                   const T* __restrict__ gatePre, TF* __restrict__ out, i64 n) {
    GRID_STRIDE(i, n) {
        float vi = ld(v, i);
        put(out, i, vi + (ld(vFirst, i) - vi) * sigmoidf_(ld(gatePre, i)));
    }
}

// With s = σ(gatePre): dv += dOut⊙(1 − s); dvFirst += dOut⊙s; dGatePre += dOut⊙(vFirst − v)⊙s(1 − s). accumulate 0:
// dv and dGatePre are written, not read (dvFirst, which gathers every layer's share, always accumulates).
// TD: dv fp32, or bf16 (written, never added to: only the value projection's GEMMs read it); TG: dGatePre likewise
// (bf16: only the v-gate LoRA's GEMMs and its bias gradient's column sums read it).
// TF: vFirst fp32 or bf16.
template <typename T, typename TD, typename TG = float, typename TF = float>
__device__ __forceinline__ void value_residual_bwd(const float* __restrict__ dOut, const T* __restrict__ v,
                                                   const TF* __restrict__ vFirst, const T* __restrict__ gatePre,
                                                   TD* __restrict__ dv, float* __restrict__ dvFirst,
                                                   TG* __restrict__ dGatePre, i64 n, int accumulate) {
    GRID_STRIDE(i, n) {
        float g = dOut[i], s = sigmoidf_(ld(gatePre, i));
        float a = g * (1.0f - s), b = g * (ld(vFirst, i) - ld(v, i)) * (s * (1.0f - s));
        if constexpr (sizeof(TD) == 2) dv[i] = bf16_rn(a);
        else dv[i] = accumulate ? dv[i] + a : a;
        dvFirst[i] += g * s;
        if constexpr (sizeof(TG) == 2) dGatePre[i] = bf16_rn(b);
        else dGatePre[i] = accumulate ? dGatePre[i] + b : b;
    }
}

extern "C" __global__ void value_residual_forward(const float* v, const float* vFirst, const float* gatePre,
                                                  float* out, i64 n) {
    value_residual_fwd<float>(v, vFirst, gatePre, out, n);
}

extern "C" __global__ void value_residual_forward_bf16(const unsigned short* v, const float* vFirst,
                                                       const unsigned short* gatePre, float* out, i64 n) {
    value_residual_fwd<unsigned short>(v, vFirst, gatePre, out, n);
}

// vFirst and out in bf16 too.
extern "C" __global__ void value_residual_forward_bf16_all(const unsigned short* v, const unsigned short* vFirst,
                                                           const unsigned short* gatePre, unsigned short* out, i64 n) {
    value_residual_fwd<unsigned short, unsigned short>(v, vFirst, gatePre, out, n);
}

extern "C" __global__ void value_residual_backward(const float* dOut, const float* v, const float* vFirst,
                                                   const float* gatePre, float* dv, float* dvFirst, float* dGatePre,
                                                   i64 n, int accumulate) {
    value_residual_bwd<float, float>(dOut, v, vFirst, gatePre, dv, dvFirst, dGatePre, n, accumulate);
}

extern "C" __global__ void value_residual_backward_bf16(const float* dOut, const unsigned short* v, const float* vFirst,
                                                        const unsigned short* gatePre, float* dv, float* dvFirst,
                                                        float* dGatePre, i64 n, int accumulate) {
    value_residual_bwd<unsigned short, float>(dOut, v, vFirst, gatePre, dv, dvFirst, dGatePre, n, accumulate);
}

extern "C" __global__ void value_residual_backward_bf16_dv(const float* dOut, const unsigned short* v,
                                                           const float* vFirst, const unsigned short* gatePre,
                                                           unsigned short* dv, float* dvFirst, float* dGatePre, i64 n,
                                                           int accumulate) {
    value_residual_bwd<unsigned short, unsigned short>(dOut, v, vFirst, gatePre, dv, dvFirst, dGatePre, n, accumulate);
}

// dGatePre in bf16 too.
extern "C" __global__ void value_residual_backward_bf16_dv_dg(const float* dOut, const unsigned short* v,
                                                              const float* vFirst, const unsigned short* gatePre,
                                                              unsigned short* dv, float* dvFirst,
                                                              unsigned short* dGatePre, i64 n, int accumulate) {
    value_residual_bwd<unsigned short, unsigned short, unsigned short>(dOut, v, vFirst, gatePre, dv, dvFirst, dGatePre,
                                                                       n, accumulate);
}

// dv and dGatePre in bf16, from a bf16 vFirst too.
extern "C" __global__ void value_residual_backward_bf16_dv_dg_vf(const float* dOut, const unsigned short* v,
                                                                 const unsigned short* vFirst,
                                                                 const unsigned short* gatePre, unsigned short* dv,
                                                                 float* dvFirst, unsigned short* dGatePre, i64 n,
                                                                 int accumulate) {
    value_residual_bwd<unsigned short, unsigned short, unsigned short, unsigned short>(dOut, v, vFirst, gatePre, dv,
                                                                                       dvFirst, dGatePre, n,
                                                                                       accumulate);
}

// out = relu(x)² (out may alias x).
extern "C" __global__ void relu_squared_forward(const float* x, float* out, i64 n) {
    GRID_STRIDE(i, n) {
        float r = fmaxf(x[i], 0.0f);
        out[i] = r * r;
    }
}

// dx += dOut·2·relu(x).
// out = bf16(relu(x)²): only the ffn value projection's GEMMs read it.
extern "C" __global__ void relu_squared_forward_bf16(const float* __restrict__ x, unsigned short* __restrict__ out, i64 n) {
    GRID_STRIDE(i, n) {
        float r = fmaxf(x[i], 0.0f);
        out[i] = bf16_rn(r * r);
    }
}

// accumulate = 0: dx = … (written; dx may alias dOut, each element read then written by one thread).
extern "C" __global__ void relu_squared_backward(const float* dOut, const float* __restrict__ x, float* dx, i64 n,
                                                 int accumulate) {
    GRID_STRIDE(i, n) {
        float g = dOut[i] * 2.0f * fmaxf(x[i], 0.0f);
        dx[i] = accumulate ? dx[i] + g : g;
    }
}

// dx = bf16(dOut·2·relu(x)), written: the gradient of the ffn key output, which only the key projection's GEMMs read.
extern "C" __global__ void relu_squared_backward_bf16(const float* __restrict__ dOut, const float* __restrict__ x,
                                                      unsigned short* __restrict__ dx, i64 n) {
    GRID_STRIDE(i, n) dx[i] = bf16_rn(dOut[i] * 2.0f * fmaxf(x[i], 0.0f));
}

// The same two from a bf16 x: the ffn key output, which its GEMM writes in bf16 when the GEMMs take bf16 operands.
extern "C" __global__ void relu_squared_forward_bf16x(const unsigned short* __restrict__ x,
                                                      unsigned short* __restrict__ out, i64 n) {
    GRID_STRIDE(i, n) {
        float r = fmaxf(bf16_f32(x[i]), 0.0f);
        out[i] = bf16_rn(r * r);
    }
}

extern "C" __global__ void relu_squared_backward_bf16x(const float* __restrict__ dOut,
                                                       const unsigned short* __restrict__ x,
                                                       unsigned short* __restrict__ dx, i64 n) {
    GRID_STRIDE(i, n) dx[i] = bf16_rn(dOut[i] * 2.0f * fmaxf(bf16_f32(x[i]), 0.0f));
}

// The same from a bf16 dOut too: the ffn value projection's dx, which its GEMM writes in bf16 under bf16 GEMMs (6
// bytes an element instead of 8). dx may alias dOut (each element read, then written, by one thread). Four elements
// at a time (8-byte loads and stores) when all three pointers are 8-byte aligned, else one; launched over ⌈n/4⌉.
extern "C" __global__ void relu_squared_backward_bf16xd(const unsigned short* dOut,
                                                        const unsigned short* __restrict__ x, unsigned short* dx,
                                                        i64 n) {
    if ((((unsigned long long)dOut | (unsigned long long)x | (unsigned long long)dx) & 7) != 0) {
        GRID_STRIDE(i, n) dx[i] = bf16_rn(bf16_f32(dOut[i]) * 2.0f * fmaxf(bf16_f32(x[i]), 0.0f));
        return;
    }
    i64 n4 = n >> 2;
    GRID_STRIDE(i, n4) {
        ushort4 d = reinterpret_cast<const ushort4*>(dOut)[i];
        ushort4 v = reinterpret_cast<const ushort4*>(x)[i];
        ushort4 o;
        o.x = bf16_rn(bf16_f32(d.x) * 2.0f * fmaxf(bf16_f32(v.x), 0.0f));
        o.y = bf16_rn(bf16_f32(d.y) * 2.0f * fmaxf(bf16_f32(v.y), 0.0f));
        o.z = bf16_rn(bf16_f32(d.z) * 2.0f * fmaxf(bf16_f32(v.z), 0.0f));
        o.w = bf16_rn(bf16_f32(d.w) * 2.0f * fmaxf(bf16_f32(v.w), 0.0f));
        reinterpret_cast<ushort4*>(dx)[i] = o;
    }
    if (blockIdx.x == 0 && threadIdx.x < (n & 3)) {  // the last n % 4 elements
        i64 i = (n4 << 2) + threadIdx.x;
        dx[i] = bf16_rn(bf16_f32(dOut[i]) * 2.0f * fmaxf(bf16_f32(x[i]), 0.0f));
    }
}

// t[i] = lo + (hi − lo)·u(i), u a hash of (seed, i) in [0, 1): random test and benchmark data made on the device.
extern "C" __global__ void fill_uniform_f32(float* t, i64 n, unsigned long long seed, float lo, float hi) {
    GRID_STRIDE(i, n) {
        unsigned long long z = seed + 0x9E3779B97F4A7C15ull * (unsigned long long)(i + 1);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        float u = (float)(z >> 40) * (1.0f / 16777216.0f);
        t[i] = lo + (hi - lo) * u;
    }
}
