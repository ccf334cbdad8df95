/// The scratch memory one worker needs to run a block of up to `capacity`
/// samples forward and backward: every layer's activations z, two δ buffers
/// used in turn, and the block's targets. Allocated once at set-up so that the
/// hot loop allocates nothing.
///
/// Concurrency rule: a workspace belongs to one worker at a time; the trainer
/// hands worker w only workspace w. That is what makes `@unchecked Sendable` sound.
final class Workspace<T: NetworkScalar>: @unchecked Sendable {
    let capacity: Int
    /// z^(l) for l = 0…L: z^(0) is the input block, z^(L) the network's output.
    private let activations: [UnsafeMutablePointer<T>]
    let deltaA: UnsafeMutablePointer<T>
    let deltaB: UnsafeMutablePointer<T>
    /// t: [capacity, outputs].
    let targets: UnsafeMutablePointer<T>
    private let storage: UnsafeMutableBufferPointer<T>

    init(sizes: [Int], capacity: Int) {
        precondition(capacity > 0, "workspace capacity must be positive")
        self.capacity = capacity
        let widest = sizes.max() ?? 0
        let total = capacity * (sizes.reduce(0, +) + 2 * widest + (sizes.last ?? 0))
        storage = .allocate(capacity: total)
        storage.initialize(repeating: 0)
        guard var cursor = storage.baseAddress else { preconditionFailure("empty workspace") }
        var activations: [UnsafeMutablePointer<T>] = []
        for width in sizes {
            activations.append(cursor)
            cursor += capacity * width
        }
        self.activations = activations
        deltaA = cursor
        deltaB = cursor + capacity * widest
        targets = cursor + 2 * capacity * widest
    }

    deinit { storage.deallocate() }

    /// z^(l): the input of layer l (l = 0 is the network input) or, for l = L, its output.
    @inline(__always)
    func activation(_ l: Int) -> UnsafeMutablePointer<T> { activations[l] }
}
