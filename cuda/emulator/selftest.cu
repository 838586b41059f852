// The emulator's own test: every mistake it claims to catch (runtime.cpp, cublas.cpp) is made
// here on purpose and must end in its error, and correct kernels must give exact results in
// both thread orders. Each case runs in its own child process, since a failed launch ends the
// emulated context as it ends a GPU's. scripts/build-cuda-emulator.sh builds it next to the
// library; scripts/tests/check_cuda_emulator.sh runs it.

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

namespace {

constexpr int kBlockThreads = 256;

// ---- Kernels, correct and not -------------------------------------------------------------

__device__ float warp_sum(float value) {
    for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xFFFFFFFFu, value, offset);
    return value;
}

// out: (gridDim.x) partial sums of values (count), through shared memory and shuffles.
__global__ void block_sum_kernel(float *out, const float *values, int count) {
    __shared__ float warp_sums[kBlockThreads / 32];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    float sum = warp_sum(i < count ? values[i] : 0.0f);
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) warp_sums[warp] = sum;
    __syncthreads();
    if (warp == 0) {
        sum = warp_sum(lane < kBlockThreads / 32 ? warp_sums[lane] : 0.0f);
        if (lane == 0) out[blockIdx.x] = sum;
    }
}

enum class Neighbours { clear, unsynchronised, synchronised };

// out (blockDim.x): each thread's neighbour's value, read from shared memory with or without the
// barrier between the writes and the reads; `clear` zeroes the shared memory the next launch starts from.
__global__ void neighbour_kernel(float *out, Neighbours mode) {
    __shared__ float slots[kBlockThreads];
    int t = threadIdx.x;
    if (mode == Neighbours::clear) {
        slots[t] = 0;
        return;
    }
    slots[t] = (float)(t + 1);
    if (mode == Neighbours::synchronised) __syncthreads();
    out[t] = slots[(t + 1) % blockDim.x];
}

// Half a warp at __syncthreads, the other half at a shuffle: neither barrier can ever open.
__global__ void split_barrier_kernel(float *out) {
    if (threadIdx.x < 16) __syncthreads();
    else out[threadIdx.x] = warp_sum(1.0f);
}

__global__ void early_return_kernel(float *out) {
    if (threadIdx.x == 0) return;
    out[threadIdx.x] = warp_sum(1.0f);
}

__global__ void fill_kernel(float *out, float value) { out[blockIdx.x * blockDim.x + threadIdx.x] = value; }

// ---- Checks -------------------------------------------------------------------------------

bool failed_with(cudaError_t expected, const char *fragment) {
    cudaError_t error = cudaGetLastError();
    const char *account = cudaGetErrorString(error);
    if (error != expected || strstr(account, fragment) == nullptr) {
        printf("    expected %s mentioning \"%s\", got %s: %s\n", cudaGetErrorName(expected), fragment,
               cudaGetErrorName(error), account);
        return false;
    }
    return true;
}

float *device_floats(int count) {
    void *pointer = nullptr;
    if (cudaMalloc(&pointer, sizeof(float) * count) != cudaSuccess) {
        printf("    cudaMalloc(%d floats) failed\n", count);
        exit(1);
    }
    return (float *)pointer;
}

std::vector<float> host_copy(const float *device, int count) {
    std::vector<float> host(count);
    if (cudaMemcpy(host.data(), device, sizeof(float) * count, cudaMemcpyDeviceToHost) != cudaSuccess) {
        printf("    the copy back failed: %s\n", cudaGetErrorString(cudaGetLastError()));
        exit(1);
    }
    return host;
}

void set_order(const char *order) { setenv("DPCUDA_EMULATOR_ORDER", order, 1); }

