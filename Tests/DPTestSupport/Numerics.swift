// Numeric helpers shared by the test targets: seeded random arrays, error measures with
// documented tolerances, central finite differences in Double, and a device scope that moves
// Swift arrays in and out of a backend's memory, so that an op can be run from plain arrays.
//
// Nothing here imports XCTest: the helpers return a description of the first mismatch (or nil)
// and the test decides how to report it.

import DPBackend
import DPTensor

// MARK: - Seeded randomness

/// `count` floats drawn uniformly from `range`, reproducible from `seed`.
public func randomFloats(_ count: Int, in range: ClosedRange<Float> = -1...1, seed: UInt64) -> [Float] {
    var generator = SeededGenerator(seed: seed)
    return (0..<count).map { _ in Float.random(in: range, using: &generator) }
}

/// `count` doubles drawn uniformly from `range`, reproducible from `seed`.
public func randomDoubles(_ count: Int, in range: ClosedRange<Double> = -1...1, seed: UInt64) -> [Double] {
    var generator = SeededGenerator(seed: seed)
    return (0..<count).map { _ in Double.random(in: range, using: &generator) }
}

/// Which of `count` parameters take weight decay, drawn at random (reproducible from `seed`), as
/// Backend.adamW's mask of ((count + 31) / 32) words and as one Bool per parameter.
public func randomDecayMask(_ count: Int, seed: UInt64) -> (words: [Int32], decays: [Bool]) {
    var generator = SeededGenerator(seed: seed)
    let decays = (0..<count).map { _ in Bool.random(using: &generator) }
    let ones = decays.indices.filter { decays[$0] }.map { $0..<($0 + 1) }
    return (weightDecayMask(count: count, decaying: ones), decays)
}

/// `count` indices drawn uniformly from `range`, reproducible from `seed`.
public func randomIndices(_ count: Int, in range: Range<Int32>, seed: UInt64) -> [Int32] {
    var generator = SeededGenerator(seed: seed)
    return (0..<count).map { _ in Int32.random(in: range, using: &generator) }
}

extension Array where Element == Float {
    /// The same values widened to Double, so a Double reference sees exactly the backend's inputs.
    public var doubles: [Double] { map(Double.init) }
}

// MARK: - Error measures and tolerances

/// How far a Float result may be from its Double reference. An element passes when
///     |got - expected| <= absolute * max(1, max_i |expected_i|) + relative * |expected|,
/// so `absolute` is measured against the scale of the whole tensor (never less than 1): an
/// element that is small only because of cancellation is not held to an impossible relative bound.
public struct Tolerance: Sendable, CustomStringConvertible {
    public var relative: Double
    public var absolute: Double

    public init(relative: Double, absolute: Double) {
        self.relative = relative
        self.absolute = absolute
    }

    /// One or two Float roundings and a libm call per element (add, scale, GELU, tanh, dropout,
    /// gathers). Float's unit roundoff is 6e-8, so this leaves a margin of about 100.
    public static let elementwise = Tolerance(relative: 1e-5, absolute: 1e-6)
    /// Sums over tens of terms in Float, in any order (matmul, LayerNorm, softmax, pooling,
    /// losses): about sqrt(n) * 6e-8 per unit of magnitude, with a wide margin for BLAS blocking.
    public static let reduction = Tolerance(relative: 1e-4, absolute: 1e-5)
    /// A Float backward pass against central differences of the Double reference (whose own error
    /// is about 1e-9 at h = 1e-6): backward chains two or three Float reductions.
    public static let gradient = Tolerance(relative: 2e-4, absolute: 2e-5)
    /// The same op on two thread counts: only the summation order may differ.
    public static let threadParity = Tolerance(relative: 1e-5, absolute: 1e-6)

    public var description: String { "relative \(relative), absolute \(absolute)" }
}

