// OpenBLAS's CBLAS interface (Debian libopenblas-dev). <cblas-openblas.h> is
// always OpenBLAS's header, whatever the cblas.h alternative points at.
#include <cblas-openblas.h>
