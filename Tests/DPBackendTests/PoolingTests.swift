// Pooling over tokens: the first token (BertPooler reads [CLS]), the mean over the tokens
// whose attention mask is 1 (sentence-transformers' mean pooling), and the attention head's
// softmax-weighted sum. Every backward assigns the whole (B, T, C) dInput, zeros included,
// except the weighted layer pooling head's, which adds each lower state's share to what
// backward brought down to it.

import DPBackend
import DPTestSupport
import XCTest

final class PoolingTests: XCTestCase {
    let B = 3, T = 5, C = 4
    /// Example 0 is full, example 1 has three tokens, example 2 only one.
    let mask: [Float] = [1, 1, 1, 1, 1,
                         1, 1, 1, 0, 0,
                         1, 0, 0, 0, 0]

    func firstTokenReference(_ input: [Double]) -> [Double] {
        (0..<(B * C)).map { input[($0 / C) * T * C + $0 % C] }
    }

    func meanPoolReference(_ input: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: B * C)
        for b in 0..<B {
            let tokens = (0..<T).filter { mask[b * T + $0] == 1 }
            for c in 0..<C {
                out[b * C + c] = tokens.reduce(0) { $0 + input[(b * T + $1) * C + c] } / Double(tokens.count)
            }
        }
        return out
    }

    func testFirstTokenForwardAndBackward() {
        let backend = makeBackend()
        withDeviceScope(backend) { scope in
            let input = randomFloats(B * T * C, seed: 50), dOut = randomFloats(B * C, seed: 51)
            let inputD = scope.floats(input), dOutD = scope.floats(dOut)
            let out = scope.floats(garbage(B * C)), dInput = scope.floats(garbage(B * T * C))

            backend.firstTokenForward(out: out.pointer, input: inputD.pointer, B: B, T: T, C: C)
            let x = input.doubles, g = dOut.doubles
            assertClose(out.array, firstTokenReference(x), .elementwise, "firstToken forward")

            backend.firstTokenBackward(dInput: dInput.pointer, dOut: dOutD.pointer, B: B, T: T, C: C)
            let expected = centralDifferenceGradient(at: x) { dot(self.firstTokenReference($0), g) }
            assertClose(dInput.array, expected, .gradient, "firstToken dInput (assigned over garbage, zeros included)")
        }
    }

    func testMeanPoolForwardAndBackward() {
        let backend = makeBackend()
        withDeviceScope(backend) { scope in
            let input = randomFloats(B * T * C, seed: 52), dOut = randomFloats(B * C, seed: 53)
            let inputD = scope.floats(input), dOutD = scope.floats(dOut)
            let maskD = scope.floats(mask)
            let out = scope.floats(garbage(B * C)), dInput = scope.floats(garbage(B * T * C))

            backend.meanPoolForward(out: out.pointer, input: inputD.pointer, attentionMask: maskD.pointer, B: B, T: T, C: C)
            let x = input.doubles, g = dOut.doubles
            assertClose(out.array, meanPoolReference(x), .reduction, "meanPool forward")

            backend.meanPoolBackward(dInput: dInput.pointer, dOut: dOutD.pointer, attentionMask: maskD.pointer,
                                     B: B, T: T, C: C)
            let expected = centralDifferenceGradient(at: x) { dot(self.meanPoolReference($0), g) }
            assertClose(dInput.array, expected, .gradient, "meanPool dInput (assigned over garbage, padding included)")
        }
    }

    /// The weights, then the weighted sums, from (B, T) scores and (B, T, C) states.
    func attentionPoolReference(scores: [Double], input: [Double]) -> (weights: [Double], out: [Double]) {
        var weights = [Double](repeating: 0, count: B * T), out = [Double](repeating: 0, count: B * C)
        for b in 0..<B {
            let tokens = (0..<T).filter { mask[b * T + $0] == 1 }
            let maximum = tokens.map { scores[b * T + $0] }.max()!
            let sum = tokens.reduce(0) { $0 + exp(scores[b * T + $1] - maximum) }
            for t in tokens {
                weights[b * T + t] = exp(scores[b * T + t] - maximum) / sum
                for c in 0..<C { out[b * C + c] += weights[b * T + t] * input[(b * T + t) * C + c] }
            }
        }
        return (weights, out)
    }

    func testAttentionPoolForwardAndBackward() {
        let backend = makeBackend()
        withDeviceScope(backend) { scope in
            let input = randomFloats(B * T * C, seed: 54), dOut = randomFloats(B * C, seed: 55)
            // Scores far apart, so that the weights are far from uniform and the softmax is tested.
            let scores = randomFloats(B * T, in: -3...3, seed: 56)
            let inputD = scope.floats(input), dOutD = scope.floats(dOut), scoresD = scope.floats(scores)
            let maskD = scope.floats(mask)
            let out = scope.floats(garbage(B * C)), weights = scope.floats(garbage(B * T))
            let dInput = scope.floats(garbage(B * T * C)), dScores = scope.floats(garbage(B * T))

            backend.attentionPoolForward(out: out.pointer, weights: weights.pointer, scores: scoresD.pointer,
                                         input: inputD.pointer, attentionMask: maskD.pointer, B: B, T: T, C: C)
            let x = input.doubles, s = scores.doubles, g = dOut.doubles
            let expected = attentionPoolReference(scores: s, input: x)
            assertClose(weights.array, expected.weights, .reduction, "attentionPool weights (padding exactly 0)")
            for i in mask.indices where mask[i] == 0 { XCTAssertEqual(weights.array[i], 0, "padding weight [\(i)]") }
            assertClose(out.array, expected.out, .reduction, "attentionPool forward")

            backend.attentionPoolBackward(dInput: dInput.pointer, dScores: dScores.pointer, dOut: dOutD.pointer,
                                          weights: weights.pointer, input: inputD.pointer, B: B, T: T, C: C)
            let dX = centralDifferenceGradient(at: x) { dot(self.attentionPoolReference(scores: s, input: $0).out, g) }
            assertClose(dInput.array, dX, .gradient, "attentionPool dInput (assigned over garbage, padding included)")
            let dS = centralDifferenceGradient(at: s) { dot(self.attentionPoolReference(scores: $0, input: x).out, g) }
            assertClose(dScores.array, dS, .gradient, "attentionPool dScores")
        }
    }

    /// sum_l w_l states_l[b, 0] / sum_l w_l, from K states `stride` apart.
    func layerPoolReference(states: [Double], stride: Int, weights: [Double]) -> [Double] {
        let total = weights.reduce(0, +)
        return (0..<(B * C)).map { i in
            weights.indices.reduce(0) { $0 + weights[$1] * states[$1 * stride + (i / C) * T * C + i % C] } / total
        }
    }

    func testLayerPoolForwardAndBackward() {
        let backend = makeBackend()
        let K = 3, stride = B * T * C + 5 // a gap between states, which the ops must step over
        withDeviceScope(backend) { scope in
            let states = randomFloats(K * stride, seed: 57), dOut = randomFloats(B * C, seed: 58)
            let weights = randomFloats(K, in: 0.2...2, seed: 59), dWeightsStart = randomFloats(K, seed: 60)
            let statesD = scope.floats(states), dOutD = scope.floats(dOut), weightsD = scope.floats(weights)
            let out = scope.floats(garbage(B * C)), dWeights = scope.floats(dWeightsStart)

            backend.layerPoolForward(out: out.pointer, states: statesD.pointer, stride: stride, weights: weightsD.pointer,
                                     B: B, T: T, C: C, K: K)
            let x = states.doubles, w = weights.doubles, g = dOut.doubles
            assertClose(out.array, layerPoolReference(states: x, stride: stride, weights: w), .reduction, "layerPool forward")

            backend.layerPoolWeightsBackward(dWeights: dWeights.pointer, dOut: dOutD.pointer, out: out.pointer,
                                             states: statesD.pointer, stride: stride, weights: weightsD.pointer,
                                             B: B, T: T, C: C, K: K)
            let dW = centralDifferenceGradient(at: w) { dot(self.layerPoolReference(states: x, stride: stride, weights: $0), g) }
            assertClose(dWeights.array, zip(dWeightsStart.doubles, dW).map(+), .gradient, "layerPool dWeights (added)")

            let dStates = centralDifferenceGradient(at: x) {
                dot(self.layerPoolReference(states: $0, stride: stride, weights: w), g)
            }
            for layer in 0..<K {
                let last = layer == K - 1
                let start = last ? garbage(B * T * C) : randomFloats(B * T * C, seed: 61 + UInt64(layer))
                let dInput = scope.floats(start)
                backend.layerPoolStateBackward(dInput: dInput.pointer, accumulates: !last, dOut: dOutD.pointer,
                                               weights: weightsD.pointer, layer: layer, B: B, T: T, C: C, K: K)
                let share = Array(dStates[(layer * stride)..<(layer * stride + B * T * C)])
                let expected = last ? share : zip(start.doubles, share).map(+)
                assertClose(dInput.array, expected, .gradient,
                            "layerPool state \(layer) " + (last ? "(assigned over garbage)" : "(added)"))
            }
        }
    }
}
