// LayerNorm over the last dimension, as torch.nn.LayerNorm: biased variance, epsilon inside the
// square root: out = (x - mean) / sqrt(var + eps) * weight + bias. Forward also returns the
// per-row mean and rstd = 1 / sqrt(var + eps) that backward reads.

import DPBackend
import DPTestSupport
import XCTest

final class LayerNormTests: XCTestCase {
    let N = 6, C = 8
    /// Large enough against the variance of the quiet rows below that misplacing it shows.
    let epsilon: Float = 1e-5

    struct Forward { var out: [Double]; var mean: [Double]; var rstd: [Double] }

    func reference(input: [Double], weight: [Double], bias: [Double]) -> Forward {
        var result = Forward(out: .init(repeating: 0, count: N * C), mean: .init(repeating: 0, count: N),
                             rstd: .init(repeating: 0, count: N))
        for n in 0..<N {
            let row = input[(n * C)..<((n + 1) * C)]
            let mean = row.reduce(0, +) / Double(C)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(C)
            let rstd = 1 / (variance + Double(epsilon)).squareRoot()
            for c in 0..<C { result.out[n * C + c] = (input[n * C + c] - mean) * rstd * weight[c] + bias[c] }
            result.mean[n] = mean
            result.rstd[n] = rstd
        }
        return result
    }

    /// Rows of very different spread (half-widths from 0.02 to 3) around nonzero means. The
    /// quiet rows have a variance near 1e-4, so epsilon changes their output by several percent,
    /// while Float's rounding of their mean stays within the tolerance.
    func makeInput() -> [Float] {
        let spreads: [Float] = [1, 3, 0.02, 0.3, 0.05, 1.5]
        let noise = randomFloats(N * C, seed: 30), means = randomFloats(N, in: -0.5...0.5, seed: 31)
        return (0..<(N * C)).map { means[$0 / C] + spreads[$0 / C] * noise[$0] }
    }

    func testForwardAndBackward() {
        let backend = makeBackend()
        withDeviceScope(backend) { scope in
            let input = makeInput(), weight = randomFloats(C, in: 0.5...1.5, seed: 32)
            let bias = randomFloats(C, seed: 33), dOut = randomFloats(N * C, seed: 34)
            let inputD = scope.floats(input), weightD = scope.floats(weight)
            let biasD = scope.floats(bias), dOutD = scope.floats(dOut)
            let out = scope.floats(garbage(N * C))
            let mean = scope.floats(garbage(N)), rstd = scope.floats(garbage(N))

            backend.layerNormForward(out: out.pointer, operands: nil, mean: mean.pointer, rstd: rstd.pointer, input: inputD.pointer,
                                     weight: weightD.pointer, bias: biasD.pointer, N: N, C: C, epsilon: epsilon)
            let x = input.doubles, w = weight.doubles, b = bias.doubles, g = dOut.doubles
            let expected = reference(input: x, weight: w, bias: b)
            assertClose(out.array, expected.out, .reduction, "layerNorm forward out")
            assertClose(mean.array, expected.mean, .reduction, "layerNorm forward mean")
            assertClose(rstd.array, expected.rstd, .reduction, "layerNorm forward rstd")

            let dInput = scope.floats(garbage(N * C))
            let dWeightPrefill = randomFloats(C, seed: 35), dBiasPrefill = randomFloats(C, seed: 36)
            let dWeight = scope.floats(dWeightPrefill), dBias = scope.floats(dBiasPrefill)
            backend.layerNormBackward(dInput: dInput.pointer, branch: nil, dWeight: dWeight.pointer, dBias: dBias.pointer,
                                      dOut: dOutD.pointer, input: inputD.pointer, weight: weightD.pointer,
                                      mean: mean.pointer, rstd: rstd.pointer, B: 2, T: N / 2, C: C)
            let expectedDInput = centralDifferenceGradient(at: x) { dot(self.reference(input: $0, weight: w, bias: b).out, g) }
            let expectedDWeight = centralDifferenceGradient(at: w) { dot(self.reference(input: x, weight: $0, bias: b).out, g) }
            let expectedDBias = centralDifferenceGradient(at: b) { dot(self.reference(input: x, weight: w, bias: $0).out, g) }
            // dInput is checked row by row: the quiet rows' gradients are 50 times the others'.
            let dInputs = dInput.array
            for n in 0..<N {
                let rows = (n * C)..<((n + 1) * C)
                assertClose(Array(dInputs[rows]), Array(expectedDInput[rows]), .gradient,
                            "layerNorm dInput row \(n) (assigned over garbage)")
            }
            assertAccumulated(dWeight.array, prefill: dWeightPrefill, gradient: expectedDWeight, .gradient, "layerNorm dWeight")
            assertAccumulated(dBias.array, prefill: dBiasPrefill, gradient: expectedDBias, .gradient, "layerNorm dBias")
        }
    }

