// The C ABI between libdpcuda.so (the CUDA kernels in cuda/, built by scripts/build-cuda.sh) and
// the Swift CUDA backend. It is the one header both sides include: nvcc compiles the kernels
// against the prototypes, and the loader fills a table of function pointers from the same list,
// so the package builds and links without CUDA and the library is opened only at run time.
//
// Every function returns 0 on success or a nonzero code, with a message for
// dpc_last_error(); a kernel launch reports launch errors at once and execution errors at the
// next call that waits for the device. All pointers are device pointers unless named host_.
// Shapes follow Sources/DPBackend/Backend.swift (row-major, PyTorch (OC, C) weights).
#ifndef DPCUDA_H
#define DPCUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef DPCUDA_BUILDING_LIBRARY
// Only the table's own pointers carry nullability; the arguments keep C's plain pointers
// (Swift imports those as optional), so clang's completeness warning does not apply.
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wnullability-completeness"
#endif

/// Raised whenever a signature below changes, so that an old library is refused by name.
#define DPCUDA_ABI_VERSION 10

/// One dropout application, already reduced to the numbers the mask needs (see
/// Sources/DPBackend/CPU/Dropout.swift): kept values are scaled by `scale`, an element drops
/// when its 16 hash bits are below `threshold`.
typedef struct dpc_dropout {
    int32_t active;
    float scale;
    uint64_t threshold;
    uint64_t seed_key;
    const int32_t *example_indices; // (B), device memory
} dpc_dropout;

/// What the encoder's products (linear layers and attention) compute in
/// (Sources/DPBackend/Precision.swift): their operands rounded to tf32 or bf16 (to nearest even),
/// summed in fp32.
enum { DPC_PRECISION_FP32 = 0, DPC_PRECISION_TF32 = 1, DPC_PRECISION_BF16 = 2 };

typedef struct dpc_adamw {
    float learning_rate, beta1, beta2, epsilon, weight_decay, bias_correction1, bias_correction2, gradient_scale;
} dpc_adamw;

