// Sentence vectors from token states: the first token, sentence-transformers' mean over the
// tokens whose mask is 1 (the count clamped at 1e-9, as there), and the attention pooling head's
// weighted sum, whose weights are a softmax of per-token scores over the unpadded tokens.
//
// Attention pooling spreads each example over several blocks rather than giving it one: B is a
// batch (16-64) and an example's T x C states are up to 2 MB, so one block per example would
// leave most of a GPU idle and bound the op by one SM's bandwidth. Forward recomputes the
// example's softmax in every block of its columns (T scores, cheap next to the T x 256 states
// the block reads) so that it needs no second launch; backward is a warp per token (its dot
// product with dOut, and its dInput row) and then a warp per example for the softmax's part.
// Neither keeps a whole row of T in shared memory, so no T is too long.
//
// Weighted layer pooling mixes the first token of K hidden states (K up to ~25, each `stride`
// floats after the last) by weights[l] / S, S the weights' sum. Every thread or block sums the
// K weights itself, in the CPU's order, rather than a launch computing S once: K floats are
// nothing next to the B x C row a thread reads per layer, and the ops stay one launch each.

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

constexpr int kPoolThreads = dpc::kThreads;   // attention pooling's blocks: full warps, as warp_sum needs
constexpr int kPoolWarps = kPoolThreads / 32;

enum class Reduction { sum, max };

/// `value` combined over the whole block, the same in every thread: each warp's through a
/// shuffle, then every thread combines the warps' in the same order. partials: (kPoolWarps),
/// shared; free again when this returns. Every thread of the block must call it.
template <Reduction kind>
__device__ float block_reduce(float value, float *partials) {
    value = kind == Reduction::max ? dpc::warp_max(value) : dpc::warp_sum(value);
    if (threadIdx.x % 32 == 0) partials[threadIdx.x / 32] = value;
    __syncthreads();
    float total = kind == Reduction::max ? -INFINITY : 0.0f;
    for (int w = 0; w < kPoolWarps; w++) total = kind == Reduction::max ? fmaxf(total, partials[w]) : total + partials[w];
    __syncthreads(); // before anyone writes partials again
    return total;
}

// out: (B, C); weights: (B, T), written by the blocks of column tile 0; scores, attention_mask:
// (B, T); input: (B, T, C). Grid: (B, column tiles of kPoolThreads); block kPoolThreads. Every
// block of an example computes the same max and sum in the same order, so its tiles agree on
// the weights. Padding gets weight exactly 0, a row of padding alone all zeros and a zero out.
__global__ void attention_pool_forward_kernel(float *out, float *weights, const float *scores, const float *input,
                                              const float *attention_mask, int T, int C) {
    __shared__ float partials[kPoolWarps];
    __shared__ float tile[kPoolThreads]; // (kPoolThreads) weights of the tokens first..first+255
    int64_t b = blockIdx.x;
    int c = blockIdx.y * kPoolThreads + threadIdx.x;
    const float *s = scores + b * T, *mask = attention_mask + b * T;
    float maximum = -INFINITY;
    for (int t = threadIdx.x; t < T; t += kPoolThreads) {
        if (mask[t] != 0) maximum = fmaxf(maximum, s[t]);
    }
    maximum = block_reduce<Reduction::max>(maximum, partials);
    float sum = 0;
    for (int t = threadIdx.x; t < T; t += kPoolThreads) {
        if (mask[t] != 0) sum += expf(s[t] - maximum);
    }
    sum = block_reduce<Reduction::sum>(sum, partials);
    float inverse = sum > 0 ? 1.0f / sum : 0.0f;
    float total = 0;
    for (int first = 0; first < T; first += kPoolThreads) {
        int t = first + threadIdx.x;
        if (t < T) {
            // The CPU's rounding: exp, then times the inverse of the sum.
            float weight = mask[t] != 0 ? expf(s[t] - maximum) * inverse : 0.0f;
            tile[threadIdx.x] = weight;
            if (blockIdx.y == 0) weights[b * T + t] = weight;
        }
        __syncthreads();
        if (c < C) {
            int count = T - first < kPoolThreads ? T - first : kPoolThreads;
            const float *x = input + (b * T + first) * C + c;
            // In token order, skipping zero weights, as the CPU adds (so padding's values never count).
            for (int k = 0; k < count; k++) {
                if (tile[k] != 0) total += tile[k] * x[(int64_t)k * C];
            }
        }
        __syncthreads(); // before the next tile overwrites this one
    }
    if (c < C) out[b * C + c] = total;
}

