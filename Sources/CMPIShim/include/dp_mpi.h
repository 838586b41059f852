// The whole of MPI that dp-train uses. Swift cannot import MPI's macros (MPI_COMM_WORLD,
// MPI_FLOAT, MPI_SUM, MPI_IN_PLACE), so they stay on this side; no MPI type crosses over.
// Every function returns an MPI error code (0 on success) unless it says otherwise.
#ifndef DP_MPI_H
#define DP_MPI_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Initialises MPI once; errors are returned to the caller instead of aborting the job.
int dp_mpi_init(void);
int dp_mpi_finalize(void);
/// Rank and size in MPI_COMM_WORLD, the number of ranks sharing this node and this rank's index
/// among them.
int dp_mpi_topology(int *rank, int *world_size, int *local_size, int *local_rank);
/// In-place sum across all ranks. Counts above INT_MAX are split into chunks.
int dp_mpi_allreduce_sum_float(float *buffer, size_t count);
int dp_mpi_allreduce_sum_double(double *buffer, size_t count);
/// Copies `bytes` bytes from `root` into the same buffer on every rank.
int dp_mpi_broadcast(void *buffer, size_t bytes, int root);
int dp_mpi_barrier(void);
/// Ends every rank of the job; does not return.
void dp_mpi_abort(int exit_code);

#ifdef __cplusplus
}
#endif
#endif
