// cuBLAS on the CPU: each call checks its arguments as cuBLAS does, checks that every matrix it
// reads or writes lies inside one device allocation, and computes with OpenBLAS in fp32.
//
// The math mode is honoured as the GPU honours it: under CUBLAS_PEDANTIC_MATH a
// CUBLAS_COMPUTE_32F_FAST_TF32 product stays fp32; otherwise its operands are rounded to tf32
// (to nearest even), as the tensor cores read them. bf16 operands are widened exactly to fp32,
// and every product sums in fp32.
#include "cublas_v2.h"
#include "cuda_bf16.h"

#include <cblas.h>

#include <vector>

namespace dpcemu {
bool holds(const void *pointer, size_t bytes);
} // namespace dpcemu

using dpcemu::count_blas;

struct cublasContext {
    cublasMath_t math = CUBLAS_DEFAULT_MATH;
};

namespace {

// Why the last call was refused, for cublasGetStatusString: cuBLAS itself says only "invalid value".
thread_local const char *refusal = "CUBLAS_STATUS_INVALID_VALUE";

cublasStatus_t invalid(const char *message) {
    refusal = message;
    return CUBLAS_STATUS_INVALID_VALUE;
}

/// A column-major matrix of `rows` x `columns` with leading dimension `ld` lies in one allocation.
bool spans(const void *matrix, int rows, int columns, int ld, size_t element_bytes) {
    if (rows == 0 || columns == 0) return true;
    size_t elements = (size_t)(columns - 1) * ld + rows;
    return dpcemu::holds(matrix, elements * element_bytes);
}

size_t element_bytes(cudaDataType_t type) { return type == CUDA_R_16BF ? 2 : 4; }

CBLAS_TRANSPOSE blas_operation(cublasOperation_t operation) {
    return operation == CUBLAS_OP_T ? CblasTrans : CblasNoTrans;
}

/// The product's shape and leading dimensions as cuBLAS validates them, and the operands' extents.
cublasStatus_t check_gemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                          int k, const void *A, int lda, size_t a_bytes, const void *B, int ldb, size_t b_bytes,
                          const void *C, int ldc) {
    if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (m < 0 || n < 0 || k < 0) return invalid("cuBLAS gemm: a negative dimension");
    int a_rows = transa == CUBLAS_OP_N ? m : k, a_columns = transa == CUBLAS_OP_N ? k : m;
    int b_rows = transb == CUBLAS_OP_N ? k : n, b_columns = transb == CUBLAS_OP_N ? n : k;
    if (lda < (a_rows > 1 ? a_rows : 1) || ldb < (b_rows > 1 ? b_rows : 1) || ldc < (m > 1 ? m : 1))
        return invalid("cuBLAS gemm: a leading dimension smaller than its matrix's rows");
    if (!spans(A, a_rows, a_columns, lda, a_bytes)) return invalid("cuBLAS gemm: A runs past its device allocation");
    if (!spans(B, b_rows, b_columns, ldb, b_bytes)) return invalid("cuBLAS gemm: B runs past its device allocation");
    if (!spans(C, m, n, ldc, 4)) return invalid("cuBLAS gemm: C runs past its device allocation");
    return CUBLAS_STATUS_SUCCESS;
}

float rounded_to_tf32(float x) {
    if (isnan(x)) return x;
    uint32_t bits = __float_as_uint(x);
    return __uint_as_float((bits + 0xFFFu + ((bits >> 13) & 1u)) & ~0x1FFFu);
}

/// An operand of `rows` x `columns` (leading dimension ld) as the fp32 numbers the product reads.
std::vector<float> widened(const void *matrix, cudaDataType_t type, bool tf32, int rows, int columns, int ld) {
    std::vector<float> values((size_t)ld * columns);
    for (int column = 0; column < columns; column++) {
        for (int row = 0; row < rows; row++) {
            size_t at = (size_t)column * ld + row;
            float x = type == CUDA_R_16BF ? __bfloat162float(((const __nv_bfloat16 *)matrix)[at])
                                          : ((const float *)matrix)[at];
            values[at] = tf32 ? rounded_to_tf32(x) : x;
        }
    }
    return values;
}

cublasStatus_t gemm_ex(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
                       const void *alpha, const void *A, cudaDataType_t Atype, int lda, const void *B,
                       cudaDataType_t Btype, int ldb, const void *beta, void *C, cudaDataType_t Ctype, int ldc,
                       cublasComputeType_t compute) {
    if (Ctype != CUDA_R_32F || Atype != Btype || (Atype != CUDA_R_32F && Atype != CUDA_R_16BF))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_FAST_TF32) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (compute == CUBLAS_COMPUTE_32F_FAST_TF32 && Atype != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    cublasStatus_t status = check_gemm(handle, transa, transb, m, n, k, A, lda, element_bytes(Atype), B, ldb,
                                       element_bytes(Btype), C, ldc);
    if (status != CUBLAS_STATUS_SUCCESS || m == 0 || n == 0) return status;
    bool tf32 = compute == CUBLAS_COMPUTE_32F_FAST_TF32 && handle->math != CUBLAS_PEDANTIC_MATH;
    int a_rows = transa == CUBLAS_OP_N ? m : k, a_columns = transa == CUBLAS_OP_N ? k : m;
    int b_rows = transb == CUBLAS_OP_N ? k : n, b_columns = transb == CUBLAS_OP_N ? n : k;
    std::vector<float> a = widened(A, Atype, tf32, a_rows, a_columns, lda);
    std::vector<float> b = widened(B, Btype, tf32, b_rows, b_columns, ldb);
    cblas_sgemm(CblasColMajor, blas_operation(transa), blas_operation(transb), m, n, k, *(const float *)alpha,
                a.data(), lda, b.data(), ldb, *(const float *)beta, (float *)C, ldc);
    return CUBLAS_STATUS_SUCCESS;
}

