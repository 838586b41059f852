// Every op on larger random inputs, on CPUBackend(threads: 1) and CPUBackend(threads: 2): the
// results may differ only by summation order (Tolerance.threadParity), and the dropout masks
// not at all. Sizes are odd so that no split is even.

import DPBackend
import DPTestSupport
import XCTest

final class ThreadParityTests: XCTestCase {
    typealias Outputs = [(name: String, values: [Float])]

    /// Runs `op` on one and on two threads, each with its own device scope, and compares every output.
    func checkParity(_ op: String, file: StaticString = #filePath, line: UInt = #line,
                     _ run: (any Backend, DeviceScope) -> Outputs) {
        let results = [1, 2].map { threads in
            let backend = CPUBackend(threads: threads)
            return withDeviceScope(backend) { scope in run(backend, scope) }
        }
        let one = results[0], two = results[1]
        for (a, b) in zip(one, two) {
            assertClose(b.values, a.values.doubles, .threadParity, "\(op) \(a.name), 2 threads against 1", file: file, line: line)
        }
    }

    func testEmbeddings() {
        let B = 4, T = 33, C = 48, V = 50, P = 40, TV = 2
        let wordIds = randomIndices(B * T, in: 0..<Int32(V), seed: 100)
        let positionIds = (0..<(B * T)).map { Int32($0 % T) }
        let typeIds = randomIndices(B * T, in: 0..<Int32(TV), seed: 101)
        let tables = [randomFloats(V * C, seed: 102), randomFloats(P * C, seed: 103), randomFloats(TV * C, seed: 104)]
        let dOut = randomFloats(B * T * C, seed: 105)
        checkParity("embeddings") { backend, scope in
            let ids = [wordIds, positionIds, typeIds].map { scope.indices($0) }
            let tablesD = tables.map { scope.floats($0) }
            let dTables = tables.map { scope.floats(count: $0.count) }
            let out = scope.floats(count: B * T * C), dOutD = scope.floats(dOut)
            backend.embeddingsForward(out: out.pointer, wordIds: ids[0].pointer, positionIds: ids[1].pointer,
                                      typeIds: ids[2].pointer, wordTable: tablesD[0].pointer,
                                      positionTable: tablesD[1].pointer, typeTable: tablesD[2].pointer, B: B, T: T, C: C)
            backend.embeddingsBackward(dWordTable: dTables[0].pointer, dPositionTable: dTables[1].pointer,
                                       dTypeTable: dTables[2].pointer, dOut: dOutD.pointer, wordIds: ids[0].pointer,
                                       positionIds: ids[1].pointer, typeIds: ids[2].pointer, B: B, T: T, C: C)
            return [("out", out.array), ("dWordTable", dTables[0].array), ("dPositionTable", dTables[1].array),
                    ("dTypeTable", dTables[2].array)]
        }
    }

    func testMatmul() {
        let N = 131, C = 97, OC = 161
        let input = randomFloats(N * C, seed: 110), weight = randomFloats(OC * C, seed: 111)
        let bias = randomFloats(OC, seed: 112), dOut = randomFloats(N * OC, seed: 113)
        checkParity("matmul") { backend, scope in
            let x = scope.floats(input), w = scope.floats(weight), b = scope.floats(bias)
            let g = scope.floats(dOut), out = scope.floats(count: N * OC)
            let dInput = scope.floats(count: N * C), dWeight = scope.floats(count: OC * C)
            let dBias = scope.floats(count: OC)
            backend.matmulForward(out: out.pointer, input: scope.operands(of: x), weight: scope.operands(of: w), bias: b.pointer, N: N, C: C, OC: OC)
            backend.matmulBackward(dInput: dInput.pointer, accumulatesDInput: false, dWeight: dWeight.pointer, dBias: dBias.pointer,
                                   dOut: g.pointer, dOutOperands: scope.operands(of: g), input: scope.operands(of: x), weight: scope.operands(of: w),
                                   N: N, C: C, OC: OC)
            return [("out", out.array), ("dInput", dInput.array), ("dWeight", dWeight.array), ("dBias", dBias.array)]
        }
    }

