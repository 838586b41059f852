// Elementwise activations:
//   GELU, erf form (`gelu`, torch.nn.functional.gelu):   0.5 x (1 + erf(x / sqrt 2));
//   GELU, tanh form (`gelu_new`, approximate="tanh"):    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)));
//   tanh (BertPooler), whose backward reads the forward output: dx = dy (1 - y^2).

import DPBackend
import DPTestSupport
import Foundation
import XCTest

final class ActivationTests: XCTestCase {
    let count = 101

    static func gelu(_ x: Double, form: GELUForm) -> Double {
        switch form {
        case .erf: 0.5 * x * (1 + erf(x / 2.0.squareRoot()))
        case .tanh: 0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
        }
    }

    /// Inputs over the range where both forms bend, plus 0 and a few in the saturated tails.
    func makeInput(seed: UInt64) -> [Float] {
        randomFloats(count - 5, in: -4...4, seed: seed) + [0, -9, 9, -20, 20]
    }

    /// With a bias, GELU and its slope are those of input + bias (added in Float) on every row.
    func testGELUAddsTheBiasFirst() {
        let (N, C) = (9, 37)
        for form in GELUForm.allCases {
            let backend = makeBackend()
            withDeviceScope(backend) { scope in
                let input = randomFloats(N * C, in: -4...4, seed: 42), bias = randomFloats(C, seed: 43)
                let biased = scope.floats((0..<(N * C)).map { input[$0] + bias[$0 % C] })
                let expected = scope.floats(count: N * C), expectedSlope = scope.floats(count: N * C)
                backend.geluForward(out: expected.pointer, operands: nil, slope: expectedSlope.pointer, input: biased.pointer, bias: nil,
                                    N: N, C: C, form: form)
                let inPlace = scope.floats(input), slope = scope.floats(garbage(N * C))
                backend.geluForward(out: inPlace.pointer, operands: nil, slope: slope.pointer, input: inPlace.pointer,
                                    bias: scope.floats(bias).pointer, N: N, C: C, form: form)
                XCTAssertNil(exactMismatch(inPlace.array, expected.array), "gelu \(form) of input + bias, in place")
                XCTAssertNil(exactMismatch(slope.array, expectedSlope.array), "gelu \(form) slope at input + bias")
            }
        }
    }

    func testGELUForwardAndBackward() {
        for form in GELUForm.allCases {
            let backend = makeBackend()
            withDeviceScope(backend) { scope in
                let input = makeInput(seed: 40), dOut = randomFloats(count, seed: 41)
                let inputD = scope.floats(input), dOutD = scope.floats(dOut)
                let out = scope.floats(garbage(count)), dInput = scope.floats(garbage(count))
                let slope = scope.floats(garbage(count)), inPlace = scope.floats(input)

                backend.geluForward(out: out.pointer, operands: nil, slope: slope.pointer, input: inputD.pointer, bias: nil,
                                    N: 1, C: count, form: form)
                let x = input.doubles, g = dOut.doubles
                assertClose(out.array, x.map { Self.gelu($0, form: form) }, .elementwise, "gelu \(form) forward")
                backend.geluForward(out: inPlace.pointer, operands: nil, slope: nil, input: inPlace.pointer, bias: nil, N: 1, C: count,
                                    form: form)
                XCTAssertNil(exactMismatch(inPlace.array, out.array), "gelu \(form) in place, without the slope")

                backend.geluBackward(dInput: dInput.pointer, operands: nil, dOut: dOutD.pointer, slope: slope.pointer, count: count)
                let expected = centralDifferenceGradient(at: x) { dot($0.map { Self.gelu($0, form: form) }, g) }
                assertClose(dInput.array, expected, .gradient, "gelu \(form) dInput (assigned over garbage)")
            }
        }
    }

    /// The erf form computes Phi(x) from erfc(|x| / sqrt 2), so that even far into the negative
    /// tail, where 1 + erf(x / sqrt 2) cancels to nothing in Float, GELU keeps its relative
    /// accuracy. That accuracy is bounded by e^(-x^2 / 2) itself: its argument carries Float's
    /// relative rounding, 6e-8 x^2 / 2 of absolute error, 5e-6 at x = -12.7. Below x = -12.73
    /// (|x| / sqrt 2 > 9), where the true value is under 1e-35, GELU returns 0.
    func testGELUErfKeepsItsRelativeAccuracyInTheNegativeTail() {
        let input = (0...4_000).map { Float(-13.5 + Double($0) * 0.005) } // -13.5 ... 6.5
        let backend = makeBackend()
        withDeviceScope(backend) { scope in
            let x = scope.floats(input), out = scope.floats(garbage(input.count)), slope = scope.floats(garbage(input.count))
            backend.geluForward(out: out.pointer, operands: nil, slope: slope.pointer, input: x.pointer, bias: nil,
                                N: 1, C: input.count, form: .erf)
            let phi = { (x: Double) in 0.5 * erfc(-x / 2.0.squareRoot()) }
            let density = { (x: Double) in exp(-x * x / 2) / (2 * Double.pi).squareRoot() }
            let ranges: [(ClosedRange<Float>, Tolerance)] = [
                (-5...6.5, Tolerance(relative: 2e-6, absolute: 1e-37)),
                (-12.7 ... -5, Tolerance(relative: 2e-5, absolute: 1e-37)),
            ]
            for (range, tolerance) in ranges {
                let inside = input.indices.filter { range.contains(input[$0]) }
                let xs = inside.map { Double(input[$0]) }
                XCTAssertNil(mismatch(inside.map { out.array[$0] }, xs.map { $0 * phi($0) }, tolerance),
                             "gelu erf over \(range), relative to each value")
                // The slope, Phi(x) + x phi(x), cancels near x = -0.75, where only an absolute bound holds.
                XCTAssertNil(mismatch(inside.map { slope.array[$0] }, xs.map { phi($0) + $0 * density($0) },
                                      Tolerance(relative: tolerance.relative, absolute: 1e-7)),
                             "gelu erf slope over \(range)")
            }
            let tail = input.indices.filter { input[$0] < -12.73 }
            XCTAssertFalse(tail.isEmpty)
            XCTAssertTrue(tail.allSatisfy { out.array[$0] == 0 && abs(slope.array[$0]) < 1e-30 },
                          "gelu erf below -12.73 is 0")
        }
    }

    func testTanhForwardAndBackward() {
        let backend = makeBackend()
        withDeviceScope(backend) { scope in
            let input = makeInput(seed: 42), dOut = randomFloats(count, seed: 43)
            let inputD = scope.floats(input), dOutD = scope.floats(dOut)
            let out = scope.floats(garbage(count)), dInput = scope.floats(garbage(count))

            backend.tanhForward(out: out.pointer, input: inputD.pointer, count: count)
            let x = input.doubles, g = dOut.doubles
            assertClose(out.array, x.map(tanh), .elementwise, "tanh forward")

            backend.tanhBackward(dInput: dInput.pointer, dOut: dOutD.pointer, out: out.pointer, count: count)
            let expected = centralDifferenceGradient(at: x) { dot($0.map(tanh), g) }
            assertClose(dInput.array, expected, .gradient, "tanh dInput (assigned over garbage)")
        }
    }
}
