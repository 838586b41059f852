// Mixout on the GPU (cuda/kernels/mixout.cu): the host reduces a MixoutSite to dropout's scale,
// threshold and seed key, as DropoutMask does, and the kernels hash the columns as the CPU does.

import CDPCUDA

extension dpc_dropout {
    init(_ site: MixoutSite) {
        let mask = DropoutMask(site)
        self.init(active: 1, scale: mask.scale, threshold: mask.threshold, seed_key: mask.seedKey, example_indices: nil)
    }
}

extension CUDABackend {
    public func mixoutForward(weights: UnsafeMutablePointer<Float>, original: UnsafeMutablePointer<Float>,
                              target: UnsafePointer<Float>, mixout: MixoutSite, OC: Int, C: Int) {
        check(api.dpc_mixout_forward(weights, original, target, dpc_dropout(mixout), mixout.probability, Int32(OC),
                                     Int32(C)), "mixoutForward")
    }

    public func mixoutBackward(dWeights: UnsafeMutablePointer<Float>, mixout: MixoutSite, OC: Int, C: Int) {
        check(api.dpc_mixout_backward(dWeights, dpc_dropout(mixout), Int32(OC), Int32(C)), "mixoutBackward")
    }
}
