// Linear layers, y = x W^T + b with PyTorch's (OC, C) weight layout, through cuBLAS sgemm with
// the same row-major arguments as the CPU backend's cblas_sgemm calls. The bias gradient is a
// column sum, done as a matrix-vector product with a vector of ones: cuBLAS adds in a fixed
// order, where atomics would not.

#include "common.cuh"

namespace {
// out: (N, OC); bias: (OC)
__global__ void seed_bias_kernel(float *out, const float *bias, int64_t N, int OC) {
    DPC_GRID_STRIDE(i, N * OC) out[i] = bias[i % OC];
}
} // namespace

extern "C" int dpc_matmul_forward(float *out, const float *input, const float *weight, const float *bias, int N,
                                  int C, int OC) {
    float beta = 0;
    if (bias != nullptr) {
        // Seeding the output with the bias lets sgemm add the product in the same pass.
        seed_bias_kernel<<<dpc::blocks_for((int64_t)N * OC), dpc::kThreads>>>(out, bias, N, OC);
        DPC_LAUNCHED(seed_bias_kernel);
        beta = 1;
    }
    DPC_BLAS(dpc::gemm(false, true, N, OC, C, 1, input, C, weight, C, beta, out, OC));
    return 0;
}

extern "C" int dpc_matmul_backward(float *d_input, float *d_weight, float *d_bias, const float *d_out,
                                   const float *input, const float *weight, int N, int C, int OC) {
    if (d_input != nullptr) {
        DPC_BLAS(dpc::gemm(false, false, N, C, OC, 1, d_out, OC, weight, C, 0, d_input, C));
    }
    DPC_BLAS(dpc::gemm(true, false, OC, C, N, 1, d_out, OC, input, C, 1, d_weight, C));
    if (d_bias != nullptr) {
        const float *ones = dpc::ones(N);
        if (ones == nullptr) return 1;
        // d_bias (OC) += d_out^T (OC, N) ones (N); column-major, d_out is (OC, N) with leading dimension OC.
        float one = 1;
        DPC_BLAS(cublasSgemv(dpc::blas(), CUBLAS_OP_N, OC, N, &one, d_out, OC, ones, 1, &one, d_bias, 1));
    }
    return 0;
}
