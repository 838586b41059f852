// The CUDA runtime on the CPU: device memory, error state, and the block scheduler that runs a
// kernel's threads as fibers on the launching host thread.
//
// Blocks run one after another. Within a block every thread is a fiber that runs until it
// reaches a barrier (__syncthreads, or a warp shuffle, a warp-wide barrier) or
// returns; a barrier opens when every live thread it spans has reached it. What a GPU would do
// differently is an error here, not a silent answer: a barrier that cannot open (threads of one
// block or warp waiting at different barriers, or a shuffle after a lane of its warp returned),
// a partial warp that shuffles, a launch configuration the hardware refuses, a host pointer
// handed to a kernel, a copy that runs past its allocation. Fresh allocations are filled with
// NaN bytes, so a read of memory no one wrote shows in the results.
//
// DPCUDA_EMULATOR_ORDER=reverse runs blocks, and the threads between two barriers, in reverse
// order: a kernel that reads what another thread writes without a barrier between them then
// sees a different value in one of the two orders.
//
// DPCUDA_EMULATOR_MEMORY=<bytes> gives the emulated GPU that much memory, so that running out of
// it can be tested: a cudaMalloc beyond it fails with cudaErrorMemoryAllocation, as on a GPU.
// DPCUDA_EMULATOR_DEVICES=<n> makes it n GPUs (1 by default).
// DPCUDA_EMULATOR_PROFILE=<file> appends what was launched and copied at exit (profile.cpp).
#include "cuda_runtime.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace dpcemu {

thread_local constinit Coordinates current{};

namespace {

// ---- Errors -------------------------------------------------------------------------------

thread_local cudaError_t pending = cudaSuccess; // returned, then cleared, by cudaGetLastError
cudaError_t sticky = cudaSuccess;               // an execution failure ends the context, as on a GPU
thread_local char detail[1024] = "";

/// Records a failure for cudaGetLastError; until that clears it, later failures keep the first's account.
cudaError_t record(cudaError_t error, const char *format, ...) {
    if (pending != cudaSuccess) return error;
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(detail, sizeof detail, format, arguments);
    va_end(arguments);
    pending = error;
    if (error == cudaErrorLaunchFailure || error == cudaErrorIllegalAddress) sticky = error;
    return error;
}

// ---- Device memory ------------------------------------------------------------------------

std::mutex memory_lock;
std::map<uintptr_t, size_t> allocations; // start -> bytes
size_t bytes_in_use = 0;                 // the sum of allocations' bytes

/// DPCUDA_EMULATOR_MEMORY, or no limit.
size_t memory_capacity() {
    const char *configured = getenv("DPCUDA_EMULATOR_MEMORY");
    return configured != nullptr ? (size_t)strtoull(configured, nullptr, 10) : SIZE_MAX;
}

/// The allocation holding [pointer, pointer + bytes), as (start, bytes), or bytes 0 when none does.
std::pair<uintptr_t, size_t> allocation_holding(const void *pointer, size_t bytes) {
    std::lock_guard<std::mutex> guard(memory_lock);
    uintptr_t address = (uintptr_t)pointer;
    auto after = allocations.upper_bound(address);
    if (after == allocations.begin()) return {0, 0};
    auto holding = std::prev(after);
    if (address + bytes > holding->first + holding->second) return {0, 0};
    return *holding;
}

bool is_device_range(const void *pointer, size_t bytes) { return allocation_holding(pointer, bytes).second > 0; }

// ---- Fibers -------------------------------------------------------------------------------

constexpr size_t kStackBytes = 64 << 10;
constexpr int kMaxThreads = 1024;

enum class State { runnable, at_block_barrier, at_warp_barrier, done };

struct Fiber {
    void *stack_pointer = nullptr;
    State state = State::runnable;
    uint3 thread{0, 0, 0};
    unsigned shuffles = 0; // how many this thread has made, which picks its exchange slots
};

struct Block {
    const char *kernel = nullptr;
    void (*body)(void *) = nullptr;
    void *context = nullptr;
    int threads = 0;
    std::vector<Fiber> fibers;
    // Two sets, used by alternate shuffles: a lane writes a set again only after the next
    // shuffle's barrier, which every lane of its warp reaches only once it has read this one,
    // so one barrier per shuffle suffices.
    float shuffle_slots[2][kMaxThreads];
    Fiber *running = nullptr;
    void *scheduler_stack_pointer = nullptr;
    bool reverse = false; // DPCUDA_EMULATOR_ORDER=reverse
};

thread_local Block *active = nullptr;
thread_local char *stacks = nullptr; // kMaxThreads stacks, mapped once per host thread

} // namespace
} // namespace dpcemu

