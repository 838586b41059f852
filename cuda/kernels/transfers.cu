// Downloads that leave the GPU computing: the gradients' trip to MPI. A download waits for the
// compute stream at the point where it was asked for (an event), then copies on a stream of its
// own into page-locked host memory, so the host thread that asked returns at once and the
// kernels it queues next keep running. Another host thread (the allreduce thread) waits for the
// copy's own event before it sums what landed. Page-locked memory is what makes the copy
// asynchronous: from pageable memory the driver would stage it and the caller would wait.

#include "common.cuh"

namespace {
// Non-blocking: the legacy default stream, where every kernel runs, neither waits for it nor makes it wait.
cudaStream_t copies = nullptr;
} // namespace

extern "C" {

int dpc_host_alloc(void **pointer, size_t bytes) {
    DPC_CUDA(cudaMallocHost(pointer, bytes));
    return 0;
}

int dpc_host_free(void *pointer) {
    DPC_CUDA(cudaFreeHost(pointer));
    return 0;
}

int dpc_download_start(void *host_destination, const void *source, size_t bytes, void **transfer) {
    if (copies == nullptr) DPC_CUDA(cudaStreamCreateWithFlags(&copies, cudaStreamNonBlocking));
    cudaEvent_t issued, landed;
    DPC_CUDA(cudaEventCreateWithFlags(&issued, cudaEventDisableTiming));
    DPC_CUDA(cudaEventRecord(issued, 0));
    DPC_CUDA(cudaStreamWaitEvent(copies, issued, 0));
    // The wait is queued, so the event may go: CUDA frees it once it has completed.
    DPC_CUDA(cudaEventDestroy(issued));
    DPC_CUDA(cudaMemcpyAsync(host_destination, source, bytes, cudaMemcpyDeviceToHost, copies));
    DPC_CUDA(cudaEventCreateWithFlags(&landed, cudaEventDisableTiming));
    DPC_CUDA(cudaEventRecord(landed, copies));
    *transfer = landed;
    return 0;
}

// Any host thread may wait: cudaEventSynchronize works whatever that thread's current device.
int dpc_download_wait(void *transfer) {
    cudaEvent_t landed = (cudaEvent_t)transfer;
    DPC_CUDA(cudaEventSynchronize(landed));
    DPC_CUDA(cudaEventDestroy(landed));
    return 0;
}

} // extern "C"
