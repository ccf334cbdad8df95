import ArgumentParser
import BackpropIO
import Foundation

/// A sweep's results/ directory: each trial's result at each rung, and under
/// `mpirun` the meeting place of the ranks.
///
/// A result its settings caused (a score, a divergence, a refusal) is saved
/// as `<trial>-rung<r>.json` and taken as it is by any later run. A trial that
/// did not finish for another reason is never saved as a result; under
/// `mpirun` its outcome is still written, as `<trial>-rung<r>.unfinished-<job>.json`
/// for this job alone, because the other ranks wait for every trial's
/// outcome: whatever a trial gave (a score of ±∞ included), every rank learns
/// it, and a rank that cannot write it stops the job with one line instead of
/// leaving the others waiting.
struct SweepResults {
    let directory: String
    /// This `mpirun` job's identity (the same on every rank, another for the next job).
    let job: String

    init(directory: String, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.directory = directory + "/results"
        job = environment["PMIX_NAMESPACE"] ?? environment["OMPI_MCA_ess_base_jobid"] ?? "\(getppid())"
    }

    func path(_ trial: Int, rung: Int) -> String { "\(directory)/\(SweepRunner.name(trial))-rung\(rung).json" }

    func unfinishedPath(_ trial: Int, rung: Int) -> String { "\(directory)/\(SweepRunner.name(trial))-rung\(rung).unfinished-\(job).json" }

    /// The result saved for `trial` at `rung`, if any.
    func saved(_ trial: Int, rung: Int) -> TrialResult? {
        FileManager.default.contents(atPath: path(trial, rung: rung)).flatMap { try? Self.decoder.decode(TrialResult.self, from: $0) }
    }

    /// Saves a result its settings caused.
    /// - Throws: the storage's error.
    func save(_ result: TrialResult) throws {
        try FileSystem.writeAtomically([UInt8](try Self.encoder.encode(result)), to: path(result.trial, rung: result.rung))
    }

    /// Writes, for this job's other ranks, the outcome of a trial that did not finish.
    /// - Throws: the storage's error.
    func tell(_ unfinished: TrialResult) throws {
        try FileSystem.writeAtomically([UInt8](try Self.encoder.encode(unfinished)), to: unfinishedPath(unfinished.trial, rung: unfinished.rung))
    }

    /// Every trial's outcome at `rung`, in the order given, once each rank has written its own.
    /// - Throws: `ValidationError` naming a file that holds no outcome.
    func gather(_ trials: [Int], rung: Int) throws -> [TrialResult] {
        try trials.map { trial in
            let (saved, unfinished) = (path(trial, rung: rung), unfinishedPath(trial, rung: rung))
            while true {
                for file in [saved, unfinished] {
                    guard let data = FileManager.default.contents(atPath: file) else { continue }
                    guard let result = try? Self.decoder.decode(TrialResult.self, from: data) else {
                        throw ValidationError("\(file) holds no trial result; remove it and run the same sweep again.")
                    }
                    return result
                }
                usleep(100_000)
            }
        }
    }

    /// Removes the unfinished outcomes of earlier jobs (never a result).
    func forgetOtherJobs() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where name.contains(".unfinished-") && !name.hasSuffix(".unfinished-\(job).json") {
            try? FileManager.default.removeItem(atPath: "\(directory)/\(name)")
        }
    }

    /// JSON with ±∞ and NaN written as words, so that every value can be written and read back.
    private static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }

    private static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }
}
