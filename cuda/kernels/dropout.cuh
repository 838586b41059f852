// The counter-based dropout mask of Sources/DPBackend/CPU/Dropout.swift, bit for bit: an
// element's fate is a pure function of (seed key, example index, position in the example), so
// both backends drop the same elements and backward regenerates the mask.
#pragma once

#include "common.cuh"

namespace dpc {

__device__ inline uint64_t split_mix(uint64_t value) {
    uint64_t z = value + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

__device__ inline uint64_t dropout_example_key(const dpc_dropout &dropout, int b) {
    return split_mix(dropout.seed_key ^ (uint64_t)(uint32_t)dropout.example_indices[b]);
}

/// x kept and scaled, or 0, for the element at `position` of its example. One hash serves the
/// four positions that share position >> 2, 16 bits each.
__device__ inline float dropout_apply(const dpc_dropout &dropout, uint64_t example_key, uint64_t position, float x) {
    uint64_t bits = split_mix(example_key + (position >> 2) * 0xD1B54A32D192ED03ull);
    uint64_t lane = (bits >> ((position & 3) << 4)) & 0xFFFF;
    return lane >= dropout.threshold ? x * dropout.scale : 0.0f;
}

} // namespace dpc
