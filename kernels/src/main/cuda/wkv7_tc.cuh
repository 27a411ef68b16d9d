// Tensor-core helpers of the chunked WKV7 kernels (wkv7_tc*.cu; the algorithm and its accuracy: kernels/NOTES.md,
// "WKV7 on the tensor cores"). Warp-level mma.sync through inline PTX (no mma.h, so NVRTC needs no include path),
// sm_80 and newer.
//
// Fragment layouts (PTX ISA, "Matrix fragments for mma.m16n8k8 / m16n8k16"), lane = 4·g + t (g = lane >> 2, t = lane & 3):
//   C/D 16×8 fp32:        c0 (g, 2t)  c1 (g, 2t+1)  c2 (g+8, 2t)  c3 (g+8, 2t+1)
//   tf32 A 16×8 (row):    a0 (g, t)   a1 (g+8, t)   a2 (g, t+4)   a3 (g+8, t+4)
//   tf32 B 8×8 (col):     b0 (t, g)   b1 (t+4, g)                                  (row = k, column = n)
//   bf16 A 16×16 (row):   a0 (g, 2t..2t+1)  a1 (g+8, 2t..2t+1)  a2 (g, 2t+8..2t+9)  a3 (g+8, 2t+8..2t+9)
//   bf16 B 16×8 (col):    b0 (2t..2t+1, g)  b1 (2t+8..2t+9, g)
// The loaders read fp32 matrices in shared memory and round on the way (tf32: as cvt.rna, as the accuracy study
// assumes; bf16: round to nearest even, common.cuh's bf16x2_rn). A matrix is given as (pointer, leading dimension)
// with either its rows or its columns contiguous; the suffix names which index is contiguous: _mk / _kn (row-major)
// and _km / _nk (transposed). Leading dimensions of 4 or 8 mod 32 (68, 72) keep a warp's loads free of bank conflicts.
#pragma once
#include "common.cuh"

#define TC_L 16                               // steps per chunk
#define TC_W_SCALE (-0.6065306597126334f)     // ln ω = −e^{−1/2}·σ(wRaw), as wkv7.cu's decay_of

// ln ω of one raw decay, with the fast exponential and reciprocal (relative error ~1e-7, far below the tf32
// products'; not bit-identical to wkv7.cu's expf and division).

// x rounded to tf32 as the bits of an mma operand: round to nearest, ties away from zero (cvt.rna.tf32.f32's
// rounding), written as two integer operations: add half a tf32 unit to the magnitude, clear the 13 low bits.
__device__ __forceinline__ unsigned tf32_of(float x) { return (__float_as_uint(x) + 0x1000u) & 0xffffe000u; }

// x rounded to tf32 as an fp32 value: stored so, an operand needs no conversion at its use.
__device__ __forceinline__ float tf32_round(float x) { return __uint_as_float(tf32_of(x)); }

// 1/x, the hardware approximation (rcp.approx.ftz: one MUFU op, ≤ 1 ulp).
__device__ __forceinline__ float rcp_approx(float x) {
    float r;
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
    return r;
}

// ln ω of one raw decay, with the fast exponential and reciprocal (relative error ~1e-7, far below the tf32
// products'; not bit-identical to wkv7.cu's expf and division).
__device__ __forceinline__ float tc_log_decay(float wraw) { return TC_W_SCALE * rcp_approx(1.0f + __expf(-wraw)); }

// c += a·b, m16n8k8, tf32 inputs, fp32 accumulation. Not volatile (registers only): the compiler may schedule the
// mma freely around the loads.
__device__ __forceinline__ void mma_tf32(float (&c)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
    asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// c += a·b, m16n8k16, bf16 inputs, fp32 accumulation.
__device__ __forceinline__ void mma_bf16(float (&c)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__device__ __forceinline__ int tc_g() { return (threadIdx.x & 31) >> 2; }
__device__ __forceinline__ int tc_t() { return threadIdx.x & 3; }

// ---- tf32 fragments: A (16×8 at rows m0.., columns k0..), B (8×8 at rows k0.., columns n0..)
// A[m][k] at p[m·ld + k]
__device__ __forceinline__ void a_tf32_mk(unsigned (&a)[4], const float* p, int ld, int m0, int k0) {
    const int g = tc_g(), t = tc_t();
    const float* q = p + (m0 + g) * ld + k0 + t;
    a[0] = tf32_of(q[0]); a[1] = tf32_of(q[8 * ld]); a[2] = tf32_of(q[4]); a[3] = tf32_of(q[8 * ld + 4]);
}
// B[k][n] at p[k·ld + n]
__device__ __forceinline__ void b_tf32_kn(unsigned (&b)[2], const float* p, int ld, int k0, int n0) {
    const int g = tc_g(), t = tc_t();
    const float* q = p + (k0 + t) * ld + n0 + g;
    b[0] = tf32_of(q[0]); b[1] = tf32_of(q[4 * ld]);
}

// ---- bf16 fragments: A (16×16 at m0, k0), B (16×8 at k0, n0)
// A[m][k] at p[m·ld + k]
__device__ __forceinline__ void a_bf16_mk(unsigned (&a)[4], const float* p, int ld, int m0, int k0) {
    const int g = tc_g(), t = tc_t();
    const float* q = p + (m0 + g) * ld + k0 + 2 * t;
    a[0] = bf16x2_rn(q[0], q[1]); a[1] = bf16x2_rn(q[8 * ld], q[8 * ld + 1]);
    a[2] = bf16x2_rn(q[8], q[9]); a[3] = bf16x2_rn(q[8 * ld + 8], q[8 * ld + 9]);
}
// B[k][n] at p[k·ld + n]
__device__ __forceinline__ void b_bf16_kn(unsigned (&b)[2], const float* p, int ld, int k0, int n0) {
    const int g = tc_g(), t = tc_t();
    const float* q = p + (k0 + 2 * t) * ld + n0 + g;
    b[0] = bf16x2_rn(q[0], q[ld]); b[1] = bf16x2_rn(q[8 * ld], q[9 * ld]);
}
// B[k][n] at p[n·ld + k]
__device__ __forceinline__ void b_bf16_nk(unsigned (&b)[2], const float* p, int ld, int k0, int n0) {
    const int g = tc_g(), t = tc_t();
    const float* q = p + (n0 + g) * ld + k0 + 2 * t;
    b[0] = bf16x2_rn(q[0], q[1]); b[1] = bf16x2_rn(q[8], q[9]);
}

// The C fragment (16×8 at m0, n0) to p[m·ld + n].
__device__ __forceinline__ void c_store(const float (&c)[4], float* p, int ld, int m0, int n0) {
    const int g = tc_g(), t = tc_t();
    float* q = p + (m0 + g) * ld + n0 + 2 * t;
    q[0] = c[0]; q[1] = c[1]; q[8 * ld] = c[2]; q[8 * ld + 1] = c[3];
}