// d_input: (B, T, C), every row assigned weights[b, t] dOut[b]; d_scores: (B, T), receiving
// dOut[b] . input[b, t] for attention_pool_scores_kernel to finish; d_out: (B, C); weights:
// (B, T); input: (B, T, C). One warp per token (rows = B T), kPoolWarps to a block.
__global__ void attention_pool_tokens_kernel(float *d_input, float *d_scores, const float *d_out,
                                             const float *weights, const float *input, int rows, int T, int C) {
    int row = blockIdx.x * kPoolWarps + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= rows) return; // the whole warp: the shuffle below sees no lane missing
    int64_t b = row / T;
    float weight = weights[row];
    const float *dy = d_out + b * C, *x = input + (int64_t)row * C;
    float *dx = d_input + (int64_t)row * C;
    float dot = 0;
    for (int c = lane; c < C; c += 32) {
        dot += dy[c] * x[c];
        dx[c] = weight * dy[c];
    }
    dot = dpc::warp_sum(dot);
    if (lane == 0) d_scores[row] = dot;
}

// d_scores: (B, T) in place, from the dot products d to softmax's backward,
// weights[t] (d[t] - sum_t' weights[t'] d[t']); weights: (B, T). One warp per example; each lane
// rewrites only the tokens it read.
__global__ void attention_pool_scores_kernel(float *d_scores, const float *weights, int B, int T) {
    int b = blockIdx.x * kPoolWarps + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (b >= B) return;
    float *ds = d_scores + (int64_t)b * T;
    const float *a = weights + (int64_t)b * T;
    float weighted = 0;
    for (int t = lane; t < T; t += 32) weighted += a[t] * ds[t];
    weighted = dpc::warp_sum(weighted);
    for (int t = lane; t < T; t += 32) ds[t] = a[t] * (ds[t] - weighted);
}

/// 1 / (weights[0] + ... + weights[K - 1]), summed in index order as the CPU does.
__device__ float inverse_weight_sum(const float *weights, int K) {
    float sum = 0;
    for (int l = 0; l < K; l++) sum += weights[l];
    return 1.0f / sum;
}

// out: (B, C); states: K x (B, T, C), `stride` floats apart; weights: (K). One thread per
// (b, c), summing over the layers in order and scaling by 1 / S last, as the CPU does.
__global__ void layer_pool_forward_kernel(float *out, const float *states, int64_t stride, const float *weights,
                                          int B, int T, int C, int K) {
    float inverse = inverse_weight_sum(weights, K);
    DPC_GRID_STRIDE(i, (int64_t)B * C) {
        int64_t b = i / C, c = i % C;
        const float *x = states + b * T * C + c; // state 0's first token of example b
        float total = 0;
        for (int l = 0; l < K; l++) total += weights[l] * x[l * stride];
        out[i] = total * inverse;
    }
}

// d_weights: (K), each receiving += sum_{b, c} d_out (state l's first token - out) / S; d_out,
// out: (B, C); states: K x (B, T, C), `stride` floats apart; weights: (K). Grid: K blocks, one
// per layer, each reducing its B x C products (at most 64 x 1024 or so) alone, so that no two
// blocks add to one weight and the sum's order is the same on every run, unlike atomics.
__global__ void layer_pool_weights_backward_kernel(float *d_weights, const float *d_out, const float *out,
                                                   const float *states, int64_t stride, const float *weights,
                                                   int B, int T, int C, int K) {
    __shared__ float partials[kPoolWarps];
    int l = blockIdx.x;
    const float *x = states + l * stride;
    int64_t count = (int64_t)B * C;
    float sum = 0;
    for (int64_t i = threadIdx.x; i < count; i += kPoolThreads) {
        int64_t b = i / C, c = i % C;
        sum += d_out[i] * (x[b * T * C + c] - out[i]);
    }
    sum = block_reduce<Reduction::sum>(sum, partials);
    if (threadIdx.x == 0) d_weights[l] += sum * inverse_weight_sum(weights, K);
}

// d_input: (B, T, C), each example's first-token row receiving += share d_out[b], the rest
// untouched; d_out: (B, C); share = weights[layer] / S, computed here as the CPU does.
__global__ void layer_pool_state_add_kernel(float *d_input, const float *d_out, const float *weights, int layer,
                                            int B, int T, int C, int K) {
    float share = weights[layer] * inverse_weight_sum(weights, K);
    DPC_GRID_STRIDE(i, (int64_t)B * C) d_input[(i / C) * T * C + i % C] += share * d_out[i];
}

