import DPBackend
import DPModels
import DPTensor
import DPTestSupport
import DPTrain
import Foundation
import XCTest

/// Properties the data-parallel trainer relies on: an example's dropout masks and gradient do
/// not depend on which other examples share its batch, or on how a batch is split, and a long
/// run holds its memory flat.
final class EncoderTrainingTests: XCTestCase {
    private func tinyModel(_ name: String = "bert-regression-pooler") throws -> (EncoderModel, GoldenCase) {
        let golden = try XCTUnwrap(try GoldenCase.committed().first { $0.name == name })
        return (try EncoderModel.load(from: golden.directory, backend: CPUBackend(threads: 1)).0, golden)
    }

    private func dropout(step: UInt64) -> DropoutSettings {
        DropoutSettings(hidden: 0.1, attention: 0.1, classifier: 0.1, seed: 42, step: step)
    }

    /// Random sequences of different lengths, tagged with global example indices.
    private func sequences(_ model: EncoderModel, count: Int, seed: UInt64) -> [[Int32]] {
        var generator = SeededGenerator(seed: seed)
        let vocabulary = UInt64(model.layout.config.vocabSize - 2)
        return (0..<count).map { _ in (0..<(3 + Int(generator.next() % 9))).map { _ in Int32(2 + generator.next() % vocabulary) } }
    }

    private func gradients(_ model: EncoderModel) -> [Float] {
        Array(UnsafeBufferPointer(start: model.gradients, count: model.parameterCount))
    }

    func testDropoutMasksFollowTheExampleNotTheBatch() throws {
        for name in ["bert-regression-pooler", "roberta-classification", "albert-classification"] {
            let (model, _) = try tinyModel(name)
            let config = model.layout.config
            let all = sequences(model, count: 4, seed: 7)
            let together = EncoderBatch(sequences: all, exampleIndices: [10, 11, 12, 13],
                                        modelType: config.modelType, padTokenId: config.padTokenId)
            model.forward(together, dropout: dropout(step: 3))
            let K = model.layout.K
            let logitsTogether = model.logits()

            let alone = EncoderBatch(sequences: [all[2]], exampleIndices: [12], modelType: config.modelType,
                                     padTokenId: config.padTokenId)
            model.forward(alone, dropout: dropout(step: 3))
            let expected = logitsTogether[(2 * K)..<(3 * K)].map(Double.init)
            XCTAssertNil(mismatch(model.logits(), expected, Tolerance(relative: 1e-5, absolute: 1e-6)), name)

            model.forward(alone, dropout: nil)
            XCTAssertNotNil(mismatch(model.logits(), expected, Tolerance(relative: 1e-5, absolute: 1e-6)),
                            "\(name): dropout had no effect")
            model.forward(alone, dropout: dropout(step: 4))
            XCTAssertNotNil(mismatch(model.logits(), expected, Tolerance(relative: 1e-5, absolute: 1e-6)),
                            "\(name): the mask did not change with the step")
        }
    }

    /// The spans backward reports as complete tile the flat buffer, each exactly once, and no
    /// later part of backward writes them again: what the overlapped allreduce relies on, since it
    /// sends a span the moment it is reported.
    func testCompletedSpansTileTheBufferAndStayUntouched() throws {
        for name in ["bert-regression-pooler", "roberta-classification", "albert-regression-groups"] {
            let (model, _) = try tinyModel(name)
            let config = model.layout.config
            let batch = EncoderBatch(sequences: sequences(model, count: 3, seed: 5), exampleIndices: [0, 1, 2],
                                     modelType: config.modelType, padTokenId: config.padTokenId)
            let targets: Targets = model.layout.head.task == .regression
                ? .regression([0.5, -1, 2]) : .classification((0..<3).map { Int32($0 % model.layout.K) })
            model.zeroGradients()
            model.forward(batch, dropout: dropout(step: 2))
            _ = model.loss(targets, gradScale: 1)
            var reported: [(range: Range<Int>, values: [Float])] = []
            model.backward { range in reported.append((range, Array(self.gradients(model)[range]))) }
            let final = gradients(model)
            let covered = reported.map(\.range).sorted { $0.lowerBound < $1.lowerBound }
            XCTAssertEqual(covered.first?.lowerBound, 0, name)
            XCTAssertEqual(covered.last?.upperBound, model.parameterCount, name)
            for (a, b) in zip(covered, covered.dropFirst()) {
                XCTAssertEqual(a.upperBound, b.lowerBound, "\(name): spans \(a) and \(b) leave a gap or overlap")
            }
            for span in reported {
                XCTAssertEqual(span.values, Array(final[span.range]), "\(name): span \(span.range) changed after it was reported")
                XCTAssertTrue(span.values.contains { $0 != 0 }, "\(name): span \(span.range) was reported before backward wrote it")
            }
        }
    }

