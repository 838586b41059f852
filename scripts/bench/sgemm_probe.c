/*
 * sgemm_probe: what the system OpenBLAS (the one dp-train links) reaches on this machine,
 * the denominator of the MFU column in scripts/bench/step-vs-pytorch.
 *
 *   cc -O2 -o sgemm_probe scripts/bench/sgemm_probe.c $(pkg-config --cflags --libs openblas)
 *   ./sgemm_probe THREADS [SECONDS_PER_SHAPE]
 *
 * Times row-major C = A * B (cblas_sgemm, no transposes, alpha 1, beta 0) for two shapes,
 * M x N x K:
 *   2048 x 2048 x 2048, the square peak;
 *   2048 x 384 x 1536, MiniLM-like (16 x 128 tokens through the FFN down-projection).
 * After one warm-up call it repeats each shape for at least SECONDS_PER_SHAPE (default 1)
 * and at least 3 calls, and reports the median and the best GFLOP/s (2*M*N*K flops per call).
 * Prints one JSON line.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static float *random_matrix(size_t count) {
    float *p = malloc(count * sizeof(float));
    if (!p) { fprintf(stderr, "sgemm_probe: out of memory\n"); exit(1); }
    for (size_t i = 0; i < count; i++) p[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    return p;
}

/* Times one shape; writes the median and best GFLOP/s. */
static void probe(int m, int n, int k, double seconds, double *median, double *best) {
    float *a = random_matrix((size_t)m * k);  /* (M, K) */
    float *b = random_matrix((size_t)k * n);  /* (K, N) */
    float *c = random_matrix((size_t)m * n);  /* (M, N) */
    enum { max_calls = 1000 };
    static double gflops[max_calls];
    double flops = 2.0 * m * n * k;

    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
    int calls = 0;
    double start = now_s();
    while (calls < max_calls && (calls < 3 || now_s() - start < seconds)) {
        double t0 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
        gflops[calls++] = flops / (now_s() - t0) / 1e9;
    }
    qsort(gflops, (size_t)calls, sizeof(double), compare_doubles);
    *median = calls % 2 ? gflops[calls / 2] : 0.5 * (gflops[calls / 2 - 1] + gflops[calls / 2]);
    *best = gflops[calls - 1];
    free(a); free(b); free(c);
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s THREADS [SECONDS_PER_SHAPE]\n", argv[0]);
        return 2;
    }
    int threads = atoi(argv[1]);
    double seconds = argc == 3 ? atof(argv[2]) : 1.0;
    if (threads < 1 || seconds <= 0) {
        fprintf(stderr, "sgemm_probe: THREADS must be >= 1 and SECONDS_PER_SHAPE > 0\n");
        return 2;
    }
    openblas_set_num_threads(threads);
    srand(1);

    double square_median, square_best, minilm_median, minilm_best;
    probe(2048, 2048, 2048, seconds, &square_median, &square_best);
    probe(2048, 384, 1536, seconds, &minilm_median, &minilm_best);
    printf("{\"threads\": %d, \"openblas_threads\": %d, "
           "\"sgemm_2048x2048x2048_gflops\": %.2f, \"sgemm_2048x2048x2048_best_gflops\": %.2f, "
           "\"sgemm_2048x384x1536_gflops\": %.2f, \"sgemm_2048x384x1536_best_gflops\": %.2f, "
           "\"openblas_config\": \"%s\"}\n",
           threads, openblas_get_num_threads(), square_median, square_best,
           minilm_median, minilm_best, openblas_get_config());
    return 0;
}
