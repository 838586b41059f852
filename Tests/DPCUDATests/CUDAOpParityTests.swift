// Every Backend op on the CPU reference and on CUDA with the same inputs, compared tensor by
// tensor with CUDAParity's normalised error (at most 1e-6, never NaN). Sizes are small and odd
// (T = 37, C = 48) so that partial warps, padding and tails are exercised; inputs are seeded,
// so both backends see the same numbers.

import DPBackend
import Foundation
import DPTestSupport
import XCTest

final class CUDAOpParityTests: XCTestCase {
    private let (B, T, C, NH, OC, V, P, TV, K) = (3, 37, 48, 4, 80, 50, 40, 2, 5)

    /// Runs `body` once per backend and compares every named output; `body` must draw its
    /// inputs deterministically, since it runs twice.
    private func compare(_ op: String, precision: Precision = .fp32, file: StaticString = #filePath, line: UInt = #line,
                         _ body: (DeviceScope) -> [(String, DeviceFloats)]) throws {
        let cuda = try makeCUDABackend(precision: precision)
        let reference = withDeviceScope(CPUBackend(threads: 2, precision: precision)) { scope in body(scope).map { ($0.0, $0.1.array) } }
        let got = withDeviceScope(cuda) { scope in body(scope).map { ($0.0, $0.1.array) } }
        for ((name, expected), (_, actual)) in zip(reference, got) {
            // A rounded mode leads the label, where worst_parity.sh looks for it.
            let label = precision == .fp32 ? "\(op) \(name)" : "\(precision.rawValue) \(op) \(name)"
            assertParity(actual, expected, label, tolerance: CUDAParity.roundedOpTolerance(precision),
                         file: file, line: line)
        }
    }

    /// The mask of a batch whose examples hold T, T - 5 and 1 tokens. // (B, T)
    private var paddedMask: [Float] {
        (0..<B).flatMap { b in (0..<T).map { t in t < [T, T - 5, 1][b % 3] ? Float(1) : 0 } }
    }

    private func dropout(_ scope: DeviceScope, probability: Float, site: UInt64 = 7) -> DropoutSite {
        DropoutSite(probability: probability, seed: 42, step: 3, site: site,
                    exampleIndices: scope.indices([5, 0, 11]).pointer)
    }

    func testMemoryAndVectorOps() throws {
        let n = 100_003
        try compare("vector") { scope in
            let a = scope.floats(randomFloats(n, seed: 1))
            let copied = scope.floats(repeating: .nan, count: n), zeroed = scope.floats(randomFloats(n, seed: 3))
            scope.backend.copy(copied.pointer, from: a.pointer, count: n)
            scope.backend.zero(zeroed.pointer, count: n)
            return [("copy", copied), ("zero", zeroed)]
        }
        let cuda = try makeCUDABackend()
        let values = randomFloats(3_000_017, in: -3...3, seed: 4)
        let expected = withDeviceScope(CPUBackend(threads: 1)) { $0.backend.sumOfSquares($0.floats(values).pointer, count: values.count) }
        let got = withDeviceScope(cuda) { $0.backend.sumOfSquares($0.floats(values).pointer, count: values.count) }
        assertParity([Float(got)], [Float(expected)], "sumOfSquares")
        XCTAssertLessThanOrEqual(abs(got - expected) / expected, 1e-7, "sumOfSquares in Double: \(got) vs \(expected)")
    }

    /// The gradients' path to MPI (GradientExchange): a staged download holds what the ops issued
    /// before it wrote, whatever is issued after it, and lands for a thread other than the caller.
    func testStagedDownloadSeesEarlierOpsAndLandsForAnotherThread() throws {
        let cuda = try makeCUDABackend()
        let n = 1_000_003
        let values = randomFloats(n, seed: 8)
        withDeviceScope(cuda) { scope in
            let source = scope.floats(values), later = scope.floats(count: n)
            let staging = cuda.allocateStaging(count: n)
            defer { cuda.deallocateStaging(staging) }
            let tripled = scope.floats(values.map { $0 * 3 })
            cuda.copy(source.pointer, from: tripled.pointer, count: n)
            let download = cuda.startDownload(staging, from: source.pointer, count: n)
            cuda.copy(later.pointer, from: source.pointer, count: n)
            let landed = DispatchSemaphore(value: 0)
            nonisolated(unsafe) let backend = cuda
            Thread {
                backend.waitForDownload(download)
                landed.signal()
            }.start()
            XCTAssertEqual(landed.wait(timeout: .now() + 60), .success, "the download never landed")
            XCTAssertNotNil(download.handle, "a GPU download is an event to wait for")
            XCTAssertEqual(Array(UnsafeBufferPointer(start: staging, count: n)), values.map { $0 * 3 },
                           "the staged download holds what the op before it wrote")
            XCTAssertEqual(later.array, values.map { $0 * 3 }, "the op issued after the download ran")
        }
    }