/// Three blocks of integers, so every partial sum is exact and both orders must give it.
bool block_sums_are_exact_in_both_orders() {
    const int count = 3 * kBlockThreads - 40;
    std::vector<float> values(count);
    for (int i = 0; i < count; i++) values[i] = (float)(i % 97);
    float *in = device_floats(count), *out = device_floats(3);
    cudaMemcpy(in, values.data(), sizeof(float) * count, cudaMemcpyHostToDevice);
    for (const char *order : {"forward", "reverse"}) {
        set_order(order);
        block_sum_kernel<<<3, kBlockThreads>>>(out, in, count);
        if (cudaGetLastError() != cudaSuccess) return false;
        std::vector<float> sums = host_copy(out, 3);
        for (int b = 0; b < 3; b++) {
            double expected = 0;
            for (int i = b * kBlockThreads; i < count && i < (b + 1) * kBlockThreads; i++) expected += values[i];
            if (sums[b] != (float)expected) {
                printf("    %s order: block %d summed to %g, expected %g\n", order, b, sums[b], expected);
                return false;
            }
        }
    }
    return true;
}

/// What each order reads from its neighbours, from cleared shared memory.
std::vector<float> neighbours(const char *order, Neighbours mode) {
    float *out = device_floats(kBlockThreads);
    neighbour_kernel<<<1, kBlockThreads>>>(out, Neighbours::clear);
    set_order(order);
    neighbour_kernel<<<1, kBlockThreads>>>(out, mode);
    set_order("forward");
    return host_copy(out, kBlockThreads);
}

bool a_missing_barrier_reads_differently_in_the_two_orders() {
    if (neighbours("forward", Neighbours::unsynchronised) == neighbours("reverse", Neighbours::unsynchronised)) {
        printf("    without the barrier both orders read the same values\n");
        return false;
    }
    std::vector<float> forward = neighbours("forward", Neighbours::synchronised);
    if (forward != neighbours("reverse", Neighbours::synchronised)) {
        printf("    with the barrier the two orders still differ\n");
        return false;
    }
    for (int t = 0; t < kBlockThreads; t++) {
        if (forward[t] != (float)((t + 1) % kBlockThreads + 1)) {
            printf("    with the barrier thread %d read %g\n", t, forward[t]);
            return false;
        }
    }
    return true;
}

bool a_barrier_that_cannot_open_is_an_error() {
    split_barrier_kernel<<<1, 32>>>(device_floats(32));
    return failed_with(cudaErrorLaunchFailure, "can never pass its barriers");
}

bool a_shuffle_after_a_lane_returned_is_an_error() {
    early_return_kernel<<<1, 32>>>(device_floats(32));
    return failed_with(cudaErrorLaunchFailure, "after 1 of its lanes returned");
}

bool a_shuffle_in_a_partial_warp_is_an_error() {
    float *out = device_floats(48);
    block_sum_kernel<<<1, 48>>>(out, out, 48);
    return failed_with(cudaErrorLaunchFailure, "whose last warp is partial");
}

bool a_failure_ends_the_context() {
    float *out = device_floats(64);
    early_return_kernel<<<1, 32>>>(out);
    cudaGetLastError();
    fill_kernel<<<2, 32>>>(out, 1.0f);
    if (!failed_with(cudaErrorLaunchFailure, "launched after an earlier kernel failed")) return false;
    std::vector<float> host(64);
    cudaError_t copied = cudaMemcpy(host.data(), out, sizeof(float) * 64, cudaMemcpyDeviceToHost);
    if (copied != cudaErrorLaunchFailure || cudaDeviceSynchronize() != cudaErrorLaunchFailure) {
        printf("    after the failure a copy returned %s\n", cudaGetErrorName(copied));
        return false;
    }
    return true;
}

bool an_oversized_block_is_refused() {
    fill_kernel<<<1, 2048>>>(device_floats(2048), 1.0f);
    return failed_with(cudaErrorInvalidConfiguration, "fill_kernel");
}

bool a_host_pointer_in_a_kernel_is_refused() {
    std::vector<float> host(32);
    fill_kernel<<<1, 32>>>(host.data(), 1.0f);
    if (!failed_with(cudaErrorInvalidDevicePointer, "argument 0")) return false;
    if (host[0] != 0) {
        printf("    the kernel ran on host memory\n");
        return false;
    }
    return true;
}

bool a_copy_past_its_allocation_is_refused() {
    float *out = device_floats(4);
    std::vector<float> host(8);
    if (cudaMemcpy(out, host.data(), sizeof(float) * 8, cudaMemcpyHostToDevice) != cudaErrorInvalidValue) return false;
    return failed_with(cudaErrorInvalidValue, "not inside one device allocation");
}

