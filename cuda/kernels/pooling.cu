// Sentence vectors from token states: the first token, and sentence-transformers' mean over the
// tokens whose mask is 1 (the count clamped at 1e-9, as there).

#include "common.cuh"

namespace {
// out: (B, C); input: (B, T, C)
__global__ void first_token_forward_kernel(float *out, const float *input, int B, int T, int C) {
    DPC_GRID_STRIDE(i, (int64_t)B * C) out[i] = input[(i / C) * T * C + i % C];
}

// d_input: (B, T, C), every row assigned; d_out: (B, C)
__global__ void first_token_backward_kernel(float *d_input, const float *d_out, int B, int T, int C) {
    DPC_GRID_STRIDE(i, (int64_t)B * T * C) {
        int64_t b = i / ((int64_t)T * C), t = (i / C) % T;
        d_input[i] = t == 0 ? d_out[b * C + i % C] : 0.0f;
    }
}

__device__ float inverse_token_count(const float *mask, int T) {
    float tokens = 0;
    for (int t = 0; t < T; t++) tokens += mask[t] != 0 ? 1.0f : 0.0f;
    return 1.0f / fmaxf(tokens, 1e-9f);
}

// out: (B, C); input: (B, T, C); attention_mask: (B, T)
__global__ void mean_pool_forward_kernel(float *out, const float *input, const float *attention_mask, int B, int T,
                                         int C) {
    DPC_GRID_STRIDE(i, (int64_t)B * C) {
        int64_t b = i / C, c = i % C;
        const float *mask = attention_mask + b * T;
        float sum = 0;
        for (int t = 0; t < T; t++) {
            if (mask[t] != 0) sum += input[(b * T + t) * C + c];
        }
        out[i] = sum * inverse_token_count(mask, T);
    }
}

// d_input: (B, T, C), every row assigned; d_out: (B, C); attention_mask: (B, T)
__global__ void mean_pool_backward_kernel(float *d_input, const float *d_out, const float *attention_mask, int B,
                                          int T, int C) {
    DPC_GRID_STRIDE(i, (int64_t)B * C) {
        int64_t b = i / C, c = i % C;
        const float *mask = attention_mask + b * T;
        float gradient = d_out[i] * inverse_token_count(mask, T);
        for (int t = 0; t < T; t++) d_input[(b * T + t) * C + c] = mask[t] != 0 ? gradient : 0.0f;
    }
}
} // namespace

extern "C" int dpc_first_token_forward(float *out, const float *input, int B, int T, int C) {
    first_token_forward_kernel<<<dpc::blocks_for((int64_t)B * C), dpc::kThreads>>>(out, input, B, T, C);
    DPC_LAUNCHED(first_token_forward_kernel);
    return 0;
}

extern "C" int dpc_first_token_backward(float *d_input, const float *d_out, int B, int T, int C) {
    first_token_backward_kernel<<<dpc::blocks_for((int64_t)B * T * C), dpc::kThreads>>>(d_input, d_out, B, T, C);
    DPC_LAUNCHED(first_token_backward_kernel);
    return 0;
}

extern "C" int dpc_mean_pool_forward(float *out, const float *input, const float *attention_mask, int B, int T,
                                     int C) {
    mean_pool_forward_kernel<<<dpc::blocks_for((int64_t)B * C), dpc::kThreads>>>(out, input, attention_mask, B, T,
                                                                                  C);
    DPC_LAUNCHED(mean_pool_forward_kernel);
    return 0;
}

extern "C" int dpc_mean_pool_backward(float *d_input, const float *d_out, const float *attention_mask, int B, int T,
                                      int C) {
    mean_pool_backward_kernel<<<dpc::blocks_for((int64_t)B * C), dpc::kThreads>>>(d_input, d_out, attention_mask,
                                                                                   B, T, C);
    DPC_LAUNCHED(mean_pool_backward_kernel);
    return 0;
}