// X(return type, name, parameter list): the whole ABI, in one list.
#define DPCUDA_FUNCTIONS(X) \
    X(int, dpc_abi_version, (void)) \
    X(const char *, dpc_last_error, (void)) \
    /* Selects GPU local_rank modulo the visible GPUs (written to host_device) and creates the */ \
    /* cuBLAS handle with TF32 off (pedantic fp32). */ \
    X(int, dpc_init, (int local_rank, int *host_device, char *host_name, size_t name_capacity)) \
    X(int, dpc_synchronize, (void)) \
    X(int, dpc_malloc, (void **pointer, size_t bytes)) \
    X(int, dpc_free, (void *pointer)) \
    X(int, dpc_upload, (void *destination, const void *host_source, size_t bytes)) \
    X(int, dpc_download, (void *host_destination, const void *source, size_t bytes)) \
    X(int, dpc_host_alloc, (void **pointer, size_t bytes)) \
    X(int, dpc_host_free, (void *pointer)) \
    X(int, dpc_download_start, (void *host_destination, const void *source, size_t bytes, void **transfer)) \
    X(int, dpc_download_wait, (void *transfer)) \
    X(int, dpc_copy, (void *destination, const void *source, size_t bytes)) \
    X(int, dpc_zero, (void *pointer, size_t bytes)) \
    X(int, dpc_sum_of_squares, (double *host_result, const float *buffer, int64_t count)) \
    X(int, dpc_embeddings_forward, (float *out, const int32_t *word_ids, const int32_t *position_ids, \
        const int32_t *type_ids, const float *word_table, const float *position_table, \
        const float *type_table, int B, int T, int C)) \
    X(int, dpc_embeddings_backward, (float *d_word_table, float *d_position_table, float *d_type_table, \
        const float *d_out, const int32_t *word_ids, const int32_t *position_ids, \
        const int32_t *type_ids, int B, int T, int C)) \
    /* precision: DPC_PRECISION_*. An operand (void *) holds a product's values in the */ \
    /* precision's operand type, as dpc_round_operands writes them (in fp32: the fp32 values). */ \
    X(int, dpc_round_operands, (void *out, const float *values, int64_t count, int precision)) \
    X(int, dpc_matmul_forward, (float *out, const void *input, const void *weight, const float *bias, \
        int N, int C, int OC, int precision)) \
    X(int, dpc_matmul_backward, (float *d_input, int accumulate_d_input, float *d_weight, float *d_bias, \
        const float *d_out, const void *d_out_operands, const void *input, const void *weight, int N, int C, int OC, \
        int precision)) \
    /* An operands argument, where not NULL, also receives the op's output as a product's */ \
    /* operands in `precision` (tf32 or bf16), in the same pass. */ \
    X(int, dpc_layernorm_forward, (float *out, void *operands, float *mean, float *rstd, const float *input, \
        const float *weight, const float *bias, int N, int C, float epsilon, int precision)) \
    /* d_branch, if not NULL: d_input through branch_dropout, over rows of T tokens per example. */ \
    X(int, dpc_layernorm_backward, (float *d_input, float *d_branch, void *branch_operands, \
        dpc_dropout branch_dropout, float *d_weight, float *d_bias, const float *d_out, const float *input, \
        const float *weight, const float *mean, const float *rstd, int N, int T, int C, int precision)) \
    /* form: 0 erf, 1 tanh; slope may be NULL. */ \
    X(int, dpc_gelu_forward, (float *out, void *operands, float *slope, const float *input, const float *bias, \
        int64_t N, int C, int form, int precision)) \
    X(int, dpc_gelu_backward, (float *d_input, void *operands, const float *d_out, const float *slope, \
        int64_t count, int precision)) \
    X(int, dpc_tanh_forward, (float *out, const float *input, int64_t count)) \
    X(int, dpc_tanh_backward, (float *d_input, const float *d_out, const float *out, int64_t count)) \
    X(int, dpc_dropout_forward, (float *out, const float *input, dpc_dropout dropout, int B, int R)) \
    X(int, dpc_dropout_residual_forward, (float *out, const float *input, const float *bias, \
        const float *residual, dpc_dropout dropout, int B, int T, int C)) \
    /* qkv and d_out are operands, as for dpc_matmul_forward. */ \
    X(int, dpc_attention_forward, (float *out, float *probabilities, const void *qkv, \
        const float *attention_mask, dpc_dropout dropout, int B, int T, int C, int NH, int precision)) \
    X(int, dpc_attention_backward, (float *d_qkv, float *scratch, const void *d_out, const void *qkv, \
        const float *probabilities, dpc_dropout dropout, int B, int T, int C, int NH, int precision)) \
    X(int, dpc_first_token_forward, (float *out, const float *input, int B, int T, int C)) \
    X(int, dpc_first_token_backward, (float *d_input, const float *d_out, int B, int T, int C)) \
    X(int, dpc_mean_pool_forward, (float *out, const float *input, const float *attention_mask, \
        int B, int T, int C)) \
    X(int, dpc_mean_pool_backward, (float *d_input, const float *d_out, const float *attention_mask, \
        int B, int T, int C)) \
    /* weights: (B, T), the softmax of scores over the unpadded tokens, written for backward. */ \
    X(int, dpc_attention_pool_forward, (float *out, float *weights, const float *scores, const float *input, \
        const float *attention_mask, int B, int T, int C)) \
    X(int, dpc_attention_pool_backward, (float *d_input, float *d_scores, const float *d_out, \
        const float *weights, const float *input, int B, int T, int C)) \
    /* states: K states (B, T, C), each `stride` floats after the last. d_weights (K) is added */ \
    /* to; d_input (B, T, C) is added to when `accumulates`, else assigned, its other rows 0. */ \
    X(int, dpc_layer_pool_forward, (float *out, const float *states, int64_t stride, const float *weights, \
        int B, int T, int C, int K)) \
    X(int, dpc_layer_pool_weights_backward, (float *d_weights, const float *d_out, const float *out, \
        const float *states, int64_t stride, const float *weights, int B, int T, int C, int K)) \
    X(int, dpc_layer_pool_state_backward, (float *d_input, int accumulates, const float *d_out, \
        const float *weights, int layer, int B, int T, int C, int K)) \
    X(int, dpc_mse_loss, (float *losses, float *d_predictions, const float *predictions, \
        const float *targets, int B, float grad_scale)) \
    X(int, dpc_cross_entropy_loss, (float *losses, float *d_logits, const float *logits, \
        const int32_t *labels, int B, int K, float grad_scale)) \
    /* Mixout: mixout.example_indices is unused; the mask is example 0's over the C columns. */ \
    X(int, dpc_mixout_forward, (float *weights, float *original, const float *target, dpc_dropout mixout, \
        float probability, int OC, int C)) \
    X(int, dpc_mixout_backward, (float *d_weights, dpc_dropout mixout, int OC, int C)) \
    X(int, dpc_adamw_step, (float *parameters, const float *gradients, float *m, float *v, \
        const uint32_t *decays, const float *decay_target, int64_t count, dpc_adamw hyperparameters))

#ifdef DPCUDA_BUILDING_LIBRARY
#define DPCUDA_DECLARE(ret, name, params) ret name params;
DPCUDA_FUNCTIONS(DPCUDA_DECLARE)
#undef DPCUDA_DECLARE
#else
/// The loaded library: one pointer per function above, never null once dpc_load succeeded
/// (so Swift imports them as plain functions).
typedef struct dpc_functions {
#define DPCUDA_FIELD(ret, name, params) ret (*_Nonnull name) params;
    DPCUDA_FUNCTIONS(DPCUDA_FIELD)
#undef DPCUDA_FIELD
} dpc_functions;

/// Opens the library at `path` and fills `table`. On failure returns nonzero and writes the
/// reason (dlopen's message, or the first missing symbol) into `error`.
int dpc_load(const char *path, dpc_functions *table, char *error, size_t error_capacity);
#pragma clang diagnostic pop
#endif

#ifdef __cplusplus
}
#endif
#endif
