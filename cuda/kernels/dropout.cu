// Inverted dropout over (B, R) rows of examples; forward and backward are the same product.

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
