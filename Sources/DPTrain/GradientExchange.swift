// Summing the gradient buffer across ranks, after backward or bucket by bucket during it.
// MPI sums host memory: a CPU backend's buffer is summed in place, while a GPU backend's is
// copied out span by span as backward finishes each, summed in a host buffer and copied back in
// one upload (the MPI here is not CUDA-aware, and NCCL is not used). Each span's download starts
// without waiting, into page-locked staging, and the communication thread waits for it before
// the sum, so the GPU goes on with the layers below meanwhile.

import DPBackend
import DPDistributed
import Foundation

public final class GradientExchange {
    private let communicator: Communicator
    private let backend: Backend
    private let gradients: UnsafeMutablePointer<Float>  // (P) backend memory
    private let count: Int
    /// (P) the host copy that MPI sums, for backends whose memory is not the host's.
    private let staging: UnsafeMutablePointer<Float>?
    /// nil on one rank, or with the overlap turned off.
    private let reducer: OverlappedAllreduce?

    /// `stageOnHost` is `!backend.memoryIsHost` for training; tests set it on a CPU backend to run
    /// the GPU path's copies without a GPU.
    public init(communicator: Communicator, backend: Backend, gradients: UnsafeMutablePointer<Float>, count: Int,
                overlap: Bool, stageOnHost: Bool) {
        self.communicator = communicator
        self.backend = backend
        self.gradients = gradients
        self.count = count
        let distributed = communicator.worldSize > 1
        if distributed && stageOnHost {
            staging = backend.allocateStaging(count: count)
        } else {
            staging = nil
        }
        reducer = distributed && overlap ? OverlappedAllreduce(communicator: communicator) : nil
    }

    deinit {
        if let staging { backend.deallocateStaging(staging) }
    }

    /// For backward to call with each span of the buffer that nothing later writes; nil when the
    /// sum waits until `finish`.
    public var onSpanComplete: ((Range<Int>) -> Void)? {
        guard let reducer else { return nil }
        return { [gradients, staging, backend] span in
            guard let staging else { return reducer.enqueue(gradients, span, after: {}) }
            let download = backend.startDownload(staging + span.lowerBound, from: gradients + span.lowerBound,
                                                 count: span.count)
            reducer.enqueue(staging, span, after: { backend.waitForDownload(download) })
        }
    }

    /// Completes the sum on every rank; returns the seconds spent in allreduce (hidden or not).
    public func finish() throws -> Double {
        guard communicator.worldSize > 1 else { return 0 }
        let seconds: Double
        if let reducer {
            seconds = try reducer.waitForAll()
        } else {
            let started = Date()
            if let staging { backend.download(staging, from: gradients, count: count) }
            try communicator.allreduceSum(staging ?? gradients, count: count)
            seconds = Date().timeIntervalSince(started)
        }
        if let staging { backend.upload(gradients, from: staging, count: count) }
        return seconds
    }
}