bool fresh_memory_reads_as_nan() {
    for (float x : host_copy(device_floats(100), 100)) {
        if (!isnan(x)) {
            printf("    a fresh allocation held %g\n", x);
            return false;
        }
    }
    return true;
}

bool memory_beyond_the_configured_capacity_is_refused() {
    setenv("DPCUDA_EMULATOR_MEMORY", "4096", 1);
    void *first = nullptr, *second = nullptr;
    if (cudaMalloc(&first, 3000) != cudaSuccess) return false;
    if (cudaMalloc(&second, 2000) != cudaErrorMemoryAllocation) {
        printf("    5000 bytes fit in 4096\n");
        return false;
    }
    if (!failed_with(cudaErrorMemoryAllocation, "2000 bytes requested, 3000 of 4096 in use")) return false;
    cudaFree(first);
    return cudaMalloc(&second, 2000) == cudaSuccess;
}

cublasHandle_t blas() {
    cublasHandle_t handle = nullptr;
    if (cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) exit(1);
    return handle;
}

/// C (3 x 4) = A (3 x 5) B (5 x 4) + 2 C, column-major, against a loop in double.
bool sgemm_matches_a_loop() {
    const int m = 3, n = 4, k = 5;
    std::vector<float> a(m * k), b(k * n), c(m * n);
    for (int i = 0; i < m * k; i++) a[i] = 0.25f * (float)(i % 7) - 0.5f;
    for (int i = 0; i < k * n; i++) b[i] = 0.125f * (float)(i % 5) + 0.1f;
    for (int i = 0; i < m * n; i++) c[i] = (float)i;
    float *A = device_floats(m * k), *B = device_floats(k * n), *C = device_floats(m * n);
    cudaMemcpy(A, a.data(), sizeof(float) * m * k, cudaMemcpyHostToDevice);
    cudaMemcpy(B, b.data(), sizeof(float) * k * n, cudaMemcpyHostToDevice);
    cudaMemcpy(C, c.data(), sizeof(float) * m * n, cudaMemcpyHostToDevice);
    float one = 1, two = 2;
    if (cublasSgemm(blas(), CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, A, m, B, k, &two, C, m) != CUBLAS_STATUS_SUCCESS)
        return false;
    std::vector<float> got = host_copy(C, m * n);
    for (int row = 0; row < m; row++) {
        for (int column = 0; column < n; column++) {
            double expected = 2.0 * c[column * m + row];
            for (int j = 0; j < k; j++) expected += (double)a[j * m + row] * b[column * k + j];
            if (fabs(got[column * m + row] - expected) > 1e-6 * (1 + fabs(expected))) {
                printf("    C[%d][%d] = %.9g, expected %.9g\n", row, column, got[column * m + row], expected);
                return false;
            }
        }
    }
    return true;
}

bool sgemm_refuses_bad_arguments() {
    float *A = device_floats(6), *B = device_floats(6), *C = device_floats(4), one = 1;
    cublasHandle_t handle = blas();
    // A leading dimension below the rows, then a B that would run past its 6 floats (2 x 4).
    if (cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, A, 1, B, 3, &one, C, 2) !=
        CUBLAS_STATUS_INVALID_VALUE)
        return false;
    if (strstr(cublasGetStatusString(CUBLAS_STATUS_INVALID_VALUE), "leading dimension") == nullptr) return false;
    return cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, 2, 4, 3, &one, A, 2, B, 3, &one, C, 2) ==
           CUBLAS_STATUS_INVALID_VALUE;
}