// d_input: (B, T, C), every element assigned: share d_out[b] in each first-token row, 0 elsewhere
// (the last state's gradient, which nothing above has written yet); d_out: (B, C).
__global__ void layer_pool_state_assign_kernel(float *d_input, const float *d_out, const float *weights, int layer,
                                               int B, int T, int C, int K) {
    float share = weights[layer] * inverse_weight_sum(weights, K);
    DPC_GRID_STRIDE(i, (int64_t)B * T * C) {
        int64_t b = i / ((int64_t)T * C), t = (i / C) % T;
        d_input[i] = t == 0 ? share * d_out[b * C + i % C] : 0.0f;
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

extern "C" int dpc_attention_pool_forward(float *out, float *weights, const float *scores, const float *input,
                                          const float *attention_mask, int B, int T, int C) {
    if (B <= 0) return 0;
    // One tile even when C is 0, so that the weights are still written.
    int64_t tiles = ((int64_t)C + kPoolThreads - 1) / kPoolThreads;
    if (tiles > 65535) return dpc::fail("attention pooling: C %d exceeds the grid's %d columns", C, 65535 * kPoolThreads);
    dim3 grid((unsigned)B, (unsigned)(tiles > 0 ? tiles : 1));
    attention_pool_forward_kernel<<<grid, kPoolThreads>>>(out, weights, scores, input, attention_mask, T, C);
    DPC_LAUNCHED(attention_pool_forward_kernel);
    return 0;
}

extern "C" int dpc_attention_pool_backward(float *d_input, float *d_scores, const float *d_out, const float *weights,
                                           const float *input, int B, int T, int C) {
    if (B <= 0 || T <= 0) return 0;
    int rows = B * T;
    attention_pool_tokens_kernel<<<(rows + kPoolWarps - 1) / kPoolWarps, kPoolThreads>>>(d_input, d_scores, d_out,
                                                                                          weights, input, rows, T, C);
    DPC_LAUNCHED(attention_pool_tokens_kernel);
    attention_pool_scores_kernel<<<(B + kPoolWarps - 1) / kPoolWarps, kPoolThreads>>>(d_scores, weights, B, T);
    DPC_LAUNCHED(attention_pool_scores_kernel);
    return 0;
}

extern "C" int dpc_layer_pool_forward(float *out, const float *states, int64_t stride, const float *weights, int B,
                                      int T, int C, int K) {
    layer_pool_forward_kernel<<<dpc::blocks_for((int64_t)B * C), dpc::kThreads>>>(out, states, stride, weights, B, T,
                                                                                  C, K);
    DPC_LAUNCHED(layer_pool_forward_kernel);
    return 0;
}

extern "C" int dpc_layer_pool_weights_backward(float *d_weights, const float *d_out, const float *out,
                                               const float *states, int64_t stride, const float *weights, int B,
                                               int T, int C, int K) {
    if (K <= 0) return 0;
    if (K > 65535) return dpc::fail("layer pooling: %d states exceed the grid's 65535 blocks", K);
    layer_pool_weights_backward_kernel<<<K, kPoolThreads>>>(d_weights, d_out, out, states, stride, weights, B, T, C,
                                                            K);
    DPC_LAUNCHED(layer_pool_weights_backward_kernel);
    return 0;
}

extern "C" int dpc_layer_pool_state_backward(float *d_input, int accumulates, const float *d_out,
                                             const float *weights, int layer, int B, int T, int C, int K) {
    if (layer < 0 || layer >= K) return dpc::fail("layer pooling: state %d of %d", layer, K);
    if (accumulates) {
        layer_pool_state_add_kernel<<<dpc::blocks_for((int64_t)B * C), dpc::kThreads>>>(d_input, d_out, weights,
                                                                                        layer, B, T, C, K);
        DPC_LAUNCHED(layer_pool_state_add_kernel);
    } else {
        layer_pool_state_assign_kernel<<<dpc::blocks_for((int64_t)B * T * C), dpc::kThreads>>>(d_input, d_out, weights,
                                                                                               layer, B, T, C, K);
        DPC_LAUNCHED(layer_pool_state_assign_kernel);
    }
    return 0;
}
