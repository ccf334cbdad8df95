@testable import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// The `.npy` reader against NumPy itself: every dtype and order it accepts
/// gives NumPy's values in C order, and header corner cases parse as the
/// format's specification says.
struct NPYTests {
    let directory = temporaryDirectory("npy")

    @Test("every accepted dtype, byte order, Fortran order and header version reads as NumPy's values in C order")
    func dtypesAndOrders() throws {
        // For each case: the array as saved, and its C-order values as little-endian float32 for comparison.
        let make = """
        import numpy as np, numpy.lib.format as fmt
        rng = np.random.default_rng(3)
        base = rng.integers(-100, 100, (3, 4, 5))
        cases = {
            'f4-le': base.astype('<f4'), 'f4-be': base.astype('>f4'), 'f8-be': (base / 7).astype('>f8'),
            'f2': (base / 4).astype('<f2'), 'u1': (base + 100).astype('|u1'), 'u8-be': (base + 100).astype('>u8'),
            'i1': base.astype('|i1'), 'i2-be': base.astype('>i2'), 'i4': base.astype('<i4'), 'i8': base.astype('<i8'),
            'bool': base > 0, 'fortran-3d': np.asfortranarray(base.astype('<f4')), 'fortran-2d-be': np.asfortranarray(base[0].astype('>i4')),
            'scalar': np.float32(2.5), 'empty': np.zeros((0, 3), '<f4'), 'vector': base[0, 0].astype('<f8'),
        }
        for name, array in cases.items():
            np.save(name + '.npy', array)
            np.ascontiguousarray(array, dtype='<f4').tofile(name + '.expected')
        for version in ((2, 0), (3, 0)):
            with open(f'v{version[0]}.npy', 'wb') as f:
                fmt.write_array(f, base.astype('<f4'), version=version)
            base.astype('<f4').tofile(f'v{version[0]}.expected')
        """
        let made = try run("/usr/bin/python3", ["-c", make], in: directory)
        try #require(made.status == 0, "numpy is needed: \(made.standardError)")
        let names = ["f4-le", "f4-be", "f8-be", "f2", "u1", "u8-be", "i1", "i2-be", "i4", "i8", "bool",
                     "fortran-3d", "fortran-2d-be", "scalar", "empty", "vector", "v2", "v3"]
        for name in names {
            let array = try NPYArray.read("\(directory)/\(name).npy")
            let expected = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name).expected")).withUnsafeBytes {
                Array($0.bindMemory(to: Float.self))
            }
            #expect(array.values == expected, "\(name)")
            #expect(array.shape.reduce(1, *) == expected.count, "\(name): shape \(array.shape)")
        }
        #expect(try NPYArray.read("\(directory)/fortran-3d.npy").shape == [3, 4, 5])
        #expect(try NPYArray.read("\(directory)/scalar.npy").shape == [])
    }

    @Test("C-order positions of a Fortran-order array, by hand")
    func fortranPositions() {
        // A 2×3 array stored column by column: (0,0) (1,0) (0,1) (1,1) (0,2) (1,2).
        #expect(NPYArray.cOrderPositions(of: [2, 3]) == [0, 3, 1, 4, 2, 5])
        #expect(NPYArray.cOrderPositions(of: [4]) == [0, 1, 2, 3])
        #expect(NPYArray.cOrderPositions(of: []) == [0])
    }

    /// A version 1.0 file with `header` (padded as NumPy pads it) and `data`.
    static func file(_ header: String, data: [UInt8] = []) -> [UInt8] {
        var text = Array(header.utf8)
        text += [UInt8](repeating: 0x20, count: 63 - (10 + text.count) % 64) + [0x0A]
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(text.count & 0xFF), UInt8(text.count >> 8)] + text + data
    }

    @Test("header literals: spacing, quotes, trailing commas, key order; and what NumPy would refuse", arguments: [
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", nil),
        ("{\"shape\":(2,),\"fortran_order\":False,\"descr\":\"<f4\"}", nil),
        ("{ 'descr' : '<f4' , 'fortran_order' : False , 'shape' : ( 2 , ) }", nil),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", "not exactly"),
        ("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", "twice"),
        ("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}", "structured"),
        ("{'descr': '<c8', 'fortran_order': False, 'shape': (2,)}", "'<c8'"),
        ("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}", "not True or False"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", "not a size"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk", "after its closing brace"),
        ("{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}", ""),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}", "more than"),
    ] as [(String, String?)])
    func headers(header: String, refusal: String?) {
        let bytes = Self.file(header, data: [0, 0, 0x80, 0x3F, 0, 0, 0, 0x40])  // 1.0, 2.0
        do {
            let array = try NPYArray.parse(bytes, path: "h.npy")
            #expect(refusal == nil && array.values == [1, 2] && array.shape == [2], "\(header)")
        } catch {
            #expect(refusal != nil && error.description.contains("h.npy") && (refusal!.isEmpty || error.description.contains(refusal!)),
                    "\(header): \(error.description)")
        }
    }
}
