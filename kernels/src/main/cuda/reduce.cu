// Column reductions: the deterministic second pass of every parameter gradient (see common.cuh) and a plain
// "sum the rows of a matrix" used by the LoRA bias gradient.
#include "common.cuh"

// out[c] += Σ_{p < slices} partial[p·C + c] (sum_column_slices: grid ⌈C/32⌉, block (32, FINISH_ROWS)).
extern "C" __global__ void column_finish(const float* __restrict__ partial, float* __restrict__ out, int slices, int C) {
    int c = blockIdx.x * 32 + threadIdx.x;
    float s = sum_column_slices(partial, slices, C, c);
    if (threadIdx.y == 0 && c < C) out[c] += s;
}

// partial[slice·C + c] = Σ_{rows of the slice} m[row·C + c]. grid (⌈C/32⌉, slices), block (32, 8): the 8 thread
// rows stride over the slice's rows and meet in shared memory, in a fixed order.
extern "C" __global__ void column_partial(const float* __restrict__ m, float* __restrict__ partial, int rows, int C) {
    int c = blockIdx.x * 32 + threadIdx.x;
    int slices = gridDim.y, slice = blockIdx.y;
    i64 lo, hi;
    slice_rows(rows, slice, slices, lo, hi);
    float s = 0.0f;
    if (c < C)
        for (i64 r = lo + threadIdx.y; r < hi; r += 8) s += m[r * C + c];
    write_column_partial(s, partial, c, C);
}

// column_partial of a bf16 matrix (the LoRA bias gradient from a bf16 dOut, the decay LoRA's dwRaw, which is then the
// GEMMs' operand as it is): the same rows in the same order. Two adjacent columns a thread (c, c + 1 with c even,
// one 4-byte load; grid ⌈C/64⌉ × slices, block (32, 8)) where C is even and m 4-byte aligned, else one.
extern "C" __global__ void column_partial_bf16(const unsigned short* __restrict__ m, float* __restrict__ partial, int rows, int C, int pairs) {
    int slices = gridDim.y, slice = blockIdx.y;
    i64 lo, hi;
    slice_rows(rows, slice, slices, lo, hi);
    if (pairs) {
        int c = blockIdx.x * 64 + 2 * threadIdx.x;  // C even: c < C implies c + 1 < C
        float s0 = 0.0f, s1 = 0.0f;
        if (c < C)
#pragma unroll 4
            for (i64 r = lo + threadIdx.y; r < hi; r += 8) {
                unsigned int w = *reinterpret_cast<const unsigned int*>(m + r * C + c);
                s0 += __uint_as_float(w << 16);
                s1 += __uint_as_float(w & 0xffff0000u);
            }
        write_column_partial(s0, partial, c, C);
        write_column_partial(s1, partial, c + 1, C);
    } else {
        int c = blockIdx.x * 32 + threadIdx.x;
        float s = 0.0f;
        if (c < C)
            for (i64 r = lo + threadIdx.y; r < hi; r += 8) s += bf16_f32(m[r * C + c]);
        write_column_partial(s, partial, c, C);
    }
}
