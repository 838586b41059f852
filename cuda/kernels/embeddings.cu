// BertEmbeddings: the word, position and token-type rows of each token, summed. Backward
// scatters each token's gradient into the three tables with atomic adds: tokens that share a
// row (every [CLS], every position of a batch, the one token type) then add in an order the
// hardware picks, so the table gradients vary by rounding from run to run.

#include "common.cuh"

namespace {
// out: (B*T, C); ids: (B*T); tables: (V, C), (P, C), (TV, C)
__global__ void embeddings_forward_kernel(float *out, const int32_t *word_ids, const int32_t *position_ids,
                                          const int32_t *type_ids, const float *word_table,
                                          const float *position_table, const float *type_table, int64_t tokens,
                                          int C) {
    DPC_GRID_STRIDE(i, tokens * C) {
        int64_t token = i / C;
        int c = (int)(i % C);
        out[i] = word_table[(int64_t)word_ids[token] * C + c] + position_table[(int64_t)position_ids[token] * C + c]
            + type_table[(int64_t)type_ids[token] * C + c];
    }
}

// d_out: (B*T, C); tables as above
__global__ void embeddings_backward_kernel(float *d_word_table, float *d_position_table, float *d_type_table,
                                           const float *d_out, const int32_t *word_ids,
                                           const int32_t *position_ids, const int32_t *type_ids, int64_t tokens,
                                           int C) {
    DPC_GRID_STRIDE(i, tokens * C) {
        int64_t token = i / C;
        int c = (int)(i % C);
        float gradient = d_out[i];
        atomicAdd(d_word_table + (int64_t)word_ids[token] * C + c, gradient);
        atomicAdd(d_position_table + (int64_t)position_ids[token] * C + c, gradient);
        atomicAdd(d_type_table + (int64_t)type_ids[token] * C + c, gradient);
    }
}
} // namespace

extern "C" int dpc_embeddings_forward(float *out, const int32_t *word_ids, const int32_t *position_ids,
                                      const int32_t *type_ids, const float *word_table, const float *position_table,
                                      const float *type_table, int B, int T, int C) {
    int64_t tokens = (int64_t)B * T;
    embeddings_forward_kernel<<<dpc::blocks_for(tokens * C), dpc::kThreads>>>(
        out, word_ids, position_ids, type_ids, word_table, position_table, type_table, tokens, C);
    DPC_LAUNCHED(embeddings_forward_kernel);
    return 0;
}

extern "C" int dpc_embeddings_backward(float *d_word_table, float *d_position_table, float *d_type_table,
                                       const float *d_out, const int32_t *word_ids, const int32_t *position_ids,
                                       const int32_t *type_ids, int B, int T, int C) {
    int64_t tokens = (int64_t)B * T;
    embeddings_backward_kernel<<<dpc::blocks_for(tokens * C), dpc::kThreads>>>(
        d_word_table, d_position_table, d_type_table, d_out, word_ids, position_ids, type_ids, tokens, C);
    DPC_LAUNCHED(embeddings_backward_kernel);
    return 0;
}
