// The CUDA runtime as the CPU emulator provides it: the subset of types, calls and device
// intrinsics that cuda/kernels/ uses, so that g++ compiles the same kernel sources for the host.
// scripts/build-cuda-emulator.sh rewrites each `kernel<<<grid, block>>>(arguments)` launch into
// dpcemu::launch(kernel, grid, block, arguments), which runs every block's threads as fibers
// (runtime.cpp). A kernel that uses anything outside this subset fails to compile here, rather
// than running with different meaning.
#pragma once

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <tuple>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
// One block runs at a time on the launching host thread, so a function-local static of that
// thread is exactly one block's shared memory; like CUDA's, it starts each block holding
// whatever was there.
#define __shared__ static thread_local

struct uint3 {
    unsigned x, y, z;
};

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidMemcpyDirection = 21,
    cudaErrorInvalidDevice = 101,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorIllegalAddress = 700,
    cudaErrorLaunchFailure = 719,
};

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
};

enum cudaDataType_t { CUDA_R_32F = 0, CUDA_R_16BF = 14 };

typedef struct CUstream_st *cudaStream_t;
typedef struct CUevent_st *cudaEvent_t;

enum { cudaStreamNonBlocking = 0x01 };
enum { cudaEventDisableTiming = 0x02 };

struct cudaDeviceProp {
    char name[256];
};

cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *properties, int device);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaGetLastError(void);
const char *cudaGetErrorString(cudaError_t error);
const char *cudaGetErrorName(cudaError_t error);
cudaError_t cudaMalloc(void **pointer, size_t bytes);
cudaError_t cudaFree(void *pointer);
cudaError_t cudaMemcpy(void *destination, const void *source, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *destination, const void *source, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream);
cudaError_t cudaMemsetAsync(void *pointer, int value, size_t bytes, cudaStream_t stream);
cudaError_t cudaMallocHost(void **pointer, size_t bytes);
cudaError_t cudaFreeHost(void *pointer);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned flags);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned flags);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventDestroy(cudaEvent_t event);

namespace dpcemu {

/// The running thread's coordinates, set by the scheduler before it resumes a fiber.
struct Coordinates {
    uint3 thread, block;
    dim3 block_size, grid_size;
};
// Kernels read it in every statement; constinit spares each read the thread_local
// initialisation check. (initial-exec TLS would spare the lookup too, but a library that
// dlopen loads cannot count on static TLS space.)
extern thread_local constinit Coordinates current;

/// Runs `body` once for every thread of `grid` x `block`, or records the launch error that
/// cudaGetLastError will return.
void run_grid(dim3 grid, dim3 block, const char *kernel, void (*body)(void *), void *context);

/// Nonzero when `pointer` is not null and lies outside every live cudaMalloc allocation: a host
/// pointer handed to a kernel. Records the error for cudaGetLastError.
bool reject_host_pointer(const void *pointer, const char *kernel, int argument);

void sync_threads();
float shuffle_xor(float value, int lane_mask);

/// DPCUDA_EMULATOR_PROFILE's counters (profile.cpp); each does nothing when it is unset.
void count_launch(const char *kernel);
void count_blas(const char *call, uint64_t matrices, double flops);
void count_copy(const char *direction, size_t bytes);

template <typename Argument> bool accepts(const Argument &argument, const char *kernel, int index) {
    if constexpr (std::is_pointer_v<Argument>) return !reject_host_pointer((const void *)argument, kernel, index);
    return true;
}

template <typename... Parameters, typename... Arguments>
void launch_named(const char *name, void (*kernel)(Parameters...), dim3 grid, dim3 block,
                  Arguments &&...arguments) {
    // Arguments pass by value into the kernel's own parameter types, as a launch copies them.
    using Copied = std::tuple<std::decay_t<Parameters>...>;
    struct Context {
        void (*kernel)(Parameters...);
        Copied arguments;
    } context{kernel, Copied(std::forward<Arguments>(arguments)...)};
    bool accepted = std::apply(
        [&](const auto &...copied) {
            int index = 0;
            return (accepts(copied, name, index++) && ...);
        },
        context.arguments);
    if (!accepted) return;
    run_grid(grid, block, name, [](void *opaque) {
        Context &c = *(Context *)opaque;
        std::apply(c.kernel, c.arguments);
    }, &context);
}

} // namespace dpcemu

#define dpcemu_launch(kernel, ...) dpcemu::launch_named(#kernel, kernel, __VA_ARGS__)

#define threadIdx (dpcemu::current.thread)
#define blockIdx (dpcemu::current.block)
#define blockDim (dpcemu::current.block_size)
#define gridDim (dpcemu::current.grid_size)

inline void __syncthreads() { dpcemu::sync_threads(); }

inline float __shfl_xor_sync(unsigned mask, float value, int lane_mask) {
    (void)mask; // every caller passes the full warp; the scheduler checks that all 32 lanes take part
    return dpcemu::shuffle_xor(value, lane_mask);
}

// Fibers switch only at barriers, so a read-modify-write is already indivisible.
inline float atomicAdd(float *address, float value) {
    float old = *address;
    *address = old + value;
    return old;
}

inline uint32_t __float_as_uint(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits;
}

inline float __uint_as_float(uint32_t bits) {
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}
