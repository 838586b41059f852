// What the CPU-against-CUDA tests share: the backend pair, and the error measure with its
// tolerance.
//
// The tests run only where libdpcuda.so loads and a GPU answers; elsewhere each one is skipped
// with the reason (set DPTRAIN_CUDA_LIBRARY to the library that scripts/build-cuda.sh built).

import DPBackend
import Foundation
import XCTest

enum CUDAParity {
    /// The normalised error of `got` (CUDA) against `reference` (CPU), as ggml's test-backend-ops
    /// measures backends against each other: sqrt(sum (got - ref)^2 / sum ref^2), the error's L2
    /// norm over the reference's. A NaN or infinity anywhere in either makes it infinite, so it
    /// never passes; an all-zero reference is matched only by an all-zero result.
    ///
    /// `floor` stands in for the reference's norm when that is smaller: a slice of a larger
    /// tensor that is zero up to rounding (the key bias's gradient, which softmax cancels
    /// exactly) is then held to the size of the whole rather than to its own noise.
    static func normalisedError(_ got: [Float], _ reference: [Float], floor: Double = 0) -> Double {
        precondition(got.count == reference.count, "comparing \(got.count) elements with \(reference.count)")
        var errorSquares = 0.0, referenceSquares = 0.0
        for (a, b) in zip(got, reference) {
            guard a.isFinite, b.isFinite else { return .infinity }
            errorSquares += Double(a - b) * Double(a - b)
            referenceSquares += Double(b) * Double(b)
        }
        let denominator = max(referenceSquares, floor * floor)
        if denominator == 0 { return errorSquares == 0 ? 0 : .infinity }
        return (errorSquares / denominator).squareRoot()
    }

    /// Both backends compute in fp32 (cuBLAS with TF32 off) in different summation orders, so a
    /// tensor differs by a few units of Float rounding (2^-24 = 6e-8) per element, times the
    /// growth of a chain of ops: 1e-6 leaves an order of magnitude for a whole training step.
    static let tolerance = 1e-6

    /// One parameter's slice of a step's gradient, parameters or Adam moments. A slice that is a
    /// small difference of large terms amplifies the same rounding: on an H200 the 1-element
    /// classifier.bias gradient of a regression head (the sum of B residuals that nearly cancel)
    /// differed by 4e-6 of itself and a few LayerNorm slices by 1-2e-6, while every whole buffer
    /// stayed under 7.2e-7. The floor (see normalisedError) keeps exactly-cancelling slices such
    /// as the key bias's gradient, which softmax makes zero, from being measured by their noise.
    static let sliceTolerance = 1e-5

    /// One op in tf32 or bf16 on identical inputs. Both backends multiply the same rounded
    /// operands, but two things may still differ: the tensor cores need not round their fp32
    /// accumulation to nearest (Fasi et al. 2021 measured truncation on earlier GPUs), and in
    /// attention a probability or dScore one fp32 bit apart can round to the neighbouring operand.
    /// 2^-(bits + 4) allows for both and still fails an operand left unrounded, which moves the
    /// result by about 2^-(bits + 1) / sqrt(3) of its norm.
    static func roundedOpTolerance(_ precision: Precision) -> Double {
        precision == .fp32 ? tolerance : pow(2, -Double(precision.mantissaBits + 4))
    }
}

/// The CUDA backend, or a skip that says why there is none.
func makeCUDABackend(precision: Precision = .fp32) throws -> CUDABackend {
    do {
        return try CUDABackend(precision: precision)
    } catch {
        throw XCTSkip("no CUDA backend here, skipping: \(error)")
    }
}

func assertParity(_ got: [Float], _ reference: [Float], _ what: String, floor: Double = 0,
                  tolerance: Double = CUDAParity.tolerance, file: StaticString = #filePath, line: UInt = #line) {
    let error = CUDAParity.normalisedError(got, reference, floor: floor)
    // One line per tensor, so that the GPU run's log carries the measured margins.
    print("parity \(what): normalised error \(error) over \(got.count) elements")
    if !(error <= tolerance) {
        XCTFail("\(what): normalised error \(error) > \(tolerance) over \(got.count) elements",
                file: file, line: line)
    }
}
