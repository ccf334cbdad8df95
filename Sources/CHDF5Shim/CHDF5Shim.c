#include "CHDF5Shim.h"

hid_t chdf5_native_float(void) { return H5T_NATIVE_FLOAT; }
hid_t chdf5_native_double(void) { return H5T_NATIVE_DOUBLE; }
hid_t chdf5_native_uint8(void) { return H5T_NATIVE_UINT8; }
hid_t chdf5_native_int32(void) { return H5T_NATIVE_INT32; }
hid_t chdf5_native_int64(void) { return H5T_NATIVE_INT64; }
hid_t chdf5_native_uint64(void) { return H5T_NATIVE_UINT64; }
hid_t chdf5_c_s1(void) { return H5T_C_S1; }
unsigned chdf5_acc_rdonly(void) { return H5F_ACC_RDONLY; }
unsigned chdf5_acc_trunc(void) { return H5F_ACC_TRUNC; }
hid_t chdf5_file_access_class(void) { return H5P_FILE_ACCESS; }
hid_t chdf5_dataset_create_class(void) { return H5P_DATASET_CREATE; }
haddr_t chdf5_address_undefined(void) { return HADDR_UNDEF; }
void chdf5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
