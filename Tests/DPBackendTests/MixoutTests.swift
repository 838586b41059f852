// Mixout (Lee et al. 2020) of a linear weight: each input column is kept with chance 1 - p,
// becoming (w - p target) / (1 - p), or replaced by its target; the same column of every output
// row shares the draw. Backward carries a gradient through the mixture: M / (1 - p).

import DPBackend
import DPTestSupport
import XCTest

final class MixoutTests: XCTestCase {
    /// Mixes `weights` toward `target` on `backend`; returns the mixed weights and what the op
    /// left in `original`.
    static func mix(_ backend: any Backend, weights: [Float], target: [Float], site: MixoutSite,
                    OC: Int, C: Int) -> (mixed: [Float], original: [Float]) {
        withDeviceScope(backend) { scope in
            let mixed = scope.floats(weights), original = scope.floats(garbage(OC * C)), anchor = scope.floats(target)
            backend.mixoutForward(weights: mixed.pointer, original: original.pointer, target: anchor.pointer,
                                  mixout: site, OC: OC, C: C)
            return (mixed.array, original.array)
        }
    }

    /// Which columns a mixture kept, read off row 0: a kept value lies near (w - p t) / (1 - p),
    /// a replaced one near t (not exactly: (t - p t) / (1 - p) rounds).
    static func keptColumns(mixed: [Float], weights: [Float], target: [Float], p: Float, C: Int) -> [Bool] {
        (0..<C).map { c in
            let keptValue = (weights[c] - p * target[c]) / (1 - p)
            return abs(mixed[c] - keptValue) < abs(mixed[c] - target[c])
        }
    }

    /// The mixture in Double for a given column mask.
    static func reference(weights: [Double], target: [Double], kept: [Bool], p: Double, C: Int) -> [Double] {
        weights.indices.map { i in
            let m = kept[i % C] ? 1.0 : 0.0
            return ((1 - m) * target[i] + m * weights[i] - p * target[i]) / (1 - p)
        }
    }

    /// p = 0.1 over 20,000 columns: the kept fraction is within 5 sigma of 0.9; each column is
    /// kept or replaced in every row alike; kept values are the Double mixture and replaced ones
    /// the target; `original` holds the weights bit for bit.
    func testForwardKeepsWholeColumnsAtOneMinusPAndReplacesTheRestByTheTarget() {
        let backend = makeBackend()
        let OC = 3, C = 20_000, p: Float = 0.1
        let weights = randomFloats(OC * C, seed: 80), target = randomFloats(OC * C, seed: 81)
        let site = MixoutSite(probability: p, seed: 5, step: 7, site: 11)
        let (mixed, original) = Self.mix(backend, weights: weights, target: target, site: site, OC: OC, C: C)
        assertIdentical(original, weights, "original")
        let kept = Self.keptColumns(mixed: mixed, weights: weights, target: target, p: p, C: C)
        let fraction = Double(kept.filter { $0 }.count) / Double(C)
        XCTAssertEqual(fraction, 1 - Double(p), accuracy: 5 * (Double(p) * Double(1 - p) / Double(C)).squareRoot(),
                       "kept fraction of the columns")
        assertClose(mixed, Self.reference(weights: weights.doubles, target: target.doubles, kept: kept, p: Double(p), C: C),
                    .elementwise, "mixture, every row with its column's draw")
    }

    /// Another step or weight draws other columns; the same site the same ones, on any thread count.
    func testColumnsArePureFunctionsOfTheSite() {
        let OC = 2, C = 10_000
        let weights = randomFloats(OC * C, seed: 82), target = randomFloats(OC * C, seed: 83)
        func kept(_ site: MixoutSite, threads: Int = 2) -> [Bool] {
            Self.keptColumns(mixed: Self.mix(makeBackend(threads: threads), weights: weights, target: target, site: site,
                                             OC: OC, C: C).mixed, weights: weights, target: target, p: 0.1, C: C)
        }
        let base = MixoutSite(probability: 0.1, seed: 1, step: 2, site: 3)
        XCTAssertEqual(kept(base), kept(base, threads: 1))
        for (what, other) in [("step", MixoutSite(probability: 0.1, seed: 1, step: 3, site: 3)),
                              ("site", MixoutSite(probability: 0.1, seed: 1, step: 2, site: 4)),
                              ("seed", MixoutSite(probability: 0.1, seed: 2, step: 2, site: 3))] {
            // Two independent p = 0.1 masks disagree on 18% of the columns (sigma 0.4% here).
            let disagreement = Double(zip(kept(base), kept(other)).filter { $0.0 != $0.1 }.count) / Double(C)
            XCTAssertEqual(disagreement, 0.18, accuracy: 0.03, "another \(what), another draw")
        }
    }

    /// Backward against central differences of sum(dOut * mixture(W)) in Double, with the
    /// columns forward drew.
    func testBackwardIsTheDerivativeOfTheMixture() {
        let backend = makeBackend()
        let OC = 3, C = 40, p = 0.3
        let weights = randomFloats(OC * C, seed: 84), target = randomFloats(OC * C, seed: 85)
        let dOut = randomFloats(OC * C, seed: 86)
        let site = MixoutSite(probability: Float(p), seed: 9, step: 1, site: 2)
        let kept = Self.keptColumns(mixed: Self.mix(backend, weights: weights, target: target, site: site, OC: OC, C: C).mixed,
                                    weights: weights, target: target, p: Float(p), C: C)
        XCTAssertTrue(kept.contains(true) && kept.contains(false), "both kinds of column, so both derivatives are tested")
        let expected = centralDifferenceGradient(at: weights.doubles) {
            dot(Self.reference(weights: $0, target: target.doubles, kept: kept, p: p, C: C), dOut.doubles)
        }
        let got = withDeviceScope(backend) { scope in
            let gradient = scope.floats(dOut)
            backend.mixoutBackward(dWeights: gradient.pointer, mixout: site, OC: OC, C: C)
            return gradient.array
        }
        assertClose(got, expected, .gradient, "dWeights")
    }
}
