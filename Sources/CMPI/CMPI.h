// Open MPI's C API as Debian's libopenmpi-dev installs it (Open MPI 4.1, pkg-config ompi-c).
#include <mpi.h>
