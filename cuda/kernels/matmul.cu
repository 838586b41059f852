// Linear layers, y = x W^T + b with PyTorch's (OC, C) weight layout, through cuBLAS with the same
// row-major arguments as the CPU backend's cblas_sgemm calls. The bias gradient is a column sum,
// done as a matrix-vector product with a vector of ones: cuBLAS adds in a fixed order, where
// atomics would not. In tf32 and bf16 modes each product's operands are first rounded into
// scratch exactly as the CPU backend rounds them (Sources/DPBackend/Precision.swift), so the
// tensor cores' own conversion has nothing left to round and both backends multiply the same
// numbers.

#include "common.cuh"

#include <cuda_bf16.h>

namespace {
// out: (N, OC); bias: (OC)
__global__ void seed_bias_kernel(float *out, const float *bias, int64_t N, int OC) {
    DPC_GRID_STRIDE(i, N * OC) out[i] = bias[i % OC];
}

// roundedMantissa(x, keeping: 10): 13 bits dropped, to nearest with ties to even.
__global__ void round_to_tf32_kernel(float *out, const float *values, int64_t count) {
    DPC_GRID_STRIDE(i, count) {
        float x = values[i];
        uint32_t bits = __float_as_uint(x);
        uint32_t half = 0xFFFu + ((bits >> 13) & 1u);
        out[i] = isnan(x) ? x : __uint_as_float((bits + half) & ~0x1FFFu);
    }
}

__global__ void round_to_bf16_kernel(__nv_bfloat16 *out, const float *values, int64_t count) {
    DPC_GRID_STRIDE(i, count) out[i] = __float2bfloat16_rn(values[i]);
}

/// `values` (count) in `precision`: itself in fp32, else a rounded copy in
/// scratch `which`. Returns nonzero (with the error recorded) if the scratch cannot grow.
int operand(const void **rounded, int precision, dpc::Scratch which, const float *values, int64_t count) {
    switch (precision) {
    case DPC_PRECISION_TF32: {
        float *copy = (float *)dpc::scratch(which, (size_t)count * sizeof(float));
        if (copy == nullptr) return 1;
        round_to_tf32_kernel<<<dpc::blocks_for(count), dpc::kThreads>>>(copy, values, count);
        DPC_LAUNCHED(round_to_tf32_kernel);
        *rounded = copy;
        return 0;
    }
    case DPC_PRECISION_BF16: {
        __nv_bfloat16 *copy = (__nv_bfloat16 *)dpc::scratch(which, (size_t)count * sizeof(__nv_bfloat16));
        if (copy == nullptr) return 1;
        round_to_bf16_kernel<<<dpc::blocks_for(count), dpc::kThreads>>>(copy, values, count);
        DPC_LAUNCHED(round_to_bf16_kernel);
        *rounded = copy;
        return 0;
    }
    default:
        *rounded = values;
        return 0;
    }
}

/// dpc::gemm with alpha 1 on operands from `operand`: sgemm in fp32; otherwise tensor cores
/// (TF32, or bf16 inputs) summing in fp32. Pedantic math is lifted for the call only, so that
/// attention's sgemm calls stay plain fp32.
cublasStatus_t linear_gemm(int precision, bool transA, bool transB, int M, int N, int K, const void *A, int lda,
                           const void *B, int ldb, float beta, float *C, int ldc) {
    if (precision == DPC_PRECISION_FP32) {
        return dpc::gemm(transA, transB, M, N, K, 1, (const float *)A, lda, (const float *)B, ldb, beta, C, ldc);
    }
    cudaDataType_t type = precision == DPC_PRECISION_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    cublasComputeType_t compute = precision == DPC_PRECISION_BF16 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_TF32;
    float alpha = 1;
    cublasStatus_t status = cublasSetMathMode(dpc::blas(), CUBLAS_DEFAULT_MATH);
    if (status != CUBLAS_STATUS_SUCCESS) return status;
    status = cublasGemmEx(dpc::blas(), transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N, N, M,
                          K, &alpha, B, type, ldb, A, type, lda, &beta, C, CUDA_R_32F, ldc, compute,
                          CUBLAS_GEMM_DEFAULT);
    cublasStatus_t restored = cublasSetMathMode(dpc::blas(), CUBLAS_PEDANTIC_MATH);
    return status != CUBLAS_STATUS_SUCCESS ? status : restored;
}
} // namespace

extern "C" int dpc_matmul_forward(float *out, const float *input, const float *weight, const float *bias, int N,
                                  int C, int OC, int precision) {
    if (precision < DPC_PRECISION_FP32 || precision > DPC_PRECISION_BF16) return dpc::fail("precision %d", precision);
    float beta = 0;
    if (bias != nullptr) {
        // Seeding the output with the bias lets the product add itself in the same pass.
        seed_bias_kernel<<<dpc::blocks_for((int64_t)N * OC), dpc::kThreads>>>(out, bias, N, OC);
        DPC_LAUNCHED(seed_bias_kernel);
        beta = 1;
    }
    const void *inputs = nullptr, *weights = nullptr;
    if (operand(&inputs, precision, dpc::kOperandA, input, (int64_t)N * C) != 0) return 1;
    if (operand(&weights, precision, dpc::kOperandB, weight, (int64_t)OC * C) != 0) return 1;
    DPC_BLAS(linear_gemm(precision, false, true, N, OC, C, inputs, C, weights, C, beta, out, OC));
    return 0;
}

extern "C" int dpc_matmul_backward(float *d_input, float *d_weight, float *d_bias, const float *d_out,
                                   const float *input, const float *weight, int N, int C, int OC,
                                   int precision) {
    if (precision < DPC_PRECISION_FP32 || precision > DPC_PRECISION_BF16) return dpc::fail("precision %d", precision);
    const void *d_outs = nullptr, *others = nullptr;
    if (operand(&d_outs, precision, dpc::kOperandA, d_out, (int64_t)N * OC) != 0) return 1;
    if (d_input != nullptr) {
        if (operand(&others, precision, dpc::kOperandB, weight, (int64_t)OC * C) != 0) return 1;
        DPC_BLAS(linear_gemm(precision, false, false, N, C, OC, d_outs, OC, others, C, 0, d_input, C));
    }
    // The stream runs in order, so the input's copy may reuse the weight's scratch.
    if (operand(&others, precision, dpc::kOperandB, input, (int64_t)N * C) != 0) return 1;
    DPC_BLAS(linear_gemm(precision, true, false, OC, C, N, d_outs, OC, others, C, 1, d_weight, C));
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
