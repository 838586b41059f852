// BertSelfAttention's core: per (example, head), softmax(Q K^T / sqrt(HS)) over the unpadded
// keys, dropout on the probabilities, then times V. Q, K and V are read in place from the fused
// (B, T, 3C) projection through the leading dimension, as on the CPU; every (example, head)
// product of a step is one batched sgemm, its matrices given by arrays of pointers that one
// small kernel per call writes into scratch for all of the call's products. Dropout of the
// probabilities happens inside the softmax kernels, forward and backward. In tf32 and bf16
// modes the products read rounded operands and run on the tensor cores: the caller's Q, K, V
// and dOut (dpc_round_operands), the dropped probabilities and dS written already rounded by the
// kernels that compute them (precision.cuh); the softmax and its backward compute in fp32.

#include "dropout.cuh"
#include "precision.cuh"

namespace {
constexpr int kRowsPerBlock = 8; // one warp per row of scores

/// Where matrix (b, h) of one batched operand starts, in elements of the operand's type:
/// base + offset + b * example_stride + h * head_stride.
struct Operand {
    const void *base;
    int64_t offset;
    int64_t example_stride;
    int64_t head_stride;
};

__device__ inline const void *matrix_start(Operand operand, int bytes, int example, int head) {
    return (const char *)operand.base +
           (operand.offset + example * operand.example_stride + head * operand.head_stride) * bytes;
}

/// One batched product's operands: A and B in the precision's operand type, C in fp32.
struct Product {
    Operand a, b, c;
};
constexpr int kMostProducts = 4; // backward's four
struct Products {
    Product of[kMostProducts];
};

// pointers: (products, 3, B * NH): for each product, where its A, B (of `bytes` per element) and
// C matrices start for every (example, head) pair. Grid: (pairs, products).
__global__ void fill_pointers_kernel(const void **pointers, Products products, int bytes, int NH, int pairs) {
    int pair = blockIdx.x * blockDim.x + threadIdx.x;
    if (pair >= pairs) return;
    int example = pair / NH, head = pair % NH;
    const Product &product = products.of[blockIdx.y];
    const void **own = pointers + (int64_t)blockIdx.y * 3 * pairs;
    own[pair] = matrix_start(product.a, bytes, example, head);
    own[pairs + pair] = matrix_start(product.b, bytes, example, head);
    own[2 * pairs + pair] = matrix_start(product.c, sizeof(float), example, head);
}

/// The pointer arrays of up to kMostProducts batched products, written by one launch: product
/// i's (3, pairs) start at the result + 3 * pairs * i. nullptr (with the error recorded) if the
/// scratch cannot grow.
const void **fill_pointers(Products products, int count, int precision, int NH, int pairs) {
    const void **pointers =
        (const void **)dpc::scratch(dpc::kPointers, (size_t)kMostProducts * 3 * pairs * sizeof(void *));
    if (pointers == nullptr) return nullptr;
    fill_pointers_kernel<<<dim3(dpc::blocks_for(pairs), count), dpc::kThreads>>>(
        pointers, products, dpc::operand_bytes(precision), NH, pairs);
    if (cudaError_t error = cudaGetLastError(); error != cudaSuccess) {
        dpc::fail_cuda(error, "fill_pointers_kernel");
        return nullptr;
    }
    return pointers;
}

/// Row-major op(A) op(B) for every (example, head) pair, as dpc::gemm takes its arguments, on
/// the (3, pairs) matrix pointers of fill_pointers.
int batched_product(int precision, const void *const *pointers, bool transA, bool transB, int M, int N, int K,
                    float alpha, int lda, int ldb, float beta, int ldc, int pairs) {
    float *const *outputs = (float *const *)(pointers + 2 * pairs);
    if (precision == DPC_PRECISION_FP32) {
        DPC_BLAS(dpc::gemm_batched(transA, transB, M, N, K, alpha, (const float *const *)pointers, lda,
                                   (const float *const *)(pointers + pairs), ldb, beta, outputs, ldc, pairs));
    } else {
        DPC_BLAS(dpc::tensor_core_gemm_batched(precision, transA, transB, M, N, K, alpha, pointers, lda,
                                               pointers + pairs, ldb, beta, outputs, ldc, pairs));
    }
    return 0;
}

/// Where key `key` of row `row` of (B, NH, T, T) probabilities sits for the dropout mask: keyed by
/// (head, query, key) rather than by flat offset, so that the mask does not depend on the padded
/// length. The low 21 bits are the key, so a row's groups of four start at multiples of 4.
__device__ inline uint64_t probability_position(int row, int NH, int T, int key) {
    int pair = row / T, query = row % T;
    return (((uint64_t)(pair % NH) << 42) | ((uint64_t)query << 21)) + key;
}

/// Each lane of a row's warp takes the groups of four keys 4 lane, 4 (lane + 32), ...: one
/// dropout hash serves a group, and a lane only ever touches its own keys, so no pass reads what
/// another lane wrote.
#define DPC_FOR_LANE_KEYS(first, key, lane, T)                                                   \
    for (int first = 4 * (lane); first < (T); first += 4 * 32)                                   \
        for (int key = first; key < first + 4 && key < (T); key++)

// scores: (B, NH, T, T), in place, becoming the probabilities; weights: (B, NH, T, T), the
// operand that multiplies V: the probabilities after dropout, in `precision`, written in the same
// pass unless they are the probabilities themselves (fp32 without dropout); attention_mask:
// (B, T), 1 = token, 0 = padding. Padded keys get probability exactly 0, as transformers'
// finfo.min mask gives after exp underflows. One warp per row.
__global__ void masked_softmax_kernel(float *scores, void *weights, int precision, const float *attention_mask,
                                      dpc_dropout dropout, int rows, int NH, int T) {
    int row = blockIdx.x * kRowsPerBlock + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= rows) return;
    float *s = scores + (int64_t)row * T;
    const float *mask = attention_mask + (int64_t)(row / (NH * T)) * T;
    float maximum = -INFINITY;
    DPC_FOR_LANE_KEYS(first, key, lane, T) {
        if (mask[key] != 0) maximum = fmaxf(maximum, s[key]);
    }
    maximum = dpc::warp_max(maximum);
    float sum = 0;
    DPC_FOR_LANE_KEYS(first, key, lane, T) {
        float e = mask[key] != 0 ? expf(s[key] - maximum) * mask[key] : 0.0f;
        s[key] = e;
        sum += e;
    }
    sum = dpc::warp_sum(sum);
    float inverse = sum > 0 ? 1.0f / sum : 0.0f;
    bool separate_weights = dropout.active || precision != DPC_PRECISION_FP32;
    uint64_t example_key = dropout.active ? dpc::dropout_example_key(dropout, row / (NH * T)) : 0;
    uint64_t bits = 0;
    DPC_FOR_LANE_KEYS(first, key, lane, T) {
        float p = s[key] * inverse;
        s[key] = p;
        if (!separate_weights) continue;
        if (dropout.active) {
            uint64_t position = probability_position(row, NH, T, key);
            if (key == first) bits = dpc::dropout_group_bits(example_key, position);
            p = dpc::dropout_apply(dropout, bits, position, p);
        }
        dpc::store_operand(weights, precision, (int64_t)row * T + key, p);
    }
}

