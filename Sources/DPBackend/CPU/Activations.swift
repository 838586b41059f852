// GELU (transformers' `gelu` with erf and `gelu_new` with tanh) and the pooler's tanh.
// Eight lanes at a time; a short tail is padded into a full vector rather than written twice.

import Foundation

private let inverseSqrt2: Float = 0.707_106_77
private let inverseSqrt2Pi: Float = 0.398_942_28
private let sqrt2OverPi: Float = 0.797_884_56

/// Phi(x) through erfc(|x| / sqrt 2), which keeps its relative accuracy in the negative tail,
/// and the standard normal density phi(x) from the same exp.
@inline(__always)
private func normalCDFAndDensity8(_ x: Float8) -> (cdf: Float8, density: Float8) {
    let magnitude = x.replacing(with: -x, where: x .< 0)
    let (erfc, gaussian) = erfcAndGaussian8(magnitude * inverseSqrt2)
    let halfTail = 0.5 * erfc  // Phi(-|x|)
    return (halfTail.replacing(with: 1 - halfTail, where: x .>= 0), gaussian * inverseSqrt2Pi)
}

/// tanh(u) = 1 - 2 / (e^{2u} + 1), exact at both saturations.
@inline(__always)
private func tanh8(_ u: Float8) -> Float8 {
    1 - 2 / (exp8(2 * u) + 1)
}

@inline(__always)
private func geluTanh8(_ x: Float8) -> Float8 {
    0.5 * x * (1 + tanh8(sqrt2OverPi * (x + 0.044_715 * x * x * x)))
}

@inline(__always)
private func geluTanhSlope8(_ x: Float8) -> Float8 {
    let t = tanh8(sqrt2OverPi * (x + 0.044_715 * x * x * x))
    let dInner = sqrt2OverPi * (1 + 3 * 0.044_715 * x * x)
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * dInner
}

extension CPUBackend {
    public func geluForward(out: UnsafeMutablePointer<Float>, operands: UnsafeMutableRawPointer?,
                            slope: UnsafeMutablePointer<Float>?, input: UnsafePointer<Float>,
                            bias: UnsafePointer<Float>?, N: Int, C: Int, form: GELUForm) {
        let count = N * C
        // The reference rounds the operands in a pass of their own, after the output.
        defer { if let operands { _ = roundOperands(out: operands, values: out, count: count) } }
        let rowsPerChunk = max(1, 4096 / C)
        // One loop per case: deciding inside the loop kept the tanh form from vectorising
        // (5 ns an element instead of 2).
        switch (form, slope) {
        case (.erf, nil):
            parallelRanges(N, minimumPerChunk: rowsPerChunk) { rows in
                forEachBiasedVector(rows: rows, C: C, input: input, bias: bias) { i, lanes, x in
                    store(x * normalCDFAndDensity8(x).cdf, out, i, lanes)
                }
            }
        case (.erf, let slope?):
            parallelRanges(N, minimumPerChunk: rowsPerChunk) { rows in
                forEachBiasedVector(rows: rows, C: C, input: input, bias: bias) { i, lanes, x in
                    let (cdf, density) = normalCDFAndDensity8(x)
                    store(cdf + x * density, slope, i, lanes)
                    store(x * cdf, out, i, lanes)
                }
            }
        case (.tanh, nil):
            parallelRanges(N, minimumPerChunk: rowsPerChunk) { rows in
                forEachBiasedVector(rows: rows, C: C, input: input, bias: bias) { i, lanes, x in
                    store(geluTanh8(x), out, i, lanes)
                }
            }
        case (.tanh, let slope?):
            parallelRanges(N, minimumPerChunk: rowsPerChunk) { rows in
                forEachBiasedVector(rows: rows, C: C, input: input, bias: bias) { i, lanes, x in
                    store(geluTanhSlope8(x), slope, i, lanes)
                    store(geluTanh8(x), out, i, lanes)
                }
            }
        }
    }

    public func geluBackward(dInput: UnsafeMutablePointer<Float>, operands: UnsafeMutableRawPointer?,
                             dOut: UnsafePointer<Float>, slope: UnsafePointer<Float>, count: Int) {
        parallelRanges(count) { range in
            forEachVector(in: range) { i, lanes in
                store(load(dOut, i, lanes) * load(slope, i, lanes), dInput, i, lanes)
            }
        }
        if let operands { _ = roundOperands(out: operands, values: dInput, count: count) }
    }

    public func tanhForward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { out[i] = tanhf(input[i]) }
    }

    public func tanhBackward(dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                             out: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { dInput[i] = dOut[i] * (1 - out[i] * out[i]) }
    }
}

/// Calls `body(i, lanes, x)` over `rows` of an (N, C) input, x being the lanes at flat index i
/// of input + bias (C) when there is a bias. Adding the bias here saves a pass over the input.
@inline(__always)
private func forEachBiasedVector(rows: Range<Int>, C: Int, input: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                 _ body: (Int, Int, Float8) -> Void) {
    for row in rows {
        forEachVector(in: row * C..<(row + 1) * C) { i, lanes in
            var x = load(input, i, lanes)
            if let bias { x += load(bias, i - row * C, lanes) }
            body(i, lanes, x)
        }
    }
}
