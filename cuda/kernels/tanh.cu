// The pooler's tanh; backward uses the forward output, d tanh(x) = 1 - tanh(x)^2.

#include "common.cuh"

namespace {
// out, input: (count); in place when out == input
__global__ void tanh_forward_kernel(float *out, const float *input, int64_t count) {
    DPC_GRID_STRIDE(i, count) out[i] = tanhf(input[i]);
}

// d_input, d_out, out: (count)
__global__ void tanh_backward_kernel(float *d_input, const float *d_out, const float *out, int64_t count) {
    DPC_GRID_STRIDE(i, count) d_input[i] = d_out[i] * (1 - out[i] * out[i]);
}
} // namespace

extern "C" int dpc_tanh_forward(float *out, const float *input, int64_t count) {
    tanh_forward_kernel<<<dpc::blocks_for(count), dpc::kThreads>>>(out, input, count);
    DPC_LAUNCHED(tanh_forward_kernel);
    return 0;
}

extern "C" int dpc_tanh_backward(float *d_input, const float *d_out, const float *out, int64_t count) {
    tanh_backward_kernel<<<dpc::blocks_for(count), dpc::kThreads>>>(d_input, d_out, out, count);
    DPC_LAUNCHED(tanh_backward_kernel);
    return 0;
}
