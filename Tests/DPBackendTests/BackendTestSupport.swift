// What the op tests share: the backend under test and XCTest-flavoured wrappers around the
// generic helpers of DPTestSupport.
//
// Every op test follows the same pattern:
//   1. a plain Double reference of the forward, written from the textbook definition;
//   2. the backend's forward against it (Tolerance.elementwise or .reduction);
//   3. the backend's backward against central differences of the Double reference, for a random
//      upstream gradient dOut (the gradient of sum(dOut * out)), with parameter-gradient buffers
//      prefilled with random values (they must end as prefill + gradient) and activation-gradient
//      buffers prefilled with garbage (they must be fully overwritten).
// Device buffers come from `withDeviceScope(backend) { scope in ... }` and live until the closure
// returns, so that an optimised build cannot free one while an op still reads its pointer.

import DPBackend
import DPTestSupport
import XCTest

/// The backend the op tests run on. Two threads, so that the split paths are exercised;
/// ThreadParityTests compares one thread against two on larger inputs.
func makeBackend(threads: Int = 2) -> any Backend {
    CPUBackend(threads: threads)
}

func assertClose(_ got: [Float], _ expected: [Double], _ tolerance: Tolerance, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    if let problem = mismatch(got, expected, tolerance) {
        XCTFail("\(what): \(problem)", file: file, line: line)
    }
}

/// A parameter gradient: the buffer was prefilled with `prefill` and must hold prefill + gradient.
func assertAccumulated(_ got: [Float], prefill: [Float], gradient: [Double], _ tolerance: Tolerance,
                       _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    let expected = zip(prefill, gradient).map { Double($0.0) + $0.1 }
    assertClose(got, expected, tolerance, "\(what) (accumulated onto a nonzero prefill)", file: file, line: line)
}

func assertIdentical(_ got: [Float], _ expected: [Float], _ what: String,
                     file: StaticString = #filePath, line: UInt = #line) {
    if let problem = exactMismatch(got, expected) {
        XCTFail("\(what): \(problem)", file: file, line: line)
    }
}
