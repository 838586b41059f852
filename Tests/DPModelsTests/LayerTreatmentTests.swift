// The two per-layer treatments of Zhang et al. 2020's stable fine-tuning: re-initialising the
// top layers (--reinit-layers) and layer-wise learning-rate decay (--layer-lr-decay). Both are
// checked against the parameter table's own layer tags, not against the ranges they compute.

import DPBackend
import DPModels
import DPTensor
import DPTestSupport
import DPTrain
import XCTest

final class LayerTreatmentTests: XCTestCase {
    private func tinyModel(_ name: String) throws -> EncoderModel {
        let golden = try XCTUnwrap(try GoldenCase.committed().first { $0.name == name })
        return try EncoderModel.load(from: golden.directory, backend: CPUBackend(threads: 1)).0
    }

    private func values(_ model: EncoderModel) -> [Float] {
        Array(UnsafeBufferPointer(start: model.parameters, count: model.parameterCount))
    }

    func testReinitialisationRedrawsThePoolerAndTheTopLayersOnly() throws {
        let model = try tinyModel("bert-regression-pooler")
        let config = model.layout.config
        let before = values(model)
        let names = model.reinitialiseTopLayers(1, seed: 5)
        let after = values(model)
        let top = config.numHiddenLayers - 1
        for spec in model.table.specs {
            let old = Array(before[spec.range]), new = Array(after[spec.range])
            let fresh = spec.layer == top || spec.name.hasPrefix("pooler.")
            XCTAssertEqual(names.contains(spec.name), fresh, spec.name)
            guard fresh else {
                XCTAssertEqual(new, old, "\(spec.name) is below the re-initialised layers and must not move")
                continue
            }
            if spec.name.contains("LayerNorm") {
                XCTAssertEqual(new, [Float](repeating: spec.name.hasSuffix(".weight") ? 1 : 0, count: spec.count), spec.name)
            } else if spec.shape.count == 1 {
                XCTAssertEqual(new, [Float](repeating: 0, count: spec.count), spec.name)
            } else {
                XCTAssertNotEqual(new, old, spec.name)
                let mean = new.reduce(0, +) / Float(new.count)
                let deviation = (new.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(new.count)).squareRoot()
                // Each matrix holds at least 32 x 32 draws, so the sample deviation sits within 10%.
                XCTAssertEqual(deviation, config.initializerRange, accuracy: 0.1 * config.initializerRange, spec.name)
                XCTAssertEqual(mean, 0, accuracy: 4 * config.initializerRange / Float(new.count).squareRoot(), spec.name)
            }
        }

        // Every rank draws the same values from the same seed, and another seed draws others.
        let again = try tinyModel("bert-regression-pooler")
        _ = again.reinitialiseTopLayers(1, seed: 5)
        XCTAssertEqual(values(again), after)
        let other = try tinyModel("bert-regression-pooler")
        _ = other.reinitialiseTopLayers(1, seed: 6)
        XCTAssertNotEqual(values(other), after)

        let untouched = try tinyModel("bert-regression-pooler")
        XCTAssertEqual(untouched.reinitialiseTopLayers(0, seed: 5), [])
        XCTAssertEqual(values(untouched), before)
    }

    func testRobertaHeadHasNoPoolerToRedraw() throws {
        let model = try tinyModel("roberta-classification")
        let names = model.reinitialiseTopLayers(model.layout.config.numHiddenLayers, seed: 1)
        let layered = model.table.specs.filter { $0.layer != nil }.map(\.name)
        XCTAssertEqual(names, layered, "every layer, and neither the embeddings nor the head")
    }

    /// A grouped update must equal, span by span, a plain optimizer's update at that span's rate:
    /// the same decay mask (now counted from the span's start), bias correction and moments.
    func testLayerwiseDecayStepsEachLayerAsAPlainOptimizerAtItsRate() throws {
        let model = try tinyModel("bert-regression-pooler")
        let layout = model.layout, table = model.table, L = layout.config.numHiddenLayers
        let decay: Float = 0.8
        let groups = layout.layerwiseLearningRateGroups(decay: decay)

        // The spans hold exactly the tensors the table tags with their layer, the embeddings
        // below the first and the head above the last, and the rate falls by `decay` per layer.
        XCTAssertEqual(groups.count, L + 2)
        for spec in table.specs {
            let group = try XCTUnwrap(groups.firstIndex { $0.range.contains(spec.offset) })
            XCTAssertTrue(groups[group].range.contains(spec.range.upperBound - 1), "\(spec.name) straddles two groups")
            let expectedGroup = spec.layer.map { $0 + 1 } ?? (spec.name.hasPrefix("embeddings.") ? 0 : L + 1)
            XCTAssertEqual(group, expectedGroup, spec.name)
        }
        XCTAssertEqual(groups.last?.scale, 1)
        for (lower, upper) in zip(groups, groups.dropFirst()) {
            XCTAssertEqual(lower.scale, upper.scale * decay, accuracy: 1e-6)
        }

        let backend = model.backend, count = table.totalCount, learningRate: Float = 1e-2
        let settings = AdamWSettings(weightDecay: 0.1)
        let initial = randomFloats(count, seed: 3)
        let gradientSteps = [randomFloats(count, seed: 4), randomFloats(count, seed: 5)]
        func train(_ optimizer: AdamWOptimizer) -> [Float] {
            withDeviceScope(backend) { scope in
                let parameters = scope.floats(initial)
                for gradient in gradientSteps {
                    let gradients = scope.floats(gradient)
                    optimizer.update(parameters: parameters.pointer, gradients: gradients.pointer, learningRate: learningRate)
                }
                return parameters.array
            }
        }
        let grouped = train(AdamWOptimizer(table: table, settings: settings, backend: backend, groups: groups))
        for (index, group) in groups.enumerated() {
            let plain = train(AdamWOptimizer(table: table, settings: settings, backend: backend,
                                             groups: [LearningRateGroup(range: 0..<count, scale: group.scale)]))
            XCTAssertEqual(Array(grouped[group.range]), Array(plain[group.range]), "group \(index), scale \(group.scale)")
        }
        XCTAssertNotEqual(grouped[groups[0].range], train(AdamWOptimizer(table: table, settings: settings,
                                                                         backend: backend))[groups[0].range],
                          "the embeddings must not step at the head's rate")

        // With zero gradients only the decoupled decay moves a parameter, by its group's rate:
        // each tensor the table marks as decaying shrinks by exactly (1 - lr scale wd).
        let decayed = withDeviceScope(backend) { scope in
            let parameters = scope.floats(initial), gradients = scope.floats(count: count)
            AdamWOptimizer(table: table, settings: settings, backend: backend, groups: groups)
                .update(parameters: parameters.pointer, gradients: gradients.pointer, learningRate: learningRate)
            return parameters.array
        }
        for spec in table.specs {
            let scale = try XCTUnwrap(groups.first { $0.range.contains(spec.offset) }).scale
            let expected = initial[spec.range].map { spec.decays ? $0 * (1 - learningRate * scale * settings.weightDecay) : $0 }
            XCTAssertEqual(Array(decayed[spec.range]), expected, "\(spec.name) (decays: \(spec.decays))")
        }
    }
}
