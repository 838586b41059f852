// The optimizer's weight-decay mask comes from the parameter table: with zero gradients Adam's
// moments stay zero and only the decay moves a parameter, so every tensor the table marks as
// decaying shrinks by exactly (1 - lr wd) and every other one is left bit for bit as it was.

import DPBackend
import DPTensor
import DPTestSupport
import DPTrain
import XCTest

final class AdamWOptimizerTests: XCTestCase {
    func testDecayFollowsTheParameterTable() {
        // Sizes chosen so that tensors start and end inside the mask's 32-bit words and on their edges.
        var table = ParameterTable()
        let tensors: [(String, [Int], Bool)] = [
            ("a.weight", [3, 7], true), ("a.bias", [5], false), ("b.weight", [33], true), ("b.bias", [1], false),
            ("LayerNorm.weight", [64], false), ("c.weight", [31, 2], true), ("c.bias", [31], false),
        ]
        for (name, shape, decays) in tensors { table.append(name, shape, decays: decays, layer: nil) }
        let backend = CPUBackend(threads: 1)
        let learningRate: Float = 0.1, weightDecay: Float = 0.5
        let optimizer = AdamWOptimizer(table: table, settings: AdamWSettings(weightDecay: weightDecay), backend: backend)
        let initial = randomFloats(table.totalCount, in: 0.5...2, seed: 11)
        withDeviceScope(backend) { scope in
            let parameters = scope.floats(initial), gradients = scope.floats(count: table.totalCount)
            optimizer.update(parameters: parameters.pointer, gradients: gradients.pointer, learningRate: learningRate)
            let updated = parameters.array
            for spec in table.specs {
                let expected = initial[spec.range].map { spec.decays ? $0 * (1 - learningRate * weightDecay) : $0 }
                XCTAssertEqual(Array(updated[spec.range]), expected, "\(spec.name) (decays: \(spec.decays))")
            }
        }
    }
}
