// Inverted dropout over (B, R) rows of examples; forward and backward are the same product.

#include "dropout.cuh"

namespace {
// out, input: (B, R); in place when out == input
__global__ void dropout_kernel(float *out, const float *input, dpc_dropout dropout, int B, int64_t R) {
    DPC_GRID_STRIDE(i, (int64_t)B * R) {
        int b = (int)(i / R);
        out[i] = dpc::dropout_apply(dropout, dpc::dropout_example_key(dropout, b), (uint64_t)(i % R), input[i]);
    }
}
} // namespace

extern "C" int dpc_dropout_forward(float *out, const float *input, dpc_dropout dropout, int B, int R) {
    if (!dropout.active) {
        if (out != input) DPC_CUDA(cudaMemcpyAsync(out, input, (size_t)B * R * sizeof(float), cudaMemcpyDeviceToDevice, 0));
        return 0;
    }
    dropout_kernel<<<dpc::blocks_for((int64_t)B * R), dpc::kThreads>>>(out, input, dropout, B, R);
    DPC_LAUNCHED(dropout_kernel);
    return 0;
}
