// Self-attention over a fused (query | key | value) projection, as BertSelfAttention:
//   qkv (B, T, 3C): channels 0..<C are the query, C..<2C the key, 2C..<3C the value; inside each
//   third, head h owns channels h*HS..<(h+1)*HS.
//   probabilities[b,h,i,:] = softmax_j(q_i . k_j / sqrt(HS)) over the keys j whose mask is 1
//   (masked keys get probability 0), stored before dropout;
//   out[b,i,h*HS..<(h+1)*HS] = sum_j dropout(probabilities)[b,h,i,j] v_j.
// Padded query rows are computed like the others, as in transformers.

import DPBackend
import DPTestSupport
import Foundation
import XCTest

struct AttentionShape {
    var B: Int, T: Int, C: Int, NH: Int
    var HS: Int { C / NH }
    var qkvCount: Int { B * T * 3 * C }
    var outCount: Int { B * T * C }
    var probabilityCount: Int { B * NH * T * T }

    func qkvIndex(b: Int, t: Int, part: Int, h: Int, d: Int) -> Int { (b * T + t) * 3 * C + part * C + h * HS + d }
    func probabilityIndex(b: Int, h: Int, i: Int, j: Int) -> Int { ((b * NH + h) * T + i) * T + j }
}

/// The Double reference. `keep` (B, NH, T, T) multiplies the probabilities before they weight
/// the values: nil without dropout, else 0 or 1 / (1 - p) per entry. `round` is applied to
/// those weights, as tf32 and bf16 modes round a product's operands.
func attentionReference(qkv: [Double], mask: [Float], keep: [Double]?, _ s: AttentionShape,
                        round: (Double) -> Double = { $0 }) -> (out: [Double], probabilities: [Double]) {
    var out = [Double](repeating: 0, count: s.outCount)
    var probabilities = [Double](repeating: 0, count: s.probabilityCount)
    let scale = 1 / Double(s.HS).squareRoot()
    for b in 0..<s.B {
        let keys = (0..<s.T).filter { mask[b * s.T + $0] != 0 }
        for h in 0..<s.NH {
            for i in 0..<s.T {
                let scores = keys.map { j in
                    (0..<s.HS).reduce(0.0) {
                        $0 + qkv[s.qkvIndex(b: b, t: i, part: 0, h: h, d: $1)] * qkv[s.qkvIndex(b: b, t: j, part: 1, h: h, d: $1)]
                    } * scale
                }
                let top = scores.max()!
                let exps = scores.map { exp($0 - top) }
                let total = exps.reduce(0, +)
                for (n, j) in keys.enumerated() {
                    let p = exps[n] / total
                    let index = s.probabilityIndex(b: b, h: h, i: i, j: j)
                    probabilities[index] = p
                    let weight = round(p * (keep?[index] ?? 1))
                    for d in 0..<s.HS {
                        out[(b * s.T + i) * s.C + h * s.HS + d] += weight * qkv[s.qkvIndex(b: b, t: j, part: 2, h: h, d: d)]
                    }
                }
            }
        }
    }
    return (out, probabilities)
}

