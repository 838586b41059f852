// GELU (transformers' `gelu` with erf and `gelu_new` with tanh) and the pooler's tanh.

import Foundation

@inline(__always)
private func geluErf(_ x: Float) -> (value: Float, slope: Float) {
    let cdf = 0.5 * (1 + erff(x * Float(0.5).squareRoot()))
    let pdf = expf(-0.5 * x * x) / Float(2 * Double.pi).squareRoot()
    return (x * cdf, cdf + x * pdf)
}

@inline(__always)
private func geluTanh(_ x: Float) -> (value: Float, slope: Float) {
    let k = Float(2 / Double.pi).squareRoot()
    let inner = k * (x + 0.044715 * x * x * x)
    let t = tanhf(inner)
    let dInner = k * (1 + 3 * 0.044715 * x * x)
    return (0.5 * x * (1 + t), 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * dInner)
}

extension CPUBackend {
    public func geluForward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, count: Int, form: GELUForm) {
        parallelRanges(count) { range in
            switch form {
            case .erf: for i in range { out[i] = geluErf(input[i]).value }
            case .tanh: for i in range { out[i] = geluTanh(input[i]).value }
            }
        }
    }

    public func geluBackward(dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                             input: UnsafePointer<Float>, count: Int, form: GELUForm) {
        parallelRanges(count) { range in
            switch form {
            case .erf: for i in range { dInput[i] = dOut[i] * geluErf(input[i]).slope }
            case .tanh: for i in range { dInput[i] = dOut[i] * geluTanh(input[i]).slope }
            }
        }
    }

    public func tanhForward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { out[i] = tanhf(input[i]) }
    }

    public func tanhBackward(dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                             out: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { dInput[i] = dOut[i] * (1 - out[i] * out[i]) }
    }
}
