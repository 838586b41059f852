// Inverted dropout: a kept value is input / (1 - p), a dropped one is 0. The mask is a pure
// function of (seed, step, site, global example index, position inside the example), so it does
// not depend on where the example sits in the batch, on the padded length or on the rank count,
// and backward regenerates it instead of storing it.

import DPBackend
import DPTestSupport
import XCTest

final class DropoutTests: XCTestCase {
    /// True when `out` is exactly input / (1 - p) as Float computes it, either by a division or
    /// by a multiplication with the precomputed scale 1 / (1 - p) (as torch's fused kernels do).
    /// The two can differ in the last bit; anything else is wrong.
    static func isKeptValue(_ out: Float, input: Float, probability: Float) -> Bool {
        out == input / (1 - probability) || out == input * (1 / (1 - probability))
    }

    /// Runs forward on ones and returns the kept positions, (B, R) flattened.
    static func mask(_ backend: any Backend, probability: Float = 0.1, seed: UInt64 = 1, step: UInt64 = 2,
                     site: UInt64 = 3, examples: [Int32], R: Int) -> [Bool] {
        let B = examples.count
        return withDeviceScope(backend) { scope in
            let indices = scope.indices(examples)
            let input = scope.floats(repeating: 1, count: B * R), out = scope.floats(garbage(B * R))
            let dropout = DropoutSite(probability: probability, seed: seed, step: step, site: site,
                                      exampleIndices: indices.pointer)
            backend.dropoutForward(out: out.pointer, input: input.pointer, dropout: dropout, B: B, R: R)
            return out.array.map { $0 != 0 }
        }
    }

    /// The fraction of positions where two masks disagree.
    static func disagreement(_ a: [Bool], _ b: [Bool]) -> Double {
        Double(zip(a, b).filter { $0.0 != $0.1 }.count) / Double(a.count)
    }

    /// p = 0.1 on a million elements: the kept fraction is within 5 sigma of 0.9, every kept
    /// value is input / (1 - p) and every dropped value is exactly 0.
    func testKeptFractionAndScaling() {
        let backend = makeBackend()
        withDeviceScope(backend) { scope in
            let B = 4, R = 250_000, p: Float = 0.1
            let input = randomFloats(B * R, in: 0.25...2, seed: 70).enumerated().map { $0.offset % 2 == 0 ? $0.element : -$0.element }
            let indices = scope.indices([0, 1, 2, 3])
            let inputD = scope.floats(input), out = scope.floats(garbage(B * R))
            let dropout = DropoutSite(probability: p, seed: 71, step: 5, site: 2, exampleIndices: indices.pointer)
            backend.dropoutForward(out: out.pointer, input: inputD.pointer, dropout: dropout, B: B, R: R)

            let result = out.array
            var kept = 0, wrong = [Int]()
            for i in result.indices {
                if result[i] == 0 { continue }
                kept += 1
                if !Self.isKeptValue(result[i], input: input[i], probability: p), wrong.count < 5 { wrong.append(i) }
            }
            XCTAssertTrue(wrong.isEmpty, "kept values are not input / (1 - p) at "
                          + wrong.map { "[\($0)]: input \(input[$0]), out \(result[$0])" }.joined(separator: ", "))
            let n = Double(B * R), fraction = Double(kept) / n
            let sigma = (Double(p) * Double(1 - p) / n).squareRoot()
            XCTAssertEqual(fraction, 1 - Double(p), accuracy: 5 * sigma, "kept fraction over \(B * R) elements")
            // Each example on its own too: a mask shared by the whole batch would still pass above.
            for b in 0..<B {
                let keptHere = result[(b * R)..<((b + 1) * R)].filter { $0 != 0 }.count
                let sigmaHere = (Double(p) * Double(1 - p) / Double(R)).squareRoot()
                XCTAssertEqual(Double(keptHere) / Double(R), 1 - Double(p), accuracy: 5 * sigmaHere, "kept fraction of example \(b)")
            }
            XCTAssertGreaterThan(Self.disagreement(Array(result[0..<R].map { $0 != 0 }), Array(result[R..<(2 * R)].map { $0 != 0 })),
                                 0.15, "examples 0 and 1 must get independent masks")
        }
    }

