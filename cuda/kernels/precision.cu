// tf32 and bf16 modes (Sources/DPBackend/Precision.swift): a product's operands are rounded
// into the caller's copies exactly as the CPU backend rounds them, so that the tensor cores' own
// conversion has nothing left to round and both backends multiply the same numbers; the products
// then run on the tensor cores, summing in fp32. Shared by the linear layers and attention.

#include "precision.cuh"

namespace {
// out: (count) in `precision`'s operand type; values: (count)
__global__ void round_operand_kernel(void *out, int precision, const float *values, int64_t count) {
    DPC_GRID_STRIDE(i, count) dpc::store_operand(out, precision, i, values[i]);
}
} // namespace

namespace dpc {

int check_precision(int precision) {
    if (precision < DPC_PRECISION_FP32 || precision > DPC_PRECISION_BF16) return fail("precision %d", precision);
    return 0;
}

int operand_bytes(int precision) { return precision == DPC_PRECISION_BF16 ? (int)sizeof(__nv_bfloat16) : (int)sizeof(float); }

const void *operand_place(int precision, Scratch which, const float *values, int64_t count) {
    if (precision == DPC_PRECISION_FP32) return values;
    return scratch(which, (size_t)count * operand_bytes(precision));
}

namespace {
/// Runs `product(operand type, compute type)` with pedantic math lifted for that call only, so
/// that fp32 products elsewhere stay plain sgemm.
template <typename Product> cublasStatus_t on_tensor_cores(int precision, Product product) {
    cudaDataType_t type = precision == DPC_PRECISION_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    cublasComputeType_t compute = precision == DPC_PRECISION_BF16 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_TF32;
    cublasStatus_t status = cublasSetMathMode(blas(), CUBLAS_DEFAULT_MATH);
    if (status != CUBLAS_STATUS_SUCCESS) return status;
    status = product(type, compute);
    cublasStatus_t restored = cublasSetMathMode(blas(), CUBLAS_PEDANTIC_MATH);
    return status != CUBLAS_STATUS_SUCCESS ? status : restored;
}

cublasOperation_t operation(bool transposed) { return transposed ? CUBLAS_OP_T : CUBLAS_OP_N; }
} // namespace

// Both take gemm's row-major arguments and hand cuBLAS the column-major transposes, as dpc::gemm does.
cublasStatus_t tensor_core_gemm(int precision, bool transA, bool transB, int M, int N, int K, float alpha,
                                const void *A, int lda, const void *B, int ldb, float beta, float *C, int ldc) {
    return on_tensor_cores(precision, [&](cudaDataType_t type, cublasComputeType_t compute) {
        return cublasGemmEx(blas(), operation(transB), operation(transA), N, M, K, &alpha, B, type, ldb, A, type, lda,
                            &beta, C, CUDA_R_32F, ldc, compute, CUBLAS_GEMM_DEFAULT);
    });
}

cublasStatus_t tensor_core_gemm_batched(int precision, bool transA, bool transB, int M, int N, int K, float alpha,
                                        const void *const *A, int lda, const void *const *B, int ldb, float beta,
                                        float *const *C, int ldc, int count) {
    return on_tensor_cores(precision, [&](cudaDataType_t type, cublasComputeType_t compute) {
        return cublasGemmBatchedEx(blas(), operation(transB), operation(transA), N, M, K, &alpha, B, type, ldb, A,
                                   type, lda, &beta, (void *const *)C, CUDA_R_32F, ldc, count, compute,
                                   CUBLAS_GEMM_DEFAULT);
    });
}

} // namespace dpc

extern "C" int dpc_round_operands(void *out, const float *values, int64_t count, int precision) {
    if (dpc::check_precision(precision) != 0) return 1;
    if (precision == DPC_PRECISION_FP32) return dpc::fail("fp32 products read their values in place");
    round_operand_kernel<<<dpc::blocks_for(count), dpc::kThreads>>>(out, precision, values, count);
    DPC_LAUNCHED(round_operand_kernel);
    return 0;
}
