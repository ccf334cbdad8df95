// The HDF5 C library as Debian's libhdf5-dev installs it (serial build, 1.10).
#include <hdf5.h>
