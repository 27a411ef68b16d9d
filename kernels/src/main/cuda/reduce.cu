// Column reductions: the deterministic second pass of every parameter gradient (see common.cuh) and a plain
// "sum the rows of a matrix" used by the LoRA bias gradient.
#include "common.cuh"

// out[c] += Σ_{p < slices} partial[p·C + c] (sum_column_slices: grid ⌈C/32⌉, block (32, FINISH_ROWS)).
extern "C" __global__ void column_finish(const float* __restrict__ partial, float* __restrict__ out, int slices, int C) {
    int c = blockIdx.x * 32 + threadIdx.x;
    float s = sum_column_slices(partial, slices, C, c);
    if (threadIdx.y == 0 && c < C) out[c] += s;
}

// column_finish for up to FINISH_BATCH (partial, out) pairs in one launch: the parameter-gradient sums a block's
// backward pass leaves (norm, mix, bias and bonus gradients, some twenty a layer), each a launch of a few µs
// otherwise. Entry e = blockIdx.y: out_e[c] += Σ_{p < slices_e} partial_e[p·C_e + c], with shape_e = slices_e |
// C_e << 32; the same sum_column_slices as column_finish, so the same bits. The entries run in parallel: the outs of
// one batch do not overlap (the backend launches a batch before holding back an out that overlaps one in it).
// grid (⌈max C_e / 32⌉, entries), block (32, FINISH_ROWS); the batch is passed by value (kernel parameters).
#define FINISH_BATCH 24
struct ColumnFinishBatch {
    const float* partial[FINISH_BATCH];
    float* out[FINISH_BATCH];
    long long shape[FINISH_BATCH];
};

extern "C" __global__ void column_finish_batch(ColumnFinishBatch batch) {
    int e = blockIdx.y;
    int slices = (int)(batch.shape[e] & 0xffffffffLL), C = (int)(batch.shape[e] >> 32);
    if (blockIdx.x * 32 >= C) return;  // the whole block
    int c = blockIdx.x * 32 + threadIdx.x;
    float s = sum_column_slices(batch.partial[e], slices, C, c);
    if (threadIdx.y == 0 && c < C) batch.out[e][c] += s;
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