// switch_stack(save, next): saves the callee-saved registers on the current stack, stores its
// pointer in *save, and resumes the stack `next`. The ABI also preserves the floating-point
// control words, but no kernel changes them, so every fiber shares the host thread's and a
// switch (the emulator's hottest path) skips them.
extern "C" void dpcemu_switch_stack(void **save, void *next);

#if defined(__x86_64__)
asm(R"(
    .pushsection .text
    .globl dpcemu_switch_stack
    .type dpcemu_switch_stack, @function
dpcemu_switch_stack:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size dpcemu_switch_stack, .-dpcemu_switch_stack
    .popsection
)");
#else
#error "the CUDA emulator switches stacks with x86-64 assembly; port dpcemu_switch_stack to this architecture"
#endif

namespace dpcemu {
namespace {

[[noreturn]] void fiber_main() {
    Block &block = *active;
    block.body(block.context);
    block.running->state = State::done;
    dpcemu_switch_stack(&block.running->stack_pointer, block.scheduler_stack_pointer);
    __builtin_unreachable();
}

/// A stack that `dpcemu_switch_stack` resumes into fiber_main, with the ABI's alignment: the
/// return slot sits on a 16-byte boundary, so fiber_main starts as if called.
void *fresh_stack(char *stack) {
    uintptr_t top = ((uintptr_t)(stack + kStackBytes)) & ~(uintptr_t)15;
    uint64_t *slot = (uint64_t *)(top - 16);
    slot[0] = (uint64_t)(uintptr_t)&fiber_main; // return address
    uint64_t *frame = slot - 6;                  // r15, r14, r13, r12, rbx, rbp
    for (int i = 0; i < 6; i++) frame[i] = 0;
    return frame;
}

void wait_at(State barrier) {
    Block &block = *active;
    block.running->state = barrier;
    dpcemu_switch_stack(&block.running->stack_pointer, block.scheduler_stack_pointer);
}

/// Read at every launch, so that one process (the emulator's self-test) can run a kernel both ways.
bool reverse_order() {
    const char *order = getenv("DPCUDA_EMULATOR_ORDER");
    return order != nullptr && strcmp(order, "reverse") == 0;
}

const char *state_name(State state) {
    switch (state) {
    case State::runnable: return "running";
    case State::at_block_barrier: return "at __syncthreads";
    case State::at_warp_barrier: return "in a warp shuffle";
    case State::done: return "returned";
    }
    return "?";
}

/// Opens every barrier whose threads have all arrived. Returns false, with the error recorded,
/// when a barrier can never open.
bool open_barriers(Block &block, bool &released) {
    released = false;
    int live = 0, at_block = 0;
    for (const Fiber &fiber : block.fibers) {
        if (fiber.state != State::done) live++;
        if (fiber.state == State::at_block_barrier) at_block++;
    }
    if (live > 0 && at_block == live) {
        for (Fiber &fiber : block.fibers) fiber.state = State::runnable;
        released = true;
        return true;
    }
    for (int warp = 0; warp * 32 < block.threads; warp++) {
        int waiting = 0, returned = 0, elsewhere = -1;
        for (int lane = 0; lane < 32 && warp * 32 + lane < block.threads; lane++) {
            State state = block.fibers[warp * 32 + lane].state;
            if (state == State::at_warp_barrier) waiting++;
            else if (state == State::done) returned++;
            else if (elsewhere < 0) elsewhere = lane;
        }
        if (waiting == 0) continue;
        if (returned > 0) {
            record(cudaErrorLaunchFailure, "%s: a warp shuffle in block (%u,%u,%u) warp %d after %d of its lanes returned",
                   block.kernel, current.block.x, current.block.y, current.block.z, warp, returned);
            return false;
        }
        if (waiting == 32) {
            for (int lane = 0; lane < 32; lane++) block.fibers[warp * 32 + lane].state = State::runnable;
            released = true;
        }
    }
    return true;
}

void describe_deadlock(Block &block) {
    std::string states;
    for (int i = 0; i < block.threads && states.size() < 400; i += 32) {
        char part[96];
        snprintf(part, sizeof part, " warp %d lane 0 %s;", i / 32, state_name(block.fibers[i].state));
        states += part;
    }
    record(cudaErrorLaunchFailure, "%s: block (%u,%u,%u) can never pass its barriers:%s", block.kernel,
           current.block.x, current.block.y, current.block.z, states.c_str());
}

/// Runs one block to the end. Returns false, with the error recorded, when it cannot finish.
bool run_block(Block &block) {
    int count = block.threads;
    for (int i = 0; i < count; i++) {
        Fiber &fiber = block.fibers[i];
        fiber.state = State::runnable;
        fiber.shuffles = 0;
        fiber.stack_pointer = fresh_stack(stacks + (size_t)i * kStackBytes);
        unsigned x = current.block_size.x, y = current.block_size.y;
        fiber.thread = uint3{(unsigned)i % x, ((unsigned)i / x) % y, (unsigned)i / (x * y)};
    }
    for (;;) {
        for (int step = 0; step < count; step++) {
            Fiber &fiber = block.fibers[block.reverse ? count - 1 - step : step];
            if (fiber.state != State::runnable) continue;
            block.running = &fiber;
            current.thread = fiber.thread;
            dpcemu_switch_stack(&block.scheduler_stack_pointer, fiber.stack_pointer);
        }
        bool finished = true;
        for (const Fiber &fiber : block.fibers) finished = finished && fiber.state == State::done;
        if (finished) return true;
        bool released = false;
        if (!open_barriers(block, released)) return false;
        if (!released) {
            describe_deadlock(block);
            return false;
        }
    }
}

} // namespace

void run_grid(dim3 grid, dim3 block_size, const char *kernel, void (*body)(void *), void *context) {
    if (sticky != cudaSuccess) {
        record(sticky, "%s: launched after an earlier kernel failed", kernel);
        return;
    }
    uint64_t threads = (uint64_t)block_size.x * block_size.y * block_size.z;
    if (threads == 0 || threads > kMaxThreads || block_size.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
        grid.x > 0x7FFFFFFFu || grid.y > 65535 || grid.z > 65535) {
        record(cudaErrorInvalidConfiguration, "%s: grid (%u,%u,%u) of blocks (%u,%u,%u)", kernel, grid.x, grid.y,
               grid.z, block_size.x, block_size.y, block_size.z);
        return;
    }
    count_launch(kernel);
    if (stacks == nullptr) {
        void *mapped = mmap(nullptr, kStackBytes * kMaxThreads, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (mapped == MAP_FAILED) {
            record(cudaErrorMemoryAllocation, "%s: no memory for the emulator's thread stacks", kernel);
            return;
        }
        stacks = (char *)mapped;
    }
    Block block;
    block.kernel = kernel;
    block.body = body;
    block.context = context;
    block.threads = (int)threads;
    block.reverse = reverse_order();
    block.fibers.resize(threads);
    Block *outer = active;
    active = &block;
    current.block_size = block_size;
    current.grid_size = grid;
    uint64_t blocks = (uint64_t)grid.x * grid.y * grid.z;
    for (uint64_t step = 0; step < blocks; step++) {
        uint64_t index = block.reverse ? blocks - 1 - step : step;
        current.block = uint3{(unsigned)(index % grid.x), (unsigned)((index / grid.x) % grid.y),
                              (unsigned)(index / ((uint64_t)grid.x * grid.y))};
        if (!run_block(block)) break;
    }
    active = outer;
}

bool reject_host_pointer(const void *pointer, const char *kernel, int argument) {
    if (pointer == nullptr || is_device_range(pointer, 0)) return false;
    record(cudaErrorInvalidDevicePointer, "%s: argument %d (%p) is not device memory", kernel, argument, pointer);
    return true;
}

void sync_threads() { wait_at(State::at_block_barrier); }

float shuffle_xor(float value, int lane_mask) {
    Block &block = *active;
    int index = (int)(block.running - block.fibers.data());
    int warp = index / 32, lane = index % 32;
    if ((warp + 1) * 32 > block.threads) {
        record(cudaErrorLaunchFailure, "%s: a full-warp shuffle in a block of %d threads, whose last warp is partial",
               block.kernel, block.threads);
        // Every lane of the partial warp stops here, so the barrier below reports no second error.
    }
    float *slots = block.shuffle_slots[block.running->shuffles++ & 1];
    slots[index] = value;
    wait_at(State::at_warp_barrier);
    return slots[warp * 32 + ((lane ^ lane_mask) & 31)];
}

/// The range check that cublas.cpp shares.
bool holds(const void *pointer, size_t bytes) { return is_device_range(pointer, bytes); }

} // namespace dpcemu

// ---- The runtime API ----------------------------------------------------------------------

namespace {
int device_count() {
    const char *configured = getenv("DPCUDA_EMULATOR_DEVICES");
    int count = configured != nullptr ? atoi(configured) : 1;
    return count > 0 ? count : 1;
}

cudaError_t outcome(cudaError_t error) { return dpcemu::sticky != cudaSuccess ? dpcemu::sticky : error; }

// Streams, events and page-locked host memory. Every call runs to completion when it is made,
// so a stream is only a name and an event has completed once it is recorded. What is checked is
// what a GPU would refuse: a stream or event never created or already destroyed, cudaFreeHost
// of anything cudaMallocHost did not return.
std::mutex handles_lock; // the allreduce thread waits on events while the main thread records them
std::set<const void *> live_streams, live_events;
std::map<uintptr_t, size_t> pinned; // start -> bytes, cudaMallocHost's allocations

bool is_pinned(const void *pointer, size_t bytes) {
    std::lock_guard<std::mutex> guard(handles_lock);
    uintptr_t address = (uintptr_t)pointer;
    auto after = pinned.upper_bound(address);
    if (after == pinned.begin()) return false;
    auto holding = std::prev(after);
    return address + bytes <= holding->first + holding->second;
}

/// The legacy default stream (0) or one that cudaStreamCreateWithFlags made and no one destroyed.
bool is_stream(cudaStream_t stream) {
    std::lock_guard<std::mutex> guard(handles_lock);
    return stream == nullptr || live_streams.count(stream) > 0;
}

bool is_event(cudaEvent_t event) {
    std::lock_guard<std::mutex> guard(handles_lock);
    return live_events.count(event) > 0;
}

cudaError_t copy(void *destination, const void *source, size_t bytes, cudaMemcpyKind kind) {
    using dpcemu::is_device_range;
    if (dpcemu::sticky != cudaSuccess) return dpcemu::sticky;
    bool device_destination = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    bool device_source = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (kind == cudaMemcpyHostToHost || kind < cudaMemcpyHostToHost || kind > cudaMemcpyDeviceToDevice)
        return dpcemu::record(cudaErrorInvalidMemcpyDirection, "cudaMemcpy kind %d", (int)kind);
    if (device_destination != is_device_range(destination, bytes))
        return dpcemu::record(cudaErrorInvalidValue, "cudaMemcpy: destination %p (%zu bytes) is %s", destination,
                              bytes, device_destination ? "not inside one device allocation" : "device memory");
    if (device_source != is_device_range(source, bytes))
        return dpcemu::record(cudaErrorInvalidValue, "cudaMemcpy: source %p (%zu bytes) is %s", source, bytes,
                              device_source ? "not inside one device allocation" : "device memory");
    static const char *const directions[] = {"host_to_host", "host_to_device", "device_to_host", "device_to_device"};
    bool to_pinned = kind == cudaMemcpyDeviceToHost && is_pinned(destination, bytes);
    dpcemu::count_copy(to_pinned ? "device_to_pinned_host" : directions[kind], bytes);
    if (bytes > 0) memmove(destination, source, bytes);
    return cudaSuccess;
}
} // namespace

cudaError_t cudaGetDeviceCount(int *count) {
    *count = device_count();
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
    if (device < 0 || device >= device_count())
        return dpcemu::record(cudaErrorInvalidDevice, "cudaSetDevice(%d) of %d", device, device_count());
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *properties, int device) {
    if (device < 0 || device >= device_count()) return cudaErrorInvalidDevice;
    snprintf(properties->name, sizeof properties->name, "CPU emulator (cuda/emulator), device %d", device);
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) { return outcome(cudaSuccess); }

cudaError_t cudaGetLastError(void) {
    cudaError_t error = dpcemu::pending;
    dpcemu::pending = cudaSuccess;
    return error;
}

const char *cudaGetErrorName(cudaError_t error) {
    switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    }
    return "cudaErrorUnknown";
}

