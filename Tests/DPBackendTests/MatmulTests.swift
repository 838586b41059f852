// Linear layers in PyTorch's layout: out = x W^T + b with W (OC, C), as nn.Linear.
// Backward: dInput assigned, or accumulated on request; dWeight and dBias accumulated; dInput and
// dBias are optional.

import DPBackend
import DPTestSupport
import XCTest

final class MatmulTests: XCTestCase {
    let N = 6, C = 8, OC = 5

    /// out (N, OC) = input (N, C) * weight (OC, C)^T + bias (OC).
    func reference(input: [Double], weight: [Double], bias: [Double]?) -> [Double] {
        var out = [Double](repeating: 0, count: N * OC)
        for n in 0..<N {
            for o in 0..<OC {
                var sum = bias?[o] ?? 0
                for c in 0..<C { sum += input[n * C + c] * weight[o * C + c] }
                out[n * OC + o] = sum
            }
        }
        return out
    }

    func testForwardAndBackwardWithBias() {
        let backend = makeBackend()
        withDeviceScope(backend) { scope in
            let input = randomFloats(N * C, in: -2...2, seed: 20), weight = randomFloats(OC * C, seed: 21)
            let bias = randomFloats(OC, seed: 22), dOut = randomFloats(N * OC, seed: 23)
            let inputD = scope.floats(input), weightD = scope.floats(weight)
            let biasD = scope.floats(bias), dOutD = scope.floats(dOut)
            let out = scope.floats(garbage(N * OC))

            backend.matmulForward(out: out.pointer, input: scope.operands(of: inputD), weight: scope.operands(of: weightD), bias: biasD.pointer,
                                  N: N, C: C, OC: OC)
            let x = input.doubles, w = weight.doubles, b = bias.doubles, g = dOut.doubles
            assertClose(out.array, reference(input: x, weight: w, bias: b), .reduction, "matmul forward")

            let dInput = scope.floats(garbage(N * C))
            let dWeightPrefill = randomFloats(OC * C, seed: 24), dBiasPrefill = randomFloats(OC, seed: 25)
            let dWeight = scope.floats(dWeightPrefill), dBias = scope.floats(dBiasPrefill)
            backend.matmulBackward(dInput: dInput.pointer, accumulatesDInput: false, dWeight: dWeight.pointer,
                                   dBias: dBias.pointer, dOut: dOutD.pointer, dOutOperands: scope.operands(of: dOutD),
                                   input: scope.operands(of: inputD), weight: scope.operands(of: weightD),
                                   N: N, C: C, OC: OC)
            let expectedDInput = centralDifferenceGradient(at: x) { dot(self.reference(input: $0, weight: w, bias: b), g) }
            let expectedDWeight = centralDifferenceGradient(at: w) { dot(self.reference(input: x, weight: $0, bias: b), g) }
            let expectedDBias = centralDifferenceGradient(at: b) { dot(self.reference(input: x, weight: w, bias: $0), g) }
            assertClose(dInput.array, expectedDInput, .gradient, "matmul dInput (assigned over garbage)")
            assertAccumulated(dWeight.array, prefill: dWeightPrefill, gradient: expectedDWeight, .gradient, "matmul dWeight")
            assertAccumulated(dBias.array, prefill: dBiasPrefill, gradient: expectedDBias, .gradient, "matmul dBias")

            let dInputPrefill = randomFloats(N * C, seed: 30)
            let dInputSum = scope.floats(dInputPrefill)
            backend.matmulBackward(dInput: dInputSum.pointer, accumulatesDInput: true, dWeight: dWeight.pointer,
                                   dBias: nil, dOut: dOutD.pointer, dOutOperands: scope.operands(of: dOutD),
                                   input: scope.operands(of: inputD), weight: scope.operands(of: weightD),
                                   N: N, C: C, OC: OC)
            assertAccumulated(dInputSum.array, prefill: dInputPrefill, gradient: expectedDInput, .gradient,
                              "matmul dInput (accumulated)")
        }
    }

    /// No bias in the forward; no dInput (first layer) and no dBias in the backward.
    func testWithoutBiasAndOptionalGradients() {
        let backend = makeBackend()
        withDeviceScope(backend) { scope in
            let input = randomFloats(N * C, in: -2...2, seed: 26), weight = randomFloats(OC * C, seed: 27)
            let dOut = randomFloats(N * OC, seed: 28)
            let inputD = scope.floats(input), weightD = scope.floats(weight)
            let dOutD = scope.floats(dOut), out = scope.floats(garbage(N * OC))

            backend.matmulForward(out: out.pointer, input: scope.operands(of: inputD), weight: scope.operands(of: weightD), bias: nil,
                                  N: N, C: C, OC: OC)
            let x = input.doubles, w = weight.doubles, g = dOut.doubles
            assertClose(out.array, reference(input: x, weight: w, bias: nil), .reduction, "matmul forward without bias")

            let dWeightPrefill = randomFloats(OC * C, seed: 29)
            let dWeight = scope.floats(dWeightPrefill)
            backend.matmulBackward(dInput: nil, accumulatesDInput: false, dWeight: dWeight.pointer, dBias: nil,
                                   dOut: dOutD.pointer, dOutOperands: scope.operands(of: dOutD),
                                   input: scope.operands(of: inputD), weight: scope.operands(of: weightD), N: N, C: C, OC: OC)
            let expectedDWeight = centralDifferenceGradient(at: w) { dot(self.reference(input: x, weight: $0, bias: nil), g) }
            assertAccumulated(dWeight.array, prefill: dWeightPrefill, gradient: expectedDWeight, .gradient,
                              "matmul dWeight without dInput and dBias")
        }
    }
}