    func testEmbeddings() throws {
        let N = B * T
        // Repeated ids: rows shared by several tokens must sum every contribution.
        let words = (0..<N).map { Int32(($0 * 7) % V) }, positions = (0..<N).map { Int32($0 % T) }
        let types = (0..<N).map { Int32($0 % TV) }
        try compare("embeddings") { scope in
            let out = scope.floats(repeating: .nan, count: N * C)
            let wordTable = scope.floats(randomFloats(V * C, seed: 1)), positionTable = scope.floats(randomFloats(P * C, seed: 2))
            let typeTable = scope.floats(randomFloats(TV * C, seed: 3))
            let w = scope.indices(words), p = scope.indices(positions), t = scope.indices(types)
            scope.backend.embeddingsForward(out: out.pointer, wordIds: w.pointer, positionIds: p.pointer, typeIds: t.pointer,
                                            wordTable: wordTable.pointer, positionTable: positionTable.pointer,
                                            typeTable: typeTable.pointer, B: B, T: T, C: C)
            let dWord = scope.floats(randomFloats(V * C, seed: 4)), dPosition = scope.floats(randomFloats(P * C, seed: 5))
            let dType = scope.floats(randomFloats(TV * C, seed: 6)), dOut = scope.floats(randomFloats(N * C, seed: 7))
            scope.backend.embeddingsBackward(dWordTable: dWord.pointer, dPositionTable: dPosition.pointer,
                                             dTypeTable: dType.pointer, dOut: dOut.pointer, wordIds: w.pointer,
                                             positionIds: p.pointer, typeIds: t.pointer, B: B, T: T, C: C)
            return [("out", out), ("dWordTable", dWord), ("dPositionTable", dPosition), ("dTypeTable", dType)]
        }
    }

    /// In tf32 and bf16 both backends round the same operands the same way, so the products
    /// still agree to fp32 rounding.
    func testMatmul() throws {
        for precision in Precision.allCases {
            for withBias in [true, false] { try matmul(N: B * T, withBias: withBias, precision: precision) }
        }
    }

    private func matmul(N: Int, withBias: Bool, precision: Precision) throws {
        try compare("matmul bias=\(withBias)", precision: precision) { scope in
            let input = scope.floats(randomFloats(N * C, seed: 1)), weight = scope.floats(randomFloats(OC * C, seed: 2))
            let bias = scope.floats(randomFloats(OC, seed: 3)), out = scope.floats(repeating: .nan, count: N * OC)
            let inputs = scope.operands(of: input), weights = scope.operands(of: weight)
            scope.backend.matmulForward(out: out.pointer, input: inputs, weight: weights,
                                        bias: withBias ? bias.pointer : nil, N: N, C: C, OC: OC)
            let dOut = scope.floats(randomFloats(N * OC, seed: 4)), dInput = scope.floats(repeating: .nan, count: N * C)
            let dOuts = scope.operands(of: dOut)
            let dWeight = scope.floats(randomFloats(OC * C, seed: 5)), dBias = scope.floats(randomFloats(OC, seed: 6))
            scope.backend.matmulBackward(dInput: withBias ? dInput.pointer : nil, accumulatesDInput: false,
                                         dWeight: dWeight.pointer, dBias: withBias ? dBias.pointer : nil,
                                         dOut: dOut.pointer, dOutOperands: dOuts, input: inputs, weight: weights,
                                         N: N, C: C, OC: OC)
            guard withBias else { return [("out", out), ("dWeight", dWeight), ("dBias untouched", dBias)] }
            let dInputSum = scope.floats(randomFloats(N * C, seed: 7)), dWeightAgain = scope.floats(count: OC * C)
            scope.backend.matmulBackward(dInput: dInputSum.pointer, accumulatesDInput: true, dWeight: dWeightAgain.pointer,
                                         dBias: nil, dOut: dOut.pointer, dOutOperands: dOuts, input: inputs, weight: weights,
                                         N: N, C: C, OC: OC)
            return [("out", out), ("dInput", dInput), ("dWeight", dWeight), ("dBias", dBias),
                    ("dInput accumulated", dInputSum)]
        }
    }