/// Nil when every element of `got` is within `tolerance` of `expected`; otherwise a description
/// of the worst element (its index, both values) and of how many elements fail.
public func mismatch(_ got: [Float], _ expected: [Double], _ tolerance: Tolerance) -> String? {
    guard got.count == expected.count else {
        return "got \(got.count) elements, expected \(expected.count)"
    }
    let scale = max(1, expected.reduce(0) { max($0, abs($1)) })
    var failures = 0
    var worst: (index: Int, excess: Double)? = nil
    for (i, (g, e)) in zip(got, expected).enumerated() {
        let allowed = tolerance.absolute * scale + tolerance.relative * abs(e)
        let error = abs(Double(g) - e)
        guard !(error <= allowed) else { continue }  // also catches NaN
        failures += 1
        let excess = error.isNaN ? .infinity : error / allowed
        if worst == nil || excess > worst!.excess { worst = (i, excess) }
    }
    guard let worst else { return nil }
    return "\(failures) of \(got.count) elements outside tolerance (\(tolerance)); worst at [\(worst.index)]: "
        + "got \(got[worst.index]), expected \(expected[worst.index])"
}

/// Nil when the two Float arrays are bit-for-bit equal; otherwise the first difference.
public func exactMismatch(_ got: [Float], _ expected: [Float]) -> String? {
    guard got.count == expected.count else {
        return "got \(got.count) elements, expected \(expected.count)"
    }
    for i in got.indices where got[i].bitPattern != expected[i].bitPattern {
        let count = zip(got, expected).filter { $0.0.bitPattern != $0.1.bitPattern }.count
        return "\(count) of \(got.count) elements differ; first at [\(i)]: got \(got[i]), expected \(expected[i])"
    }
    return nil
}

// MARK: - Finite differences

/// The gradient of `f` at `x` by central differences, (f(x + h e_i) - f(x - h e_i)) / 2h.
/// In Double with h = 1e-6 the truncation error is O(h^2 f''') and the rounding error about
/// 1e-16 |f| / h, both near 1e-10 for the O(1)-O(100) functions of the op tests.
public func centralDifferenceGradient(at x: [Double], step h: Double = 1e-6,
                                      of f: ([Double]) -> Double) -> [Double] {
    var probe = x
    return x.indices.map { i in
        probe[i] = x[i] + h
        let plus = f(probe)
        probe[i] = x[i] - h
        let minus = f(probe)
        probe[i] = x[i]
        return (plus - minus) / (2 * h)
    }
}

/// sum_i a_i b_i: the scalar whose gradient a backward pass with upstream gradient `b` computes.
public func dot(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "length mismatch")
    return zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
}

// MARK: - Running ops from Swift arrays

/// Runs `body` with a scope that owns every buffer allocated through it, and frees them all when
/// `body` returns (or throws). The explicit end is the point: a buffer that freed itself in a
/// deinit could be freed as soon as its `.pointer` had been read, while the backend call that
/// uses the pointer is still running, since an optimised build may end an object's lifetime
/// after its last use. Here the lifetime is the closure's, whatever the optimiser does.
///
///     withDeviceScope(backend) { scope in
///         let x = scope.floats(input), out = scope.floats(count: n)
///         backend.tanhForward(out: out.pointer, input: x.pointer, count: n)
///         return out.array
///     }
///
/// A handle used after its scope has ended traps instead of reading freed memory.
public func withDeviceScope<Result>(_ backend: any Backend,
                                    _ body: (DeviceScope) throws -> Result) rethrows -> Result {
    let scope = DeviceScope(backend)
    defer { scope.end() }
    return try body(scope)
}

/// The owner of a set of buffers in one backend's memory; see `withDeviceScope`. It can only be
/// made there, so every buffer has an explicit end.
public final class DeviceScope {
    public let backend: any Backend
    private var floatBuffers: [UnsafeMutablePointer<Float>] = []
    private var indexBuffers: [UnsafeMutablePointer<Int32>] = []
    private var operandBuffers: [UnsafeMutableRawPointer] = []
    public private(set) var isOpen = true

    fileprivate init(_ backend: any Backend) { self.backend = backend }

    /// `count` zeroed floats.
    public func floats(count: Int) -> DeviceFloats {
        precondition(isOpen, "allocation in a device scope that has ended")
        let pointer = backend.allocate(count: max(count, 1))
        floatBuffers.append(pointer)
        return DeviceFloats(scope: self, pointer: pointer, count: count)
    }

    /// A copy of `values`.
    public func floats(_ values: [Float]) -> DeviceFloats {
        let buffer = floats(count: values.count)
        buffer.upload(values)
        return buffer
    }

    /// `count` copies of `value`, e.g. garbage that an op must overwrite.
    public func floats(repeating value: Float, count: Int) -> DeviceFloats {
        floats([Float](repeating: value, count: count))
    }

