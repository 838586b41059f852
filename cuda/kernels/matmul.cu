// Linear layers, y = x W^T + b with PyTorch's (OC, C) weight layout, through cuBLAS with the same
// row-major arguments as the CPU backend's cblas_sgemm calls. The bias gradient is a column sum,
// done as a matrix-vector product with a vector of ones: cuBLAS adds in a fixed order, where
// atomics would not. In tf32 and bf16 modes every operand arrives rounded (dpc_round_operands,
// or written so by the op that produced it), kept by the caller for forward and backward.

#include "common.cuh"

namespace {
// out: (N, OC); bias: (OC)
__global__ void seed_bias_kernel(float *out, const float *bias, int64_t N, int OC) {
    DPC_GRID_STRIDE(i, N * OC) out[i] = bias[i % OC];
}

/// dpc::gemm with alpha 1 on operands rounded to `precision`.
cublasStatus_t linear_gemm(int precision, bool transA, bool transB, int M, int N, int K, const void *A, int lda,
                           const void *B, int ldb, float beta, float *C, int ldc) {
    if (precision == DPC_PRECISION_FP32) {
        return dpc::gemm(transA, transB, M, N, K, 1, (const float *)A, lda, (const float *)B, ldb, beta, C, ldc);
    }
    return dpc::tensor_core_gemm(precision, transA, transB, M, N, K, 1, A, lda, B, ldb, beta, C, ldc);
}
} // namespace

extern "C" int dpc_matmul_forward(float *out, const void *input, const void *weight, const float *bias, int N,
                                  int C, int OC, int precision) {
    if (dpc::check_precision(precision) != 0) return 1;
    float beta = 0;
    if (bias != nullptr) {
        // Seeding the output with the bias lets the product add itself in the same pass.
        seed_bias_kernel<<<dpc::blocks_for((int64_t)N * OC), dpc::kThreads>>>(out, bias, N, OC);
        DPC_LAUNCHED(seed_bias_kernel);
        beta = 1;
    }
    DPC_BLAS(linear_gemm(precision, false, true, N, OC, C, input, C, weight, C, beta, out, OC));
    return 0;
}

extern "C" int dpc_matmul_backward(float *d_input, int accumulate_d_input, float *d_weight, float *d_bias,
                                   const float *d_out, const void *d_outs, const void *input, const void *weight,
                                   int N, int C, int OC, int precision) {
    if (dpc::check_precision(precision) != 0) return 1;
    if (d_input != nullptr) {
        float beta = accumulate_d_input ? 1 : 0;
        DPC_BLAS(linear_gemm(precision, false, false, N, C, OC, d_outs, OC, weight, C, beta, d_input, C));
    }
    DPC_BLAS(linear_gemm(precision, true, false, OC, C, N, d_outs, OC, input, C, 1, d_weight, C));
    if (d_bias != nullptr) {
        const float *ones = dpc::ones(N);
        if (ones == nullptr) return 1;
        // d_bias (OC) += d_out^T (OC, N) ones (N), from the fp32 d_out; column-major, d_out is
        // (OC, N) with leading dimension OC.
        float one = 1;
        DPC_BLAS(cublasSgemv(dpc::blas(), CUBLAS_OP_N, OC, N, &one, d_out, OC, ones, 1, &one, d_bias, 1));
    }
    return 0;
}
