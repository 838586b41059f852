// Inverted dropout on the GPU (cuda/kernels/dropout.cu) with the CPU backend's counter-based
// mask: the host reduces a DropoutSite to the same scale, threshold and seed key that
// DropoutMask uses, and the kernels hash exactly as DropoutMask.apply does, so both backends
// drop the same elements.

import CDPCUDA

extension dpc_dropout {
    init(_ site: DropoutSite) {
        guard site.isActive else {
            self.init()
            return
        }
        let mask = DropoutMask(site)
        self.init(active: 1, scale: mask.scale, threshold: mask.threshold, seed_key: mask.seedKey,
                  example_indices: site.exampleIndices)
    }
}

extension CUDABackend {
    public func dropoutForward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                               dropout: DropoutSite, B: Int, R: Int) {
        check(api.dpc_dropout_forward(out, input, dpc_dropout(dropout), Int32(B), Int32(R)), "dropoutForward")
    }

    public func dropoutResidualForward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                       bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>,
                                       dropout: DropoutSite, B: Int, T: Int, C: Int) {
        check(api.dpc_dropout_residual_forward(out, input, bias, residual, dpc_dropout(dropout), Int32(B), Int32(T),
                                               Int32(C)),
              "dropoutResidualForward")
    }

    /// Forward and backward are the same product with the same mask.
    public func dropoutBackward(dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                                dropout: DropoutSite, B: Int, R: Int) {
        check(api.dpc_dropout_forward(dInput, dOut, dpc_dropout(dropout), Int32(B), Int32(R)), "dropoutBackward")
    }
}
