// The library's state (the device, the cuBLAS handle, scratch buffers, the last error) and the
// memory functions of the ABI.

#include "common.cuh"

#include <stdarg.h>
#include <stdio.h>

namespace {
// One message per host thread, as CUDA's own error state is.
thread_local char last_error[1024] = "no error";
cublasHandle_t handle = nullptr;
struct Buffer {
    void *pointer = nullptr;
    size_t bytes = 0;
};
Buffer scratch_buffers[dpc::kScratchCount];
int64_t ones_filled = 0;

__global__ void fill_kernel(float *buffer, float value, int64_t count) {
    DPC_GRID_STRIDE(i, count) buffer[i] = value;
}
} // namespace

namespace dpc {

int fail(const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(last_error, sizeof last_error, format, arguments);
    va_end(arguments);
    return 1;
}

int fail_cuda(cudaError_t error, const char *call) {
    return fail("%s: %s (%s)", call, cudaGetErrorString(error), cudaGetErrorName(error));
}

int fail_blas(cublasStatus_t status, const char *call) {
    return fail("%s: %s", call, cublasGetStatusString(status));
}

cublasHandle_t blas() { return handle; }

void *scratch(Scratch which, size_t bytes) {
    Buffer &buffer = scratch_buffers[which];
    if (buffer.bytes >= bytes) return buffer.pointer;
    // cudaFree waits for the kernels still using the old buffer.
    if (buffer.pointer != nullptr) cudaFree(buffer.pointer);
    buffer = Buffer();
    if (which == kOnes) ones_filled = 0;
    cudaError_t error = cudaMalloc(&buffer.pointer, bytes);
    if (error != cudaSuccess) {
        fail_cuda(error, "cudaMalloc (scratch)");
        buffer.pointer = nullptr;
        return nullptr;
    }
    buffer.bytes = bytes;
    return buffer.pointer;
}

const float *ones(int64_t count) {
    float *buffer = (float *)scratch(kOnes, (size_t)count * sizeof(float));
    if (buffer == nullptr || ones_filled >= count) return buffer;
    fill_kernel<<<blocks_for(count), kThreads>>>(buffer, 1.0f, count);
    if (cudaGetLastError() != cudaSuccess) {
        fail("filling the ones vector failed");
        return nullptr;
    }
    ones_filled = count;
    return buffer;
}

} // namespace dpc

extern "C" {

int dpc_abi_version(void) { return DPCUDA_ABI_VERSION; }

const char *dpc_last_error(void) { return last_error; }

int dpc_init(int local_rank, int *host_device, char *host_name, size_t name_capacity) {
    int count = 0;
    DPC_CUDA(cudaGetDeviceCount(&count));
    if (count < 1) return dpc::fail("no GPU visible");
    if (local_rank < 0) return dpc::fail("local rank %d", local_rank);
    int device = local_rank % count;
    DPC_CUDA(cudaSetDevice(device));
    *host_device = device;
    cudaDeviceProp properties;
    DPC_CUDA(cudaGetDeviceProperties(&properties, device));
    snprintf(host_name, name_capacity, "%s", properties.name);
    if (handle == nullptr) DPC_BLAS(cublasCreate(&handle));
    // Plain fp32 products: TF32 tensor cores would differ from the CPU backend by about 1e-3.
    DPC_BLAS(cublasSetMathMode(handle, CUBLAS_PEDANTIC_MATH));
    return 0;
}

int dpc_synchronize(void) {
    DPC_CUDA(cudaDeviceSynchronize());
    return 0;
}

int dpc_malloc(void **pointer, size_t bytes) {
    DPC_CUDA(cudaMalloc(pointer, bytes));
    return 0;
}

int dpc_free(void *pointer) {
    DPC_CUDA(cudaFree(pointer));
    return 0;
}

int dpc_upload(void *destination, const void *host_source, size_t bytes) {
    DPC_CUDA(cudaMemcpy(destination, host_source, bytes, cudaMemcpyHostToDevice));
    return 0;
}

int dpc_download(void *host_destination, const void *source, size_t bytes) {
    DPC_CUDA(cudaMemcpy(host_destination, source, bytes, cudaMemcpyDeviceToHost));
    return 0;
}

int dpc_copy(void *destination, const void *source, size_t bytes) {
    DPC_CUDA(cudaMemcpyAsync(destination, source, bytes, cudaMemcpyDeviceToDevice, 0));
    return 0;
}

int dpc_zero(void *pointer, size_t bytes) {
    DPC_CUDA(cudaMemsetAsync(pointer, 0, bytes, 0));
    return 0;
}

} // extern "C"
