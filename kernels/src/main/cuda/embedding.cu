// Token embedding lookup and its scatter-add backward. An id outside [0, vocab) is recorded in err (see
// common.cuh; the backend turns it into a one-line error) and its row is written as NaN.
#include "common.cuh"

// out[row] = weight[tokens[row]]. grid: one block per row (grid-stride over rows), threads over C.
extern "C" __global__ void embedding_forward(const int* __restrict__ tokens, const float* __restrict__ weight,
                                             float* __restrict__ out, int rows, int vocab, int C, int* err) {
    for (int row = blockIdx.x; row < rows; row += gridDim.x) {
        int id = tokens[row];
        bool ok = id >= 0 && id < vocab;
        if (!ok && threadIdx.x == 0) report_bad_id(err, row, id);
        const float* src = weight + (i64)(ok ? id : 0) * C;
        float* dst = out + (i64)row * C;
        for (int c = threadIdx.x; c < C; c += blockDim.x) dst[c] = ok ? src[c] : nan_();
    }
}

// dWeight[tokens[row]] += dOut[row]. Rows that share a token meet through atomicAdd (the order of those fp32 adds
// is not fixed).
extern "C" __global__ void embedding_backward(const int* __restrict__ tokens, const float* __restrict__ dOut,
                                              float* dWeight, int rows, int vocab, int C, int* err) {
    for (int row = blockIdx.x; row < rows; row += gridDim.x) {
        int id = tokens[row];
        if (id < 0 || id >= vocab) {
            if (threadIdx.x == 0) report_bad_id(err, row, id);
            continue;
        }
        const float* src = dOut + (i64)row * C;
        float* dst = dWeight + (i64)id * C;
        for (int c = threadIdx.x; c < C; c += blockDim.x) atomicAdd(dst + c, src[c]);
    }
}
