// CHDF5Shim: plain C functions for the HDF5 macros Swift cannot import.
//
// H5T_NATIVE_* and H5F_ACC_* expand to function calls or to globals that
// Swift 6 refuses to read ("not concurrency-safe"); each function below
// returns one such value. It deliberately wraps nothing else: every other
// HDF5 call is made from Swift through BackpropHDF5's checking helper.
// Matches HDF5 1.10.8 (Debian 12 libhdf5-dev).
#ifndef CHDF5_SHIM_H
#define CHDF5_SHIM_H

#include <hdf5.h>

/// H5T_NATIVE_FLOAT
hid_t chdf5_native_float(void);
/// H5T_NATIVE_DOUBLE
hid_t chdf5_native_double(void);
/// H5T_NATIVE_UINT8
hid_t chdf5_native_uint8(void);
/// H5T_NATIVE_INT32
hid_t chdf5_native_int32(void);
/// H5T_NATIVE_INT64
hid_t chdf5_native_int64(void);
/// H5T_NATIVE_UINT64
hid_t chdf5_native_uint64(void);
/// H5T_C_S1 (fixed-length C string type; copy it before setting a size)
hid_t chdf5_c_s1(void);
/// H5F_ACC_RDONLY
unsigned chdf5_acc_rdonly(void);
/// H5F_ACC_TRUNC
unsigned chdf5_acc_trunc(void);
/// H5F_ACC_EXCL

/// H5P_FILE_ACCESS (the class of file-access property lists)
hid_t chdf5_file_access_class(void);
/// H5P_DATASET_CREATE (the class of dataset-creation property lists)
hid_t chdf5_dataset_create_class(void);
/// HADDR_UNDEF (the address of storage never allocated)
haddr_t chdf5_address_undefined(void);

/// Turns off HDF5's automatic error-stack printing for the calling thread
/// (H5Eset_auto2(H5E_DEFAULT, NULL, NULL)); errors are reported by the caller.
void chdf5_silence_errors(void);

#endif
