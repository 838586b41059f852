// GELU, transformers' `gelu` (exact erf) and `gelu_new` (tanh approximation), of the input plus
// the bias of the linear layer before it. Forward can keep the slope GELU'(x), so that backward
// is one multiply.

#include "precision.cuh"

namespace {
constexpr float kInverseSqrt2 = 0.70710677f;
constexpr float kInverseSqrt2Pi = 0.39894228f;
constexpr float kSqrt2OverPi = 0.79788456f;

// out, operands, slope, input: (N, C); bias: (C); operands, slope and bias may be null; in place
// when out == input
template <bool kTanh>
__global__ void gelu_forward_kernel(float *out, void *operands, int precision, float *slope, const float *input,
                                    const float *bias, int64_t N, int C) {
    DPC_GRID_STRIDE(i, N * C) {
        float x = bias != nullptr ? input[i] + bias[i % C] : input[i];
        if (kTanh) {
            float t = tanhf(kSqrt2OverPi * (x + 0.044715f * x * x * x));
            if (slope != nullptr) {
                float d_inner = kSqrt2OverPi * (1 + 3 * 0.044715f * x * x);
                slope[i] = 0.5f * (1 + t) + 0.5f * x * (1 - t * t) * d_inner;
            }
            out[i] = 0.5f * x * (1 + t);
        } else {
            // Phi(x) through erfc, which keeps its relative accuracy in the negative tail.
            float cdf = 0.5f * erfcf(-x * kInverseSqrt2);
            if (slope != nullptr) slope[i] = cdf + x * expf(-0.5f * x * x) * kInverseSqrt2Pi;
            out[i] = x * cdf;
        }
        if (operands != nullptr) dpc::store_operand(operands, precision, i, out[i]);
    }
}

// d_input, operands, d_out, slope: (count); operands may be null
__global__ void gelu_backward_kernel(float *d_input, void *operands, int precision, const float *d_out,
                                     const float *slope, int64_t count) {
    DPC_GRID_STRIDE(i, count) {
        d_input[i] = d_out[i] * slope[i];
        if (operands != nullptr) dpc::store_operand(operands, precision, i, d_input[i]);
    }
}
} // namespace

extern "C" int dpc_gelu_forward(float *out, void *operands, float *slope, const float *input, const float *bias,
                                int64_t N, int C, int form, int precision) {
    if (dpc::check_precision(precision) != 0) return 1;
    unsigned blocks = dpc::blocks_for(N * C);
    if (form == 1) {
        gelu_forward_kernel<true><<<blocks, dpc::kThreads>>>(out, operands, precision, slope, input, bias, N, C);
    } else {
        gelu_forward_kernel<false><<<blocks, dpc::kThreads>>>(out, operands, precision, slope, input, bias, N, C);
    }
    DPC_LAUNCHED(gelu_forward_kernel);
    return 0;
}

extern "C" int dpc_gelu_backward(float *d_input, void *operands, const float *d_out, const float *slope,
                                 int64_t count, int precision) {
    if (dpc::check_precision(precision) != 0) return 1;
    gelu_backward_kernel<<<dpc::blocks_for(count), dpc::kThreads>>>(d_input, operands, precision, d_out, slope,
                                                                     count);
    DPC_LAUNCHED(gelu_backward_kernel);
    return 0;
}
