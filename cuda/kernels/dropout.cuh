// The counter-based dropout mask of Sources/DPBackend/CPU/Dropout.swift, bit for bit: an
// element's fate is a pure function of (seed key, example index, position in the example), so
// both backends drop the same elements and backward regenerates the mask.
//
// One 64-bit hash serves the four positions that share position >> 2 (16 bits each), so the
// kernels give each thread such a group of four: 64-bit multiplies are slow on a GPU, and one
// hash per element made attention's dropout the costliest kernel of a step.
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

/// The 64 mask bits of the group of positions 4 * (position >> 2) ..< + 4.
__device__ inline uint64_t dropout_group_bits(uint64_t example_key, uint64_t position) {
    return split_mix(example_key + (position >> 2) * 0xD1B54A32D192ED03ull);
}

/// x kept and scaled, or 0, for the element at `position`, from its group's bits.
__device__ inline float dropout_apply(const dpc_dropout &dropout, uint64_t group_bits, uint64_t position, float x) {
    uint64_t lane = (group_bits >> ((position & 3) << 4)) & 0xFFFF;
    return lane >= dropout.threshold ? x * dropout.scale : 0.0f;
}

/// out[j] = dropout(input[j]) for the up to four elements j < count of one group, the first at
/// `position` (a multiple of 4).
__device__ inline void dropout_group(float *out, const float *input, int count, const dpc_dropout &dropout,
                                     uint64_t example_key, uint64_t position) {
    uint64_t bits = dropout_group_bits(example_key, position);
    for (int j = 0; j < count && j < 4; j++) out[j] = dropout_apply(dropout, bits, position + j, input[j]);
}

} // namespace dpc
