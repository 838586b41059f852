// What every kernel file shares: error reporting through dpc_last_error, the one cuBLAS handle,
// grow-only scratch buffers, launch sizes, a warp sum, and a row-major sgemm.
//
// Everything runs on the legacy default stream, in call order: the Swift side sees the same
// sequential semantics as the CPU backend, and a scratch buffer can be reused by the next call.
#pragma once

#define DPCUDA_BUILDING_LIBRARY 1
#include "dpcuda.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdint.h>

namespace dpc {

/// Records a message for dpc_last_error and returns the nonzero status for the caller to pass on.
int fail(const char *format, ...);
int fail_cuda(cudaError_t error, const char *call);
int fail_blas(cublasStatus_t status, const char *call);

cublasHandle_t blas();

/// Scratch memory owned by the library, one buffer per purpose, kept between calls and grown
/// when a call needs more. Returns nullptr (with the error recorded) if it cannot grow.
enum Scratch { kPointers, kDroppedProbabilities, kPartials, kOnes, kAttentionOperands, kScratchCount };
void *scratch(Scratch which, size_t bytes);

/// (count) floats of 1, for column sums as a matrix-vector product.
const float *ones(int64_t count);

constexpr int kThreads = 256;

inline unsigned blocks_for(int64_t count, int threads = kThreads) {
    int64_t blocks = (count + threads - 1) / threads;
    // Grid-stride loops cover the rest; 2^20 blocks already fill any GPU many times over.
    return (unsigned)(blocks < (1 << 20) ? (blocks > 0 ? blocks : 1) : (1 << 20));
}

__device__ inline float warp_sum(float value) {
    for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
    return value;
}

__device__ inline float warp_max(float value) {
    for (int offset = 16; offset > 0; offset /= 2) value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
    return value;
}

/// Row-major C (M, N) = alpha op(A) op(B) + beta C, with the arguments of
/// cblas_sgemm(CblasRowMajor, ...), so that the CPU backend's calls carry over unchanged:
/// cuBLAS sees the column-major transposes, C^T = op(B)^T op(A)^T.
inline cublasStatus_t gemm(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
                           const float *B, int ldb, float beta, float *C, int ldc) {
    return cublasSgemm(blas(), transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K,
                       &alpha, B, ldb, A, lda, &beta, C, ldc);
}

/// The same product for `count` independent matrices, given by device arrays of pointers.
inline cublasStatus_t gemm_batched(bool transA, bool transB, int M, int N, int K, float alpha,
                                   const float *const *A, int lda, const float *const *B, int ldb, float beta,
                                   float *const *C, int ldc, int count) {
    return cublasSgemmBatched(blas(), transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N, N, M,
                              K, &alpha, B, ldb, A, lda, &beta, C, ldc, count);
}

/// Nonzero (with the error recorded) unless `precision` is one of DPC_PRECISION_*.
int check_precision(int precision);

/// Bytes per element of a rounded operand: 2 in bf16, else 4 (tf32 operands stay fp32 words).
int operand_bytes(int precision);

/// Where the operand of `values` (count) goes in `precision` (precision.cu), for a kernel that
/// writes it there: `values` itself in fp32, else scratch `which`, grown to fit (or nullptr, with
/// the error recorded).
const void *operand_place(int precision, Scratch which, const float *values, int64_t count);

/// gemm and gemm_batched on tensor cores (precision.cu), for operands rounded in tf32 or bf16,
/// summing into fp32 C.
cublasStatus_t tensor_core_gemm(int precision, bool transA, bool transB, int M, int N, int K, float alpha,
                                const void *A, int lda, const void *B, int ldb, float beta, float *C, int ldc);
cublasStatus_t tensor_core_gemm_batched(int precision, bool transA, bool transB, int M, int N, int K, float alpha,
                                        const void *const *A, int lda, const void *const *B, int ldb, float beta,
                                        float *const *C, int ldc, int count);

} // namespace dpc

#define DPC_CUDA(call)                                                                            \
    do {                                                                                          \
        cudaError_t dpc_error_ = (call);                                                          \
        if (dpc_error_ != cudaSuccess) return dpc::fail_cuda(dpc_error_, #call);                  \
    } while (0)

#define DPC_BLAS(call)                                                                            \
    do {                                                                                          \
        cublasStatus_t dpc_status_ = (call);                                                      \
        if (dpc_status_ != CUBLAS_STATUS_SUCCESS) return dpc::fail_blas(dpc_status_, #call);      \
    } while (0)

/// After a kernel launch: a bad configuration is reported here, a fault at the next sync.
#define DPC_LAUNCHED(kernel) DPC_CUDA(cudaGetLastError())

#define DPC_GRID_STRIDE(i, count)                                                                 \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (count);                \
         i += (int64_t)gridDim.x * blockDim.x)
