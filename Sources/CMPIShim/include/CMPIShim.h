// The few MPI calls Backprop makes, as functions Swift can call: MPI's
// handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_IN_PLACE) are macros that Swift
// cannot import. Every call is on MPI_COMM_WORLD, from the main thread
// (MPI_THREAD_FUNNELED), and returns MPI's error code; with MPI's default
// error handler a failure ends the whole job before it returns.
#ifndef BACKPROP_CMPI_SHIM_H
#define BACKPROP_CMPI_SHIM_H

/// MPI_Init_thread (funneled); the rank and the job's size.
int backprop_mpi_init(int *rank, int *size);
int backprop_mpi_finalize(void);
/// Ends every rank of the job with `code` (MPI_Abort).
void backprop_mpi_abort(int code);
/// In place: each rank's counts[r] floats at displacements[r] reach every rank.
int backprop_mpi_allgatherv_floats(float *buffer, const int *counts, const int *displacements);
/// MPI_Alltoallv of floats.
int backprop_mpi_alltoallv_floats(const float *send, const int *send_counts, const int *send_displacements,
                                  float *receive, const int *receive_counts, const int *receive_displacements);
/// Each rank's `value`, into `values` in rank order.
int backprop_mpi_allgather_int(int value, int *values);
/// Each rank's counts[r] bytes, into `receive` at displacements[r].
int backprop_mpi_allgatherv_bytes(const void *send, int count, void *receive, const int *counts, const int *displacements);

/// A barrier that sleeps (1 ms at a time) rather than spins while it
/// waits, leaving the cores to a rank that is still working.
int backprop_mpi_sleeping_barrier(void);

#endif
