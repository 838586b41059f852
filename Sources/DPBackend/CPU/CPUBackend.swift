// The CPU reference backend: OpenBLAS for the matrix products, plain loops for everything else.
// It is the readable definition that every other backend is judged against; speed comes from
// handing the large products to sgemm and splitting every op, products included, across the
// rank's threads in blocks of rows. OpenBLAS itself always runs single-threaded here (see
// Matmul.swift for why).

import COpenBLAS
import Dispatch

public final class CPUBackend: Backend {
    public let name = "cpu"
    public var placement: String { "\(threads) thread(s)" }
    public let precision: Precision
    public let memoryIsHost = true
    /// Threads for this rank, each taking a block of rows of every op.
    public let threads: Int

    public init(threads: Int, precision: Precision = .fp32) {
        precondition(threads >= 1, "a backend needs at least one thread")
        self.threads = threads
        self.precision = precision
        openblas_set_num_threads(1)
    }

    /// Runs `body` over `0..<count` in at most `threads` contiguous chunks. Small loops stay on
    /// the calling thread, where waking a second one would cost more than the work.
    func parallelRanges(_ count: Int, minimumPerChunk: Int = 4096,
                        _ body: (Range<Int>) -> Void) {
        let chunks = min(threads, max(1, count / max(minimumPerChunk, 1)))
        if chunks <= 1 {
            body(0..<count)
            return
        }
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let start = count * chunk / chunks
            let end = count * (chunk + 1) / chunks
            body(start..<end)
        }
    }

    // MARK: Memory

    public func allocate(count: Int) -> UnsafeMutablePointer<Float> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride,
                                                   alignment: 64)
        let buffer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        buffer.initialize(repeating: 0, count: max(count, 1))
        return buffer
    }

    public func deallocate(_ buffer: UnsafeMutablePointer<Float>) { buffer.deallocate() }

    public func allocateIndices(count: Int) -> UnsafeMutablePointer<Int32> {
        let buffer = UnsafeMutablePointer<Int32>.allocate(capacity: max(count, 1))
        buffer.initialize(repeating: 0, count: max(count, 1))
        return buffer
    }

    public func deallocateIndices(_ buffer: UnsafeMutablePointer<Int32>) { buffer.deallocate() }

    public func upload(_ destination: UnsafeMutablePointer<Float>, from host: UnsafePointer<Float>, count: Int) {
        destination.update(from: host, count: count)
    }

    public func download(_ destination: UnsafeMutablePointer<Float>, from device: UnsafePointer<Float>, count: Int) {
        destination.update(from: device, count: count)
    }

    public func allocateStaging(count: Int) -> UnsafeMutablePointer<Float> { allocate(count: count) }

    public func deallocateStaging(_ buffer: UnsafeMutablePointer<Float>) { deallocate(buffer) }

    /// The CPU's ops have all run by the time they return, so the copy is done at once.
    public func startDownload(_ destination: UnsafeMutablePointer<Float>, from device: UnsafePointer<Float>,
                              count: Int) -> PendingDownload {
        download(destination, from: device, count: count)
        return PendingDownload(handle: nil)
    }

    public func waitForDownload(_ download: PendingDownload) {}

    public func uploadIndices(_ destination: UnsafeMutablePointer<Int32>, from host: UnsafePointer<Int32>, count: Int) {
        destination.update(from: host, count: count)
    }

    public func zero(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        buffer.update(repeating: 0, count: count)
    }

    public func copy(_ destination: UnsafeMutablePointer<Float>, from source: UnsafePointer<Float>, count: Int) {
        destination.update(from: source, count: count)
    }

    public func sumOfSquares(_ buffer: UnsafePointer<Float>, count: Int) -> Double {
        // Float sums over short blocks run at vector speed; the blocks are summed in Double so
        // that 100M-element gradients lose nothing measurable.
        let blockSize = 1024
        var total = 0.0
        var start = 0
        while start < count {
            let end = min(start + blockSize, count)
            total += Double(sumOfVectors(in: start..<end) { i, lanes in
                let x = load(buffer, i, lanes)
                return x * x
            })
            start = end
        }
        return total
    }
}
