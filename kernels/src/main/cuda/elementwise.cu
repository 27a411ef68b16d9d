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

// Zeroes t[start, start + length) for each (start, length) pair of items, one block an item (Backend.zeroRanges: the
// parts of a gradient buffer that a step adds to; the host splits the ranges into items of a bounded length).
extern "C" __global__ void zero_ranges(float* __restrict__ t, const i64* __restrict__ items) {
    i64 start = items[2 * blockIdx.x], length = items[2 * blockIdx.x + 1];
    for (i64 i = threadIdx.x; i < length; i += blockDim.x) t[start + i] = 0.0f;
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
    // eight elements per step through 16-byte accesses where aligned (2-byte ones stayed well below bandwidth), the
    // last n mod 8 (or, unaligned, all) one at a time; the same values either way
    bool vec = aligned16(v) && aligned16(vFirst) && aligned16(gatePre) && aligned16(out);
    i64 n8 = vec ? n / 8 : 0;
    GRID_STRIDE(j, n8) {
        float vi[8], vf[8], gp[8], o[8];
        ld8(v, 8 * j, vi, true);
        ld8(vFirst, 8 * j, vf, true);
        ld8(gatePre, 8 * j, gp, true);
#pragma unroll
        for (int e = 0; e < 8; e++) o[e] = vi[e] + (vf[e] - vi[e]) * sigmoidf_(gp[e]);
        put8(out, 8 * j, o, true);
    }
    GRID_STRIDE(t, n - 8 * n8) {
        i64 i = 8 * n8 + t;
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
    // as value_residual_fwd: eight elements per step where aligned, the rest one at a time
    bool vec = aligned16(dOut) && aligned16(v) && aligned16(vFirst) && aligned16(gatePre) && aligned16(dv) &&
               aligned16(dvFirst) && aligned16(dGatePre);
    i64 n8 = vec ? n / 8 : 0;
    GRID_STRIDE(j, n8) {
        i64 i = 8 * j;
        float g[8], vi[8], vf[8], gp[8], dvf[8], a[8], b[8];
        ld8(dOut, i, g, true);
        ld8(v, i, vi, true);
        ld8(vFirst, i, vf, true);
        ld8(gatePre, i, gp, true);
        ld8(dvFirst, i, dvf, true);
        if constexpr (sizeof(TD) == 4) {
            if (accumulate) ld8(dv, i, a, true);
        }
        if constexpr (sizeof(TG) == 4) {
            if (accumulate) ld8(dGatePre, i, b, true);
        }
#pragma unroll
        for (int e = 0; e < 8; e++) {
            float s = sigmoidf_(gp[e]);
            float ae = g[e] * (1.0f - s), be = g[e] * (vf[e] - vi[e]) * (s * (1.0f - s));
            a[e] = sizeof(TD) == 4 && accumulate ? a[e] + ae : ae;
            b[e] = sizeof(TG) == 4 && accumulate ? b[e] + be : be;
            dvf[e] += g[e] * s;
        }
        put8(dv, i, a, true);
        put8(dvFirst, i, dvf, true);
        put8(dGatePre, i, b, true);
    }
    GRID_STRIDE(t, n - 8 * n8) {
        i64 i = 8 * n8 + t;
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

// out = bf16(relu(x)²): only the ffn value projection's GEMMs read it.
extern "C" __global__ void relu_squared_forward_bf16(const float* __restrict__ x, unsigned short* __restrict__ out, i64 n) {
    GRID_STRIDE(i, n) {
        float r = fmaxf(x[i], 0.0f);
        out[i] = bf16_rn(r * r);
    }
}

__device__ __forceinline__ unsigned short relu_sq_bf16(unsigned short x) {
    float r = fmaxf(bf16_f32(x), 0.0f);
    return bf16_rn(r * r);
}

__device__ __forceinline__ unsigned relu_sq_bf16x2(unsigned x) {
    return (unsigned)relu_sq_bf16((unsigned short)(x & 0xffffu)) | ((unsigned)relu_sq_bf16((unsigned short)(x >> 16)) << 16);
}

// The same from a bf16 x: the ffn key output, which its GEMM writes in bf16 when the GEMMs take bf16 operands; out
// may alias x (the model squares the key output in place: each element read, then written, by one thread). Eight
// elements at a time (16-byte loads and stores) when both pointers are 16-byte aligned, else one; launched over ⌈n/8⌉.
extern "C" __global__ void relu_squared_forward_bf16x(const unsigned short* x, unsigned short* out, i64 n) {
    if ((((unsigned long long)x | (unsigned long long)out) & 15) != 0) {
        GRID_STRIDE(i, n) out[i] = relu_sq_bf16(x[i]);
        return;
    }
    i64 n8 = n >> 3;
    GRID_STRIDE(i, n8) {
        uint4 v = reinterpret_cast<const uint4*>(x)[i];
        uint4 o;
        o.x = relu_sq_bf16x2(v.x);
        o.y = relu_sq_bf16x2(v.y);
        o.z = relu_sq_bf16x2(v.z);
        o.w = relu_sq_bf16x2(v.w);
        reinterpret_cast<uint4*>(out)[i] = o;
    }
    if (blockIdx.x == 0 && threadIdx.x < (n & 7)) {  // the last n % 8 elements
        i64 i = (n8 << 3) + threadIdx.x;
        out[i] = relu_sq_bf16(x[i]);
    }
}

// relu²'s backward from its output act = relu(x)²: dPre = dAct·2·√act, written (√act is relu(x): exactly so from an
// fp32 act, as √(fl(x²)) = |x| in binary floating point with correctly rounded sqrtf; from a bf16 act within 2^-10
// relative, half of act's bf16 rounding). dPre may alias dAct or act (each element read, then written, by one thread).
extern "C" __global__ void relu_squared_backward(const float* dAct, const float* act, float* dPre, i64 n) {
    GRID_STRIDE(i, n) dPre[i] = dAct[i] * 2.0f * sqrtf(act[i]);
}

// From a bf16 act (the relu² output, a GEMM input under bf16 GEMMs) into a bf16 dPre: the gradient of the ffn key
// output, which only the key projection's GEMMs read. dPre may alias act.
extern "C" __global__ void relu_squared_backward_bf16a(const float* dAct, const unsigned short* act,
                                                       unsigned short* dPre, i64 n) {
    GRID_STRIDE(i, n) dPre[i] = bf16_rn(dAct[i] * 2.0f * sqrtf(bf16_f32(act[i])));
}

__device__ __forceinline__ unsigned short relu_sq_bwd_bf16(unsigned short d, unsigned short a) {
    return bf16_rn(bf16_f32(d) * 2.0f * sqrtf(bf16_f32(a)));
}

__device__ __forceinline__ unsigned relu_sq_bwd_bf16x2(unsigned d, unsigned a) {
    return (unsigned)relu_sq_bwd_bf16((unsigned short)(d & 0xffffu), (unsigned short)(a & 0xffffu))
           | ((unsigned)relu_sq_bwd_bf16((unsigned short)(d >> 16), (unsigned short)(a >> 16)) << 16);
}

// The same from a bf16 dAct too: the ffn value projection's dx, which its GEMM writes in bf16 under bf16 GEMMs (6
// bytes an element instead of 8). dPre may alias dAct or act. Eight elements at a time (16-byte loads and stores)
// when all three pointers are 16-byte aligned, else one; launched over ⌈n/8⌉.
extern "C" __global__ void relu_squared_backward_bf16ad(const unsigned short* dAct, const unsigned short* act,
                                                        unsigned short* dPre, i64 n) {
    if ((((unsigned long long)dAct | (unsigned long long)act | (unsigned long long)dPre) & 15) != 0) {
        GRID_STRIDE(i, n) dPre[i] = relu_sq_bwd_bf16(dAct[i], act[i]);
        return;
    }
    i64 n8 = n >> 3;
    GRID_STRIDE(i, n8) {
        uint4 d = reinterpret_cast<const uint4*>(dAct)[i];
        uint4 a = reinterpret_cast<const uint4*>(act)[i];
        uint4 o;
        o.x = relu_sq_bwd_bf16x2(d.x, a.x);
        o.y = relu_sq_bwd_bf16x2(d.y, a.y);
        o.z = relu_sq_bwd_bf16x2(d.z, a.z);
        o.w = relu_sq_bwd_bf16x2(d.w, a.w);
        reinterpret_cast<uint4*>(dPre)[i] = o;
    }
    if (blockIdx.x == 0 && threadIdx.x < (n & 7)) {  // the last n % 8 elements
        i64 i = (n8 << 3) + threadIdx.x;
        dPre[i] = relu_sq_bwd_bf16(dAct[i], act[i]);
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
