// Losses, forward and backward fused. Losses are per example; the gradient is that of
// gradScale * sum of losses, and it is assigned (dPredictions / dLogits are activations).
//   MSE:           (prediction - target)^2                 (nn.MSELoss per element)
//   cross entropy: -log softmax(logits)[label]             (nn.CrossEntropyLoss per example)

import DPBackend
import DPTestSupport
import Foundation
import XCTest

final class LossTests: XCTestCase {
    let gradScale: Float = 0.37

    func testMSE() {
        let backend = makeBackend()
        withDeviceScope(backend) { scope in
            let B = 7
            let predictions = randomFloats(B, in: -3...3, seed: 60), targets = randomFloats(B, in: -3...3, seed: 61)
            let predictionsD = scope.floats(predictions), targetsD = scope.floats(targets)
            let losses = scope.floats(garbage(B)), dPredictions = scope.floats(garbage(B))

            backend.mseLoss(losses: losses.pointer, dPredictions: dPredictions.pointer, predictions: predictionsD.pointer,
                            targets: targetsD.pointer, B: B, gradScale: gradScale)
            let y = targets.doubles
            func reference(_ p: [Double]) -> [Double] { zip(p, y).map { ($0.0 - $0.1) * ($0.0 - $0.1) } }
            let p = predictions.doubles
            assertClose(losses.array, reference(p), .elementwise, "mse losses")
            let expected = centralDifferenceGradient(at: p) { Double(self.gradScale) * reference($0).reduce(0, +) }
            assertClose(dPredictions.array, expected, .gradient, "mse dPredictions (assigned over garbage)")
        }
    }

    /// One row of logits near 90 overflows a naive exp in Float (exp(88.7) is Float's largest):
    /// the backend must shift by the row maximum, as torch does.
    func testCrossEntropy() {
        let backend = makeBackend()
        withDeviceScope(backend) { scope in
            let B = 5, K = 4
            var logits = randomFloats(B * K, in: -4...4, seed: 62)
            for k in 0..<K { logits[3 * K + k] += 90 }
            let labels: [Int32] = [0, 3, 1, 2, 3]
            let logitsD = scope.floats(logits), labelsD = scope.indices(labels)
            let losses = scope.floats(garbage(B)), dLogits = scope.floats(garbage(B * K))

            backend.crossEntropyLoss(losses: losses.pointer, dLogits: dLogits.pointer, logits: logitsD.pointer,
                                     labels: labelsD.pointer, B: B, K: K, gradScale: gradScale)
            func reference(_ z: [Double]) -> [Double] {
                (0..<B).map { b in
                    let row = z[(b * K)..<((b + 1) * K)]
                    let top = row.max()!
                    let logSumExp = top + log(row.reduce(0) { $0 + exp($1 - top) })
                    return logSumExp - z[b * K + Int(labels[b])]
                }
            }
            let z = logits.doubles
            assertClose(losses.array, reference(z), .reduction, "cross-entropy losses")
            let expected = centralDifferenceGradient(at: z) { Double(self.gradScale) * reference($0).reduce(0, +) }
            assertClose(dLogits.array, expected, .gradient, "cross-entropy dLogits (assigned over garbage)")
        }
    }
}
