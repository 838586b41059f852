// Gradient allreduce overlapped with the backward pass, as PyTorch DDP and Horovod do it: backward
// hands over each span of the flat gradient buffer (a bucket: the head, a block, the embeddings)
// the moment it is complete, and one communication thread sums the buckets across ranks in the
// order they arrive while the compute threads go on with the layers below. Every rank enqueues
// the same buckets in the same order, so the collectives match up without any negotiation.
//
// MPI sees calls from this thread and, outside a step's backward, from the main thread, never both
// at once: the shim asks for MPI_THREAD_SERIALIZED.

import Foundation

public final class OverlappedAllreduce: @unchecked Sendable {
    private let communicator: Communicator
    private let condition = NSCondition()
    /// Buckets not yet reduced, oldest first, each with what must happen before its sum.
    private var pending: [(base: UnsafeMutablePointer<Float>, range: Range<Int>, ready: () -> Void)] = []
    private var inFlight = false
    private var failure: Error?
    private var busySeconds = 0.0

    public init(communicator: Communicator) {
        self.communicator = communicator
        // The thread keeps the reducer alive; a trainer holds one for the life of the process.
        let thread = Thread { self.serve() }
        thread.name = "dp-train allreduce"
        thread.start()
    }

    /// Starts summing `buffer[range]` across ranks once `ready` (run on the communication thread,
    /// e.g. waiting for the bucket's download from a GPU) has returned; returns at once.
    public func enqueue(_ buffer: UnsafeMutablePointer<Float>, _ range: Range<Int>,
                        after ready: @escaping () -> Void) {
        condition.lock()
        pending.append((buffer, range, ready))
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until every enqueued bucket is summed; returns the seconds the communication thread
    /// spent in allreduce since the last wait (hidden behind compute or not).
    public func waitForAll() throws -> Double {
        condition.lock()
        defer { condition.unlock() }
        while !pending.isEmpty || inFlight { condition.wait() }
        let seconds = busySeconds
        busySeconds = 0
        if let failure {
            self.failure = nil
            throw failure
        }
        return seconds
    }

    private func serve() {
        condition.lock()
        while true {
            while pending.isEmpty { condition.wait() }
            let bucket = pending.removeFirst()
            inFlight = true
            condition.unlock()
            bucket.ready()
            let started = Date()
            var error: Error?
            do {
                try communicator.allreduceSum(bucket.base + bucket.range.lowerBound, count: bucket.range.count)
            } catch let caught {
                error = caught
            }
            condition.lock()
            busySeconds += Date().timeIntervalSince(started)
            if failure == nil { failure = error }
            inFlight = false
            condition.broadcast()
        }
    }
}
