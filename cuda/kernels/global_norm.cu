// The sum of squares behind the global gradient norm, as the CPU backend defines it: Float
// partial sums over blocks of 1024 elements, added up in Double. Both passes add in a fixed
// order, so the norm is the same on every run.

#include "common.cuh"

namespace {
constexpr int kBlockElements = 1024;
constexpr int kThreadsPerBlock = 256;

// partials: (blocks), one per 1024 elements of buffer (count)
__global__ void block_squares_kernel(double *partials, const float *buffer, int64_t count) {
    __shared__ float warp_sums[kThreadsPerBlock / 32];
    int64_t start = (int64_t)blockIdx.x * kBlockElements;
    float sum = 0;
    for (int i = threadIdx.x; i < kBlockElements; i += kThreadsPerBlock) {
        if (start + i < count) sum += buffer[start + i] * buffer[start + i];
    }
    sum = dpc::warp_sum(sum);
    if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = sum;
    __syncthreads();
    if (threadIdx.x < 32) {
        float total = threadIdx.x < kThreadsPerBlock / 32 ? warp_sums[threadIdx.x] : 0;
        total = dpc::warp_sum(total);
        if (threadIdx.x == 0) partials[blockIdx.x] = total;
    }
}

// One block adds the partials (count) in Double into result (1).
__global__ void sum_partials_kernel(double *result, const double *partials, int64_t count) {
    __shared__ double sums[1024];
    double sum = 0;
    for (int64_t i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
    sums[threadIdx.x] = sum;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if (threadIdx.x < stride) sums[threadIdx.x] += sums[threadIdx.x + stride];
        __syncthreads();
    }
    if (threadIdx.x == 0) *result = sums[0];
}
} // namespace

extern "C" int dpc_sum_of_squares(double *host_result, const float *buffer, int64_t count) {
    int64_t blocks = (count + kBlockElements - 1) / kBlockElements;
    double *partials = (double *)dpc::scratch(dpc::kPartials, (size_t)(blocks + 1) * sizeof(double));
    if (partials == nullptr) return 1;
    double *result = partials + blocks;
    if (blocks > 0) {
        block_squares_kernel<<<(unsigned)blocks, kThreadsPerBlock>>>(partials, buffer, count);
        DPC_LAUNCHED(block_squares_kernel);
    }
    sum_partials_kernel<<<1, 1024>>>(result, partials, blocks);
    DPC_LAUNCHED(sum_partials_kernel);
    DPC_CUDA(cudaMemcpy(host_result, result, sizeof(double), cudaMemcpyDeviceToHost));
    return 0;
}