    func testLayerNorm() throws {
        let N = B * T
        try compare("layerNorm") { scope in
            let input = scope.floats(randomFloats(N * C, in: -2...3, seed: 1))
            let weight = scope.floats(randomFloats(C, in: 0.5...1.5, seed: 2)), bias = scope.floats(randomFloats(C, seed: 3))
            let out = scope.floats(repeating: .nan, count: N * C)
            let mean = scope.floats(repeating: .nan, count: N), rstd = scope.floats(repeating: .nan, count: N)
            scope.backend.layerNormForward(out: out.pointer, operands: nil, mean: mean.pointer, rstd: rstd.pointer, input: input.pointer,
                                           weight: weight.pointer, bias: bias.pointer, N: N, C: C, epsilon: 1e-12)
            let dOut = scope.floats(randomFloats(N * C, seed: 4)), dInput = scope.floats(repeating: .nan, count: N * C)
            let dWeight = scope.floats(randomFloats(C, seed: 5)), dBias = scope.floats(randomFloats(C, seed: 6))
            // With the dropped branch's dropout active and not; the second accumulates dWeight and
            // dBias again.
            func backward(into dInput: DeviceFloats, branch: DeviceFloats, probability: Float) {
                scope.backend.layerNormBackward(dInput: dInput.pointer,
                                                branch: DroppedBranch(dInput: branch.pointer,
                                                                      dropout: dropout(scope, probability: probability)),
                                                dWeight: dWeight.pointer, dBias: dBias.pointer,
                                                dOut: dOut.pointer, input: input.pointer, weight: weight.pointer,
                                                mean: mean.pointer, rstd: rstd.pointer, B: B, T: T, C: C)
            }
            let dBranch = scope.floats(repeating: .nan, count: N * C)
            backward(into: dInput, branch: dBranch, probability: 0.3)
            let dUndropped = scope.floats(repeating: .nan, count: N * C)
            backward(into: scope.floats(count: N * C), branch: dUndropped, probability: 0)
            return [("out", out), ("mean", mean), ("rstd", rstd), ("dInput", dInput), ("dWeight", dWeight), ("dBias", dBias),
                    ("dBranch through dropout", dBranch), ("dBranch without dropout", dUndropped)]
        }
    }

