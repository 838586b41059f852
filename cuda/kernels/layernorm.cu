// torch.nn.LayerNorm over the last dimension (biased variance, epsilon inside the square root),
// one warp per row and the two passes of the CPU backend: the mean, then the centred squares.
// Backward writes dInput row by row (and, for the dropped branch before a post-LayerNorm block's
// norm, dInput through that dropout), and sums dWeight and dBias over row groups into scratch
// partials that a second kernel adds in a fixed order: the same result on every run.

#include "dropout.cuh"
#include "precision.cuh"

namespace {
constexpr int kRowsPerBlock = 8; // one warp each
constexpr int kRowGroups = 128;  // partial sums per channel in backward

// out, operands: (N, C); mean, rstd: (N); input: (N, C); weight, bias: (C); operands may be null
__global__ void layernorm_forward_kernel(float *out, void *operands, int precision, float *mean, float *rstd,
                                         const float *input, const float *weight, const float *bias, int N, int C,
                                         float epsilon) {
    int row = blockIdx.x * kRowsPerBlock + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= N) return;
    const float *x = input + (int64_t)row * C;
    float sum = 0;
    for (int c = lane; c < C; c += 32) sum += x[c];
    float mu = dpc::warp_sum(sum) / (float)C;
    float squares = 0;
    for (int c = lane; c < C; c += 32) {
        float centred = x[c] - mu;
        squares += centred * centred;
    }
    float inverse_std = 1.0f / sqrtf(dpc::warp_sum(squares) / (float)C + epsilon);
    float *y = out + (int64_t)row * C;
    for (int c = lane; c < C; c += 32) {
        y[c] = (x[c] - mu) * inverse_std * weight[c] + bias[c];
        if (operands != nullptr) dpc::store_operand(operands, precision, (int64_t)row * C + c, y[c]);
    }
    if (lane == 0) {
        mean[row] = mu;
        rstd[row] = inverse_std;
    }
}

// d_input, d_out, input: (N, C); d_branch, branch_operands: (N, C) or null; weight: (C); mean,
// rstd: (N); T rows make an example, for the branch's dropout mask
__global__ void layernorm_backward_input_kernel(float *d_input, float *d_branch, void *branch_operands,
                                                dpc_dropout branch_dropout, int precision, const float *d_out,
                                                const float *input, const float *weight, const float *mean,
                                                const float *rstd, int N, int T, int C) {
    int row = blockIdx.x * kRowsPerBlock + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= N) return;
    const float *x = input + (int64_t)row * C;
    const float *dy = d_out + (int64_t)row * C;
    float mu = mean[row], inverse_std = rstd[row];
    // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), with g = dy * weight.
    float mean_g = 0, mean_g_xhat = 0;
    for (int c = lane; c < C; c += 32) {
        float g = dy[c] * weight[c];
        mean_g += g;
        mean_g_xhat += g * ((x[c] - mu) * inverse_std);
    }
    mean_g = dpc::warp_sum(mean_g) / (float)C;
    mean_g_xhat = dpc::warp_sum(mean_g_xhat) / (float)C;
    float *dx = d_input + (int64_t)row * C;
    float *d_dropped = d_branch == nullptr ? nullptr : d_branch + (int64_t)row * C;
    uint64_t example_key = branch_dropout.active ? dpc::dropout_example_key(branch_dropout, row / T) : 0;
    uint64_t first_position = (uint64_t)(row % T) * C;
    for (int c = lane; c < C; c += 32) {
        float xhat = (x[c] - mu) * inverse_std;
        float gradient = inverse_std * (dy[c] * weight[c] - mean_g - xhat * mean_g_xhat);
        dx[c] = gradient;
        if (d_dropped == nullptr) continue;
        // One hash per element, where the dropout kernels share one among four: the lanes of a
        // warp hold 32 channels apart, and the hash is cheap beside the row's other reads.
        uint64_t position = first_position + c;
        float dropped = branch_dropout.active
                            ? dpc::dropout_apply(branch_dropout, dpc::dropout_group_bits(example_key, position),
                                                 position, gradient)
                            : gradient;
        d_dropped[c] = dropped;
        if (branch_operands != nullptr) dpc::store_operand(branch_operands, precision, (int64_t)row * C + c, dropped);
    }
}

