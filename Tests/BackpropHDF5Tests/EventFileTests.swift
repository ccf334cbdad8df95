@testable import BackpropTensorBoard
import BackpropTestSupport
import Foundation
import Testing

/// TensorBoard's record framing, byte for byte.
struct EventFileTests {
    @Test("CRC-32C of the standard check input is 0xE3069283; of nothing, 0")
    func crc32c() {
        #expect(EventWriter.crc32c(Array("123456789".utf8)) == 0xE306_9283)
        #expect(EventWriter.crc32c([]) == 0)
        #expect(EventWriter.crc32c([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)  // RFC 3720 B.4
    }

    @Test("a TFRecord is the length, its masked CRC, the data and the data's masked CRC, little-endian")
    func framing() {
        let data = Array("event".utf8)
        let record = EventWriter.record(data)
        #expect(record.count == 8 + 4 + data.count + 4)
        #expect(Array(record[0..<8]) == [5, 0, 0, 0, 0, 0, 0, 0])
        func word(_ bytes: ArraySlice<UInt8>) -> UInt32 { bytes.reversed().reduce(0) { $0 << 8 | UInt32($1) } }
        let crc = EventWriter.crc32c(Array(record[0..<8]))
        #expect(word(record[8..<12]) == ((crc >> 15) | (crc << 17)) &+ 0xa282_ead8)
        #expect(Array(record[12..<17]) == data)
        #expect(word(record[17..<21]) == EventWriter.maskedCRC(data))
    }
}
