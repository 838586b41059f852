// Mixout of a linear layer's (OC, C) weight (Sources/DPBackend/CPU/Mixout.swift): one mask bit
// per input column, dropout's counter hash over the columns of example 0, so both backends mix
// the same columns. A thread takes one element; the four columns of a hash group recompute it,
// which is cheap next to the three floats each element moves.

#include "dropout.cuh"

namespace {
__device__ inline bool mixout_keeps(const dpc_dropout &mixout, uint64_t column) {
    uint64_t bits = dpc::dropout_group_bits(dpc::split_mix(mixout.seed_key), column);
    return ((bits >> ((column & 3) << 4)) & 0xFFFF) >= mixout.threshold;
}

// weights (in place), original, target: (OC, C)
__global__ void mixout_forward_kernel(float *weights, float *original, const float *target, dpc_dropout mixout,
                                      float probability, int64_t count, int C) {
    DPC_GRID_STRIDE(i, count) {
        float weight = weights[i], anchor = target[i];
        original[i] = weight;
        weights[i] = ((mixout_keeps(mixout, (uint64_t)(i % C)) ? weight : anchor) - probability * anchor) * mixout.scale;
    }
}

// d_weights (in place): (OC, C)
__global__ void mixout_backward_kernel(float *d_weights, dpc_dropout mixout, int64_t count, int C) {
    DPC_GRID_STRIDE(i, count) {
        d_weights[i] = mixout_keeps(mixout, (uint64_t)(i % C)) ? d_weights[i] * mixout.scale : 0.0f;
    }
}
} // namespace

extern "C" int dpc_mixout_forward(float *weights, float *original, const float *target, dpc_dropout mixout,
                                  float probability, int OC, int C) {
    int64_t count = (int64_t)OC * C;
    mixout_forward_kernel<<<dpc::blocks_for(count), dpc::kThreads>>>(weights, original, target, mixout, probability,
                                                                     count, C);
    DPC_LAUNCHED(mixout_forward_kernel);
    return 0;
}

extern "C" int dpc_mixout_backward(float *d_weights, dpc_dropout mixout, int OC, int C) {
    int64_t count = (int64_t)OC * C;
    mixout_backward_kernel<<<dpc::blocks_for(count), dpc::kThreads>>>(d_weights, mixout, count, C);
    DPC_LAUNCHED(mixout_backward_kernel);
    return 0;
}