    /// The same site gives the same mask; changing any one of seed, step, site or example index
    /// gives an unrelated one (two independent p = 0.1 masks disagree on 2 p (1 - p) = 18% of the
    /// positions; over 10,000 positions sigma is 0.4%, and the band below is about 7 sigma wide).
    func testMaskIsAPureFunctionOfTheSite() {
        let backend = makeBackend()
        let R = 10_000
        let base = Self.mask(backend, seed: 1, step: 2, site: 3, examples: [4], R: R)
        XCTAssertEqual(base, Self.mask(backend, seed: 1, step: 2, site: 3, examples: [4], R: R), "same site, same mask")
        XCTAssertEqual(Self.mask(makeBackend(threads: 1), seed: 1, step: 2, site: 3, examples: [4], R: R), base,
                       "a fresh backend with another thread count gives the same mask")

        let variants: [(String, [Bool])] = [
            ("seed", Self.mask(backend, seed: 9, step: 2, site: 3, examples: [4], R: R)),
            ("step", Self.mask(backend, seed: 1, step: 3, site: 3, examples: [4], R: R)),
            ("site", Self.mask(backend, seed: 1, step: 2, site: 4, examples: [4], R: R)),
            ("example index", Self.mask(backend, seed: 1, step: 2, site: 3, examples: [5], R: R)),
            ("seed and step swapped", Self.mask(backend, seed: 2, step: 1, site: 3, examples: [4], R: R)),
            ("site and example index swapped", Self.mask(backend, seed: 1, step: 2, site: 4, examples: [3], R: R)),
        ]
        for (change, other) in variants {
            let d = Self.disagreement(base, other)
            XCTAssertTrue((0.15...0.21).contains(d), "another \(change): masks disagree on \(d) of the positions, expected about 0.18")
        }
    }

    /// The mask of an example is the same wherever it sits in the batch and whatever the row
    /// length (a shorter padded length sees a prefix of the same mask). This is what makes a run
    /// independent of the rank count and of the micro-batch split.
    func testMaskDoesNotDependOnBatchPositionOrLength() {
        let backend = makeBackend()
        let R = 1000
        let first = Self.mask(backend, examples: [7, 3, 11], R: R)
        let second = Self.mask(backend, examples: [11, 5, 7], R: R)
        let alone = Self.mask(backend, examples: [7], R: R)
        XCTAssertEqual(Array(first[0..<R]), Array(second[(2 * R)..<(3 * R)]), "example 7 at batch position 0 and 2")
        XCTAssertEqual(Array(first[(2 * R)..<(3 * R)]), Array(second[0..<R]), "example 11 at batch position 2 and 0")
        XCTAssertEqual(Array(first[0..<R]), alone, "example 7 in a batch of 3 and alone")

        let short = Self.mask(backend, examples: [11, 7], R: 600)
        XCTAssertEqual(Array(short[0..<600]), Array(first[(2 * R)..<(2 * R + 600)]), "example 11 with R 600 and 1000")
        XCTAssertEqual(Array(short[600..<1200]), Array(first[0..<600]), "example 7 with R 600 and 1000")
    }

