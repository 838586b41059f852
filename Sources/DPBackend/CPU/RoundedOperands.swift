// The operands of a product in tf32 and bf16 modes (Precision.swift): the linear layers and
// attention both multiply rounded copies, so that the CUDA backend can hand the same numbers to
// its tensor cores.

extension CPUBackend {
    /// An operand of a product: `values` itself in fp32, else a rounded copy that `release` frees.
    struct Operand {
        let values: UnsafePointer<Float>
        let copy: UnsafeMutablePointer<Float>?
    }

    func operand(_ values: UnsafePointer<Float>, count: Int) -> Operand {
        guard precision != .fp32 else { return Operand(values: values, copy: nil) }
        let copy = UnsafeMutablePointer<Float>.allocate(capacity: count)
        parallelRanges(count, minimumPerChunk: 1 << 16) { range in
            roundOperand(copy + range.lowerBound, values + range.lowerBound, count: range.count)
        }
        return Operand(values: UnsafePointer(copy), copy: copy)
    }

    func release(_ operands: Operand...) {
        for operand in operands { operand.copy?.deallocate() }
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
