// embedding.cu — token + position embedding, forward and backward. CPU twins:
// CpuBackend.EmbeddingForward / EmbeddingBackward.
//
// Layout: out [n, C]; tokenTable [vocabRows, C]; positionTable [contextRows, C]; tokens, positions [n] int32.
//   forward:  out[i, :] = tokenTable[tokens[i], :] + positionTable[positions[i], :]
//   backward: dTokenTable[tokens[i], :] += dout[i, :];  dPositionTable[positions[i], :] += dout[i, :]
// An id outside its table is reported through the device error record (the host throws at its next
// synchronization, naming the row and the id) and its row is skipped.
//
// Why it is fast: one warp per row, consecutive lanes on consecutive channels, so every table row is read
// in full cache lines. The backward pass scatters into rows shared by many tokens, so it adds with atomics
// (fp32 atomics in L2): the order of those additions, and so the last bits of the sums, may differ run to run.
#include "common.cuh"

extern "C" __global__ void embedding_forward(float* __restrict__ out, const int* __restrict__ tokens, const int* __restrict__ positions,
    const float* __restrict__ tokenTable, const float* __restrict__ positionTable, int n, int C, i64 vocabRows, i64 contextRows,
    DeviceError* err)
{
    int warps = blockDim.x >> 5, lane = threadIdx.x & 31;
    int row = blockIdx.x * warps + (threadIdx.x >> 5);
    if (row >= n) return;
    int tok = tokens[row], pos = positions[row];
    if (tok < 0 || tok >= vocabRows) { if (lane == 0) report_error(err, NG_ERR_TOKEN, row, tok, vocabRows); return; }
    if (pos < 0 || pos >= contextRows) { if (lane == 0) report_error(err, NG_ERR_POSITION, row, pos, contextRows); return; }
    const float* a = tokenTable + (i64)tok * C;
    const float* b = positionTable + (i64)pos * C;
    float* o = out + (i64)row * C;
    for (int j = lane; j < C; j += 32) o[j] = a[j] + b[j];
}

extern "C" __global__ void embedding_backward(float* dTokenTable, float* dPositionTable, const float* __restrict__ dout,
    const int* __restrict__ tokens, const int* __restrict__ positions, int n, int C, i64 vocabRows, i64 contextRows, DeviceError* err)
{
    int warps = blockDim.x >> 5, lane = threadIdx.x & 31;
    int row = blockIdx.x * warps + (threadIdx.x >> 5);
    if (row >= n) return;
    int tok = tokens[row], pos = positions[row];
    if (tok < 0 || tok >= vocabRows) { if (lane == 0) report_error(err, NG_ERR_TOKEN, row, tok, vocabRows); return; }
    if (pos < 0 || pos >= contextRows) { if (lane == 0) report_error(err, NG_ERR_POSITION, row, pos, contextRows); return; }
    const float* g = dout + (i64)row * C;
    float* a = dTokenTable + (i64)tok * C;
    float* b = dPositionTable + (i64)pos * C;
    for (int j = lane; j < C; j += 32)
    {
        float v = g[j];
        atomicAdd(a + j, v);
        atomicAdd(b + j, v);
    }
}
