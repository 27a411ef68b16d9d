// Column reductions: the deterministic second pass of every parameter gradient (see common.cuh) and a plain
// "sum the rows of a matrix" used by the LoRA bias gradient.
#include "common.cuh"

// out[c] += Σ_{p < slices} partial[p·C + c], or out[c] = that sum when add is 0 (a gradient's first writer: a LoRA
// bias's) (sum_column_slices: grid ⌈C/32⌉, block (32, FINISH_ROWS)).
extern "C" __global__ void column_finish(const float* __restrict__ partial, float* __restrict__ out, int slices, int C, int add) {
    int c = blockIdx.x * 32 + threadIdx.x;
    float s = sum_column_slices(partial, slices, C, c);
    if (threadIdx.y == 0 && c < C) out[c] = add ? out[c] + s : s;
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