    /// `buffer` as a product reads it in the backend's precision: in place in fp32, else a
    /// rounded copy (Backend.roundOperands) that lives as long as the scope.
    public func operands(of buffer: DeviceFloats) -> Operands {
        precondition(isOpen, "allocation in a device scope that has ended")
        guard backend.precision != .fp32 else { return Operands(fp32: buffer.pointer) }
        return backend.roundOperands(out: operandRoom(count: buffer.count).room, values: buffer.pointer,
                                     count: buffer.count)
    }

    /// Room for `count` operand elements that an op fills (tf32 and bf16 only), freed with the
    /// scope; `Operands` over it once filled.
    public func operandRoom(count: Int) -> (room: UnsafeMutableRawPointer, operands: Operands) {
        precondition(isOpen, "allocation in a device scope that has ended")
        let room = backend.allocateOperands(count: max(count, 1))
        operandBuffers.append(room)
        return (room, Operands(copy: room, on: backend))
    }

    /// `values` as a product reads them; see `operands(of:)`.
    public func operands(_ values: [Float]) -> Operands { operands(of: floats(values)) }

    /// A copy of `values`, as Int32 indices.
    public func indices(_ values: [Int32]) -> DeviceIndices {
        precondition(isOpen, "allocation in a device scope that has ended")
        let pointer = backend.allocateIndices(count: max(values.count, 1))
        indexBuffers.append(pointer)
        if !values.isEmpty {
            values.withUnsafeBufferPointer {
                backend.uploadIndices(pointer, from: $0.baseAddress!, count: values.count)
            }
        }
        return DeviceIndices(scope: self, pointer: pointer, values: values)
    }

    /// Frees every buffer; called once, by `withDeviceScope`, after its body has returned.
    fileprivate func end() {
        precondition(isOpen, "device scope ended twice")
        isOpen = false
        for buffer in floatBuffers { backend.deallocate(buffer) }
        for buffer in indexBuffers { backend.deallocateIndices(buffer) }
        for buffer in operandBuffers { backend.deallocateOperands(buffer) }
        floatBuffers = []
        indexBuffers = []
        operandBuffers = []
    }
}

/// Floats in a backend's memory, owned by a `DeviceScope`: a handle, valid until the scope ends.
public struct DeviceFloats {
    private let scope: DeviceScope
    private let storage: UnsafeMutablePointer<Float>
    public let count: Int

    fileprivate init(scope: DeviceScope, pointer: UnsafeMutablePointer<Float>, count: Int) {
        self.scope = scope
        self.storage = pointer
        self.count = count
    }

    public var pointer: UnsafeMutablePointer<Float> {
        precondition(scope.isOpen, "device floats used after their scope ended")
        return storage
    }

    public func upload(_ values: [Float]) {
        precondition(values.count == count, "upload of \(values.count) floats into \(count)")
        values.withUnsafeBufferPointer { scope.backend.upload(pointer, from: $0.baseAddress!, count: count) }
    }

    /// A host copy of the current contents.
    public var array: [Float] {
        var host = [Float](repeating: 0, count: count)
        host.withUnsafeMutableBufferPointer { scope.backend.download($0.baseAddress!, from: pointer, count: count) }
        return host
    }
}

/// Int32 indices in a backend's memory, owned by a `DeviceScope`. The protocol has no download
/// for indices, so the host values are kept alongside.
public struct DeviceIndices {
    private let scope: DeviceScope
    private let storage: UnsafeMutablePointer<Int32>
    public let values: [Int32]

    fileprivate init(scope: DeviceScope, pointer: UnsafeMutablePointer<Int32>, values: [Int32]) {
        self.scope = scope
        self.storage = pointer
        self.values = values
    }

    public var pointer: UnsafeMutablePointer<Int32> {
        precondition(scope.isOpen, "device indices used after their scope ended")
        return storage
    }
}

/// A value that is not a plausible result of any op, for buffers that an op must fully assign.
/// Alternating NaN (any read-modify-write propagates it) and a huge finite value (caught even by
/// code that would skip NaN).
public func garbage(_ count: Int) -> [Float] {
    (0..<count).map { $0 % 2 == 0 ? .nan : 3.0e30 }
}