// The emulator's own account of the last failure, which is more than the GPU could say.
const char *cudaGetErrorString(cudaError_t error) {
    return error == cudaSuccess ? "no error" : dpcemu::detail[0] != 0 ? dpcemu::detail : cudaGetErrorName(error);
}

cudaError_t cudaMalloc(void **pointer, size_t bytes) {
    if (dpcemu::sticky != cudaSuccess) return dpcemu::sticky;
    // 256-byte alignment, as cudaMalloc guarantees, and not a byte more, so that under
    // AddressSanitizer (scripts/build-cuda-emulator.sh --sanitize) the first byte past the
    // request is already a fault; an empty request still gets a distinct address.
    std::lock_guard<std::mutex> guard(dpcemu::memory_lock);
    size_t capacity = dpcemu::memory_capacity();
    if (bytes > capacity - dpcemu::bytes_in_use)
        return dpcemu::record(cudaErrorMemoryAllocation, "out of memory: %zu bytes requested, %zu of %zu in use", bytes,
                              dpcemu::bytes_in_use, capacity);
    void *memory = nullptr;
    if (posix_memalign(&memory, 256, bytes > 0 ? bytes : 1) != 0)
        return dpcemu::record(cudaErrorMemoryAllocation, "out of memory: the host refused %zu bytes", bytes);
    memset(memory, 0xFF, bytes); // every float a NaN
    dpcemu::allocations[(uintptr_t)memory] = bytes;
    dpcemu::bytes_in_use += bytes;
    *pointer = memory;
    return cudaSuccess;
}