/// The backward pass written out term by term in Double, for the rounded modes, where central
/// differences do not apply: every operand of a product passes through `round` (the weights,
/// dOut, Q, K and V, dScores), the softmax backward does not. Also returns each rounded
/// intermediate (the weights and dScores) with the magnitude of the terms it came from, so a
/// test can avoid inputs where Float and Double could round one to different neighbours.
func attentionBackwardReference(qkv: [Double], dOut: [Double], probabilities: [Double], keep: [Double]?,
                                _ s: AttentionShape, round: (Double) -> Double)
    -> (dQKV: [Double], rounded: [(value: Double, terms: Double)]) {
    let scale = 1 / Double(s.HS).squareRoot()
    let x = qkv.map(round), g = dOut.map(round)
    var dQKV = [Double](repeating: 0, count: s.qkvCount)
    var rounded: [(value: Double, terms: Double)] = []
    func channel(_ t: Int, _ part: Int, _ h: Int, _ d: Int, b: Int) -> Int { s.qkvIndex(b: b, t: t, part: part, h: h, d: d) }
    for b in 0..<s.B {
        for h in 0..<s.NH {
            let rows = 0..<s.T, head = 0..<s.HS
            let p = rows.map { i in rows.map { j in probabilities[s.probabilityIndex(b: b, h: h, i: i, j: j)] } }
            let k = rows.map { i in rows.map { j in keep?[s.probabilityIndex(b: b, h: h, i: i, j: j)] ?? 1 } }
            let dy = rows.map { i in head.map { d in g[(b * s.T + i) * s.C + h * s.HS + d] } }
            let weights = rows.map { i in rows.map { j in p[i][j] * k[i][j] } }
            for i in rows { for j in rows { rounded.append((weights[i][j], abs(weights[i][j]))) } }
            for j in rows {
                for d in head {
                    dQKV[channel(j, 2, h, d, b: b)] = rows.reduce(0) { $0 + round(weights[$1][j]) * dy[$1][d] }
                }
            }
            var dScores = rows.map { _ in [Double](repeating: 0, count: s.T) }
            for i in rows {
                let dp = rows.map { j in head.reduce(0) { $0 + dy[i][$1] * x[channel(j, 2, h, $1, b: b)] } * k[i][j] }
                let dot = rows.reduce(0) { $0 + dp[$1] * p[i][$1] }
                for j in rows {
                    dScores[i][j] = p[i][j] * (dp[j] - dot)
                    let terms = head.reduce(0) { $0 + abs(dy[i][$1] * x[channel(j, 2, h, $1, b: b)]) }
                    rounded.append((dScores[i][j], p[i][j] * (terms + abs(dot))))
                }
            }
            for i in rows {
                for d in head {
                    dQKV[channel(i, 0, h, d, b: b)] = scale * rows.reduce(0) { $0 + round(dScores[i][$1]) * x[channel($1, 1, h, d, b: b)] }
                    dQKV[channel(i, 1, h, d, b: b)] = scale * rows.reduce(0) { $0 + round(dScores[$1][i]) * x[channel($1, 0, h, d, b: b)] }
                }
            }
        }
    }
    return (dQKV, rounded)
}

/// Whether `x` lies so close to a tie between its two neighbours with `bits` mantissa bits that
/// an error of `margin` could round it either way.
func nearRoundingTie(_ x: Double, bits: Int, margin: Double) -> Bool {
    guard x != 0 else { return false }
    let spacing = pow(2, log2(abs(x)).rounded(.down) - Double(bits))
    let fraction = (abs(x) / spacing).truncatingRemainder(dividingBy: 1)
    return abs(fraction - 0.5) * spacing <= margin
}

final class AttentionTests: XCTestCase {
    /// Runs the backend's forward; returns (out, probabilities).
    func forward(_ backend: any Backend, qkv: [Float], mask: [Float], dropout: DropoutSite,
                 _ s: AttentionShape) -> (out: [Float], probabilities: [Float]) {
        withDeviceScope(backend) { scope in
            let qkvD = scope.floats(qkv), maskD = scope.floats(mask)
            let out = scope.floats(garbage(s.outCount)), probabilities = scope.floats(garbage(s.probabilityCount))
            backend.attentionForward(out: out.pointer, probabilities: probabilities.pointer, qkv: scope.operands(of: qkvD),
                                     attentionMask: maskD.pointer, dropout: dropout, B: s.B, T: s.T, C: s.C, NH: s.NH)
            return (out.array, probabilities.array)
        }
    }

