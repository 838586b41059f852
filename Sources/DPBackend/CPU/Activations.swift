// GELU (transformers' `gelu` with erf and `gelu_new` with tanh) and the pooler's tanh.
// Eight lanes at a time; a short tail is padded into a full vector rather than written twice.

import Foundation

private let inverseSqrt2: Float = 0.707_106_77
private let inverseSqrt2Pi: Float = 0.398_942_28
private let sqrt2OverPi: Float = 0.797_884_56

/// Phi(x) through erfc(|x| / sqrt 2), which keeps its relative accuracy in the negative tail.
@inline(__always)
private func normalCDF8(_ x: Float8) -> Float8 {
    let magnitude = x.replacing(with: -x, where: x .< 0)
    let halfTail = 0.5 * erfcNonNegative8(magnitude * inverseSqrt2)  // Phi(-|x|)
    return halfTail.replacing(with: 1 - halfTail, where: x .>= 0)
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
    /// Applies `body` to `count` floats eight at a time; the tail goes through a padded vector.
    @inline(__always)
    func map8(count: Int, _ body: (Int, Int) -> Void) {
        parallelRanges(count) { range in
            var i = range.lowerBound
            while i + 8 <= range.upperBound {
                body(i, 8)
                i += 8
            }
            if i < range.upperBound { body(i, range.upperBound - i) }
        }
    }

    public func geluForward(out: UnsafeMutablePointer<Float>, operands: UnsafeMutableRawPointer?,
                            slope: UnsafeMutablePointer<Float>?, input: UnsafePointer<Float>,
                            bias: UnsafePointer<Float>?, N: Int, C: Int, form: GELUForm) {
        let count = N * C
        // The reference rounds the operands in a pass of their own, after the output.
        defer { if let operands { _ = roundOperands(out: operands, values: out, count: count) } }
        var input = input
        if let bias {
            addRowBias(out, input, bias, N: N, C: C)
            input = UnsafePointer(out)
        }
        // One loop per case: deciding inside the loop kept the tanh form from vectorising
        // (5 ns an element instead of 2).
        switch (form, slope) {
        case (.erf, nil):
            map8(count: count) { i, lanes in
                let x = load(input, i, lanes)
                store(x * normalCDF8(x), out, i, lanes)
            }
        case (.erf, let slope?):
            map8(count: count) { i, lanes in
                let x = load(input, i, lanes)
                let cdf = normalCDF8(x)
                store(cdf + x * exp8(-0.5 * x * x) * inverseSqrt2Pi, slope, i, lanes)
                store(x * cdf, out, i, lanes)
            }
        case (.tanh, nil):
            map8(count: count) { i, lanes in store(geluTanh8(load(input, i, lanes)), out, i, lanes) }
        case (.tanh, let slope?):
            map8(count: count) { i, lanes in
                let x = load(input, i, lanes)
                store(geluTanhSlope8(x), slope, i, lanes)
                store(geluTanh8(x), out, i, lanes)
            }
        }
    }

    public func geluBackward(dInput: UnsafeMutablePointer<Float>, operands: UnsafeMutableRawPointer?,
                             dOut: UnsafePointer<Float>, slope: UnsafePointer<Float>, count: Int) {
        map8(count: count) { i, lanes in
            store(load(dOut, i, lanes) * load(slope, i, lanes), dInput, i, lanes)
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

extension CPUBackend {
    /// out (N, C) = input + bias (C) on every row; out may be input.
    func addRowBias(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, _ bias: UnsafePointer<Float>,
                    N: Int, C: Int) {
        parallelRanges(N) { rows in
            for row in rows {
                for c in 0..<C { out[row * C + c] = input[row * C + c] + bias[c] }
            }
        }
    }
}
