// __nv_bfloat16 as the CPU emulator provides it: the storage type and the one conversion
// cuda/kernels/ uses, rounding to nearest with ties to even as the device's cvt.rn.bf16.f32 does.
#pragma once

#include "cuda_runtime.h"

struct __nv_bfloat16 {
    uint16_t bits;
};

inline __nv_bfloat16 __float2bfloat16_rn(float x) {
    uint32_t bits = __float_as_uint(x);
    // A NaN stays a (quiet) NaN; rounding its payload could carry it into infinity.
    if (isnan(x)) return __nv_bfloat16{(uint16_t)((bits >> 16) | 0x40u)};
    uint32_t half = 0x7FFFu + ((bits >> 16) & 1u);
    return __nv_bfloat16{(uint16_t)((bits + half) >> 16)};
}

inline float __bfloat162float(__nv_bfloat16 value) { return __uint_as_float((uint32_t)value.bits << 16); }