    /// Forward, then backward with upstream gradient dOut; returns dQKV. dQKV and the scratch
    /// buffer start as garbage.
    func backward(_ backend: any Backend, qkv: [Float], mask: [Float], dOut: [Float], dropout: DropoutSite,
                  _ s: AttentionShape) -> [Float] {
        withDeviceScope(backend) { scope in
            let qkvD = scope.floats(qkv), maskD = scope.floats(mask), dOutD = scope.floats(dOut)
            let out = scope.floats(count: s.outCount), probabilities = scope.floats(count: s.probabilityCount)
            backend.attentionForward(out: out.pointer, probabilities: probabilities.pointer, qkv: scope.operands(of: qkvD),
                                     attentionMask: maskD.pointer, dropout: dropout, B: s.B, T: s.T, C: s.C, NH: s.NH)
            let dQKV = scope.floats(garbage(s.qkvCount)), scratch = scope.floats(garbage(s.probabilityCount))
            backend.attentionBackward(dQKV: dQKV.pointer, scratch: scratch.pointer, dOut: scope.operands(of: dOutD),
                                      qkv: scope.operands(of: qkvD),
                                      probabilities: probabilities.pointer, dropout: dropout,
                                      B: s.B, T: s.T, C: s.C, NH: s.NH)
            return dQKV.array
        }
    }

    /// Forward against the reference, then backward against central differences of it, on the
    /// backend whose memory holds the dropout site's example indices.
    func check(_ backend: any Backend, _ s: AttentionShape, mask: [Float], dropout: DropoutSite, keep: [Double]?,
               seed: UInt64, file: StaticString = #filePath, line: UInt = #line) {
        let qkv = randomFloats(s.qkvCount, in: -1.5...1.5, seed: seed), dOut = randomFloats(s.outCount, seed: seed + 1)
        let (out, probabilities) = forward(backend, qkv: qkv, mask: mask, dropout: dropout, s)
        let x = qkv.doubles, g = dOut.doubles
        let expected = attentionReference(qkv: x, mask: mask, keep: keep, s)
        assertClose(out, expected.out, .reduction, "attention forward out, T \(s.T)", file: file, line: line)
        assertClose(probabilities, expected.probabilities, .reduction, "attention forward probabilities, T \(s.T)",
                    file: file, line: line)

        let dQKV = backward(backend, qkv: qkv, mask: mask, dOut: dOut, dropout: dropout, s)
        let expectedDQKV = centralDifferenceGradient(at: x) { dot(attentionReference(qkv: $0, mask: mask, keep: keep, s).out, g) }
        for (part, name) in ["dQuery", "dKey", "dValue"].enumerated() {
            let indices = (0..<(s.B * s.T)).flatMap { bt in (0..<s.C).map { bt * 3 * s.C + part * s.C + $0 } }
            assertClose(indices.map { dQKV[$0] }, indices.map { expectedDQKV[$0] }, .gradient,
                        "attention \(name), T \(s.T) (assigned over garbage)", file: file, line: line)
        }
    }

    let shape = AttentionShape(B: 2, T: 5, C: 8, NH: 2)
    /// Example 0 is full; example 1 has three tokens and two padded keys.
    let mask: [Float] = [1, 1, 1, 1, 1,
                         1, 1, 1, 0, 0]

    func testPaddedBatchWithoutDropout() {
        let backend = makeBackend()
        withDeviceScope(backend) { scope in
            let indices = scope.indices([0, 1])
            let dropout = DropoutSite(probability: 0, seed: 1, step: 1, site: 1, exampleIndices: indices.pointer)
            check(backend, shape, mask: mask, dropout: dropout, keep: nil, seed: 80)
        }
    }

    func testSingleToken() {
        let backend = makeBackend()
        let single = AttentionShape(B: 2, T: 1, C: 8, NH: 2)
        withDeviceScope(backend) { scope in
            let indices = scope.indices([0, 1])
            let dropout = DropoutSite(probability: 0, seed: 1, step: 1, site: 1, exampleIndices: indices.pointer)
            check(backend, single, mask: [1, 1], dropout: dropout, keep: nil, seed: 82)
        }
    }