cudaError_t cudaFree(void *pointer) {
    if (pointer == nullptr) return outcome(cudaSuccess);
    {
        std::lock_guard<std::mutex> guard(dpcemu::memory_lock);
        auto found = dpcemu::allocations.find((uintptr_t)pointer);
        if (found == dpcemu::allocations.end())
            return dpcemu::record(cudaErrorInvalidDevicePointer, "cudaFree(%p): not an allocation's start", pointer);
        dpcemu::bytes_in_use -= found->second;
        dpcemu::allocations.erase(found);
    }
    free(pointer);
    return outcome(cudaSuccess);
}

cudaError_t cudaMemcpy(void *destination, const void *source, size_t bytes, cudaMemcpyKind kind) {
    return copy(destination, source, bytes, kind);
}

cudaError_t cudaMemcpyAsync(void *destination, const void *source, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
    if (!is_stream(stream)) return dpcemu::record(cudaErrorInvalidResourceHandle, "cudaMemcpyAsync: stream %p", stream);
    return copy(destination, source, bytes, kind);
}

cudaError_t cudaMemsetAsync(void *pointer, int value, size_t bytes, cudaStream_t stream) {
    if (dpcemu::sticky != cudaSuccess) return dpcemu::sticky;
    if (!is_stream(stream)) return dpcemu::record(cudaErrorInvalidResourceHandle, "cudaMemsetAsync: stream %p", stream);
    if (!dpcemu::is_device_range(pointer, bytes))
        return dpcemu::record(cudaErrorInvalidValue, "cudaMemset: %p (%zu bytes) is not inside one device allocation",
                              pointer, bytes);
    dpcemu::count_copy("fill", bytes);
    memset(pointer, value, bytes);
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void **pointer, size_t bytes) {
    void *memory = nullptr;
    if (posix_memalign(&memory, 4096, bytes > 0 ? bytes : 1) != 0)
        return dpcemu::record(cudaErrorMemoryAllocation, "cudaMallocHost: the host refused %zu bytes", bytes);
    std::lock_guard<std::mutex> guard(handles_lock);
    pinned[(uintptr_t)memory] = bytes;
    *pointer = memory;
    return cudaSuccess;
}

