import BackpropCore
import CMPIShim
import Foundation

/// The ranks of a job that Open MPI's `mpirun` started, as a `ProcessGroup`.
///
/// MPI is initialised only when the process was launched by mpirun; a plain
/// `backprop` never touches it. Every collective runs on the main thread
/// (MPI_THREAD_FUNNELED); with MPI's default error handler a transport
/// failure, or a rank that dies, ends the whole job.
public final class MPIGroup: ProcessGroup {
    public let rank: Int
    public let count: Int
    /// Ranks of this job on this machine (for the default worker count).
    public let localCount: Int

    private init(rank: Int, count: Int, localCount: Int) {
        self.rank = rank
        self.count = count
        self.localCount = localCount
    }

    /// Whether mpirun (Open MPI's, or another PMIx launcher) started this process.
    public static var isLaunched: Bool {
        let environment = ProcessInfo.processInfo.environment
        return environment["OMPI_COMM_WORLD_SIZE"] != nil || environment["PMIX_RANK"] != nil
    }

    /// The job this process belongs to, MPI initialised; nil when not launched by mpirun.
    public static func launched() -> MPIGroup? {
        guard isLaunched else { return nil }
        var rank: CInt = 0, size: CInt = 0
        guard backprop_mpi_init(&rank, &size) == 0 else {
            FileHandle.standardError.write(Data("error: MPI_Init_thread failed; is this Open MPI's mpirun?\n".utf8))
            exit(1)
        }
        let local = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init) ?? Int(size)
        return MPIGroup(rank: Int(rank), count: Int(size), localCount: max(local, 1))
    }

    /// Leaves the job cleanly; every rank calls it once, at the end.
    public func finalize() {
        _ = backprop_mpi_finalize()
    }

    /// Ends every rank of the job at once (a failure only this rank saw).
    public func abort(code: Int32) -> Never {
        backprop_mpi_abort(code)
        exit(code)
    }

    /// Waits for every rank without spinning (for measurements that one rank makes alone).
    public func sleepingBarrier() {
        _ = backprop_mpi_sleeping_barrier()
    }

    /// Counts and displacements as MPI's ints; a count past 2³¹ ends the job.
    private func ints(_ values: [Int]) -> (counts: [CInt], displacements: [CInt]) {
        var displacements: [CInt] = []
        var offset = 0
        for value in values {
            guard offset <= Int(CInt.max) - value else {
                FileHandle.standardError.write(Data("error: rank \(rank): a message of more than 2³¹ values; use fewer shards per batch\n".utf8))
                abort(code: 1)
            }
            displacements.append(CInt(offset))
            offset += value
        }
        return (values.map { CInt($0) }, displacements)
    }

    public func allGather(_ buffer: UnsafeMutableBufferPointer<Float>, counts: [Int]) {
        let (c, d) = ints(counts)
        _ = backprop_mpi_allgatherv_floats(buffer.baseAddress, c, d)
    }

    public func allToAll(send: UnsafeBufferPointer<Float>, sendCounts: [Int],
                         receive: UnsafeMutableBufferPointer<Float>, receiveCounts: [Int]) {
        let (sc, sd) = ints(sendCounts), (rc, rd) = ints(receiveCounts)
        _ = backprop_mpi_alltoallv_floats(send.baseAddress, sc, sd, receive.baseAddress, rc, rd)
    }

    public func allGather(bytes: [UInt8]) -> [[UInt8]] {
        var lengths = [CInt](repeating: 0, count: count)
        _ = backprop_mpi_allgather_int(CInt(bytes.count), &lengths)
        let (c, d) = ints(lengths.map(Int.init))
        var all = [UInt8](repeating: 0, count: lengths.reduce(0) { $0 + Int($1) })
        _ = bytes.withUnsafeBytes { send in
            all.withUnsafeMutableBytes { backprop_mpi_allgatherv_bytes(send.baseAddress, CInt(bytes.count), $0.baseAddress, c, d) }
        }
        return (0..<count).map { Array(all[Int(d[$0])..<(Int(d[$0]) + Int(c[$0]))]) }
    }
}
