// torch.nn.LayerNorm on the GPU (cuda/kernels/layernorm.cu).

import CDPCUDA

extension CUDABackend {
    public func layerNormForward(out: UnsafeMutablePointer<Float>, operands: UnsafeMutableRawPointer?,
                                 mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                                 input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                 N: Int, C: Int, epsilon: Float) {
        check(api.dpc_layernorm_forward(out, operands, mean, rstd, input, weight, bias, Int32(N), Int32(C), epsilon,
                                        precisionCode),
              "layerNormForward")
    }

    public func layerNormBackward(dInput: UnsafeMutablePointer<Float>, branch: DroppedBranch?,
                                  dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>,
                                  dOut: UnsafePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                  mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, B: Int, T: Int, C: Int) {
        check(api.dpc_layernorm_backward(dInput, branch?.dInput, branch?.operands,
                                         branch.map { dpc_dropout($0.dropout) } ?? dpc_dropout(),
                                         dWeight, dBias, dOut, input, weight, mean, rstd,
                                         Int32(B * T), Int32(T), Int32(C), precisionCode),
              "layerNormBackward")
    }
}