    /// Reads the dropout mask that the backend applies to the probabilities of `dropout`: with the
    /// values of key j set to 1 in every channel and all other values 0, out[b,i,h*HS] is
    /// dropout(probabilities)[b,h,i,j]. One forward per key. Each ratio to the undropped
    /// probability must be 0 or 1 / (1 - p); masked keys (probability 0) get keep 0.
    func extractKeep(_ backend: any Backend, dropout: DropoutSite, seed: UInt64) -> [Double] {
        let s = shape, p = Double(dropout.probability)
        var qkv = randomFloats(s.qkvCount, seed: seed)
        var keep = [Double](repeating: 0, count: s.probabilityCount)
        for j in 0..<s.T {
            for b in 0..<s.B {
                for t in 0..<s.T {
                    for h in 0..<s.NH {
                        for d in 0..<s.HS { qkv[s.qkvIndex(b: b, t: t, part: 2, h: h, d: d)] = t == j ? 1 : 0 }
                    }
                }
            }
            let (out, probabilities) = forward(backend, qkv: qkv, mask: mask, dropout: dropout, s)
            for b in 0..<s.B where mask[b * s.T + j] != 0 {
                for h in 0..<s.NH {
                    for i in 0..<s.T {
                        let index = s.probabilityIndex(b: b, h: h, i: i, j: j)
                        let ratio = Double(out[(b * s.T + i) * s.C + h * s.HS]) / Double(probabilities[index])
                        let kept = ratio > 0.5 / (1 - p)
                        XCTAssertEqual(ratio, kept ? 1 / (1 - p) : 0, accuracy: 1e-5,
                                       "attention dropout at (b \(b), h \(h), i \(i), j \(j)) is not inverted dropout")
                        keep[index] = kept ? 1 / (1 - p) : 0
                    }
                }
            }
        }
        return keep
    }

    /// With dropout on the probabilities, forward and backward against the reference that uses
    /// the mask read back from the backend. The mask depends only on the site, so one read-back
    /// serves every qkv, finite differences included.
    func testDropoutOnProbabilities() {
        let backend = makeBackend()
        withDeviceScope(backend) { scope in
            let indices = scope.indices([3, 8])
            let dropout = DropoutSite(probability: 0.3, seed: 5, step: 7, site: 11, exampleIndices: indices.pointer)
            let keep = extractKeep(backend, dropout: dropout, seed: 84)
            let realEntries = (0..<shape.probabilityCount).filter { mask[($0 / (shape.NH * shape.T * shape.T)) * shape.T + $0 % shape.T] != 0 }
            let dropped = realEntries.filter { keep[$0] == 0 }.count
            XCTAssertTrue(dropped > 0 && dropped < realEntries.count,
                          "p = 0.3 dropped \(dropped) of \(realEntries.count) attention probabilities")
            check(backend, shape, mask: mask, dropout: dropout, keep: keep, seed: 86)
        }
    }

    /// The attention dropout mask follows the example, not its batch position or the padded
    /// length: swapping the examples swaps the outputs, and padding the batch to 7 tokens leaves
    /// the first 5 rows unchanged.
    func testDropoutDoesNotDependOnBatchPositionOrPaddedLength() {
        let backend = makeBackend()
        withDeviceScope(backend) { scope in
            let s = shape, p: Float = 0.3
            let qkv = randomFloats(s.qkvCount, seed: 88)
            let indices = scope.indices([3, 8]), swappedIndices = scope.indices([8, 3])
            let dropout = DropoutSite(probability: p, seed: 5, step: 7, site: 11, exampleIndices: indices.pointer)
            var swappedDropout = dropout
            swappedDropout.exampleIndices = UnsafePointer(swappedIndices.pointer)
            let (out, _) = forward(backend, qkv: qkv, mask: mask, dropout: dropout, s)

            let exampleQKV = s.T * 3 * s.C, exampleOut = s.T * s.C
            let swappedQKV = Array(qkv[exampleQKV...] + qkv[..<exampleQKV])
            let swappedMask = Array(mask[s.T...] + mask[..<s.T])
            let (swappedOut, _) = forward(backend, qkv: swappedQKV, mask: swappedMask, dropout: swappedDropout, s)
            assertClose(Array(swappedOut[exampleOut...] + swappedOut[..<exampleOut]), out.doubles, .reduction,
                        "attention with dropout, examples swapped in the batch")

            let longer = AttentionShape(B: 2, T: 7, C: 8, NH: 2)
            let padding = 2 * 3 * s.C  // two more tokens per example, random but masked
            let extra = randomFloats(2 * padding, seed: 89)
            var longerQKV = [Float](), longerMask = [Float]()
            for b in 0..<2 {
                longerQKV.append(contentsOf: qkv[(b * exampleQKV)..<((b + 1) * exampleQKV)])
                longerQKV.append(contentsOf: extra[(b * padding)..<((b + 1) * padding)])
                longerMask.append(contentsOf: mask[(b * s.T)..<((b + 1) * s.T)])
                longerMask.append(contentsOf: [0, 0])
            }
            let (longerOut, _) = forward(backend, qkv: longerQKV, mask: longerMask, dropout: dropout, longer)
            let firstRows = (0..<2).flatMap { b in longerOut[(b * 7 * s.C)..<((b * 7 + 5) * s.C)] }
            assertClose(firstRows, out.doubles, .reduction, "attention with dropout, padded from 5 to 7 tokens")
        }
    }