    /// Gradients of a batch equal the sum over any split of it into micro-batches, each scaled by
    /// 1 / (examples in the whole batch): the rule the allreduce and micro-batching rest on.
    func testMicroBatchGradientsSumToTheBatchGradient() throws {
        for name in ["bert-classification-mean", "roberta-regression-mean", "albert-regression-groups"] {
            let (model, golden) = try tinyModel(name)
            let config = model.layout.config
            let all = sequences(model, count: 5, seed: 11)
            let targets: Targets = model.layout.head.task == .regression
                ? .regression([0.5, -1, 2, 0.25, -0.75]) : .classification((0..<5).map { Int32($0 % model.layout.K) })
            func batch(_ range: Range<Int>) -> EncoderBatch {
                EncoderBatch(sequences: Array(all[range]), exampleIndices: range.map(Int32.init),
                             modelType: config.modelType, padTokenId: config.padTokenId)
            }
            func slice(_ range: Range<Int>) -> Targets {
                switch targets {
                case .regression(let values): return .regression(Array(values[range]))
                case .classification(let labels): return .classification(Array(labels[range]))
                }
            }
            model.zeroGradients()
            model.forward(batch(0..<5), dropout: dropout(step: 1))
            _ = model.loss(targets, gradScale: 1 / 5)
            model.backward()
            let whole = gradients(model)

            model.zeroGradients()
            for part in [0..<2, 2..<3, 3..<5] {
                model.forward(batch(part), dropout: dropout(step: 1))
                _ = model.loss(slice(part), gradScale: 1 / 5)
                model.backward()
            }
            XCTAssertNil(mismatch(gradients(model), whole.map(Double.init), Tolerance(relative: 1e-4, absolute: 1e-6)),
                         golden.name)
        }
    }

    /// nn.Embedding(padding_idx=pad) never trains its padding row, even when the pad id appears
    /// as a real token; RoBERTa's position table shares that rule at position pad.
    func testPaddingRowsGetNoGradient() throws {
        for name in ["bert-classification-mean", "roberta-regression-mean"] {
            let (model, _) = try tinyModel(name)
            let config = model.layout.config, pad = Int32(config.padTokenId)
            let batch = EncoderBatch(sequences: [[5, pad, 7, pad], [9, 4]], modelType: config.modelType,
                                     padTokenId: config.padTokenId)
            XCTAssertEqual(batch.attentionMask[1], 1, "the pad id inside the first sequence is a real token")
            model.zeroGradients()
            model.forward(batch, dropout: nil)
            _ = model.loss(model.layout.head.task == .regression ? .regression([1, -1]) : .classification([0, 1]),
                           gradScale: 0.5)
            model.backward()
            let all = gradients(model), E = model.layout.E
            let words = try XCTUnwrap(model.table["embeddings.word_embeddings.weight"]).offset
            XCTAssertEqual(Array(all[(words + Int(pad) * E)..<(words + Int(pad + 1) * E)]), Array(repeating: 0, count: E), name)
            XCTAssertTrue(all[(words + 5 * E)..<(words + 6 * E)].contains { $0 != 0 }, "\(name): token 5 trained")
            let positions = try XCTUnwrap(model.table["embeddings.position_embeddings.weight"]).offset
            let padPositionRow = Array(all[(positions + Int(pad) * E)..<(positions + Int(pad + 1) * E)])
            XCTAssertEqual(padPositionRow.allSatisfy { $0 == 0 }, config.modelType == .roberta,
                           "\(name): position row \(pad) trains only where it is not RoBERTa's padding position")
        }
    }

    /// 1,000 steps over batches of changing length: the arena is reused and nothing leaks.
    func testResidentMemoryStaysFlatOverAThousandSteps() throws {
        let (model, _) = try tinyModel()
        let config = model.layout.config
        let optimizer = AdamWOptimizer(table: model.table, settings: AdamWSettings(), backend: model.backend)
        var residentAfterWarmup = 0.0
        for step in 0..<1000 {
            let batch = EncoderBatch(sequences: sequences(model, count: 4, seed: UInt64(step)),
                                     modelType: config.modelType, padTokenId: config.padTokenId)
            let statistics = trainingStep(model: model, optimizer: optimizer, batch: batch,
                                          targets: .regression([1, 0, -1, 0.5]),
                                          settings: StepSettings(learningRate: 1e-4, maxGradientNorm: 1,
                                                                 dropout: dropout(step: UInt64(step))))
            XCTAssertTrue(statistics.loss.isFinite)
            if step == 99 { residentAfterWarmup = try residentMegabytes() }
        }
        let growth = try residentMegabytes() - residentAfterWarmup
        XCTAssertLessThan(growth, 4, "resident memory grew by \(growth) MiB between steps 100 and 1000")
    }

    private func residentMegabytes() throws -> Double {
        let fields = try String(contentsOfFile: "/proc/self/statm", encoding: .utf8).split(separator: " ")
        let pages = try XCTUnwrap(Double(fields[1]))
        return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
    }
}
