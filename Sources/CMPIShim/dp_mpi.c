#include "dp_mpi.h"

#include <limits.h>
#include <mpi.h>

int dp_mpi_init(void) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) return MPI_SUCCESS;
    // The gradient buckets are reduced on a thread of their own, never alongside the main thread.
    int provided = MPI_THREAD_SINGLE;
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
    if (rc != MPI_SUCCESS) return rc;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    return provided >= MPI_THREAD_SERIALIZED ? MPI_SUCCESS : MPI_ERR_OTHER;
}

int dp_mpi_finalize(void) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    return finalized ? MPI_SUCCESS : MPI_Finalize();
}

int dp_mpi_topology(int *rank, int *world_size, int *local_size, int *local_rank) {
    int rc = MPI_Comm_rank(MPI_COMM_WORLD, rank);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_size(MPI_COMM_WORLD, world_size);
    if (rc != MPI_SUCCESS) return rc;
    MPI_Comm node;
    rc = MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, *rank, MPI_INFO_NULL, &node);
    if (rc != MPI_SUCCESS) return rc;
    rc = MPI_Comm_size(node, local_size);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_rank(node, local_rank);
    MPI_Comm_free(&node);
    return rc;
}

static int allreduce_chunked(void *buffer, size_t count, size_t element_size, MPI_Datatype type) {
    char *bytes = buffer;
    while (count > 0) {
        int chunk = count > (size_t)INT_MAX ? INT_MAX : (int)count;
        int rc = MPI_Allreduce(MPI_IN_PLACE, bytes, chunk, type, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return rc;
        bytes += (size_t)chunk * element_size;
        count -= (size_t)chunk;
    }
    return MPI_SUCCESS;
}

int dp_mpi_allreduce_sum_float(float *buffer, size_t count) {
    return allreduce_chunked(buffer, count, sizeof(float), MPI_FLOAT);
}

int dp_mpi_allreduce_sum_double(double *buffer, size_t count) {
    return allreduce_chunked(buffer, count, sizeof(double), MPI_DOUBLE);
}

int dp_mpi_broadcast(void *buffer, size_t bytes, int root) {
    char *cursor = buffer;
    while (bytes > 0) {
        int chunk = bytes > (size_t)INT_MAX ? INT_MAX : (int)bytes;
        int rc = MPI_Bcast(cursor, chunk, MPI_BYTE, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return rc;
        cursor += chunk;
        bytes -= (size_t)chunk;
    }
    return MPI_SUCCESS;
}

int dp_mpi_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }

void dp_mpi_abort(int exit_code) { MPI_Abort(MPI_COMM_WORLD, exit_code); }
