// Self-attention over the fused (query | key | value) projection on the GPU
// (cuda/kernels/attention.cu): batched products over every (example, head) pair, in this
// backend's precision, with the masked softmax and the attention-probability dropout in their
// own kernels.

import CDPCUDA

extension CUDABackend {
    public func attentionForward(out: UnsafeMutablePointer<Float>, probabilities: UnsafeMutablePointer<Float>,
                                 qkv: Operands, attentionMask: UnsafePointer<Float>,
                                 dropout: DropoutSite, B: Int, T: Int, C: Int, NH: Int) {
        check(api.dpc_attention_forward(out, probabilities, pointer(qkv), attentionMask, dpc_dropout(dropout),
                                        Int32(B), Int32(T), Int32(C), Int32(NH), precisionCode), "attentionForward")
    }

    public func attentionBackward(dQKV: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                                  dOut: Operands, qkv: Operands, probabilities: UnsafePointer<Float>,
                                  dropout: DropoutSite, B: Int, T: Int, C: Int, NH: Int) {
        check(api.dpc_attention_backward(dQKV, scratch, pointer(dOut), pointer(qkv), probabilities, dpc_dropout(dropout),
                                         Int32(B), Int32(T), Int32(C), Int32(NH), precisionCode), "attentionBackward")
    }
}
