#include "CMPIShim.h"
#include <mpi.h>
#include <time.h>

int backprop_mpi_init(int *rank, int *size) {
    int provided = 0;
    int status = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (status != MPI_SUCCESS) return status;
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    return MPI_Comm_size(MPI_COMM_WORLD, size);
}

int backprop_mpi_finalize(void) { return MPI_Finalize(); }

void backprop_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

int backprop_mpi_allgatherv_floats(float *buffer, const int *counts, const int *displacements) {
    return MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buffer, counts, displacements, MPI_FLOAT, MPI_COMM_WORLD);
}

int backprop_mpi_alltoallv_floats(const float *send, const int *send_counts, const int *send_displacements,
                                  float *receive, const int *receive_counts, const int *receive_displacements) {
    return MPI_Alltoallv(send, send_counts, send_displacements, MPI_FLOAT,
                         receive, receive_counts, receive_displacements, MPI_FLOAT, MPI_COMM_WORLD);
}

int backprop_mpi_allgather_int(int value, int *values) {
    return MPI_Allgather(&value, 1, MPI_INT, values, 1, MPI_INT, MPI_COMM_WORLD);
}

int backprop_mpi_allgatherv_bytes(const void *send, int count, void *receive, const int *counts, const int *displacements) {
    return MPI_Allgatherv(send, count, MPI_BYTE, receive, counts, displacements, MPI_BYTE, MPI_COMM_WORLD);
}

int backprop_mpi_sleeping_barrier(void) {
    MPI_Request request;
    int status = MPI_Ibarrier(MPI_COMM_WORLD, &request);
    if (status != MPI_SUCCESS) return status;
    int done = 0;
    const struct timespec millisecond = {0, 1000000};
    while (!done) {
        status = MPI_Test(&request, &done, MPI_STATUS_IGNORE);
        if (status != MPI_SUCCESS) return status;
        if (!done) nanosleep(&millisecond, NULL);
    }
    return MPI_SUCCESS;
}