// weights: (B, NH, T, T) in `precision`, the dropped probabilities (B, NH, T, T) as an operand
// again for backward. Grid: (query rows x groups of four keys, B * NH).
__global__ void attention_weights_kernel(void *weights, int precision, const float *probabilities,
                                         dpc_dropout dropout, int NH, int T) {
    int groups = (T + 3) / 4;
    int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= T * groups) return;
    int pair = blockIdx.y, query = index / groups, first = 4 * (index % groups);
    int row = pair * T + query;
    uint64_t position = probability_position(row, NH, T, first);
    uint64_t bits = dropout.active ? dpc::dropout_group_bits(dpc::dropout_example_key(dropout, pair / NH), position) : 0;
    for (int key = first; key < first + 4 && key < T; key++) {
        int64_t at = (int64_t)row * T + key;
        float p = probabilities[at];
        if (dropout.active) p = dpc::dropout_apply(dropout, bits, position + key - first, p);
        dpc::store_operand(weights, precision, at, p);
    }
}

// d_probabilities: (B * NH * T, T), the gradient of the dropped probabilities, put back through
// dropout in place when dropout is active; probabilities alike; d_scores: (B * NH * T, T) in
// `precision`, dS = P * (dP - sum_k dP * P) as the operand of dQ's and dK's products (in fp32,
// d_probabilities itself).
__global__ void softmax_backward_kernel(float *d_probabilities, void *d_scores, int precision,
                                        const float *probabilities, dpc_dropout dropout, int rows, int NH, int T) {
    int row = blockIdx.x * kRowsPerBlock + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= rows) return;
    float *g = d_probabilities + (int64_t)row * T;
    const float *y = probabilities + (int64_t)row * T;
    uint64_t example_key = dropout.active ? dpc::dropout_example_key(dropout, row / (NH * T)) : 0;
    uint64_t bits = 0;
    float dot = 0;
    DPC_FOR_LANE_KEYS(first, key, lane, T) {
        if (dropout.active) {
            uint64_t position = probability_position(row, NH, T, key);
            if (key == first) bits = dpc::dropout_group_bits(example_key, position);
            g[key] = dpc::dropout_apply(dropout, bits, position, g[key]);
        }
        dot += g[key] * y[key];
    }
    dot = dpc::warp_sum(dot);
    DPC_FOR_LANE_KEYS(first, key, lane, T) {
        dpc::store_operand(d_scores, precision, (int64_t)row * T + key, y[key] * (g[key] - dot));
    }
}