    func testLayerNorm() {
        let N = 131, C = 97
        let input = randomFloats(N * C, in: -3...3, seed: 120), weight = randomFloats(C, seed: 121)
        let bias = randomFloats(C, seed: 122), dOut = randomFloats(N * C, seed: 123)
        checkParity("layerNorm") { backend, scope in
            let x = scope.floats(input), w = scope.floats(weight), b = scope.floats(bias)
            let g = scope.floats(dOut), out = scope.floats(count: N * C)
            let mean = scope.floats(count: N), rstd = scope.floats(count: N)
            let dInput = scope.floats(count: N * C), dWeight = scope.floats(count: C)
            let dBias = scope.floats(count: C)
            backend.layerNormForward(out: out.pointer, operands: nil, mean: mean.pointer, rstd: rstd.pointer, input: x.pointer,
                                     weight: w.pointer, bias: b.pointer, N: N, C: C, epsilon: 1e-12)
            backend.layerNormBackward(dInput: dInput.pointer, branch: nil, dWeight: dWeight.pointer, dBias: dBias.pointer,
                                      dOut: g.pointer, input: x.pointer, weight: w.pointer, mean: mean.pointer,
                                      rstd: rstd.pointer, B: 1, T: N, C: C)
            return [("out", out.array), ("mean", mean.array), ("rstd", rstd.array), ("dInput", dInput.array),
                    ("dWeight", dWeight.array), ("dBias", dBias.array)]
        }
    }

    func testActivations() {
        let count = 100_003
        let input = randomFloats(count, in: -5...5, seed: 130), dOut = randomFloats(count, seed: 131)
        checkParity("activations") { backend, scope in
            let x = scope.floats(input), g = scope.floats(dOut)
            var outputs = Outputs()
            for form in GELUForm.allCases {
                let out = scope.floats(count: count), dInput = scope.floats(count: count)
                let slope = scope.floats(count: count)
                backend.geluForward(out: out.pointer, operands: nil, slope: slope.pointer, input: x.pointer, bias: nil, N: 1, C: count,
                                    form: form)
                backend.geluBackward(dInput: dInput.pointer, operands: nil, dOut: g.pointer, slope: slope.pointer, count: count)
                outputs += [("gelu \(form) out", out.array), ("gelu \(form) dInput", dInput.array)]
            }
            let out = scope.floats(count: count), dInput = scope.floats(count: count)
            backend.tanhForward(out: out.pointer, input: x.pointer, count: count)
            backend.tanhBackward(dInput: dInput.pointer, dOut: g.pointer, out: out.pointer, count: count)
            return outputs + [("tanh out", out.array), ("tanh dInput", dInput.array)]
        }
    }

    func testDropout() {
        let B = 3, R = 100_003
        let input = randomFloats(B * R, seed: 140), dOut = randomFloats(B * R, seed: 141)
        let one = CPUBackend(threads: 1), two = CPUBackend(threads: 2)
        var results = [[Float]]()
        for backend in [one, two] as [any Backend] {
            results += withDeviceScope(backend) { scope in
                let indices = scope.indices([17, 2, 40])
                let dropout = DropoutSite(probability: 0.1, seed: 3, step: 4, site: 5, exampleIndices: indices.pointer)
                let x = scope.floats(input), g = scope.floats(dOut)
                let out = scope.floats(count: B * R), dInput = scope.floats(count: B * R)
                backend.dropoutForward(out: out.pointer, input: x.pointer, dropout: dropout, B: B, R: R)
                backend.dropoutBackward(dInput: dInput.pointer, dOut: g.pointer, dropout: dropout, B: B, R: R)
                return [out.array, dInput.array]
            }
        }
        assertIdentical(results[2], results[0], "dropout forward, 2 threads against 1")
        assertIdentical(results[3], results[1], "dropout backward, 2 threads against 1")
    }

    func testAttention() {
        let s = AttentionShape(B: 3, T: 17, C: 48, NH: 4)
        let qkv = randomFloats(s.qkvCount, in: -2...2, seed: 150), dOut = randomFloats(s.outCount, seed: 151)
        let lengths = [17, 9, 1]
        let mask = (0..<(s.B * s.T)).map { Float($0 % s.T < lengths[$0 / s.T] ? 1 : 0) }
        checkParity("attention") { backend, scope in
            let indices = scope.indices([6, 0, 9])
            let dropout = DropoutSite(probability: 0.1, seed: 3, step: 4, site: 5, exampleIndices: indices.pointer)
            let x = scope.floats(qkv), m = scope.floats(mask), g = scope.floats(dOut)
            let out = scope.floats(count: s.outCount), probabilities = scope.floats(count: s.probabilityCount)
            let dQKV = scope.floats(count: s.qkvCount), scratch = scope.floats(count: s.probabilityCount)
            backend.attentionForward(out: out.pointer, probabilities: probabilities.pointer, qkv: scope.operands(of: x),
                                     attentionMask: m.pointer, dropout: dropout, B: s.B, T: s.T, C: s.C, NH: s.NH)
            backend.attentionBackward(dQKV: dQKV.pointer, scratch: scratch.pointer, dOut: scope.operands(of: g),
                                      qkv: scope.operands(of: x),
                                      probabilities: probabilities.pointer, dropout: dropout,
                                      B: s.B, T: s.T, C: s.C, NH: s.NH)
            return [("out", out.array), ("probabilities", probabilities.array), ("dQKV", dQKV.array)]
        }
    }

