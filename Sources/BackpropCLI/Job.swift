import ArgumentParser
import BackpropCore
import BackpropHDF5
import BackpropMPI
import Foundation

/// This process's place in a job that `mpirun -np N backprop train …`
/// started: rank 0 reads the same files as every rank, but alone prints,
/// locks the run directory and writes files; the others train silently.
/// Without mpirun there is no job: one process, rank 0, exactly as ever.
struct Job {
    /// nil when not launched by mpirun.
    let mpi: MPIGroup?

    /// Initialises MPI when mpirun started this process.
    static func start() -> Job { Job(mpi: MPIGroup.launched()) }

    var rank: Int { mpi?.rank ?? 0 }
    var size: Int { mpi?.count ?? 1 }
    /// Whether this process prints and writes files.
    var isWriter: Bool { rank == 0 }
    /// The group a trainer shares its steps with; nil for one process.
    var group: (any ProcessGroup)? { mpi.flatMap { $0.count > 1 ? $0 : nil } }

    /// Worker threads by default: the cores, shared among this machine's
    /// ranks, and no more than mpirun bound this rank to.
    var defaultWorkers: Int {
        let shared = ProcessInfo.processInfo.activeProcessorCount / (mpi?.localCount ?? 1)
        return max(min(shared, JobBench.usableCores()), 1)
    }

    /// Runs the command's `body` and ends this rank as the outcome requires.
    /// An outcome every rank reaches together (the end, a stop after the same
    /// step, a divergence at the same step, a disagreement every rank sees)
    /// leaves MPI cleanly, rank 0 alone reporting it and carrying the job's
    /// exit status: the other ranks leave with 0, since mpirun ends every rank
    /// still running once one exits non-zero, and would end rank 0 before it
    /// has printed why. Anything else may have struck this rank alone while
    /// the others wait for it in a collective: it is reported with the rank's
    /// number and ends the whole job at once.
    func run(_ body: () throws -> Void) throws {
        guard let mpi else { return try body() }
        do {
            try body()
            mpi.finalize()
        } catch let error where error is ExitCode || error is TrainingError || error is Disagreement {
            mpi.finalize()
            if isWriter { throw error }
            exit(0)
        } catch {
            printError("error: rank \(rank) of \(size): " + Backprop.message(for: error))
            mpi.abort(code: 1)
        }
    }

    /// What ranks disagree on at the start of a job.
    struct Disagreement: Error, CustomStringConvertible {
        let description: String
    }

    /// Checks, in one collective, that every rank has what rank 0 has: the
    /// program version, each setting (but the worker count), the data's
    /// fingerprint, the position and the parameters' fingerprint.
    /// - Throws: `Disagreement` naming the first rank that differs and in what, on every rank.
    func agree(on trainer: Trainer, dataFingerprint: String) throws {
        guard let mpi, mpi.count > 1 else { return }
        var settings = trainer.configuration
        settings.workers = 0
        let position = trainer.position
        var facts = ["program version": Checkpoint.programVersion, "data fingerprint": dataFingerprint,
                     "position": "epoch \(position.epoch + 1), batch \(position.batch), step \(position.step)",
                     "parameters": trainer.network.fingerprint]
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(settings))
        for (path, value) in Self.flattened(json, path: "setting ") { facts[path] = value }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let all = mpi.allGather(bytes: Array(try encoder.encode(facts))).map {
            (try? JSONDecoder().decode([String: String].self, from: Data($0))) ?? [:]
        }
        for (r, theirs) in all.enumerated().dropFirst() {
            for name in Set(theirs.keys).union(all[0].keys).sorted() where theirs[name] != all[0][name] {
                throw Disagreement(description: "rank \(r) of \(mpi.count) differs from rank 0 in its \(name): "
                                   + "\(theirs[name] ?? "(none)"), rank 0 has \(all[0][name] ?? "(none)"). "
                                   + "Every rank must run the same build with the same settings on the same data.")
            }
        }
    }

    /// The leaves of a JSON value as (dotted path, text) pairs.
    private static func flattened(_ value: Any, path: String) -> [(String, String)] {
        if let object = value as? [String: Any] {
            return object.keys.sorted().flatMap { flattened(object[$0]!, path: path.hasSuffix(" ") ? path + $0 : path + "." + $0) }
        }
        if let array = value as? [Any] { return [(path, array.map { "\($0)" }.joined(separator: ","))] }
        return [(path, "\(value)")]
    }
}
