// First-token, masked-mean and attention pooling on the GPU (cuda/kernels/pooling.cu).

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

    public func attentionPoolForward(out: UnsafeMutablePointer<Float>, weights: UnsafeMutablePointer<Float>,
                                     scores: UnsafePointer<Float>, input: UnsafePointer<Float>,
                                     attentionMask: UnsafePointer<Float>, B: Int, T: Int, C: Int) {
        check(api.dpc_attention_pool_forward(out, weights, scores, input, attentionMask, Int32(B), Int32(T), Int32(C)),
              "attentionPoolForward")
    }

    public func attentionPoolBackward(dInput: UnsafeMutablePointer<Float>, dScores: UnsafeMutablePointer<Float>,
                                      dOut: UnsafePointer<Float>, weights: UnsafePointer<Float>,
                                      input: UnsafePointer<Float>, B: Int, T: Int, C: Int) {
        check(api.dpc_attention_pool_backward(dInput, dScores, dOut, weights, input, Int32(B), Int32(T), Int32(C)),
              "attentionPoolBackward")
    }
}
