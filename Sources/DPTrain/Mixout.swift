// Mixout (Lee et al. 2020, arXiv 1909.11299), one of Zhang et al. 2020's stable fine-tuning
// techniques: during training every linear weight W is replaced, column by input column with
// chance p, by its value when training started, W0 (the pretrained weight; a fresh head's first
// draw), as W~ = ((1 - M) W0 + M W - p W0) / (1 - p). Lee et al. swap each nn.Linear for a
// MixLinear that mixes on every forward call; here the weights are mixed in place before a
// step's forward passes, with one mask per weight and step, drawn by a counter hash of (seed,
// step, weight) so that every rank and micro-batch sees the same mixture, and restored after
// the gradient allreduce, which carries the gradient back through the mixture. Evaluation sees
// W itself, as MixLinear does outside training. ALBERT is refused: its one set of layer weights
// is called once per layer, which MixLinear would mix anew at each call.

import DPBackend
import DPModels
import DPTensor

public final class Mixout {
    public let probability: Float
    private let backend: Backend
    /// W0: the weights training started from (the optimizer's starting weights).
    private let target: UnsafePointer<Float>  // (P)
    /// The linear weights, each with where its pre-mixture values wait in `original`.
    private let weights: [(spec: ParameterSpec, site: UInt64, originalOffset: Int)]
    private let original: UnsafeMutablePointer<Float>  // (the linear weights' parameters, packed)

    public init(probability: Float, layout: EncoderLayout, target: UnsafePointer<Float>, backend: Backend) {
        precondition(probability > 0 && probability < 1, "Mixout's probability lies in (0, 1)")
        self.probability = probability
        self.target = target
        self.backend = backend
        var offset = 0
        weights = layout.linearWeights.map { spec in
            defer { offset += spec.count }
            // The name, not the offset, so that a PyTorch reference draws the same columns without
            // knowing the flat layout (scripts/tests/check_recipe_vs_pytorch.py).
            return (spec, fnv1a(spec.name.utf8), offset)
        }
        original = backend.allocate(count: max(offset, 1))
    }

    deinit { backend.deallocate(original) }

    /// Mixes every linear weight of `parameters` with its starting value for step `step`.
    public func mix(parameters: UnsafeMutablePointer<Float>, seed: UInt64, step: Int) {
        for weight in weights {
            let offset = weight.spec.offset
            backend.mixoutForward(weights: parameters + offset, original: original + weight.originalOffset,
                                  target: target + offset, mixout: site(weight.site, seed: seed, step: step),
                                  OC: weight.spec.shape[0], C: weight.spec.shape[1])
        }
    }

    /// Carries the (allreduced) gradients of the mixed weights back to the weights, and puts the
    /// weights back as they were before `mix`.
    public func unmix(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>, seed: UInt64,
                      step: Int) {
        for weight in weights {
            let offset = weight.spec.offset
            backend.mixoutBackward(dWeights: gradients + offset, mixout: site(weight.site, seed: seed, step: step),
                                   OC: weight.spec.shape[0], C: weight.spec.shape[1])
            backend.copy(parameters + offset, from: original + weight.originalOffset, count: weight.spec.count)
        }
    }

    private func site(_ site: UInt64, seed: UInt64, step: Int) -> MixoutSite {
        MixoutSite(probability: probability, seed: seed, step: UInt64(step), site: site)
    }
}
