// Linear layers through cuBLAS (cuda/kernels/matmul.cu), in this backend's precision, and the
// rounded operand copies they read in tf32 and bf16 modes (cuda/kernels/precision.cu).

import CDPCUDA

extension CUDABackend {
    /// bf16 operands are halves; tf32 operands are fp32 words with the low mantissa bits cleared.
    public var operandBytes: Int { precision == .bf16 ? 2 : MemoryLayout<Float>.stride }

    public func allocateOperands(count: Int) -> UnsafeMutableRawPointer {
        var pointer: UnsafeMutableRawPointer?
        check(api.dpc_malloc(&pointer, max(count, 1) * operandBytes), "allocateOperands")
        return pointer!
    }

    public func deallocateOperands(_ buffer: UnsafeMutableRawPointer) {
        check(api.dpc_free(buffer), "deallocateOperands")
    }

    public func roundOperands(out: UnsafeMutableRawPointer, values: UnsafePointer<Float>, count: Int) -> Operands {
        check(api.dpc_round_operands(out, values, Int64(count), precisionCode), "roundOperands")
        return Operands(copy: out, on: self)
    }

    /// `operands`' device pointer, which must be in this backend's precision.
    func pointer(_ operands: Operands) -> UnsafeRawPointer { operands.base(for: precision) }

    public func matmulForward(out: UnsafeMutablePointer<Float>, input: Operands, weight: Operands,
                              bias: UnsafePointer<Float>?, N: Int, C: Int, OC: Int) {
        check(api.dpc_matmul_forward(out, pointer(input), pointer(weight), bias, Int32(N), Int32(C), Int32(OC),
                                     precisionCode),
              "matmulForward")
    }

    public func matmulBackward(dInput: UnsafeMutablePointer<Float>?, accumulatesDInput: Bool,
                               dWeight: UnsafeMutablePointer<Float>,
                               dBias: UnsafeMutablePointer<Float>?, dOut: UnsafePointer<Float>,
                               dOutOperands: Operands, input: Operands, weight: Operands,
                               N: Int, C: Int, OC: Int) {
        check(api.dpc_matmul_backward(dInput, accumulatesDInput ? 1 : 0, dWeight, dBias, dOut, pointer(dOutOperands),
                                      pointer(input), pointer(weight), Int32(N), Int32(C), Int32(OC), precisionCode),
              "matmulBackward")
    }
}
