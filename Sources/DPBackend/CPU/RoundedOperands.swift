// The operands of a product in tf32 and bf16 modes (Precision.swift): the linear layers and
// attention both multiply rounded copies, so that the CUDA backend can hand the same numbers to
// its tensor cores. The copies are the caller's (Backend.Operands), except the probabilities and
// dScores inside attention, which it rounds in place (roundOperand).

extension CPUBackend {
    public var operandBytes: Int { MemoryLayout<Float>.stride }

    public func allocateOperands(count: Int) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(allocate(count: count))
    }

    public func deallocateOperands(_ buffer: UnsafeMutableRawPointer) {
        deallocate(buffer.assumingMemoryBound(to: Float.self))
    }

    public func roundOperands(out: UnsafeMutableRawPointer, values: UnsafePointer<Float>, count: Int) -> Operands {
        precondition(precision != .fp32, "fp32 products read their values in place")
        let copy = out.assumingMemoryBound(to: Float.self)
        parallelRanges(count, minimumPerChunk: 1 << 16) { range in
            roundOperand(copy + range.lowerBound, values + range.lowerBound, count: range.count)
        }
        return Operands(copy: out, on: self)
    }

    /// The Floats behind `operands`, which must be in this backend's precision.
    func values(of operands: Operands) -> UnsafePointer<Float> {
        operands.base(for: precision).assumingMemoryBound(to: Float.self)
    }

    /// `values` (count) rounded into `out`, which may be `values` itself; fp32 has nothing to
    /// round, so callers in fp32 pass `out == values`. Runs on the calling thread, for operands
    /// that one thread already owns.
    func roundOperand(_ out: UnsafeMutablePointer<Float>, _ values: UnsafePointer<Float>, count: Int) {
        guard precision != .fp32 else {
            precondition(out == values, "an fp32 operand is used where it lies, never copied")
            return
        }
        let bits = precision.mantissaBits
        for i in 0..<count { out[i] = roundedMantissa(values[i], keeping: bits) }
    }
}