    /// In tf32 and bf16, LayerNorm, GELU and their backwards also write their output as the next
    /// product's operands. A product that reads each shows what was written.
    func testOpsThatWriteOperandsForTheNextProduct() throws {
        let N = B * T
        for precision in [Precision.tf32, .bf16] {
            try compare("operands written by ops", precision: precision) { scope in
                let backend = scope.backend
                let weight = scope.operands(randomFloats(OC * C, seed: 1))
                func product(_ operands: Operands, rows: Int = N) -> DeviceFloats {
                    let out = scope.floats(repeating: .nan, count: rows * OC)
                    backend.matmulForward(out: out.pointer, input: operands, weight: weight, bias: nil, N: rows, C: C, OC: OC)
                    return out
                }
                let input = scope.floats(randomFloats(N * C, in: -2...3, seed: 2))
                let gamma = scope.floats(randomFloats(C, in: 0.5...1.5, seed: 3)), beta = scope.floats(randomFloats(C, seed: 4))
                let normed = scope.floats(repeating: .nan, count: N * C), normedOperands = scope.operandRoom(count: N * C)
                let mean = scope.floats(count: N), rstd = scope.floats(count: N)
                backend.layerNormForward(out: normed.pointer, operands: normedOperands.room, mean: mean.pointer,
                                         rstd: rstd.pointer, input: input.pointer, weight: gamma.pointer,
                                         bias: beta.pointer, N: N, C: C, epsilon: 1e-12)
                let dOut = scope.floats(randomFloats(N * C, seed: 5)), dInput = scope.floats(count: N * C)
                let dBranch = scope.floats(repeating: .nan, count: N * C), dBranchOperands = scope.operandRoom(count: N * C)
                let dGamma = scope.floats(count: C), dBeta = scope.floats(count: C)
                backend.layerNormBackward(dInput: dInput.pointer,
                                          branch: DroppedBranch(dInput: dBranch.pointer,
                                                                dropout: dropout(scope, probability: 0.2),
                                                                operands: dBranchOperands.room),
                                          dWeight: dGamma.pointer, dBias: dBeta.pointer, dOut: dOut.pointer,
                                          input: input.pointer, weight: gamma.pointer, mean: mean.pointer,
                                          rstd: rstd.pointer, B: B, T: T, C: C)
                let activated = scope.floats(randomFloats(N * C, in: -4...4, seed: 6))
                let slope = scope.floats(count: N * C), activatedOperands = scope.operandRoom(count: N * C)
                backend.geluForward(out: activated.pointer, operands: activatedOperands.room, slope: slope.pointer,
                                    input: activated.pointer, bias: nil, N: N, C: C, form: .erf)
                let dActivated = scope.floats(randomFloats(N * C, seed: 7)), dActivatedOperands = scope.operandRoom(count: N * C)
                backend.geluBackward(dInput: dActivated.pointer, operands: dActivatedOperands.room,
                                     dOut: dActivated.pointer, slope: slope.pointer, count: N * C)
                return [("layerNorm out", normed), ("its product", product(normedOperands.operands)),
                        ("layerNorm dBranch", dBranch), ("its product", product(dBranchOperands.operands)),
                        ("gelu out", activated), ("its product", product(activatedOperands.operands)),
                        ("gelu dInput", dActivated), ("its product", product(dActivatedOperands.operands))]
            }
        }
    }

    func testActivations() throws {
        let n = 10_007
        for form in GELUForm.allCases {
            try compare("gelu \(form)") { scope in
                let input = scope.floats(randomFloats(n, in: -6...6, seed: 1))
                let out = scope.floats(repeating: .nan, count: n), slope = scope.floats(repeating: .nan, count: n)
                let inPlace = scope.floats(randomFloats(n, in: -6...6, seed: 1))
                scope.backend.geluForward(out: out.pointer, operands: nil, slope: slope.pointer, input: input.pointer, bias: nil,
                                          N: 1, C: n, form: form)
                scope.backend.geluForward(out: inPlace.pointer, operands: nil, slope: nil, input: inPlace.pointer, bias: nil,
                                          N: 1, C: n, form: form)
                // 40 rows of 250 channels, each row with the bias added first.
                let biased = scope.floats(randomFloats(40 * 250, in: -6...6, seed: 3))
                let bias = scope.floats(randomFloats(250, seed: 4)), biasedSlope = scope.floats(repeating: .nan, count: 40 * 250)
                scope.backend.geluForward(out: biased.pointer, operands: nil, slope: biasedSlope.pointer, input: biased.pointer,
                                          bias: bias.pointer, N: 40, C: 250, form: form)
                let dOut = scope.floats(randomFloats(n, seed: 2)), dInput = scope.floats(repeating: .nan, count: n)
                scope.backend.geluBackward(dInput: dInput.pointer, operands: nil, dOut: dOut.pointer, slope: slope.pointer, count: n)
                return [("out", out), ("slope", slope), ("in place", inPlace), ("dInput", dInput),
                        ("with bias", biased), ("slope with bias", biasedSlope)]
            }
        }
        try compare("tanh") { scope in
            let input = scope.floats(randomFloats(n, in: -5...5, seed: 1)), out = scope.floats(repeating: .nan, count: n)
            scope.backend.tanhForward(out: out.pointer, input: input.pointer, count: n)
            let dOut = scope.floats(randomFloats(n, seed: 2)), dInput = scope.floats(repeating: .nan, count: n)
            scope.backend.tanhBackward(dInput: dInput.pointer, dOut: dOut.pointer, out: out.pointer, count: n)
            return [("out", out), ("dInput", dInput)]
        }
    }

