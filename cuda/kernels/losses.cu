// Per-example losses with their gradients fused in; the gradient is of grad_scale * sum of the
// losses. One thread per example: B is a batch, and K a handful of labels.

#include "common.cuh"

namespace {
// losses, d_predictions, predictions, targets: (B)
__global__ void mse_loss_kernel(float *losses, float *d_predictions, const float *predictions, const float *targets,
                                int B, float grad_scale) {
    int b = blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= B) return;
    float difference = predictions[b] - targets[b];
    losses[b] = difference * difference;
    d_predictions[b] = 2 * difference * grad_scale;
}

// losses: (B); d_logits, logits: (B, K); labels: (B). A max-shifted log-sum-exp.
__global__ void cross_entropy_loss_kernel(float *losses, float *d_logits, const float *logits, const int32_t *labels,
                                          int B, int K, float grad_scale) {
    int b = blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= B) return;
    const float *z = logits + (int64_t)b * K;
    float *dz = d_logits + (int64_t)b * K;
    float maximum = -INFINITY;
    for (int k = 0; k < K; k++) maximum = fmaxf(maximum, z[k]);
    float sum = 0;
    for (int k = 0; k < K; k++) sum += expf(z[k] - maximum);
    int label = labels[b];
    losses[b] = maximum + logf(sum) - z[label];
    for (int k = 0; k < K; k++) dz[k] = (expf(z[k] - maximum) / sum - (k == label ? 1.0f : 0.0f)) * grad_scale;
}
} // namespace

extern "C" int dpc_mse_loss(float *losses, float *d_predictions, const float *predictions, const float *targets,
                            int B, float grad_scale) {
    mse_loss_kernel<<<dpc::blocks_for(B), dpc::kThreads>>>(losses, d_predictions, predictions, targets, B, grad_scale);
    DPC_LAUNCHED(mse_loss_kernel);
    return 0;
}

extern "C" int dpc_cross_entropy_loss(float *losses, float *d_logits, const float *logits, const int32_t *labels,
                                      int B, int K, float grad_scale) {
    cross_entropy_loss_kernel<<<dpc::blocks_for(B), dpc::kThreads>>>(losses, d_logits, logits, labels, B, K,
                                                                     grad_scale);
    DPC_LAUNCHED(cross_entropy_loss_kernel);
    return 0;
}
