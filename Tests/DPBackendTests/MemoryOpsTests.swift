// Memory and vector ops: allocate (zeroed), upload/download, zero, copy, add (+=), scale (*=)
// and sumOfSquares (accumulated in double precision, for the global gradient norm).

import DPBackend
import DPTestSupport
import XCTest

final class MemoryOpsTests: XCTestCase {
    func testAllocateIsZeroedAndTransfersRoundTrip() {
        let backend = makeBackend()
        withDeviceScope(backend) { scope in
            let buffer = scope.floats(count: 1000)
            assertIdentical(buffer.array, [Float](repeating: 0, count: 1000), "allocate")

            let values = randomFloats(1000, seed: 1)
            buffer.upload(values)
            assertIdentical(buffer.array, values, "upload then download")

            let other = scope.floats(count: 1000)
            backend.copy(other.pointer, from: buffer.pointer, count: 1000)
            assertIdentical(other.array, values, "copy")

            backend.zero(buffer.pointer, count: 600)
            assertIdentical(buffer.array, [Float](repeating: 0, count: 600) + values[600...], "zero of a prefix")
        }
    }

    /// Each square of a Float is exact in Double, so the Double reference is exact to 1e-16.
    /// One Float accumulator over these million squares is off by about 4e-4; Float partial sums
    /// over blocks of about a thousand, added in Double, by about 4e-8, and a Double accumulator
    /// by less than 1e-12. The tolerance, 1e-6 relative, rejects the first and accepts the others:
    /// the sum feeds the gradient-norm clip, where 1e-6 is invisible.
    func testSumOfSquaresIsNotAccumulatedInFloat() {
        let backend = makeBackend()
        withDeviceScope(backend) { scope in
            let count = 1_000_003
            let values = randomFloats(count, in: -2...2, seed: 5)
            let buffer = scope.floats(values)
            let expected = values.reduce(0.0) { $0 + Double($1) * Double($1) }
            let got = backend.sumOfSquares(buffer.pointer, count: count)
            XCTAssertEqual(got, expected, accuracy: 1e-6 * expected, "sumOfSquares over \(count) floats")
        }
    }
}