    func testDropout() throws {
        // 1001 leaves a partial group of four at the end of each row.
        for (probability, rows, channels) in [(Float(0), T, C), (0.1, T, C), (0.5, T, C), (0.1, 77, 13)] {
            let R = rows * channels
            try compare("dropout p=\(probability) R=\(R)") { scope in
                let site = dropout(scope, probability: probability)
                let input = scope.floats(randomFloats(B * R, seed: 1)), out = scope.floats(repeating: .nan, count: B * R)
                scope.backend.dropoutForward(out: out.pointer, input: input.pointer, dropout: site, B: B, R: R)
                let dOut = scope.floats(randomFloats(B * R, seed: 2))
                scope.backend.dropoutBackward(dInput: dOut.pointer, dOut: dOut.pointer, dropout: site, B: B, R: R)
                let sum = scope.floats(randomFloats(B * R, seed: 3)), residual = scope.floats(randomFloats(B * R, seed: 4))
                let biased = scope.floats(randomFloats(B * R, seed: 5)), bias = scope.floats(randomFloats(channels, seed: 6))
                scope.backend.dropoutResidualForward(out: sum.pointer, input: sum.pointer, bias: nil,
                                                     residual: residual.pointer, dropout: site, B: B, T: rows, C: channels)
                scope.backend.dropoutResidualForward(out: biased.pointer, input: biased.pointer, bias: bias.pointer,
                                                     residual: residual.pointer, dropout: site, B: B, T: rows, C: channels)
                return [("out", out), ("dInput in place", dOut), ("out + residual in place", sum),
                        ("biased out + residual in place", biased)]
            }
        }
    }

    func testMixout() throws {
        // 1001 columns leave a partial group of four; p = 0.5 replaces about half of them.
        for (probability, rows, columns) in [(Float(0.1), 7, 1001), (0.5, 3, 384)] {
            try compare("mixout p=\(probability) (\(rows), \(columns))") { scope in
                let count = rows * columns
                let site = MixoutSite(probability: probability, seed: 3, step: 4, site: 5)
                let weights = scope.floats(randomFloats(count, seed: 7)), target = scope.floats(randomFloats(count, seed: 8))
                let original = scope.floats(repeating: .nan, count: count)
                scope.backend.mixoutForward(weights: weights.pointer, original: original.pointer, target: target.pointer,
                                            mixout: site, OC: rows, C: columns)
                let dWeights = scope.floats(randomFloats(count, seed: 9))
                scope.backend.mixoutBackward(dWeights: dWeights.pointer, mixout: site, OC: rows, C: columns)
                return [("mixed weights", weights), ("original", original), ("dWeights in place", dWeights)]
            }
        }
    }

    func testAttention() throws {
        let mask = paddedMask
        for precision in Precision.allCases {
            for probability: Float in [0, 0.1] { try attention(mask: mask, probability: probability, precision: precision) }
        }
    }

    private func attention(mask: [Float], probability: Float, precision: Precision) throws {
        try compare("attention p=\(probability)", precision: precision) { scope in
            let site = dropout(scope, probability: probability, site: 9)
            let qkv = scope.floats(randomFloats(B * T * 3 * C, in: -2...2, seed: 1))
            let attentionMask = scope.floats(mask)
            let out = scope.floats(repeating: .nan, count: B * T * C)
            let probabilities = scope.floats(repeating: .nan, count: B * NH * T * T)
            let qkvs = scope.operands(of: qkv)
            scope.backend.attentionForward(out: out.pointer, probabilities: probabilities.pointer, qkv: qkvs,
                                           attentionMask: attentionMask.pointer, dropout: site,
                                           B: B, T: T, C: C, NH: NH)
            let dOut = scope.floats(randomFloats(B * T * C, seed: 2))
            let dQKV = scope.floats(repeating: .nan, count: B * T * 3 * C)
            let scratch = scope.floats(repeating: .nan, count: B * NH * T * T)
            scope.backend.attentionBackward(dQKV: dQKV.pointer, scratch: scratch.pointer, dOut: scope.operands(of: dOut),
                                            qkv: qkvs, probabilities: probabilities.pointer, dropout: site,
                                            B: B, T: T, C: C, NH: NH)
            return [("out", out), ("probabilities", probabilities), ("dQKV", dQKV)]
        }
    }

