// The gradient clipping's scale.

#include "common.cuh"

namespace {
// buffer: (count)
__global__ void scale_kernel(float *buffer, float factor, int64_t count) {
    DPC_GRID_STRIDE(i, count) buffer[i] *= factor;
}
} // namespace

extern "C" int dpc_scale(float *buffer, float factor, int64_t count) {
    scale_kernel<<<dpc::blocks_for(count), dpc::kThreads>>>(buffer, factor, count);
    DPC_LAUNCHED(scale_kernel);
    return 0;
}
