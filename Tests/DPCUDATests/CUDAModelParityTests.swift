// Whole models on CUDA: one full training step (forward with dropout, loss, backward, clipping,
// AdamW) against the CPU backend from the same weights and batch, and the golden PyTorch
// tensors of the committed tiny cases and of all-MiniLM-L6-v2, as GoldenModelTests checks them
// on the CPU.

import DPBackend
import DPModels
import DPTensor
import DPTestSupport
import DPTrain
import Foundation
import XCTest

final class CUDAModelParityTests: XCTestCase {
    /// The committed tiny golden cases. Tests/DPModelsTests/Golden is found next to this source
    /// file, or under the current directory when the test binary was built elsewhere (the GPU
    /// machine runs a binary built on another machine, from the repository root).
    private func goldenCases() throws -> [GoldenCase] {
        let besideSource = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("DPModelsTests")
        let underCurrent = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
            .appendingPathComponent("Tests/DPModelsTests")
        let folder = FileManager.default.fileExists(atPath: besideSource.appendingPathComponent("Golden").path)
            ? besideSource : underCurrent
        return try GoldenCase.committed(in: folder.appendingPathComponent("GoldenModelTests.swift").path)
    }

    /// One training step per golden architecture (BERT, RoBERTa, ALBERT; pooler, first-token,
    /// mean and RoBERTa heads; regression and classification), dropout on, on both backends.
    func testTrainingStepMatchesCPU() throws {
        let cuda = try makeCUDABackend()
        let cases = try goldenCases()
        XCTAssertGreaterThanOrEqual(cases.count, 7, "golden fixtures are missing")
        for golden in cases {
            let (reference, table) = try step(golden, backend: CPUBackend(threads: 2))
            let (got, _) = try step(golden, backend: cuda)
            for (name, expected) in reference.sorted(by: { $0.key < $1.key }) {
                assertParity(got[name]!, expected, "\(golden.name) step \(name)")
                guard expected.count == table.totalCount else { continue }
                // Each parameter's slice on its own too, with CUDAParity.sliceTolerance and a
                // floor of the norm the slice would have if the buffer's were spread evenly.
                let norm = expected.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
                for spec in table.specs {
                    assertParity(Array(got[name]![spec.range]), Array(expected[spec.range]),
                                 "\(golden.name) step \(name) \(spec.name)",
                                 floor: norm * (Double(spec.count) / Double(table.totalCount)).squareRoot(),
                                 tolerance: CUDAParity.sliceTolerance)
                }
            }
        }
    }

    /// One step in tf32 and bf16. A sum that differs in its last fp32 bit can round an operand of
    /// the next product to the neighbouring tf32 or bf16 value, so whole tensors are held to one
    /// rounding step of the format (2^-mantissa bits) instead of 1e-6. That bound is looser than
    /// the effect of the rounding itself, so the step must also differ from the CPU's fp32 step:
    /// a CUDA path that silently ran in fp32 fails there.
    ///
    /// One step, not two: AdamW's first update is lr g/|g|, a full +-lr wherever a gradient is
    /// near zero, so one flipped operand in step 0 flips the sign of those updates and the second
    /// step starts from weights up to 2 lr apart. On the CUDA emulator one flip in the second
    /// layer of albert-regression-groups in bf16 left step 0's gradients 6.6e-4 apart and step
    /// 1's 9.6e-3 (past 2^-7). The second step runs the same rounded products as the first, and
    /// testTrainingStepMatchesCPU checks in fp32 that AdamW's state carries over.
    func testReducedPrecisionTrainingStepsMatchCPU() throws {
        for precision in [Precision.tf32, .bf16] {
            let cuda = try makeCUDABackend(precision: precision)
            let tolerance = pow(2, -Double(precision.mantissaBits))
            for golden in try goldenCases() {
                let (reference, _) = try step(golden, backend: CPUBackend(threads: 2, precision: precision), count: 1)
                let (got, _) = try step(golden, backend: cuda, count: 1)
                for (name, expected) in reference.sorted(by: { $0.key < $1.key }) {
                    assertParity(got[name]!, expected, "\(precision.rawValue) \(golden.name) step \(name)",
                                 tolerance: tolerance)
                }
                let (fp32, _) = try step(golden, backend: CPUBackend(threads: 2), count: 1)
                let gradients = "0.gradients (before the clip)"
                let fromFP32 = CUDAParity.normalisedError(got[gradients]!, fp32[gradients]!)
                XCTAssertGreaterThan(fromFP32, CUDAParity.roundedOpTolerance(precision),
                                     "\(precision.rawValue) \(golden.name): the step's gradients are fp32's")
            }
        }
    }

    /// Runs `count` steps (two, so that AdamW's state carries over) and returns what each produced.
    private func step(_ golden: GoldenCase, backend: any Backend,
                      count: Int = 2) throws -> ([String: [Float]], ParameterTable) {
        let (model, _) = try EncoderModel.load(from: golden.directory, backend: backend)
        let batch = try golden.batch(for: model), targets = try golden.targets(for: model)
        let optimizer = AdamWOptimizer(table: model.table, settings: AdamWSettings(), backend: backend)
        var results: [String: [Float]] = [:]
        for step in 0..<count {
            let dropout = DropoutSettings(hidden: 0.1, attention: 0.1, classifier: 0.1, seed: 5, step: UInt64(step))
            let statistics = trainingStep(model: model, optimizer: optimizer, batch: batch, targets: targets,
                                          settings: StepSettings(learningRate: 1e-3, maxGradientNorm: 0.5,
                                                                 dropout: dropout))
            results["\(step).loss"] = [statistics.loss]
            results["\(step).gradient norm"] = [statistics.gradientNorm]
            results["\(step).logits"] = model.logits()
            results["\(step).gradients (before the clip)"] = download(model.gradients, model.parameterCount, backend)
        }
        results["parameters"] = download(model.parameters, model.parameterCount, backend)
        results["adam m"] = download(optimizer.m, model.parameterCount, backend)
        results["adam v"] = download(optimizer.v, model.parameterCount, backend)
        return (results, model.table)
    }

    private func download(_ pointer: UnsafePointer<Float>, _ count: Int, _ backend: any Backend) -> [Float] {
        var host = [Float](repeating: 0, count: count)
        host.withUnsafeMutableBufferPointer { backend.download($0.baseAddress!, from: pointer, count: count) }
        return host
    }

    /// GoldenModelTests' check, with its tolerances, on the CUDA backend.
    func testTinyModelsMatchTransformersOnCUDA() throws {
        let cuda = try makeCUDABackend()
        for golden in try goldenCases() {
            for problem in try golden.mismatchesWithTransformers(on: cuda) { XCTFail(problem) }
            print("golden \(golden.name) on \(cuda.deviceName): checked")
        }
    }

    /// The real all-MiniLM-L6-v2 (6 layers, 384 wide, tokenised sentences) on CUDA.
    func testMiniLMMatchesTransformersOnCUDA() throws {
        let cuda = try makeCUDABackend()
        guard let golden = try GoldenCase.miniLM() else {
            throw XCTSkip(GoldenCase.miniLMUnset)
        }
        for problem in try golden.mismatchesWithTransformers(on: cuda) { XCTFail(problem) }
    }
}