    func testPooling() throws {
        let mask = paddedMask
        try compare("pooling") { scope in
            let input = scope.floats(randomFloats(B * T * C, seed: 1)), attentionMask = scope.floats(mask)
            let first = scope.floats(repeating: .nan, count: B * C), mean = scope.floats(repeating: .nan, count: B * C)
            scope.backend.firstTokenForward(out: first.pointer, input: input.pointer, B: B, T: T, C: C)
            scope.backend.meanPoolForward(out: mean.pointer, input: input.pointer, attentionMask: attentionMask.pointer,
                                          B: B, T: T, C: C)
            let dOut = scope.floats(randomFloats(B * C, seed: 2))
            let dFirst = scope.floats(repeating: .nan, count: B * T * C), dMean = scope.floats(repeating: .nan, count: B * T * C)
            scope.backend.firstTokenBackward(dInput: dFirst.pointer, dOut: dOut.pointer, B: B, T: T, C: C)
            scope.backend.meanPoolBackward(dInput: dMean.pointer, dOut: dOut.pointer, attentionMask: attentionMask.pointer,
                                           B: B, T: T, C: C)
            let scores = scope.floats(randomFloats(B * T, in: -3...3, seed: 3))
            let attention = scope.floats(repeating: .nan, count: B * C), weights = scope.floats(repeating: .nan, count: B * T)
            scope.backend.attentionPoolForward(out: attention.pointer, weights: weights.pointer, scores: scores.pointer,
                                               input: input.pointer, attentionMask: attentionMask.pointer, B: B, T: T, C: C)
            let dAttention = scope.floats(repeating: .nan, count: B * T * C), dScores = scope.floats(repeating: .nan, count: B * T)
            scope.backend.attentionPoolBackward(dInput: dAttention.pointer, dScores: dScores.pointer, dOut: dOut.pointer,
                                                weights: weights.pointer, input: input.pointer, B: B, T: T, C: C)
            return [("first token", first), ("mean", mean), ("dFirst", dFirst), ("dMean", dMean),
                    ("attention", attention), ("attention weights", weights), ("dAttention input", dAttention),
                    ("dScores", dScores)] + layerPooling(scope, B: B, T: T, C: C, layers: 3, seed: 10)
        }
        // Attention pooling over more tokens than one block's tile (256), wider rows than a
        // block's columns, and an example of padding alone (all-zero weights and output).
        let (b, t, c) = (3, 300, 270)
        let lengths = [t, 0, 257]
        try compare("attention pooling, long rows") { scope in
            let input = scope.floats(randomFloats(b * t * c, seed: 4)), scores = scope.floats(randomFloats(b * t, in: -3...3, seed: 5))
            let attentionMask = scope.floats((0..<b).flatMap { e in (0..<t).map { $0 < lengths[e] ? Float(1) : 0 } })
            let out = scope.floats(repeating: .nan, count: b * c), weights = scope.floats(repeating: .nan, count: b * t)
            scope.backend.attentionPoolForward(out: out.pointer, weights: weights.pointer, scores: scores.pointer,
                                               input: input.pointer, attentionMask: attentionMask.pointer, B: b, T: t, C: c)
            let dOut = scope.floats(randomFloats(b * c, seed: 6))
            let dInput = scope.floats(repeating: .nan, count: b * t * c), dScores = scope.floats(repeating: .nan, count: b * t)
            scope.backend.attentionPoolBackward(dInput: dInput.pointer, dScores: dScores.pointer, dOut: dOut.pointer,
                                                weights: weights.pointer, input: input.pointer, B: b, T: t, C: c)
            return [("out", out), ("weights", weights), ("dInput", dInput), ("dScores", dScores)]
        }
        // Layer pooling over as many states as a 24-layer model's plus its embeddings, and more
        // products per weight (b c = 810) than one block has threads.
        try compare("layer pooling, 25 states") { scope in layerPooling(scope, B: b, T: 4, C: c, layers: 25, seed: 20) }
    }