    func testPooling() {
        let B = 5, T = 33, C = 48
        let input = randomFloats(B * T * C, seed: 160), dOut = randomFloats(B * C, seed: 161)
        let lengths = [33, 1, 20, 7, 32]
        let mask = (0..<(B * T)).map { Float($0 % T < lengths[$0 / T] ? 1 : 0) }
        checkParity("pooling") { backend, scope in
            let x = scope.floats(input), m = scope.floats(mask), g = scope.floats(dOut)
            let first = scope.floats(count: B * C), mean = scope.floats(count: B * C)
            let dFirst = scope.floats(count: B * T * C), dMean = scope.floats(count: B * T * C)
            backend.firstTokenForward(out: first.pointer, input: x.pointer, B: B, T: T, C: C)
            backend.firstTokenBackward(dInput: dFirst.pointer, dOut: g.pointer, B: B, T: T, C: C)
            backend.meanPoolForward(out: mean.pointer, input: x.pointer, attentionMask: m.pointer, B: B, T: T, C: C)
            backend.meanPoolBackward(dInput: dMean.pointer, dOut: g.pointer, attentionMask: m.pointer, B: B, T: T, C: C)
            return [("firstToken out", first.array), ("firstToken dInput", dFirst.array),
                    ("meanPool out", mean.array), ("meanPool dInput", dMean.array)]
        }
    }

    func testLosses() {
        let B = 37, K = 5
        let predictions = randomFloats(B, seed: 170), targets = randomFloats(B, seed: 171)
        let logits = randomFloats(B * K, in: -5...5, seed: 172), labels = randomIndices(B, in: 0..<Int32(K), seed: 173)
        checkParity("losses") { backend, scope in
            let p = scope.floats(predictions), y = scope.floats(targets)
            let z = scope.floats(logits), l = scope.indices(labels)
            let mse = scope.floats(count: B), dPredictions = scope.floats(count: B)
            let ce = scope.floats(count: B), dLogits = scope.floats(count: B * K)
            backend.mseLoss(losses: mse.pointer, dPredictions: dPredictions.pointer, predictions: p.pointer,
                            targets: y.pointer, B: B, gradScale: 0.25)
            backend.crossEntropyLoss(losses: ce.pointer, dLogits: dLogits.pointer, logits: z.pointer,
                                     labels: l.pointer, B: B, K: K, gradScale: 0.25)
            return [("mse losses", mse.array), ("mse dPredictions", dPredictions.array),
                    ("cross-entropy losses", ce.array), ("cross-entropy dLogits", dLogits.array)]
        }
    }

    func testVectorOpsAndAdamW() {
        let count = 100_003
        let a = randomFloats(count, seed: 180), b = randomFloats(count, seed: 181)
        let one = CPUBackend(threads: 1), two = CPUBackend(threads: 2)
        let squares = randomFloats(1_000_003, seed: 182)
        let sums = [one, two].map { backend in
            withDeviceScope(backend) { scope in
                let buffer = scope.floats(squares)
                return backend.sumOfSquares(buffer.pointer, count: buffer.count)
            }
        }
        XCTAssertEqual(sums[1], sums[0], accuracy: 1e-12 * sums[0], "sumOfSquares, 2 threads against 1")
        checkParity("vector ops and adamW") { backend, scope in
            let x = scope.floats(a)
            let m = scope.floats(count: count), v = scope.floats(count: count)
            let hyperparameters = AdamWHyperparameters(learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-6,
                                                       weightDecay: 0.01, biasCorrection1: 0.1, biasCorrection2: 0.001,
                                                       gradientScale: 0.3)
            let parameters = scope.floats(b)
            let decays = scope.indices(randomDecayMask(count, seed: 5).words)
            backend.adamW(parameters: parameters.pointer, gradients: x.pointer, m: m.pointer, v: v.pointer,
                          decays: decays.pointer, decayTarget: nil, count: count, hyperparameters: hyperparameters)
            return [("adamW parameters", parameters.array), ("adamW m", m.array),
                    ("adamW v", v.array)]
        }
    }
}