    /// tf32 and bf16 modes: the six products multiply rounded operands. The reference rounds
    /// the same operands; fp32 runs it unrounded, which checks the term-by-term backward itself
    /// against the backend that the finite-difference tests above check. Inputs are drawn until
    /// no rounded intermediate sits within Float's error of a tie, where the backend and the
    /// Double reference could legitimately round to different neighbours.
    func testRoundedModesMultiplyRoundedOperands() {
        let s = shape
        withDeviceScope(makeBackend()) { scope in
            let indices = scope.indices([3, 8])
            for probability: Float in [0, 0.3] {
                let dropout = DropoutSite(probability: probability, seed: 5, step: 7, site: 11,
                                          exampleIndices: indices.pointer)
                let keep = probability > 0 ? extractKeep(makeBackend(), dropout: dropout, seed: 84) : nil
                for precision in Precision.allCases {
                    let bits = precision.mantissaBits
                    let round = { (x: Double) in Double(roundedMantissa(Float(x), keeping: bits)) }
                    let what = "\(precision), dropout \(probability)"
                    let draws = (UInt64(100)..<300).lazy.map { [mask] seed in
                        let qkv = randomFloats(s.qkvCount, in: -1.5...1.5, seed: seed), dOut = randomFloats(s.outCount, seed: seed + 1)
                        let forward = attentionReference(qkv: qkv.doubles.map(round), mask: mask, keep: keep, s, round: round)
                        let backward = attentionBackwardReference(qkv: qkv.doubles, dOut: dOut.doubles,
                                                                  probabilities: forward.probabilities, keep: keep, s, round: round)
                        return (qkv: qkv, dOut: dOut, expected: forward, expectedBackward: backward)
                    }
                    guard let draw = draws.first(where: { draw in
                        precision == .fp32 || !draw.expectedBackward.rounded.contains {
                            nearRoundingTie($0.value, bits: bits, margin: 1e-6 * $0.terms)
                        }
                    }) else {
                        XCTFail("\(what): every seed puts an intermediate at a rounding tie")
                        continue
                    }
                    let (qkv, dOut, expected) = (draw.qkv, draw.dOut, draw.expected)
                    let backend = CPUBackend(threads: 2, precision: precision)
                    let (out, probabilities) = forward(backend, qkv: qkv, mask: mask, dropout: dropout, s)
                    let dQKV = backward(backend, qkv: qkv, mask: mask, dOut: dOut, dropout: dropout, s)

                    assertClose(probabilities, expected.probabilities, .reduction, "\(what): probabilities")
                    assertClose(out, expected.out, .reduction, "\(what): out")
                    assertClose(dQKV, draw.expectedBackward.dQKV, .reduction, "\(what): dQKV")
                    guard precision != .fp32 else { continue }
                    let unrounded = attentionReference(qkv: qkv.doubles, mask: mask, keep: keep, s)
                    XCTAssertNotNil(mismatch(out, unrounded.out, .reduction), "\(what): the forward did not round")
                    let unroundedDQKV = attentionBackwardReference(qkv: qkv.doubles, dOut: dOut.doubles,
                                                                   probabilities: unrounded.probabilities,
                                                                   keep: keep, s, round: { $0 }).dQKV
                    XCTAssertNotNil(mismatch(dQKV, unroundedDQKV, .reduction), "\(what): the backward did not round")
                }
            }
        }
    }
}
