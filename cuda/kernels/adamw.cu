// torch.optim.AdamW's update (decoupled weight decay first) over the whole flat parameter
// buffer in one pass; a bit mask says which parameters decay, so biases and LayerNorm need no
// launch of their own. The per-step constants are formed on the host, as the CPU backend forms
// them, so that both backends round them alike. With a decay target (Zhang et al.'s pretrained
// weight decay) the decay pulls toward it instead of toward 0.

#include "common.cuh"

#include <math.h>

namespace {
// parameters, gradients, m, v: (count); decays: ((count + 31) / 32), bit i % 32 of word i / 32;
// decay_target: (count) or null
__global__ void adamw_kernel(float *parameters, const float *gradients, float *m, float *v, const uint32_t *decays,
                             const float *decay_target, int64_t count, float beta1, float beta2, float epsilon,
                             float decay_rate, float decay_factor, float step_size, float inverse_sqrt_correction2,
                             float gradient_scale) {
    DPC_GRID_STRIDE(i, count) {
        float g = gradients[i] * gradient_scale;
        float mi = beta1 * m[i] + (1 - beta1) * g;
        float vi = beta2 * v[i] + (1 - beta2) * g * g;
        float denominator = sqrtf(vi) * inverse_sqrt_correction2 + epsilon;
        m[i] = mi;
        v[i] = vi;
        bool decaying = (decays[i >> 5] >> (i & 31)) & 1u;
        float p = parameters[i];
        // torch's p.mul_(1 - lr wd), or Zhang et al.'s p.add_(p - target, alpha=-lr wd), as the CPU.
        float decayed = decay_target ? p - (decaying ? decay_rate : 0.0f) * (p - decay_target[i])
                                     : p * (decaying ? decay_factor : 1.0f);
        parameters[i] = decayed - step_size * mi / denominator;
    }
}
} // namespace

extern "C" int dpc_adamw_step(float *parameters, const float *gradients, float *m, float *v, const uint32_t *decays,
                              const float *decay_target, int64_t count, dpc_adamw h) {
    float decay_rate = h.learning_rate * h.weight_decay, decay_factor = 1 - decay_rate;
    float step_size = h.learning_rate / h.bias_correction1;
    float inverse_sqrt_correction2 = 1 / sqrtf(h.bias_correction2);
    adamw_kernel<<<dpc::blocks_for(count), dpc::kThreads>>>(parameters, gradients, m, v, decays, decay_target, count,
                                                            h.beta1, h.beta2, h.epsilon, decay_rate, decay_factor,
                                                            step_size, inverse_sqrt_correction2, h.gradient_scale);
    DPC_LAUNCHED(adamw_kernel);
    return 0;
}
