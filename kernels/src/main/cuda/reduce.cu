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

// column_finish for up to FINISH_BATCH (partial, out) pairs in one launch: the parameter-gradient sums a block's
// backward pass leaves (norm, mix, bias and bonus gradients, some twenty a layer), each a launch of a few µs
// otherwise. Entry e = blockIdx.y: out_e[c] += Σ_{p < slices_e} partial_e[p·C_e + c] (or = the sum where the
// FINISH_STORE bit is set: a gradient's first writer), with shape_e = slices_e | FINISH_STORE? | C_e << 32; the same
// sum_column_slices as column_finish, so the same bits. The entries run in parallel: the outs of
// one batch do not overlap (the backend launches a batch before holding back an out that overlaps one in it).
// grid (⌈max C_e / 32⌉, entries), block (32, FINISH_ROWS); the batch is passed by value (kernel parameters).
#define FINISH_BATCH 24
#define FINISH_STORE 0x80000000LL
struct ColumnFinishBatch {
    const float* partial[FINISH_BATCH];
    float* out[FINISH_BATCH];
    long long shape[FINISH_BATCH];
};

extern "C" __global__ void column_finish_batch(ColumnFinishBatch batch) {
    int e = blockIdx.y;
    long long shape = batch.shape[e];
    int slices = (int)(shape & 0x7fffffffLL), C = (int)(shape >> 32);
    if (blockIdx.x * 32 >= C) return;  // the whole block
    int c = blockIdx.x * 32 + threadIdx.x;
    float s = sum_column_slices(batch.partial[e], slices, C, c);
    float* out = batch.out[e];
    if (threadIdx.y == 0 && c < C) out[c] = (shape & FINISH_STORE) ? s : out[c] + s;
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

// ------------------------------------------------------------------------------------------------ bf16 column sums
// out[c] += Σ_rows m[row·C + c] for a bf16 matrix m [rows × C], in one launch: the LoRA bias gradients from a bf16
// dOut with no output activation (the α and v-gate pre-activations' gradients, the decay's dwRaw). The launcher picks
// it where C % 8 == 0 and m is 16-byte aligned. grid (⌈C/256⌉, slices), block (32, 8): thread x owns the 8 adjacent
// columns c = 256·blockIdx.x + 8x … + 7 (one 16-byte load a row, where 2 columns a thread with 4-byte loads reached
// ~1.1 TB/s), thread row y adds rows lo + y, lo + y + 8, … of slice blockIdx.y in order, INFLIGHT loads issued before
// their adds. The block writes partial[slice·C + c] (its 8 thread rows added in order); the last of a column group's
// blocks to finish (a ticket from tickets[blockIdx.x], which it sets back to 0 for the next launch) adds the group's
// slices in order and out[c] += the sum (add 0: out[c] = the sum, a gradient's first writer). Which block finishes
// varies, the order of every addition does not: the sums are deterministic, and no column_finish launch follows.
#define COLUMN_SUMS_COLS 256

// One 16-byte load of 8 bf16 added to s[0..7] (element 0 in the low half of v.x).
__device__ __forceinline__ void add_bf16x8(float (&s)[8], uint4 v) {
    s[0] += __uint_as_float(v.x << 16); s[1] += __uint_as_float(v.x & 0xffff0000u);
    s[2] += __uint_as_float(v.y << 16); s[3] += __uint_as_float(v.y & 0xffff0000u);
    s[4] += __uint_as_float(v.z << 16); s[5] += __uint_as_float(v.z & 0xffff0000u);
    s[6] += __uint_as_float(v.w << 16); s[7] += __uint_as_float(v.w & 0xffff0000u);
}

// A float another block of this launch wrote: from L2 (.cg), never from a stale L1 line.
__device__ __forceinline__ float load_l2(const float* p) {
    float v;
    asm volatile("ld.global.cg.f32 %0, [%1];" : "=f"(v) : "l"(p));
    return v;
}

template <int INFLIGHT>
__device__ __forceinline__ void column_sums_bf16x8_(const unsigned short* __restrict__ m, float* partial,
                                                    unsigned* tickets, float* __restrict__ out, int rows, int C,
                                                    int add) {
    __shared__ float acc[8][COLUMN_SUMS_COLS];
    __shared__ bool lastBlock;
    int x = threadIdx.x, y = threadIdx.y, t = y * 32 + x;
    int c0 = blockIdx.x * COLUMN_SUMS_COLS, c = c0 + 8 * x;  // C % 8 == 0: c < C covers all 8 columns
    int slices = gridDim.y, slice = blockIdx.y;
    i64 lo, hi;
    slice_rows(rows, slice, slices, lo, hi);
    float s[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    if (c < C) {
        i64 r = lo + y;
        for (; r + 8 * (INFLIGHT - 1) < hi; r += 8 * INFLIGHT) {
            uint4 v[INFLIGHT];
#pragma unroll
            for (int u = 0; u < INFLIGHT; u++) v[u] = *reinterpret_cast<const uint4*>(m + (r + 8 * u) * C + c);
#pragma unroll
            for (int u = 0; u < INFLIGHT; u++) add_bf16x8(s, v[u]);
        }
        for (; r < hi; r += 8) add_bf16x8(s, *reinterpret_cast<const uint4*>(m + r * C + c));
    }
    *reinterpret_cast<float4*>(&acc[y][8 * x]) = make_float4(s[0], s[1], s[2], s[3]);
    *reinterpret_cast<float4*>(&acc[y][8 * x + 4]) = make_float4(s[4], s[5], s[6], s[7]);
    __syncthreads();
    // thread t adds column c0 + t's 8 thread rows in order
    bool mine = c0 + t < C;
    if (mine) {
        float p = 0.0f;
        for (int k = 0; k < 8; k++) p += acc[k][t];
        partial[(i64)slice * C + c0 + t] = p;
    }
    __threadfence();  // the partial is visible to the whole GPU before the ticket is taken
    __syncthreads();
    if (t == 0) lastBlock = atomicAdd(tickets + blockIdx.x, 1u) == (unsigned)slices - 1;
    __syncthreads();
    if (!lastBlock) return;
    if (mine) {
        // every slice of the group has written its partial: add them in slice order, 8 loads in flight
        const float* q = partial + c0 + t;
        float sum = 0.0f;
        int p = 0;
        for (; p + 8 <= slices; p += 8) {
            float v[8];
#pragma unroll
            for (int u = 0; u < 8; u++) v[u] = load_l2(q + (i64)(p + u) * C);
#pragma unroll
            for (int u = 0; u < 8; u++) sum += v[u];
        }
        for (; p < slices; p++) sum += load_l2(q + (i64)p * C);
        out[c0 + t] = add ? out[c0 + t] + sum : sum;
    }
    if (t == 0) tickets[blockIdx.x] = 0;
}

// 4 blocks an SM: ptxas then keeps the 8 loads in flight (56 registers; at the default it fits 32 and serialises them).
extern "C" __global__ void __launch_bounds__(256, 4) column_sums_bf16x8(const unsigned short* __restrict__ m, float* partial, unsigned* tickets, float* __restrict__ out, int rows, int C, int add) {
    column_sums_bf16x8_<8>(m, partial, tickets, out, rows, C, add);
}
