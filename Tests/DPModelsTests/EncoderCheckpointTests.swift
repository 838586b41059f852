import DPBackend
import DPModels
import DPTestSupport
import DPTrain
import Foundation
import XCTest

/// Fine-tuned models go back out in the Hugging Face layout: dp-train reloads them bit for bit,
/// transformers loads them and computes the same logits, and a checkpoint that lacks a tensor or
/// has one of the wrong shape is refused with the file and the tensor named.
final class EncoderCheckpointTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("dp-train-ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    /// Loads a golden case and takes one optimizer step, so that the saved weights differ from
    /// the ones the case started with.
    private func trainedModel(_ golden: GoldenCase, backend: CPUBackend) throws -> (EncoderModel, EncoderBatch) {
        let (model, _) = try EncoderModel.load(from: golden.directory, backend: backend)
        let batch = try golden.batch(for: model)
        let optimizer = AdamWOptimizer(table: model.table, settings: AdamWSettings(), backend: backend)
        _ = trainingStep(model: model, optimizer: optimizer, batch: batch, targets: try golden.targets(for: model),
                         settings: StepSettings(learningRate: 1e-2, maxGradientNorm: 1, dropout: nil))
        return (model, batch)
    }

    private func parameters(_ model: EncoderModel) -> [Float] {
        Array(UnsafeBufferPointer(start: model.parameters, count: model.parameterCount))
    }

    func testSavedModelReloadsBitForBit() throws {
        let backend = CPUBackend(threads: 1)
        for golden in try GoldenCase.committed() {
            let (model, _) = try trainedModel(golden, backend: backend)
            let original = try EncoderModel.load(from: golden.directory, backend: backend).0
            XCTAssertNotNil(exactMismatch(parameters(model), parameters(original)), "\(golden.name): the step changed nothing")

            let folder = scratch.appendingPathComponent(golden.name)
            try model.save(to: folder)
            let (reloaded, report) = try EncoderModel.load(from: folder, backend: backend)
            XCTAssertEqual(report.initialised, [], golden.name)
            XCTAssertEqual(reloaded.layout.head, model.layout.head, golden.name)
            XCTAssertNil(exactMismatch(parameters(reloaded), parameters(model)), golden.name)
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
            XCTAssertEqual(leftovers, ["config.json", "model.safetensors"], "\(golden.name): temporary files left behind")
        }
    }

    func testTransformersLoadsSavedModelWithTheSameLogits() throws {
        guard let python = ProcessInfo.processInfo.environment["DPTRAIN_PYTHON"] else {
            throw XCTSkip("DPTRAIN_PYTHON is not set; scripts/test.sh runs this with transformers installed")
        }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/check_hf_checkpoint.py")
        let backend = CPUBackend(threads: 1)
        for golden in try GoldenCase.committed() {
            let (model, batch) = try trainedModel(golden, backend: backend)
            let folder = scratch.appendingPathComponent(golden.name)
            try model.save(to: folder)
            model.forward(batch, dropout: nil)
            let expected = scratch.appendingPathComponent("\(golden.name)-expected.safetensors")
            try writeExpected(batch: batch, logits: model.logits(), K: model.layout.K, to: expected)

            let process = Process()
            process.executableURL = URL(fileURLWithPath: python)
            process.arguments = [script.path, folder.path, expected.path]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0, "\(golden.name): \(text)")
            XCTAssertTrue(text.hasPrefix("OK"), "\(golden.name): \(text)")
        }
    }

    private func writeExpected(batch: EncoderBatch, logits: [Float], K: Int, to url: URL) throws {
        let ids = batch.inputIds.map(Float.init), types = batch.typeIds.map(Float.init)
        try ids.withUnsafeBufferPointer { ids in
            try types.withUnsafeBufferPointer { types in
                try batch.attentionMask.withUnsafeBufferPointer { mask in
                    try logits.withUnsafeBufferPointer { logits in
                        try SafeTensorsWriter.write([
                            (name: "input_ids", shape: [batch.B, batch.T], values: ids),
                            (name: "token_type_ids", shape: [batch.B, batch.T], values: types),
                            (name: "attention_mask", shape: [batch.B, batch.T], values: mask),
                            (name: "logits", shape: [batch.B, K], values: logits),
                        ], metadata: [:], to: url)
                    }
                }
            }
        }
    }

    func testMissingOrMisshapenTensorIsNamed() throws {
        let golden = try XCTUnwrap(try GoldenCase.committed().first { $0.name == "bert-regression-pooler" })
        let source = try SafeTensorsFile(contentsOf: golden.directory.appendingPathComponent("model.safetensors"))
        let victim = "bert.encoder.layer.1.intermediate.dense.weight"
        XCTAssertNotNil(source.info(victim))

        for broken in ["missing", "misshapen"] {
            let folder = scratch.appendingPathComponent(broken)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: golden.directory.appendingPathComponent("config.json"),
                                             to: folder.appendingPathComponent("config.json"))
            var tensors: [(String, [Int], [Float])] = []
            for name in source.names where name != victim || broken == "misshapen" {
                var shape = try XCTUnwrap(source.info(name)).shape
                var values = try source.floats(name)
                if name == victim {
                    shape[0] -= 1
                    values.removeLast(shape[1])
                }
                tensors.append((name, shape, values))
            }
            try withTensorViews(tensors) {
                try SafeTensorsWriter.write($0, metadata: [:], to: folder.appendingPathComponent("model.safetensors"))
            }

            XCTAssertThrowsError(try EncoderModel.load(from: folder, backend: CPUBackend(threads: 1))) { error in
                let message = String(describing: error)
                XCTAssertTrue(message.contains("model.safetensors"), message)
                XCTAssertTrue(message.contains(victim), message)
                if broken == "misshapen" { XCTAssertTrue(message.contains("[36, 32]"), message) }
            }
        }
    }

    /// Padding to the longest sequence must not change any example's result.
    func testPaddingDoesNotChangeResults() throws {
        let backend = CPUBackend(threads: 1)
        for golden in try GoldenCase.committed() {
            let (model, _) = try EncoderModel.load(from: golden.directory, backend: backend)
            let padded = try golden.batch(for: model)
            model.forward(padded, dropout: nil)
            let batchLogits = model.logits()
            for b in 0..<padded.B {
                let length = (0..<padded.T).filter { padded.attentionMask[b * padded.T + $0] != 0 }.count
                let row = b * padded.T
                let alone = EncoderBatch(sequences: [Array(padded.inputIds[row..<(row + length)])],
                                         typeIds: [Array(padded.typeIds[row..<(row + length)])],
                                         modelType: model.layout.config.modelType,
                                         padTokenId: model.layout.config.padTokenId)
                XCTAssertEqual(alone.T, length)
                model.forward(alone, dropout: nil)
                let K = model.layout.K
                let expected = batchLogits[(b * K)..<((b + 1) * K)].map(Double.init)
                XCTAssertNil(mismatch(model.logits(), expected, Tolerance(relative: 1e-5, absolute: 1e-6)),
                             "\(golden.name) example \(b)")
            }
        }
    }
}