/// A batch's arrays of matrix pointers, which cuBLAS reads from device memory.
bool pointer_arrays_on_device(const void *A, const void *B, const void *C, int count) {
    size_t bytes = (size_t)count * sizeof(void *);
    return dpcemu::holds(A, bytes) && dpcemu::holds(B, bytes) && dpcemu::holds(C, bytes);
}

cublasStatus_t sgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
                     const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta, float *C,
                     int ldc) {
    cublasStatus_t status = check_gemm(handle, transa, transb, m, n, k, A, lda, 4, B, ldb, 4, C, ldc);
    if (status != CUBLAS_STATUS_SUCCESS || m == 0 || n == 0) return status;
    cblas_sgemm(CblasColMajor, blas_operation(transa), blas_operation(transb), m, n, k, *alpha, A, lda, B, ldb, *beta,
                C, ldc);
    return CUBLAS_STATUS_SUCCESS;
}

} // namespace

cublasStatus_t cublasCreate(cublasHandle_t *handle) {
    // The launching host thread is the emulated GPU. OpenBLAS's own workers would only spin
    // beside it between products, taking a core from the other ranks that share the machine.
    openblas_set_num_threads(1);
    *handle = new cublasContext();
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode != CUBLAS_DEFAULT_MATH && mode != CUBLAS_PEDANTIC_MATH) return CUBLAS_STATUS_INVALID_VALUE;
    handle->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusString(cublasStatus_t status) {
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return refusal;
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                           int k, const float *alpha, const float *A, int lda, const float *B, int ldb,
                           const float *beta, float *C, int ldc) {
    count_blas("cublasSgemm", 1, 2.0 * m * n * k);
    return sgemm(handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

cublasStatus_t cublasSgemmBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                                  int n, int k, const float *alpha, const float *const A[], int lda,
                                  const float *const B[], int ldb, const float *beta, float *const C[], int ldc,
                                  int batchCount) {
    if (batchCount < 0) return invalid("cuBLAS gemm batched: a negative batch count");
    if (!pointer_arrays_on_device(A, B, C, batchCount))
        return invalid("cuBLAS gemm batched: an array of matrix pointers is not in device memory");
    count_blas("cublasSgemmBatched", batchCount, 2.0 * m * n * k * batchCount);
    for (int i = 0; i < batchCount; i++) {
        cublasStatus_t status =
            sgemm(handle, transa, transb, m, n, k, alpha, A[i], lda, B[i], ldb, beta, C[i], ldc);
        if (status != CUBLAS_STATUS_SUCCESS) return status;
    }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemv(cublasHandle_t handle, cublasOperation_t trans, int m, int n, const float *alpha,
                           const float *A, int lda, const float *x, int incx, const float *beta, float *y, int incy) {
    if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (m < 0 || n < 0 || lda < (m > 1 ? m : 1) || incx == 0 || incy == 0) return invalid("cuBLAS gemv: arguments");
    int x_count = trans == CUBLAS_OP_N ? n : m, y_count = trans == CUBLAS_OP_N ? m : n;
    if (!spans(A, m, n, lda, 4) || !spans(x, 1, x_count, incx < 0 ? -incx : incx, 4) ||
        !spans(y, 1, y_count, incy < 0 ? -incy : incy, 4))
        return invalid("cuBLAS gemv: an operand runs past its device allocation");
    count_blas("cublasSgemv", 1, 2.0 * m * n);
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
    cblas_sgemv(CblasColMajor, blas_operation(trans), m, n, *alpha, A, lda, x, incx, *beta, y, incy);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void *alpha, const void *A, cudaDataType_t Atype, int lda, const void *B,
                            cudaDataType_t Btype, int ldb, const void *beta, void *C, cudaDataType_t Ctype, int ldc,
                            cublasComputeType_t computeType, cublasGemmAlgo_t) {
    count_blas("cublasGemmEx", 1, 2.0 * m * n * k);
    return gemm_ex(handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc,
                   computeType);
}

cublasStatus_t cublasGemmBatchedEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                                   int n, int k, const void *alpha, const void *const Aarray[], cudaDataType_t Atype,
                                   int lda, const void *const Barray[], cudaDataType_t Btype, int ldb,
                                   const void *beta, void *const Carray[], cudaDataType_t Ctype, int ldc,
                                   int batchCount, cublasComputeType_t computeType, cublasGemmAlgo_t) {
    if (batchCount < 0) return invalid("cuBLAS gemm batched: a negative batch count");
    if (!pointer_arrays_on_device(Aarray, Barray, Carray, batchCount))
        return invalid("cuBLAS gemm batched: an array of matrix pointers is not in device memory");
    count_blas("cublasGemmBatchedEx", batchCount, 2.0 * m * n * k * batchCount);
    for (int i = 0; i < batchCount; i++) {
        cublasStatus_t status = gemm_ex(handle, transa, transb, m, n, k, alpha, Aarray[i], Atype, lda, Barray[i],
                                        Btype, ldb, beta, Carray[i], Ctype, ldc, computeType);
        if (status != CUBLAS_STATUS_SUCCESS) return status;
    }
    return CUBLAS_STATUS_SUCCESS;
}