/// Where the operand that multiplies V lives, (B, NH, T, T) = (count): the probabilities
/// themselves in fp32 without dropout (and never written then), scratch for the dropped ones in
/// fp32, else the rounded operand's scratch. nullptr (with the error recorded) if scratch cannot
/// grow.
void *weights_place(const float *probabilities, const dpc_dropout &dropout, int precision, int64_t count) {
    if (precision != DPC_PRECISION_FP32) {
        return (void *)dpc::operand_place(precision, dpc::kAttentionOperands, probabilities, count);
    }
    if (!dropout.active) return (void *)probabilities;
    return dpc::scratch(dpc::kDroppedProbabilities, (size_t)count * sizeof(float));
}

unsigned row_blocks(int rows) { return (unsigned)((rows + kRowsPerBlock - 1) / kRowsPerBlock); }
} // namespace

// Every operand's place is known before the first launch, so one launch fills the pointer
// arrays of all of a call's batched products. The softmax kernels write their results straight
// into the next products' operands, dropped and rounded, so no separate pass does either.

extern "C" int dpc_attention_forward(float *out, float *probabilities, const void *projection,
                                     const float *attention_mask, dpc_dropout dropout, int B, int T, int C, int NH,
                                     int precision) {
    if (dpc::check_precision(precision) != 0) return 1;
    int HS = C / NH, pairs = B * NH, rows = pairs * T;
    float scale = 1.0f / sqrtf((float)HS);
    int64_t example = (int64_t)T * 3 * C, square = (int64_t)T * T;
    void *weights = weights_place(probabilities, dropout, precision, (int64_t)rows * T);
    if (weights == nullptr) return 1;
    Operand q{projection, 0, example, HS}, k{projection, C, example, HS}, v{projection, 2 * C, example, HS};
    Operand p{probabilities, 0, NH * square, square}, w{weights, 0, NH * square, square};
    Operand o{out, 0, (int64_t)T * C, HS}; // each head into its HS columns of (B, T, C)
    const void **pointers = fill_pointers(Products{{{q, k, p}, {w, v, o}}}, 2, precision, NH, pairs);
    if (pointers == nullptr) return 1;
    // S = scale Q K^T
    if (batched_product(precision, pointers, false, true, T, T, HS, scale, 3 * C, 3 * C, 0, T, pairs)) return 1;
    masked_softmax_kernel<<<row_blocks(rows), kRowsPerBlock * 32>>>(probabilities, weights, precision, attention_mask,
                                                                    dropout, rows, NH, T);
    DPC_LAUNCHED(masked_softmax_kernel);
    // out = P_dropped V
    return batched_product(precision, pointers + 3 * pairs, false, false, T, HS, T, 1, T, 3 * C, 0, C, pairs);
}

