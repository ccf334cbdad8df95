import BackpropTestSupport
import Testing

/// The tests' one approximate equality: relative for ordinary numbers,
/// absolute near zero, and never true across a real difference.
struct ToleranceTests {
    @Test("isClose accepts differences inside the tolerance and refuses those outside, relative and near zero")
    func bounds() {
        #expect(isClose(1, 1 + 5e-13, .doubleReordered) && !isClose(1, 1 + 5e-12, .doubleReordered))
        #expect(isClose(1e6, 1e6 * (1 + 5e-6), .floatAgainstDouble) && !isClose(1e6, 1e6 * (1 + 5e-5), .floatAgainstDouble))
        // Near zero the tolerance is absolute: 1e-13 and −1e-13 agree in reordered Double sums.
        #expect(isClose(1e-13, -1e-13, .doubleReordered) && !isClose(0, 1e-6, .doubleReordered))
        #expect(!isClose(.nan, .nan, .finiteDifference) && !isClose(1, .infinity, .accountant))
    }
}