cudaError_t cudaFreeHost(void *pointer) {
    {
        std::lock_guard<std::mutex> guard(handles_lock);
        if (pinned.erase((uintptr_t)pointer) == 0)
            return dpcemu::record(cudaErrorInvalidValue, "cudaFreeHost(%p): not from cudaMallocHost", pointer);
    }
    free(pointer);
    return outcome(cudaSuccess);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned) {
    *stream = (cudaStream_t) new char;
    std::lock_guard<std::mutex> guard(handles_lock);
    live_streams.insert(*stream);
    return outcome(cudaSuccess);
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned) {
    *event = (cudaEvent_t) new char;
    std::lock_guard<std::mutex> guard(handles_lock);
    live_events.insert(*event);
    return outcome(cudaSuccess);
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    if (!is_event(event)) return dpcemu::record(cudaErrorInvalidResourceHandle, "cudaEventRecord: event %p", event);
    if (!is_stream(stream)) return dpcemu::record(cudaErrorInvalidResourceHandle, "cudaEventRecord: stream %p", stream);
    return outcome(cudaSuccess);
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned) {
    if (!is_event(event)) return dpcemu::record(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent: event %p", event);
    if (!is_stream(stream))
        return dpcemu::record(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent: stream %p", stream);
    return outcome(cudaSuccess);
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
    if (!is_event(event))
        return dpcemu::record(cudaErrorInvalidResourceHandle, "cudaEventSynchronize: event %p", event);
    return outcome(cudaSuccess);
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
    {
        std::lock_guard<std::mutex> guard(handles_lock);
        if (live_events.erase(event) == 0)
            return dpcemu::record(cudaErrorInvalidResourceHandle, "cudaEventDestroy: event %p", event);
    }
    delete (char *)event;
    return outcome(cudaSuccess);
}