extern "C" int dpc_attention_backward(float *d_qkv, float *scratch, const void *upstream, const void *projection,
                                      const float *probabilities, dpc_dropout dropout, int B, int T, int C, int NH,
                                      int precision) {
    if (dpc::check_precision(precision) != 0) return 1;
    int HS = C / NH, pairs = B * NH, rows = pairs * T;
    float scale = 1.0f / sqrtf((float)HS);
    int64_t example = (int64_t)T * 3 * C, square = (int64_t)T * T;
    void *weights = weights_place(probabilities, dropout, precision, (int64_t)rows * T);
    // The stream runs in order, so dS may take the weights' place once dV has read them.
    void *d_scores = (void *)dpc::operand_place(precision, dpc::kAttentionOperands, scratch, (int64_t)rows * T);
    if (weights == nullptr || d_scores == nullptr) return 1;
    Operand q{projection, 0, example, HS}, k{projection, C, example, HS}, v{projection, 2 * C, example, HS};
    Operand dq{d_qkv, 0, example, HS}, dk{d_qkv, C, example, HS}, dv{d_qkv, 2 * C, example, HS};
    Operand dy{upstream, 0, (int64_t)T * C, HS}, w{weights, 0, NH * square, square};
    Operand dp{scratch, 0, NH * square, square}, ds{d_scores, 0, NH * square, square};
    const void **pointers =
        fill_pointers(Products{{{w, dy, dv}, {dy, v, dp}, {ds, k, dq}, {ds, q, dk}}}, 4, precision, NH, pairs);
    if (pointers == nullptr) return 1;
    if (weights != probabilities) { // forward's dropped, rounded copy is not kept
        dim3 grid(dpc::blocks_for((int64_t)T * ((T + 3) / 4)), pairs);
        attention_weights_kernel<<<grid, dpc::kThreads>>>(weights, precision, probabilities, dropout, NH, T);
        DPC_LAUNCHED(attention_weights_kernel);
    }
    // dV = P_dropped^T dY; dP_dropped = dY V^T
    if (batched_product(precision, pointers, true, false, T, HS, T, 1, T, C, 0, 3 * C, pairs)) return 1;
    if (batched_product(precision, pointers + 3 * pairs, false, true, T, T, HS, 1, C, 3 * C, 0, T, pairs)) return 1;
    softmax_backward_kernel<<<row_blocks(rows), kRowsPerBlock * 32>>>(scratch, d_scores, precision, probabilities,
                                                                      dropout, rows, NH, T);
    DPC_LAUNCHED(softmax_backward_kernel);
    // dQ = scale dS K; dK = scale dS^T Q
    if (batched_product(precision, pointers + 6 * pairs, false, false, T, HS, T, scale, T, 3 * C, 0, 3 * C, pairs))
        return 1;
    return batched_product(precision, pointers + 9 * pairs, true, false, T, HS, T, scale, T, 3 * C, 0, 3 * C, pairs);
}
