import DPBackend
import DPModels
import DPTestSupport
import Foundation
import XCTest

/// Whole models against transformers: every hidden state, the pooled vectors, logits, loss and
/// the gradient of every parameter, for the tiny BERT, RoBERTa and ALBERT cases committed under
/// Golden/ and, when scripts/test.sh has produced it, the real all-MiniLM-L6-v2.
final class GoldenModelTests: XCTestCase {
    /// Forward activations: the same fp32 arithmetic as PyTorch in another summation order,
    /// through up to a dozen LayerNorms; measured against the tensor's own scale.
    static let activations = Tolerance(relative: 1e-4, absolute: 2e-5)
    /// Gradients pass the same chain twice and sum over the batch; an element is held to the
    /// scale of its whole tensor, so tiny gradients that cancel are not held to relative bounds.
    static let gradients = Tolerance(relative: 1e-3, absolute: 1e-4)

    func testTinyModelsMatchTransformers() throws {
        let cases = try GoldenCase.committed()
        XCTAssertGreaterThanOrEqual(cases.count, 7, "golden fixtures are missing; run scripts/golden.py")
        for golden in cases { try check(golden, threads: 1) }
    }

    func testTinyModelsMatchTransformersOnTwoThreads() throws {
        for golden in try GoldenCase.committed() { try check(golden, threads: 2) }
    }

    func testMiniLMMatchesTransformers() throws {
        guard let path = ProcessInfo.processInfo.environment["DPTRAIN_MINILM_GOLDEN"] else {
            throw XCTSkip("DPTRAIN_MINILM_GOLDEN is not set; scripts/test.sh generates the all-MiniLM-L6-v2 golden tensors")
        }
        try check(GoldenCase(directory: URL(fileURLWithPath: path)), threads: 2)
    }

    private func check(_ golden: GoldenCase, threads: Int) throws {
        let backend = CPUBackend(threads: threads)
        let (model, report) = try EncoderModel.load(from: golden.directory, backend: backend)
        XCTAssertEqual(report.initialised, [], "\(golden.name): the checkpoint should hold every tensor")
        let batch = try golden.batch(for: model)
        XCTAssertEqual(batch.positionIds, try golden.golden.int32s("position_ids"), "\(golden.name): position ids")

        model.forward(batch, dropout: nil)
        let applications = model.layout.schedule.count
        for index in 0...applications {
            expect(model.hiddenState(index), golden, "hidden_states.\(index)", Self.activations)
        }
        if golden.has("pooled_output") { expect(model.poolerOutput(), golden, "pooled_output", Self.activations) }
        if golden.has("pooled") { expect(model.pooledFeatures(), golden, "pooled", Self.activations) }
        expect(model.logits(), golden, "logits", Self.activations)

        let losses = model.loss(try golden.targets(for: model), gradScale: 1 / Float(batch.B))
        let meanLoss = losses.reduce(0, +) / Float(batch.B)
        expect([meanLoss], golden, "loss", Self.activations)

        model.zeroGradients()
        model.backward()
        var gradients = [Float](repeating: 0, count: model.parameterCount)
        gradients.withUnsafeMutableBufferPointer {
            backend.download($0.baseAddress!, from: model.gradients, count: model.parameterCount)
        }
        let stored = Set(try CheckpointFolder(directory: golden.directory).loadTensorNames())
        for spec in model.table.specs {
            let name = stored.contains(spec.name) ? spec.name : model.layout.prefix + spec.name
            expect(Array(gradients[spec.range]), golden, "grad." + name, Self.gradients)
        }
    }

    private func expect(_ got: [Float], _ golden: GoldenCase, _ tensor: String, _ tolerance: Tolerance,
                        file: StaticString = #filePath, line: UInt = #line) {
        do {
            let expected = try golden.floats(tensor).map(Double.init)
            if let problem = mismatch(got, expected, tolerance) {
                XCTFail("\(golden.name) \(tensor): \(problem)", file: file, line: line)
            }
        } catch {
            XCTFail("\(golden.name) \(tensor): \(error)", file: file, line: line)
        }
    }
}
