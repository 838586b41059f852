// First-token and masked-mean pooling on the GPU (cuda/kernels/pooling.cu).

import CDPCUDA

extension CUDABackend {
    public func firstTokenForward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                  B: Int, T: Int, C: Int) {
        check(api.dpc_first_token_forward(out, input, Int32(B), Int32(T), Int32(C)), "firstTokenForward")
    }

    public func firstTokenBackward(dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                                   B: Int, T: Int, C: Int) {
        check(api.dpc_first_token_backward(dInput, dOut, Int32(B), Int32(T), Int32(C)), "firstTokenBackward")
    }

    public func meanPoolForward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                attentionMask: UnsafePointer<Float>, B: Int, T: Int, C: Int) {
        check(api.dpc_mean_pool_forward(out, input, attentionMask, Int32(B), Int32(T), Int32(C)), "meanPoolForward")
    }

    public func meanPoolBackward(dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                                 attentionMask: UnsafePointer<Float>, B: Int, T: Int, C: Int) {
        check(api.dpc_mean_pool_backward(dInput, dOut, attentionMask, Int32(B), Int32(T), Int32(C)),
              "meanPoolBackward")
    }
}