// partials: (kRowGroups, 2, C), dWeight's then dBias's sums over each group of rows
__global__ void layernorm_backward_partials_kernel(float *partials, const float *d_out, const float *input,
                                                   const float *mean, const float *rstd, int N, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    int group = blockIdx.y;
    if (c >= C) return;
    int first = (int)((int64_t)N * group / kRowGroups), last = (int)((int64_t)N * (group + 1) / kRowGroups);
    float d_weight = 0, d_bias = 0;
    for (int row = first; row < last; row++) {
        float dy = d_out[(int64_t)row * C + c];
        d_weight += dy * ((input[(int64_t)row * C + c] - mean[row]) * rstd[row]);
        d_bias += dy;
    }
    partials[((int64_t)group * 2) * C + c] = d_weight;
    partials[((int64_t)group * 2 + 1) * C + c] = d_bias;
}

// d_weight, d_bias: (C) accumulate the (kRowGroups, 2, C) partials
__global__ void layernorm_backward_sum_kernel(float *d_weight, float *d_bias, const float *partials, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float weight_sum = 0, bias_sum = 0;
    for (int group = 0; group < kRowGroups; group++) {
        weight_sum += partials[((int64_t)group * 2) * C + c];
        bias_sum += partials[((int64_t)group * 2 + 1) * C + c];
    }
    d_weight[c] += weight_sum;
    d_bias[c] += bias_sum;
}
} // namespace

extern "C" int dpc_layernorm_forward(float *out, void *operands, float *mean, float *rstd, const float *input,
                                     const float *weight, const float *bias, int N, int C, float epsilon,
                                     int precision) {
    if (dpc::check_precision(precision) != 0) return 1;
    unsigned blocks = (unsigned)((N + kRowsPerBlock - 1) / kRowsPerBlock);
    layernorm_forward_kernel<<<blocks, kRowsPerBlock * 32>>>(out, operands, precision, mean, rstd, input, weight, bias,
                                                              N, C, epsilon);
    DPC_LAUNCHED(layernorm_forward_kernel);
    return 0;
}

extern "C" int dpc_layernorm_backward(float *d_input, float *d_branch, void *branch_operands,
                                      dpc_dropout branch_dropout, float *d_weight, float *d_bias, const float *d_out,
                                      const float *input, const float *weight, const float *mean, const float *rstd,
                                      int N, int T, int C, int precision) {
    if (dpc::check_precision(precision) != 0) return 1;
    float *partials = (float *)dpc::scratch(dpc::kPartials, (size_t)kRowGroups * 2 * C * sizeof(float));
    if (partials == nullptr) return 1;
    unsigned row_blocks = (unsigned)((N + kRowsPerBlock - 1) / kRowsPerBlock);
    layernorm_backward_input_kernel<<<row_blocks, kRowsPerBlock * 32>>>(d_input, d_branch, branch_operands,
                                                                         branch_dropout, precision, d_out, input,
                                                                         weight, mean, rstd, N, T, C);
    DPC_LAUNCHED(layernorm_backward_input_kernel);
    dim3 grid((unsigned)((C + dpc::kThreads - 1) / dpc::kThreads), kRowGroups);
    layernorm_backward_partials_kernel<<<grid, dpc::kThreads>>>(partials, d_out, input, mean, rstd, N, C);
    DPC_LAUNCHED(layernorm_backward_partials_kernel);
    layernorm_backward_sum_kernel<<<(unsigned)((C + dpc::kThreads - 1) / dpc::kThreads), dpc::kThreads>>>(
        d_weight, d_bias, partials, C);
    DPC_LAUNCHED(layernorm_backward_sum_kernel);
    return 0;
}
