// exp and erfc on eight floats at once. glibc's expf and erff are scalar calls, and GELU and
// softmax spend most of their time in them; these stay within a few ulp of glibc.

typealias Float8 = SIMD8<Float>

extension UnsafePointer where Pointee == Float {
    @inline(__always) func load8(_ index: Int) -> Float8 {
        UnsafeRawPointer(self + index).loadUnaligned(as: Float8.self)
    }
}

extension UnsafeMutablePointer where Pointee == Float {
    @inline(__always) func load8(_ index: Int) -> Float8 {
        UnsafeRawPointer(self + index).loadUnaligned(as: Float8.self)
    }

    @inline(__always) func store8(_ value: Float8, at index: Int) {
        UnsafeMutableRawPointer(self + index).storeBytes(of: value, as: Float8.self)
    }
}

/// A partial vector (lanes < 8) at the end of a loop is padded with zeros on load and only its
/// real lanes are stored.
@inline(__always)
func load(_ pointer: UnsafePointer<Float>, _ index: Int, _ lanes: Int) -> Float8 {
    if lanes == 8 { return pointer.load8(index) }
    var vector = Float8()
    for lane in 0..<lanes { vector[lane] = pointer[index + lane] }
    return vector
}

@inline(__always)
func store(_ vector: Float8, _ pointer: UnsafeMutablePointer<Float>, _ index: Int, _ lanes: Int) {
    if lanes == 8 { return pointer.store8(vector, at: index) }
    for lane in 0..<lanes { pointer[index + lane] = vector[lane] }
}

/// e^x: Cephes' expf polynomial after reducing x by multiples of ln 2. Inputs below -87.3
/// return about 1e-38 instead of 0 (callers that need exact zeros multiply by a mask).
/// Rounding and the 2^n scale use the 1.5 * 2^23 trick on the bit pattern, because the
/// standard library's generic SIMD conversions are not specialised and cost 20x the maths.
@inline(__always)
func exp8(_ input: Float8) -> Float8 {
    var x = input.replacing(with: -87.3, where: input .< -87.3)
    x.replace(with: 88.3, where: x .> 88.3)
    let shifted = x * 1.442_695_04 + 12_582_912  // n now sits in the low mantissa bits
    let n = shifted - 12_582_912
    let r = x - n * 0.693_359_375 + n * 2.121_944_4e-4
    var p = Float8(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_12e-1
    p = p * (r * r) + r + 1
    // (bits(shifted) - bits(1.5 * 2^23) + 127) << 23 is the float 2^n.
    let exponent = (unsafeBitCast(shifted, to: SIMD8<UInt32>.self) &- 0x4B3F_FF81) &<< 23
    return p * unsafeBitCast(exponent, to: Float8.self)
}

/// erfc(z) for z >= 0 with fractional error below 1.2e-7 (Numerical Recipes' Chebyshev fit),
/// so that GELU's negative tail keeps its relative accuracy.
@inline(__always)
func erfcNonNegative8(_ z: Float8) -> Float8 {
    let t = 1 / (1 + 0.5 * z)
    var p = Float8(repeating: 0.170_872_77)
    p = p * t - 0.822_152_23
    p = p * t + 1.488_515_87
    p = p * t - 1.135_203_98
    p = p * t + 0.278_868_07
    p = p * t - 0.186_288_06
    p = p * t + 0.096_784_18
    p = p * t + 0.374_091_96
    p = p * t + 1.000_023_68
    p = p * t - 1.265_512_23
    return t * exp8(p - z * z)
}
