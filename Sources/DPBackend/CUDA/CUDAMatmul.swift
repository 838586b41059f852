// Linear layers through cuBLAS (cuda/kernels/matmul.cu), in this backend's precision.

import CDPCUDA

extension CUDABackend {
    public func matmulForward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                              weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                              N: Int, C: Int, OC: Int) {
        check(api.dpc_matmul_forward(out, input, weight, bias, Int32(N), Int32(C), Int32(OC), precisionCode),
              "matmulForward")
    }

    public func matmulBackward(dInput: UnsafeMutablePointer<Float>?, accumulatesDInput: Bool,
                               dWeight: UnsafeMutablePointer<Float>,
                               dBias: UnsafeMutablePointer<Float>?, dOut: UnsafePointer<Float>,
                               input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                               N: Int, C: Int, OC: Int) {
        check(api.dpc_matmul_backward(dInput, accumulatesDInput ? 1 : 0, dWeight, dBias, dOut, input, weight,
                                      Int32(N), Int32(C), Int32(OC), precisionCode),
              "matmulBackward")
    }
}
