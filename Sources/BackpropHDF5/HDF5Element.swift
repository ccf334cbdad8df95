import CHDF5Shim

/// The element types we store in HDF5 datasets and attributes, with their
/// native HDF5 type and how to recognise them in a file.
public protocol HDF5Element: Sendable, BitwiseCopyable {
    /// The H5T_NATIVE_* type for this Swift type (through the shim).
    static var nativeType: hid_t { get }
    /// The HDF5 type class a stored dataset must have.
    static var typeClass: H5T_class_t { get }
    /// Size in bytes of the stored type.
    static var storedSize: Int { get }
    /// For integers: whether the stored type must be signed.
    static var isSigned: Bool { get }
    /// A name for messages ("uint8", "float32").
    static var typeName: String { get }
    static var zero: Self { get }
}

extension UInt8: HDF5Element {
    public static var nativeType: hid_t { chdf5_native_uint8() }
    public static var typeClass: H5T_class_t { H5T_INTEGER }
    public static var storedSize: Int { 1 }
    public static var isSigned: Bool { false }
    public static var typeName: String { "uint8" }
    public static var zero: UInt8 { 0 }
}

extension Float: HDF5Element {
    public static var nativeType: hid_t { chdf5_native_float() }
    public static var typeClass: H5T_class_t { H5T_FLOAT }
    public static var storedSize: Int { 4 }
    public static var isSigned: Bool { true }
    public static var typeName: String { "float32" }
    public static var zero: Float { 0 }
}

extension Double: HDF5Element {
    public static var nativeType: hid_t { chdf5_native_double() }
    public static var typeClass: H5T_class_t { H5T_FLOAT }
    public static var storedSize: Int { 8 }
    public static var isSigned: Bool { true }
    public static var typeName: String { "float64" }
    public static var zero: Double { 0 }
}

extension Int64: HDF5Element {
    public static var nativeType: hid_t { chdf5_native_int64() }
    public static var typeClass: H5T_class_t { H5T_INTEGER }
    public static var storedSize: Int { 8 }
    public static var isSigned: Bool { true }
    public static var typeName: String { "int64" }
    public static var zero: Int64 { 0 }
}

extension UInt64: HDF5Element {
    public static var nativeType: hid_t { chdf5_native_uint64() }
    public static var typeClass: H5T_class_t { H5T_INTEGER }
    public static var storedSize: Int { 8 }
    public static var isSigned: Bool { false }
    public static var typeName: String { "uint64" }
    public static var zero: UInt64 { 0 }
}

extension Int32: HDF5Element {
    public static var nativeType: hid_t { chdf5_native_int32() }
    public static var typeClass: H5T_class_t { H5T_INTEGER }
    public static var storedSize: Int { 4 }
    public static var isSigned: Bool { true }
    public static var typeName: String { "int32" }
    public static var zero: Int32 { 0 }
}