/// 1 + 2^-20 times 1: TF32 keeps 10 mantissa bits, so the tensor-core product is exactly 1,
/// and under pedantic math the fp32 one keeps the 2^-20.
bool tf32_products_round_their_operands_unless_pedantic() {
    float a = 1.0f + 1.0f / (1 << 20), b = 1.0f, zero = 0, one = 1;
    float *A = device_floats(1), *B = device_floats(1), *C = device_floats(1);
    cudaMemcpy(A, &a, sizeof a, cudaMemcpyHostToDevice);
    cudaMemcpy(B, &b, sizeof b, cudaMemcpyHostToDevice);
    cublasHandle_t handle = blas();
    for (cublasMath_t mode : {CUBLAS_DEFAULT_MATH, CUBLAS_PEDANTIC_MATH}) {
        cublasSetMathMode(handle, mode);
        if (cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, A, CUDA_R_32F, 1, B, CUDA_R_32F, 1, &zero, C,
                         CUDA_R_32F, 1, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT) != CUBLAS_STATUS_SUCCESS)
            return false;
        float expected = mode == CUBLAS_PEDANTIC_MATH ? a : 1.0f;
        if (host_copy(C, 1)[0] != expected) {
            printf("    math mode %d: %.9g, expected %.9g\n", (int)mode, host_copy(C, 1)[0], expected);
            return false;
        }
    }
    return true;
}

/// A stream or event that does not exist (destroyed, or never made) is refused, as is freeing
/// page-locked memory that cudaMallocHost did not return.
bool dead_streams_events_and_foreign_host_memory_are_refused() {
    cudaEvent_t event = nullptr;
    if (cudaEventCreateWithFlags(&event, cudaEventDisableTiming) != cudaSuccess) return false;
    if (cudaEventRecord(event, 0) != cudaSuccess || cudaEventSynchronize(event) != cudaSuccess) return false;
    if (cudaEventDestroy(event) != cudaSuccess) return false;
    if (cudaEventSynchronize(event) != cudaErrorInvalidResourceHandle) return false;
    if (!failed_with(cudaErrorInvalidResourceHandle, "cudaEventSynchronize")) return false;
    float *device = device_floats(4);
    std::vector<float> host(4);
    if (cudaMemcpyAsync(host.data(), device, sizeof(float) * 4, cudaMemcpyDeviceToHost, (cudaStream_t)host.data()) !=
        cudaErrorInvalidResourceHandle)
        return false;
    cudaGetLastError();
    if (cudaFreeHost(host.data()) != cudaErrorInvalidValue) return false;
    return failed_with(cudaErrorInvalidValue, "not from cudaMallocHost");
}

struct Case {
    const char *name;
    bool (*check)();
};

const Case cases[] = {
    {"block sums are exact in both orders", block_sums_are_exact_in_both_orders},
    {"a missing barrier reads differently in the two orders", a_missing_barrier_reads_differently_in_the_two_orders},
    {"a barrier that cannot open is an error", a_barrier_that_cannot_open_is_an_error},
    {"a shuffle after a lane returned is an error", a_shuffle_after_a_lane_returned_is_an_error},
    {"a shuffle in a partial warp is an error", a_shuffle_in_a_partial_warp_is_an_error},
    {"a failure ends the context", a_failure_ends_the_context},
    {"an oversized block is refused", an_oversized_block_is_refused},
    {"a host pointer in a kernel is refused", a_host_pointer_in_a_kernel_is_refused},
    {"a copy past its allocation is refused", a_copy_past_its_allocation_is_refused},
    {"fresh memory reads as NaN", fresh_memory_reads_as_nan},
    {"memory beyond the configured capacity is refused", memory_beyond_the_configured_capacity_is_refused},
    {"sgemm matches a loop", sgemm_matches_a_loop},
    {"sgemm refuses bad arguments", sgemm_refuses_bad_arguments},
    {"tf32 products round their operands unless pedantic", tf32_products_round_their_operands_unless_pedantic},
    {"dead streams and events and foreign host memory are refused",
     dead_streams_events_and_foreign_host_memory_are_refused},
};

} // namespace

int main() {
    int failures = 0;
    for (const Case &c : cases) {
        fflush(stdout);
        pid_t child = fork();
        if (child == 0) {
            bool passed = c.check();
            fflush(stdout);
            _exit(passed ? 0 : 1);
        }
        int status = 0;
        waitpid(child, &status, 0);
        bool passed = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        printf("%s %s\n", passed ? "pass" : "FAIL", c.name);
        failures += passed ? 0 : 1;
    }
    printf("emulator self-test: %d of %zu cases failed\n", failures, sizeof cases / sizeof cases[0]);
    return failures == 0 ? 0 : 1;
}
