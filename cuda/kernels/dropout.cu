// Inverted dropout over (B, R) rows of examples; forward and backward are the same product. The
// residual form adds the bias of the linear layer before it, drops, and adds the residual stream,
// all in one pass.

#include "dropout.cuh"

namespace {
// out, input: (B, R); in place when out == input. Grid: (groups of four along R, B).
__global__ void dropout_kernel(float *out, const float *input, dpc_dropout dropout, int R) {
    int group = blockIdx.x * blockDim.x + threadIdx.x;
    int b = blockIdx.y;
    if (4 * group >= R) return;
    int64_t offset = (int64_t)b * R + 4 * group;
    dpc::dropout_group(out + offset, input + offset, R - 4 * group, dropout, dpc::dropout_example_key(dropout, b),
                       4 * (uint64_t)group);
}

// out, input, residual: (B, T * C) = (B, R); bias: (C) or null; out may be input. Grid: (groups
// of four along R, B).
__global__ void dropout_residual_kernel(float *out, const float *input, const float *bias, const float *residual,
                                        dpc_dropout dropout, int R, int C) {
    int group = blockIdx.x * blockDim.x + threadIdx.x;
    int b = blockIdx.y;
    if (4 * group >= R) return;
    int64_t offset = (int64_t)b * R + 4 * group;
    int count = R - 4 * group < 4 ? R - 4 * group : 4;
    float biased[4], kept[4];
    for (int j = 0; j < count; j++) {
        biased[j] = bias != nullptr ? input[offset + j] + bias[(4 * group + j) % C] : input[offset + j];
    }
    if (dropout.active) {
        dpc::dropout_group(kept, biased, count, dropout, dpc::dropout_example_key(dropout, b), 4 * (uint64_t)group);
    } else {
        for (int j = 0; j < count; j++) kept[j] = biased[j];
    }
    for (int j = 0; j < count; j++) out[offset + j] = kept[j] + residual[offset + j];
}
} // namespace

extern "C" int dpc_dropout_forward(float *out, const float *input, dpc_dropout dropout, int B, int R) {
    if (!dropout.active) {
        if (out != input) DPC_CUDA(cudaMemcpyAsync(out, input, (size_t)B * R * sizeof(float), cudaMemcpyDeviceToDevice, 0));
        return 0;
    }
    dim3 grid(dpc::blocks_for((R + 3) / 4), B);
    dropout_kernel<<<grid, dpc::kThreads>>>(out, input, dropout, R);
    DPC_LAUNCHED(dropout_kernel);
    return 0;
}

extern "C" int dpc_dropout_residual_forward(float *out, const float *input, const float *bias, const float *residual,
                                            dpc_dropout dropout, int B, int T, int C) {
    int R = T * C;
    dim3 grid(dpc::blocks_for((R + 3) / 4), B);
    dropout_residual_kernel<<<grid, dpc::kThreads>>>(out, input, bias, residual, dropout, R, C);
    DPC_LAUNCHED(dropout_residual_kernel);
    return 0;
}
