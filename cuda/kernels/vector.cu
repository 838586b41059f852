// Element-wise vector arithmetic: the residual adds and the clipping scale.

#include "common.cuh"

namespace {
// (count) each
__global__ void add_kernel(float *destination, const float *source, int64_t count) {
    DPC_GRID_STRIDE(i, count) destination[i] += source[i];
}

__global__ void scale_kernel(float *buffer, float factor, int64_t count) {
    DPC_GRID_STRIDE(i, count) buffer[i] *= factor;
}
} // namespace

extern "C" int dpc_add(float *destination, const float *source, int64_t count) {
    add_kernel<<<dpc::blocks_for(count), dpc::kThreads>>>(destination, source, count);
    DPC_LAUNCHED(add_kernel);
    return 0;
}

extern "C" int dpc_scale(float *buffer, float factor, int64_t count) {
    scale_kernel<<<dpc::blocks_for(count), dpc::kThreads>>>(buffer, factor, count);
    DPC_LAUNCHED(scale_kernel);
    return 0;
}
