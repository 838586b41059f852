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
/// real lanes are stored. The partial paths live out of line: inlined, the lane-by-lane store
/// made the compiler split the whole computation feeding it into scalars, and GELU ran at half
/// speed.
@inline(__always)
func load(_ pointer: UnsafePointer<Float>, _ index: Int, _ lanes: Int) -> Float8 {
    if lanes == 8 { return pointer.load8(index) }
    return loadPartial(pointer + index, lanes)
}

@inline(__always)
func store(_ vector: Float8, _ pointer: UnsafeMutablePointer<Float>, _ index: Int, _ lanes: Int) {
    if lanes == 8 { return pointer.store8(vector, at: index) }
    storePartial(vector, pointer + index, lanes)
}

@inline(never)
private func loadPartial(_ pointer: UnsafePointer<Float>, _ lanes: Int) -> Float8 {
    var vector = Float8()
    for lane in 0..<lanes { vector[lane] = pointer[lane] }
    return vector
}

@inline(never)
private func storePartial(_ vector: Float8, _ pointer: UnsafeMutablePointer<Float>, _ lanes: Int) {
    for lane in 0..<lanes { pointer[lane] = vector[lane] }
}

/// Calls `body(i, lanes)` for each vector of `range`: eight lanes, and fewer at the tail.
/// There is one call site, so that the compiler inlines even a long body, which it would not
/// copy into a second call for the tail.
@inline(__always)
func forEachVector(in range: Range<Int>, _ body: (Int, Int) -> Void) {
    var i = range.lowerBound
    while i < range.upperBound {
        let lanes = min(8, range.upperBound - i)
        body(i, lanes)
        i += lanes
    }
}

/// The sum of `term(i, lanes)` over the vectors of `range`, with the padded lanes of the tail
/// vector left out (a term need not be zero where its inputs were padded). Eight running sums
/// rather than one, which also lets the loop run at vector speed: a single Float sum is a chain
/// the compiler may not reorder.
@inline(__always)
func sumOfVectors(in range: Range<Int>, _ term: (Int, Int) -> Float8) -> Float {
    var sums = Float8()
    forEachVector(in: range) { i, lanes in
        let value = term(i, lanes)
        sums += lanes == 8 ? value : value * firstLanes(lanes)
    }
    return sums.sum()
}

/// 1 in the first `lanes` lanes, 0 in the rest.
@inline(never)
private func firstLanes(_ lanes: Int) -> Float8 {
    var ones = Float8()
    for lane in 0..<lanes { ones[lane] = 1 }
    return ones
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

/// erfc(z) and e^(-z^2) for z >= 0, erfc with relative error below 3e-7, so that GELU's
/// negative tail keeps its relative accuracy: erfc(z) = t Q(t) e^(-z^2) with t = 1 / (1 + z/2)
/// and Q a polynomial fit (scripts/fit_erfc.py). The one exp serves GELU's slope as well.
/// Beyond z = 9 (erfc < 5e-37) both are 0, computed at z = 9: the true values would be
/// subnormal, and each subnormal product costs the CPU a microcode assist of a hundred cycles.
@inline(__always)
func erfcAndGaussian8(_ unclamped: Float8) -> (erfc: Float8, gaussian: Float8) {
    let beyond = unclamped .> 9
    let z = unclamped.replacing(with: 9, where: beyond)
    let t = 1 / (1 + 0.5 * z)
    var q = Float8(repeating: -5.762_026_459e-2)
    q = q * t + 2.777_688_205e-1
    q = q * t - 4.736_787_975e-1
    q = q * t + 2.632_811_964e-1
    q = q * t - 1.692_404_971e-2
    q = q * t + 1.987_887_770e-1
    q = q * t + 2.440_376_729e-1
    q = q * t + 2.822_535_932e-1
    q = q * t + 2.820_930_183e-1
    let gaussian = exp8(-z * z).replacing(with: 0, where: beyond)
    return (t * q * gaussian, gaussian)
}