    /// The dropped branch's gradient is dInput through dropoutBackward's mask, element for element,
    /// with rows of 37 channels so that examples' rows start inside the mask's groups of four.
    func testBranchGradientIsDInputThroughTheBranchDropout() {
        let backend = makeBackend()
        let (B, T, C) = (3, 5, 37), N = B * T
        withDeviceScope(backend) { scope in
            let input = scope.floats(randomFloats(N * C, in: -2...2, seed: 40))
            let weight = scope.floats(randomFloats(C, in: 0.5...1.5, seed: 41))
            let bias = scope.floats(randomFloats(C, seed: 42)), dOut = scope.floats(randomFloats(N * C, seed: 43))
            let out = scope.floats(count: N * C), mean = scope.floats(count: N), rstd = scope.floats(count: N)
            backend.layerNormForward(out: out.pointer, operands: nil, mean: mean.pointer, rstd: rstd.pointer, input: input.pointer,
                                     weight: weight.pointer, bias: bias.pointer, N: N, C: C, epsilon: epsilon)
            let examples = scope.indices([9, 0, 4])
            for probability: Float in [0.4, 0] {
                let dropout = DropoutSite(probability: probability, seed: 3, step: 8, site: 21,
                                          exampleIndices: examples.pointer)
                let dInput = scope.floats(garbage(N * C)), dBranch = scope.floats(garbage(N * C))
                let dInputAlone = scope.floats(garbage(N * C)), dWeight = scope.floats(count: C)
                let dBias = scope.floats(count: C)
                backend.layerNormBackward(dInput: dInput.pointer,
                                          branch: DroppedBranch(dInput: dBranch.pointer, dropout: dropout),
                                          dWeight: dWeight.pointer, dBias: dBias.pointer, dOut: dOut.pointer,
                                          input: input.pointer, weight: weight.pointer, mean: mean.pointer,
                                          rstd: rstd.pointer, B: B, T: T, C: C)
                backend.layerNormBackward(dInput: dInputAlone.pointer, branch: nil, dWeight: dWeight.pointer,
                                          dBias: dBias.pointer, dOut: dOut.pointer, input: input.pointer,
                                          weight: weight.pointer, mean: mean.pointer, rstd: rstd.pointer,
                                          B: B, T: T, C: C)
                XCTAssertEqual(dInput.array, dInputAlone.array, "p \(probability): the branch changed dInput")
                let expected = scope.floats(garbage(N * C))
                backend.dropoutBackward(dInput: expected.pointer, dOut: dInputAlone.pointer, dropout: dropout,
                                        B: B, R: T * C)
                XCTAssertEqual(dBranch.array, expected.array, "p \(probability): the branch's gradient")
                let dropped = dBranch.array.filter { $0 == 0 }.count
                if probability > 0 {
                    XCTAssert((N * C / 4..<N * C / 2).contains(dropped), "p 0.4 dropped \(dropped) of \(N * C)")
                } else {
                    XCTAssertEqual(dropped, 0, "p 0 dropped elements")
                }
            }
        }
    }
}
