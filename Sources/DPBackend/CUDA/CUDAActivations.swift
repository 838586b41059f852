// GELU (erf and tanh forms) and the pooler's tanh on the GPU (cuda/kernels/gelu.cu, tanh.cu).

import CDPCUDA

extension CUDABackend {
    public func geluForward(out: UnsafeMutablePointer<Float>, operands: UnsafeMutableRawPointer?,
                            slope: UnsafeMutablePointer<Float>?, input: UnsafePointer<Float>,
                            bias: UnsafePointer<Float>?, N: Int, C: Int, form: GELUForm) {
        let formCode: Int32 = form == .erf ? 0 : 1
        check(api.dpc_gelu_forward(out, operands, slope, input, bias, Int64(N), Int32(C), formCode, precisionCode),
              "geluForward")
    }

    public func geluBackward(dInput: UnsafeMutablePointer<Float>, operands: UnsafeMutableRawPointer?,
                             dOut: UnsafePointer<Float>, slope: UnsafePointer<Float>, count: Int) {
        check(api.dpc_gelu_backward(dInput, operands, dOut, slope, Int64(count), precisionCode), "geluBackward")
    }

    public func tanhForward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, count: Int) {
        check(api.dpc_tanh_forward(out, input, Int64(count)), "tanhForward")
    }

    public func tanhBackward(dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                             out: UnsafePointer<Float>, count: Int) {
        check(api.dpc_tanh_backward(dInput, dOut, out, Int64(count)), "tanhBackward")
    }
}
