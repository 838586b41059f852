// --precision tf32|bf16 as Precision.swift defines it: operands rounded to nearest even, then
// the CPU backend's linear layers multiply the rounded operands and sum in fp32.

import DPBackend
import DPTensor
import DPTestSupport
import XCTest

final class PrecisionTests: XCTestCase {
    /// The nearest value with `bits` mantissa bits, worked out in Double from the two candidates
    /// around `x`; ties go to the one whose last kept bit is 0, and past the largest finite
    /// value lies infinity.
    private func nearest(_ x: Float, bits: Int) -> Float {
        let dropped = UInt32(23 - bits)
        let magnitude = x.magnitude
        let below = Float(bitPattern: magnitude.bitPattern & ~((1 << dropped) - 1))
        let exponent = Int((below.bitPattern >> 23) & 0xFF)
        let step = pow(2.0, Double(max(exponent, 1) - 127 - bits))
        let above = Double(below) + step
        let toBelow = Double(magnitude) - Double(below), toAbove = above - Double(magnitude)
        let belowIsEven = (below.bitPattern >> dropped) & 1 == 0
        let rounded = toBelow < toAbove || (toBelow == toAbove && belowIsEven) ? below : Float(above)
        return x.sign == .minus ? -rounded : rounded
    }

    func testRoundingIsToNearestWithTiesToEven() {
        var values: [Float] = [0, -0, 1, -1, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .infinity,
                               -.infinity, .leastNonzeroMagnitude, .leastNormalMagnitude, 3.4e38, Float(bitPattern: 0x0001_2345)]
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<20_000 {
            values.append(Float(bitPattern: UInt32(truncatingIfNeeded: generator.next())))
        }
        for precision in [Precision.tf32, .bf16] {
            let dropped = UInt32(23 - precision.mantissaBits)
            // Exact ties on both sides of an even and of an odd last kept bit.
            var cases = values
            for kept: UInt32 in [0x3F80_0000, 0x3F80_0000 | (1 << dropped), 0xC120_0000 | (3 << dropped)] {
                cases.append(Float(bitPattern: kept | (1 << (dropped - 1))))
            }
            for x in cases where !x.isNaN {
                let got = roundedMantissa(x, keeping: precision.mantissaBits)
                let expected = nearest(x, bits: precision.mantissaBits)
                guard got.bitPattern != expected.bitPattern else { continue }
                XCTFail("\(precision): \(x) (0x\(String(x.bitPattern, radix: 16))) rounded to \(got), expected \(expected)")
                return
            }
            XCTAssertTrue(roundedMantissa(.nan, keeping: precision.mantissaBits).isNaN)
            // A NaN whose payload sits in the dropped bits only must not become infinity.
            XCTAssertTrue(roundedMantissa(Float(bitPattern: 0x7F80_0001), keeping: precision.mantissaBits).isNaN)
        }
        XCTAssertEqual(roundedMantissa(1.1, keeping: Precision.fp32.mantissaBits), 1.1)
    }

    func testLinearLayersMultiplyRoundedOperands() {
        let N = 6, C = 8, OC = 5
        for precision in [Precision.tf32, .bf16] {
            let backend = CPUBackend(threads: 2, precision: precision)
            withDeviceScope(backend) { scope in
                let input = randomFloats(N * C, in: -2...2, seed: 40), weight = randomFloats(OC * C, seed: 41)
                let bias = randomFloats(OC, seed: 42), dOut = randomFloats(N * OC, seed: 43)
                let bits = precision.mantissaBits
                let x = input.map { Double(roundedMantissa($0, keeping: bits)) }
                let w = weight.map { Double(roundedMantissa($0, keeping: bits)) }
                let g = dOut.map { Double(roundedMantissa($0, keeping: bits)) }
                func product(_ a: [Double], _ b: [Double], rows: Int, columns: Int, inner: Int,
                             _ index: (Int, Int, Int) -> (Int, Int)) -> [Double] {
                    var out = [Double](repeating: 0, count: rows * columns)
                    for r in 0..<rows {
                        for c in 0..<columns {
                            for k in 0..<inner {
                                let (i, j) = index(r, c, k)
                                out[r * columns + c] += a[i] * b[j]
                            }
                        }
                    }
                    return out
                }
                let out = scope.floats(garbage(N * OC))
                let inputs = scope.operands(input), weights = scope.operands(weight)
                backend.matmulForward(out: out.pointer, input: inputs, weight: weights, bias: scope.floats(bias).pointer,
                                      N: N, C: C, OC: OC)
                let expected = zip(product(x, w, rows: N, columns: OC, inner: C) { n, o, c in (n * C + c, o * C + c) },
                                   Array(repeating: bias, count: N).flatMap { $0 }).map { $0 + Double($1) }
                assertClose(out.array, expected, .elementwise, "\(precision) forward")
                let unrounded = product(input.doubles, weight.doubles, rows: N, columns: OC, inner: C) { n, o, c in
                    (n * C + c, o * C + c)
                }
                XCTAssertNotNil(mismatch(out.array, zip(unrounded, Array(repeating: bias, count: N).flatMap { $0 })
                    .map { $0 + Double($1) }, .elementwise), "\(precision): the forward did not round its operands")

                let dInput = scope.floats(garbage(N * C)), dWeight = scope.floats(Array(repeating: 0, count: OC * C))
                let dBias = scope.floats(Array(repeating: 0, count: OC)), dOutD = scope.floats(dOut)
                backend.matmulBackward(dInput: dInput.pointer, accumulatesDInput: false, dWeight: dWeight.pointer, dBias: dBias.pointer,
                                       dOut: dOutD.pointer, dOutOperands: scope.operands(of: dOutD), input: inputs,
                                       weight: weights, N: N, C: C, OC: OC)
                assertClose(dInput.array, product(g, w, rows: N, columns: C, inner: OC) { n, c, o in (n * OC + o, o * C + c) },
                            .elementwise, "\(precision) dInput")
                assertClose(dWeight.array, product(g, x, rows: OC, columns: C, inner: N) { o, c, n in (n * OC + o, n * C + c) },
                            .elementwise, "\(precision) dWeight")
                // The bias gradient is a sum, not a product: it reads the fp32 dOut.
                let dBiasExpected = (0..<OC).map { o in (0..<N).reduce(0.0) { $0 + Double(dOut[$1 * OC + o]) } }
                assertClose(dBias.array, dBiasExpected, .elementwise, "\(precision) dBias")
            }
        }
    }
}
