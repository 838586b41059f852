// How an fp32 value becomes an element of a product's operand in tf32 or bf16 mode
// (Sources/DPBackend/Precision.swift): rounded to nearest even, as the CPU backend rounds it.
// precision.cu's rounding kernels use it, and so do kernels that write their output straight
// into an operand instead of leaving it for a rounding pass.
#pragma once

#include "common.cuh"

#include <cuda_bf16.h>

namespace dpc {

/// roundedMantissa(x, keeping: 10): 13 bits dropped, to nearest with ties to even.
__device__ inline float tf32_rounded(float x) {
    uint32_t bits = __float_as_uint(x);
    uint32_t half = 0xFFFu + ((bits >> 13) & 1u);
    return isnan(x) ? x : __uint_as_float((bits + half) & ~0x1FFFu);
}

/// Writes `value` as element i of an operand laid out as dpc_round_operands lays it out in
/// `precision`: an fp32 word, a tf32-rounded fp32 word, or a bf16.
__device__ inline void store_operand(void *operand, int precision, int64_t i, float value) {
    if (precision == DPC_PRECISION_BF16) {
        ((__nv_bfloat16 *)operand)[i] = __float2bfloat16_rn(value);
    } else {
        ((float *)operand)[i] = precision == DPC_PRECISION_TF32 ? tf32_rounded(value) : value;
    }
}

} // namespace dpc