    /// The weighted layer pooling ops on `layers` states laid out further apart than one state's
    /// floats (so a kernel ignoring `stride` reads the wrong ones): forward, the weights'
    /// gradient added to nonzero values, and a state's gradient both added to random values and
    /// assigned over NaN (its other rows zeroed).
    private func layerPooling(_ scope: DeviceScope, B: Int, T: Int, C: Int, layers: Int,
                              seed: UInt64) -> [(String, DeviceFloats)] {
        let stride = B * T * C + 7
        let states = scope.floats(randomFloats(layers * stride, seed: seed))
        let weights = scope.floats(randomFloats(layers, in: 0.2...2, seed: seed + 1))
        let out = scope.floats(repeating: .nan, count: B * C)
        scope.backend.layerPoolForward(out: out.pointer, states: states.pointer, stride: stride, weights: weights.pointer,
                                       B: B, T: T, C: C, K: layers)
        let dOut = scope.floats(randomFloats(B * C, seed: seed + 2))
        let dWeights = scope.floats(randomFloats(layers, seed: seed + 3))
        scope.backend.layerPoolWeightsBackward(dWeights: dWeights.pointer, dOut: dOut.pointer, out: out.pointer,
                                               states: states.pointer, stride: stride, weights: weights.pointer,
                                               B: B, T: T, C: C, K: layers)
        let dAdded = scope.floats(randomFloats(B * T * C, seed: seed + 4))
        scope.backend.layerPoolStateBackward(dInput: dAdded.pointer, accumulates: true, dOut: dOut.pointer,
                                             weights: weights.pointer, layer: 1, B: B, T: T, C: C, K: layers)
        let dAssigned = scope.floats(repeating: .nan, count: B * T * C)
        scope.backend.layerPoolStateBackward(dInput: dAssigned.pointer, accumulates: false, dOut: dOut.pointer,
                                             weights: weights.pointer, layer: layers - 1, B: B, T: T, C: C, K: layers)
        return [("layer pooling", out), ("layer pooling dWeights", dWeights),
                ("layer pooling dInput added", dAdded), ("layer pooling dInput assigned", dAssigned)]
    }

    func testLosses() throws {
        try compare("losses") { scope in
            let predictions = scope.floats(randomFloats(B, in: -3...3, seed: 1)), targets = scope.floats(randomFloats(B, seed: 2))
            let mse = scope.floats(repeating: .nan, count: B), dPredictions = scope.floats(repeating: .nan, count: B)
            scope.backend.mseLoss(losses: mse.pointer, dPredictions: dPredictions.pointer, predictions: predictions.pointer,
                                  targets: targets.pointer, B: B, gradScale: 1 / Float(B))
            let logits = scope.floats(randomFloats(B * K, in: -8...8, seed: 3)), labels = scope.indices([4, 0, 2])
            let crossEntropy = scope.floats(repeating: .nan, count: B), dLogits = scope.floats(repeating: .nan, count: B * K)
            scope.backend.crossEntropyLoss(losses: crossEntropy.pointer, dLogits: dLogits.pointer, logits: logits.pointer,
                                           labels: labels.pointer, B: B, K: K, gradScale: 0.25)
            return [("mse", mse), ("dPredictions", dPredictions), ("cross entropy", crossEntropy), ("dLogits", dLogits)]
        }
    }

    func testAdamW() throws {
        let n = 50_021
        // The last case decays toward a target, Zhang et al.'s pretrained weight decay.
        for (step, weightDecay, gradientScale, targeted) in [(1, Float(0.01), Float(1), false), (7, 0, 0.37, false),
                                                             (3, 0.1, 1, true)] {
            try compare("adamW step \(step)" + (targeted ? ", decay to a target" : "")) { scope in
                let parameters = scope.floats(randomFloats(n, seed: 1)), gradients = scope.floats(randomFloats(n, seed: 2))
                let target = targeted ? scope.floats(randomFloats(n, seed: 6)) : nil
                let m = scope.floats(randomFloats(n, in: -0.1...0.1, seed: 3))
                let v = scope.floats(randomFloats(n, in: 0...0.01, seed: 4))
                let t = Float(step)
                let decays = scope.indices(randomDecayMask(n, seed: 5).words)
                scope.backend.adamW(parameters: parameters.pointer, gradients: gradients.pointer, m: m.pointer, v: v.pointer,
                                    decays: decays.pointer, decayTarget: target?.pointer, count: n,
                                    hyperparameters: AdamWHyperparameters(
                                        learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-6,
                                        weightDecay: weightDecay, biasCorrection1: 1 - powf(0.9, t),
                                        biasCorrection2: 1 - powf(0.999, t), gradientScale: gradientScale))
                return [("parameters", parameters), ("m", m), ("v", v)]
            }
        }
    }
}
