// First-token, masked-mean, attention and weighted layer pooling on the GPU (cuda/kernels/pooling.cu).

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

    public func layerPoolForward(out: UnsafeMutablePointer<Float>, states: UnsafePointer<Float>, stride: Int,
                                 weights: UnsafePointer<Float>, B: Int, T: Int, C: Int, K: Int) {
        check(api.dpc_layer_pool_forward(out, states, Int64(stride), weights, Int32(B), Int32(T), Int32(C), Int32(K)),
              "layerPoolForward")
    }

    public func layerPoolWeightsBackward(dWeights: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                                         out: UnsafePointer<Float>, states: UnsafePointer<Float>, stride: Int,
                                         weights: UnsafePointer<Float>, B: Int, T: Int, C: Int, K: Int) {
        check(api.dpc_layer_pool_weights_backward(dWeights, dOut, out, states, Int64(stride), weights,
                                                  Int32(B), Int32(T), Int32(C), Int32(K)),
              "layerPoolWeightsBackward")
    }

    public func layerPoolStateBackward(dInput: UnsafeMutablePointer<Float>, accumulates: Bool,
                                       dOut: UnsafePointer<Float>, weights: UnsafePointer<Float>, layer: Int,
                                       B: Int, T: Int, C: Int, K: Int) {
        check(api.dpc_layer_pool_state_backward(dInput, accumulates ? 1 : 0, dOut, weights, Int32(layer),
                                                Int32(B), Int32(T), Int32(C), Int32(K)),
              "layerPoolStateBackward")
    }
}
