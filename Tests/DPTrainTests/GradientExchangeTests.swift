// GradientExchange's host staging, the path GPU gradients take to MPI, run on a CPU backend with
// a stand-in for a second rank: its sum doubles every element, and it records which buffers MPI
// was handed, so the test can tell that the staging copy, not the backend's buffer, was summed.

import DPBackend
import DPDistributed
import DPTestSupport
import DPTrain
import Foundation
import XCTest

/// Two ranks holding the same gradients: the sum is twice each element.
private final class TwinRankCommunicator: Communicator, @unchecked Sendable {
    private let lock = NSLock()
    private(set) var summedBuffers: Set<UnsafeMutablePointer<Float>> = []
    var rank: Int { 0 }
    var worldSize: Int { 2 }
    var localSize: Int { 2 }
    var localRank: Int { 0 }
    func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        for i in 0..<count { buffer[i] *= 2 }
        lock.withLock { _ = summedBuffers.insert(buffer) }
    }
    func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) throws {
        for i in 0..<count { buffer[i] *= 2 }
    }
    func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) throws {}
    func barrier() throws {}
    func abort(exitCode: Int32) -> Never { fatalError("abort \(exitCode)") }
    func finish() {}
}

final class GradientExchangeTests: XCTestCase {
    /// With and without overlap, staged and in place: the buffer ends as the sum, and a staged
    /// exchange hands MPI its host copy only.
    func testStagedAndInPlaceSumsAgree() throws {
        let count = 10_000
        let values = randomFloats(count, seed: 3)
        for overlap in [false, true] {
            for stageOnHost in [false, true] {
                let communicator = TwinRankCommunicator()
                let backend = CPUBackend(threads: 1)
                let gradients = backend.allocate(count: count)
                defer { backend.deallocate(gradients) }
                values.withUnsafeBufferPointer { backend.upload(gradients, from: $0.baseAddress!, count: count) }
                let exchange = GradientExchange(communicator: communicator, backend: backend, gradients: gradients,
                                                count: count, overlap: overlap, stageOnHost: stageOnHost)
                // Backward completes the buffer from its end, in spans of uneven size.
                if let onSpanComplete = exchange.onSpanComplete {
                    for span in [7_000..<count, 2_500..<7_000, 0..<2_500] { onSpanComplete(span) }
                }
                _ = try exchange.finish()
                let what = "overlap \(overlap), staged \(stageOnHost)"
                let summed = Array(UnsafeBufferPointer(start: gradients, count: count))
                XCTAssertEqual(summed, values.map { 2 * $0 }, "\(what): the buffer is not the sum")
                XCTAssertEqual(communicator.summedBuffers.contains(gradients), !stageOnHost,
                               "\(what): MPI summed the wrong buffer")
            }
        }
    }
}