    /// Backward regenerates the forward's mask: dInput = dOut / (1 - p) where kept, 0 where dropped.
    func testBackwardUsesTheForwardMask() {
        let backend = makeBackend()
        withDeviceScope(backend) { scope in
            let B = 3, R = 2000, p: Float = 0.25
            let indices = scope.indices([12, 0, 5])
            let dropout = DropoutSite(probability: p, seed: 8, step: 100, site: 6, exampleIndices: indices.pointer)
            let input = randomFloats(B * R, in: 0.5...1.5, seed: 72), dOut = randomFloats(B * R, in: 0.5...1.5, seed: 73)
            let inputD = scope.floats(input), dOutD = scope.floats(dOut)
            let out = scope.floats(garbage(B * R)), dInput = scope.floats(garbage(B * R))
            backend.dropoutForward(out: out.pointer, input: inputD.pointer, dropout: dropout, B: B, R: R)
            backend.dropoutBackward(dInput: dInput.pointer, dOut: dOutD.pointer, dropout: dropout, B: B, R: R)

            let forward = out.array, backward = dInput.array
            var problems = [String]()
            for i in 0..<(B * R) where problems.count < 5 {
                let kept = forward[i] != 0
                if kept && !Self.isKeptValue(backward[i], input: dOut[i], probability: p) {
                    problems.append("[\(i)] kept: dOut \(dOut[i]), dInput \(backward[i])")
                } else if !kept && backward[i] != 0 {
                    problems.append("[\(i)] dropped: dInput \(backward[i])")
                }
            }
            XCTAssertTrue(problems.isEmpty, "backward mask differs from forward's: " + problems.joined(separator: ", "))
        }
    }

    func testZeroProbabilityIsTheIdentity() {
        let backend = makeBackend()
        withDeviceScope(backend) { scope in
            let B = 2, R = 777
            let indices = scope.indices([1, 2])
            let dropout = DropoutSite(probability: 0, seed: 1, step: 1, site: 1, exampleIndices: indices.pointer)
            XCTAssertFalse(dropout.isActive)
            let input = randomFloats(B * R, seed: 74), dOut = randomFloats(B * R, seed: 75)
            let inputD = scope.floats(input), dOutD = scope.floats(dOut)
            let out = scope.floats(garbage(B * R)), dInput = scope.floats(garbage(B * R))
            backend.dropoutForward(out: out.pointer, input: inputD.pointer, dropout: dropout, B: B, R: R)
            backend.dropoutBackward(dInput: dInput.pointer, dOut: dOutD.pointer, dropout: dropout, B: B, R: R)
            assertIdentical(out.array, input, "dropout forward with p = 0")
            assertIdentical(dInput.array, dOut, "dropout backward with p = 0")
        }
    }

    /// The residual form is the bias added, dropout, then the residual added, each in Float, in
    /// one call: the same mask and the same sums, also in place, without a bias and with dropout off.
    func testResidualFormAddsTheResidualToTheDroppedInput() {
        let backend = makeBackend()
        withDeviceScope(backend) { scope in
            let B = 3, T = 77, C = 13, R = T * C
            let indices = scope.indices([4, 9, 2])
            let input = randomFloats(B * R, seed: 76), residual = randomFloats(B * R, seed: 77)
            let bias = randomFloats(C, seed: 78)
            let residualD = scope.floats(residual), biasD = scope.floats(bias)
            for p: Float in [0.25, 0] {
                for withBias in [false, true] {
                    let dropout = DropoutSite(probability: p, seed: 3, step: 9, site: 2, exampleIndices: indices.pointer)
                    let biased = scope.floats(withBias ? (0..<(B * R)).map { input[$0] + bias[$0 % C] } : input)
                    let dropped = scope.floats(garbage(B * R))
                    backend.dropoutForward(out: dropped.pointer, input: biased.pointer, dropout: dropout, B: B, R: R)
                    let expected = zip(dropped.array, residual).map { $0 + $1 }
                    let what = "dropout(input\(withBias ? " + bias" : "")) + residual, p = \(p)"
                    let out = scope.floats(garbage(B * R))
                    backend.dropoutResidualForward(out: out.pointer, input: scope.floats(input).pointer,
                                                   bias: withBias ? biasD.pointer : nil, residual: residualD.pointer,
                                                   dropout: dropout, B: B, T: T, C: C)
                    assertIdentical(out.array, expected, what)
                    let inPlace = scope.floats(input)
                    backend.dropoutResidualForward(out: inPlace.pointer, input: inPlace.pointer,
                                                   bias: withBias ? biasD.pointer : nil, residual: residualD.pointer,
                                                   dropout: dropout, B: B, T: T, C: C)
                    assertIdentical(inPlace.array, expected, what + ", in place")
                }
            }
        }
    }
}
