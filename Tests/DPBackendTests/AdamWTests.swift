// AdamW against a Double reference of torch.optim.AdamW (bias-corrected) and of BERTAdam
// (bc1 = bc2 = 1), three steps each, with decoupled weight decay applied first where the mask
// says so (to a random half of the parameters), and the second step's gradients clipped through
// gradientScale (g = s * gradient, rounded to Float as a separate scaling pass would round it):
//   p -= lr * wd * p               (or p -= lr * wd * (p - target): pretrained weight decay)
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)

import DPBackend
import DPTestSupport
import Foundation
import XCTest

final class AdamWTests: XCTestCase {
    let count = 1001
    /// lr, eps and wd are large enough that the decay, the bias corrections and where eps sits
    /// each move the parameters by far more than the tolerance.
    let learningRate: Float = 1e-2, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-3,
        weightDecay: Float = 0.05

    struct State { var p: [Double]; var m: [Double]; var v: [Double] }

    func referenceStep(_ state: inout State, gradients: [Double], decays: [Bool], target: [Double]?, t: Int,
                       biasCorrection: Bool) {
        let lr = Double(learningRate), b1 = Double(beta1), b2 = Double(beta2)
        let eps = Double(epsilon), wd = Double(weightDecay)
        let bc1 = biasCorrection ? 1 - pow(b1, Double(t)) : 1
        let bc2 = biasCorrection ? 1 - pow(b2, Double(t)) : 1
        for i in state.p.indices {
            if decays[i] { state.p[i] -= lr * wd * (state.p[i] - (target?[i] ?? 0)) }
            state.m[i] = b1 * state.m[i] + (1 - b1) * gradients[i]
            state.v[i] = b2 * state.v[i] + (1 - b2) * gradients[i] * gradients[i]
            state.p[i] -= lr / bc1 * state.m[i] / (state.v[i].squareRoot() / bc2.squareRoot() + eps)
        }
    }

    func checkThreeSteps(biasCorrection: Bool, decaysTowardTarget: Bool = false) {
        let backend = makeBackend()
        withDeviceScope(backend) { scope in
            let name = (biasCorrection ? "torch AdamW" : "BERTAdam") + (decaysTowardTarget ? ", decay to a target" : "")
            let parameters = randomFloats(count, in: -2...2, seed: 90)
            // Far from the parameters, so that decaying toward it moves them another way than toward 0.
            let targetValues = decaysTowardTarget ? randomFloats(count, in: -2...2, seed: 88) : nil
            let target = targetValues.map { scope.floats($0) }
            let p = scope.floats(parameters)
            let m = scope.floats(count: count), v = scope.floats(count: count)
            let mask = randomDecayMask(count, seed: 89), decays = scope.indices(mask.words)
            var state = State(p: parameters.doubles, m: .init(repeating: 0, count: count), v: .init(repeating: 0, count: count))
            for t in 1...3 {
                // Gradients of mixed scale, with exact zeros (v = 0 at the first step: eps alone divides).
                var gradients = randomFloats(count, in: -1...1, seed: 91 + UInt64(t))
                for i in stride(from: 0, to: count, by: 3) { gradients[i] *= 0.01 }
                for i in stride(from: t, to: count, by: 17) { gradients[i] = 0 }
                let g = scope.floats(gradients)
                let clipScale: Float = t == 2 ? 0.37 : 1
                let hyperparameters = AdamWHyperparameters(
                    learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon, weightDecay: weightDecay,
                    biasCorrection1: biasCorrection ? Float(1 - pow(Double(beta1), Double(t))) : 1,
                    biasCorrection2: biasCorrection ? Float(1 - pow(Double(beta2), Double(t))) : 1,
                    gradientScale: clipScale)
                backend.adamW(parameters: p.pointer, gradients: g.pointer, m: m.pointer, v: v.pointer,
                              decays: decays.pointer, decayTarget: target?.pointer, count: count,
                              hyperparameters: hyperparameters)
                referenceStep(&state, gradients: gradients.map { $0 * clipScale }.doubles, decays: mask.decays,
                              target: targetValues?.doubles, t: t, biasCorrection: biasCorrection)
                // One Float rounding of p per step, and a few in the update (which is about lr).
                assertClose(p.array, state.p, Tolerance(relative: 1e-6, absolute: 1e-7), "\(name) parameters after step \(t)")
                // m is stored as Float each step: up to half an ulp of |m| <= 0.3 a step, shrinking by
                // b1 after, about 2.4e-8 after three steps where a later gradient cancels m.
                assertClose(m.array, state.m, Tolerance(relative: 1e-5, absolute: 3e-8), "\(name) m after step \(t)")
                assertClose(v.array, state.v, Tolerance(relative: 1e-5, absolute: 1e-12), "\(name) v after step \(t)")
                assertIdentical(g.array, gradients, "\(name) must not modify the gradients")
                if let target, let targetValues { assertIdentical(target.array, targetValues, "\(name) must not modify the target") }
            }
        }
    }

    func testTorchAdamWWithBiasCorrection() { checkThreeSteps(biasCorrection: true) }

    func testBERTAdamWithoutBiasCorrection() { checkThreeSteps(biasCorrection: false) }

    func testPretrainedWeightDecayPullsTowardItsTarget() { checkThreeSteps(biasCorrection: true, decaysTowardTarget: true) }
}
