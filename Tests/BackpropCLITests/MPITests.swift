import BackpropCore
import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// `mpirun -np N backprop train` on this machine's loopback: the same bits as
/// one process, for any rank and worker count, across resumes; refusals of
/// ranks that disagree; stops and deaths that leave every checkpoint whole.
/// Open MPI as CI runs it: as root, more ranks than cores, and no
/// cross-memory attach (containers forbid it).
@Suite(.serialized)
struct MPITests {
    let directory = temporaryDirectory("mpi")
    let executable = backpropExecutable()
    static let mpirun = "/usr/bin/mpirun"
    static let environment = ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                              "OMPI_MCA_btl_vader_single_copy_mechanism": "none", "OMPI_MCA_rmaps_base_oversubscribe": "1"]

    /// 1,000 samples in batches of 100 and shards of 16: 7 shards a batch,
    /// dealt unevenly to 2, 3 and 4 ranks; 10 steps an epoch.
    func training(_ runDir: String, optimizer: String, extra: [String] = []) -> [String] {
        ["train", "--data", CLITests.sample, "--layers", "784,24,10", "--batch-size", "100", "--shard-size", "16",
         "--epochs", "2", "--optimizer", optimizer, "--weight-decay", "0.0001", "--run-dir", runDir, "--quiet"] + extra
    }

    func mpirun(_ ranks: Int, _ arguments: [String]) throws -> ProcessResult {
        try run(Self.mpirun, ["--bind-to", "none", "-np", "\(ranks)", executable] + arguments, in: directory,
                environment: Self.environment)
    }

    /// Python that unblocks SIGINT and SIGTERM and then becomes the command in its arguments.
    static let unblocking = "import os, signal, sys; signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT, signal.SIGTERM]); "
        + "os.execv(sys.argv[1], sys.argv[1:])"

    /// The final model's parameters, optimizer state and the digest of every step's loss.
    func outcome(_ runDir: String) throws -> (parameters: [Float], state: OptimizerState<Float>, losses: UInt64) {
        let checkpoint = try Checkpoint.load(from: "\(directory)/\(runDir)/model.h5")
        return (checkpoint.network.parameters, checkpoint.optimizerState, checkpoint.history.stepLossDigest)
    }

    @Test("1–4 ranks × 1 and 2 workers: parameters, optimizer state and every loss bit-identical to one process (with dropout, label smoothing and augmentation, with a gradient-norm clip, and at bf16, too)",
          arguments: [("momentum", []), ("adam", []), ("momentum", ["--clip-norm", "0.2"]), ("momentum", ["--precision", "bf16"]),
                      ("adam", ["--dropout", "0.3", "--input-dropout", "0.1", "--label-smoothing", "0.1", "--augment", "shift=2,flip"])])
    func sameBits(optimizer: String, regularization: [String]) throws {
        func training(_ runDir: String, optimizer: String, extra: [String]) -> [String] {
            self.training(runDir, optimizer: optimizer, extra: extra + regularization)
        }
        let single = try run(executable, training("single", optimizer: optimizer, extra: ["--workers", "1"]), in: directory)
        try #require(single.status == 0, "\(single.standardError)")
        let reference = try outcome("single")
        #expect(reference.losses != History.emptyDigest)
        for ranks in 1...4 {
            for workers in [1, 2] {
                let name = "\(ranks)x\(workers)"
                let job = try mpirun(ranks, training(name, optimizer: optimizer, extra: ["--workers", "\(workers)"]))
                try #require(job.status == 0, "\(name): \(job.standardOutput) \(job.standardError)")
                let result = try outcome(name)
                let same = (result.parameters.map(\.bitPattern) == reference.parameters.map(\.bitPattern),
                            result.state == reference.state, result.losses == reference.losses)
                #expect(same == (true, true, true), "\(name): parameters, state, losses")
                // One line of output, from rank 0 alone.
                #expect(job.standardOutput.split(separator: "\n").count == 1, "\(name): \(job.standardOutput)")
            }
        }
    }

    @Test("distilled from a teacher: 2 and 3 ranks give one process's bits")
    func distilled() throws {
        let member = try run(executable, training("member", optimizer: "momentum"), in: directory)
        try #require(member.status == 0, "\(member.standardError)")
        let teacher = try run(executable, ["ensemble", "--checkpoints", "member/model.h5", "--output", "teacher.h5"], in: directory)
        try #require(teacher.status == 0, "\(teacher.standardError)")
        let distil = ["--teacher", "teacher.h5", "--distill-alpha", "0.7", "--temperature", "2"]
        let single = try run(executable, training("single", optimizer: "adam", extra: distil), in: directory)
        try #require(single.status == 0, "\(single.standardError)")
        let reference = try outcome("single")
        for ranks in [2, 3] {
            let job = try mpirun(ranks, training("\(ranks)-ranks", optimizer: "adam", extra: distil))
            try #require(job.status == 0, "\(job.standardError)")
            let result = try outcome("\(ranks)-ranks")
            #expect(result.parameters.map(\.bitPattern) == reference.parameters.map(\.bitPattern) && result.state == reference.state
                    && result.losses == reference.losses, "\(ranks) ranks")
        }
    }

    @Test("2 ranks for 7 steps, then 3 ranks to the end = one process straight through; a checkpoint does not record the rank count")
    func resumeAcrossRankCounts() throws {
        let straight = try run(executable, training("straight", optimizer: "momentum"), in: directory)
        try #require(straight.status == 0, "\(straight.standardError)")
        let first = try mpirun(2, training("split", optimizer: "momentum", extra: ["--steps", "7"]))
        try #require(first.status == 0, "\(first.standardError)")
        let second = try mpirun(3, ["train", "--resume", "split", "--override", "--steps", "20", "--quiet"])
        try #require(second.status == 0, "\(second.standardError)")
        let (a, b) = (try outcome("straight"), try outcome("split"))
        #expect(a.parameters.map(\.bitPattern) == b.parameters.map(\.bitPattern) && a.state == b.state && a.losses == b.losses)
    }

    @Test("streamed under mpirun, each rank reading its own rows: 1–3 ranks, and 2 streamed ranks for 7 steps resumed in memory = one process in memory")
    func streamed() throws {
        let blocks = ["--shuffle-blocks", "64", "--shuffle-window", "3"]
        let memory = try run(executable, training("memory", optimizer: "adam", extra: blocks + ["--dropout", "0.2"]), in: directory)
        try #require(memory.status == 0, "\(memory.standardError)")
        let reference = try outcome("memory")
        for ranks in 1...3 {
            let job = try mpirun(ranks, training("stream-\(ranks)", optimizer: "adam", extra: blocks + ["--dropout", "0.2", "--stream"]))
            try #require(job.status == 0, "\(ranks) ranks: \(job.standardError)")
            let result = try outcome("stream-\(ranks)")
            #expect(result.parameters.map(\.bitPattern) == reference.parameters.map(\.bitPattern) && result.state == reference.state
                    && result.losses == reference.losses, "\(ranks) ranks")
        }
        let first = try mpirun(2, training("split", optimizer: "adam", extra: blocks + ["--dropout", "0.2", "--stream", "--steps", "7"]))
        try #require(first.status == 0, "\(first.standardError)")
        let second = try run(executable, ["train", "--resume", "split", "--override", "--steps", "20", "--quiet"], in: directory)
        try #require(second.status == 0, "\(second.standardError)")
        let split = try outcome("split")
        #expect(split.parameters.map(\.bitPattern) == reference.parameters.map(\.bitPattern) && split.losses == reference.losses)
        // The epoch log says how long each epoch waited for the stream.
        let metrics = try String(contentsOfFile: "\(directory)/stream-2/metrics.csv", encoding: .utf8)
        #expect(metrics.split(separator: "\n").first?.hasSuffix("data_wait_seconds") == true, "\(metrics)")
    }

    @Test("early stopping and a plateau schedule under mpirun: 1–3 ranks stop at the epoch one process stops at, with its rates and model, and so does a job resumed one epoch before the stop")
    func validationSteers() throws {
        let flags = ["--data", CLITests.sample, "--layers", "784,24,10", "--batch-size", "100", "--shard-size", "16", "--epochs", "40",
                     "--validation-fraction", "0.2", "--monitor", "validation-loss", "--learning-rate", "0.2", "--lr-schedule", "plateau",
                     "--plateau-patience", "1", "--plateau-factor", "0.5", "--early-stopping", "3", "--quiet"]
        /// The stopping position, the best epoch, every epoch's learning rate and the final model's parameters.
        func outcome(_ runDir: String) throws -> (position: TrainingPosition, best: Int?, rates: [Substring], parameters: [UInt32]) {
            let last = try Checkpoint.load(from: "\(directory)/\(runDir)/last.h5")
            let model = try Checkpoint.load(from: "\(directory)/\(runDir)/model.h5")
            let lines = try String(contentsOfFile: "\(directory)/\(runDir)/metrics.csv", encoding: .utf8).split(separator: "\n")
            let column = try #require(lines[0].split(separator: ",").firstIndex(of: "learning_rate"))
            let rates = lines.dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false)[column] }
            return (last.position, last.history.best?.epoch, rates, model.network.parameters.map(\.bitPattern))
        }
        let single = try run(executable, ["train", "--run-dir", "single", "--workers", "1"] + flags, in: directory)
        try #require(single.status == 0, "\(single.standardError)")
        let reference = try outcome("single")
        try #require(reference.position.epoch < 40 && Set(reference.rates).count > 1, "it stopped early, after a reduction: \(reference)")
        for ranks in 1...3 {
            let job = try mpirun(ranks, ["train", "--run-dir", "job-\(ranks)"] + flags)
            try #require(job.status == 0, "\(ranks) ranks: \(job.standardError)")
            let result = try outcome("job-\(ranks)")
            #expect(result.position == reference.position && result.best == reference.best && result.rates == reference.rates
                    && result.parameters == reference.parameters, "\(ranks) ranks")
        }
        let stop = "\(reference.position.epoch - 1)"
        let first = try mpirun(2, ["train", "--run-dir", "resumed"] + flags.map { $0 == "40" ? stop : $0 })
        try #require(first.status == 0, "\(first.standardError)")
        let second = try mpirun(3, ["train", "--resume", "resumed", "--override", "--epochs", "40", "--quiet"])
        try #require(second.status == 0, "\(second.standardError)")
        let resumed = try outcome("resumed")
        #expect(resumed.position == reference.position && resumed.best == reference.best && resumed.rates == reference.rates
                && resumed.parameters == reference.parameters)
    }

    /// The rank mpirun names as the first to exit non-zero ("Process name: [[job,1],rank]").
    static func firstFailingRank(_ standardError: String) -> Int? {
        guard let line = standardError.split(separator: "\n").first(where: { $0.contains("Process name: [[") }),
              let rank = line.split(separator: ",").last?.dropLast() else { return nil }
        return Int(rank)
    }

    @Test("""
        a rank with other settings or other data is refused by rank and name, and a divergence every rank reaches is \
        reported: in one line, by rank 0, the first rank to exit non-zero (mpirun ends the others); a refusal writes nothing
        """)
    func sharedOutcomes() throws {
        let other = "\(directory)/other.h5"
        try FileManager.default.copyItem(atPath: CLITests.sample, toPath: other)
        // The same shapes, one pixel changed: another fingerprint.
        let edit = try run("/usr/bin/python3", ["-c", "import h5py; f = h5py.File('\(other)', 'r+'); x = f['train/x']; "
                                                + "row = x[0]; row[0] = (int(row[0]) + 1) % 256; x[0] = row"])
        try #require(edit.status == 0, "\(edit.standardError)")
        let base = training("refused", optimizer: "momentum")
        let diverging = training("diverged", optimizer: "momentum") + ["--learning-rate", "1e30"]
        for (first, second, fragment) in [
            (base, base + ["--learning-rate", "0.1"], "rank 1 of 2 differs from rank 0 in its setting schedule.base: 0.1, rank 0 has 0.05"),
            (base, base.map { $0 == CLITests.sample ? other : $0 }, "rank 1 of 2 differs from rank 0 in its data fingerprint"),
            (diverging, diverging, "training diverged at step"),
        ] {
            let result = try run(Self.mpirun, ["--bind-to", "none", "-np", "1", executable] + first + [":", "-np", "1", executable] + second,
                                 in: directory, environment: Self.environment)
            #expect(result.status != 0)
            let errors = result.standardError.split(separator: "\n").filter { $0.hasPrefix("error:") }
            #expect(errors.count == 1 && errors[0].contains(fragment), "\(result.standardError)")
            #expect(Self.firstFailingRank(result.standardError) == 0, "\(result.standardError)")
            #expect(!FileManager.default.fileExists(atPath: "\(directory)/refused/config.json"))
        }
    }

    @Test("SIGTERM to mpirun: every rank stops after the same step, rank 0 writes a checkpoint, and the resume finishes the same run")
    func stopAndResume() throws {
        let straight = try run(executable, training("straight", optimizer: "adam", extra: ["--epochs", "40"]), in: directory)
        try #require(straight.status == 0, "\(straight.standardError)")
        // Through a launcher that unblocks SIGTERM: the test's thread may block it, and mpirun
        // (unlike backprop) inherits a blocked signal without unblocking it.
        let job = try start("/usr/bin/python3", ["-c", Self.unblocking, Self.mpirun, "--bind-to", "none", "-np", "3", executable]
                            + training("stopped", optimizer: "adam", extra: ["--epochs", "40", "--checkpoint-every", "3"]),
                            in: directory, outputFile: "\(directory)/stopped.log", environment: Self.environment)
        // Stop it once its first checkpoints are there.
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: "\(directory)/stopped/last.h5") && Date() < deadline {
            usleep(20_000)
        }
        kill(job.processIdentifier, SIGTERM)
        job.waitUntilExit()
        let log = try String(contentsOfFile: "\(directory)/stopped.log", encoding: .utf8)
        // Open MPI 4.1's mpirun exits 1 when it is signalled; rank 0 exited 143 after the checkpoint, the others 0.
        #expect(job.terminationStatus != 0, "\(log)")
        #expect(log.contains("resume with: backprop train --resume stopped"), "\(log)")
        let resumed = try mpirun(2, ["train", "--resume", "stopped", "--quiet"])
        try #require(resumed.status == 0, "\(resumed.standardError)")
        let (a, b) = (try outcome("straight"), try outcome("stopped"))
        #expect(a.parameters.map(\.bitPattern) == b.parameters.map(\.bitPattern) && a.state == b.state && a.losses == b.losses)
    }

    @Test("SIGKILL of one rank ends the job with a non-zero status within 60 s; every checkpoint left validates and resumes")
    func rankDeath() throws {
        let job = try start(Self.mpirun, ["--bind-to", "none", "-np", "3", executable]
                            + training("killed", optimizer: "momentum", extra: ["--epochs", "400", "--checkpoint-every", "1"]),
                            in: directory, outputFile: "\(directory)/killed.log", environment: Self.environment)
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: "\(directory)/killed/last.h5") && Date() < deadline {
            usleep(20_000)
        }
        // A rank other than 0: the children of mpirun that run backprop, the second of them.
        let ranks = try run("/usr/bin/pgrep", ["-P", "\(job.processIdentifier)", "-f", "backprop train"]).standardOutput
            .split(separator: "\n").compactMap { Int32($0) }.sorted()
        try #require(ranks.count == 3, "ranks: \(ranks)")
        let killed = Date()
        kill(ranks[1], SIGKILL)
        job.waitUntilExit()
        #expect(Date().timeIntervalSince(killed) < 60)
        #expect(job.terminationStatus != 0)
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(directory)/killed").filter { $0.hasSuffix(".h5") }
        #expect(!files.isEmpty)
        for file in files { #expect(throws: Never.self, "\(file)") { try Checkpoint.load(from: "\(directory)/killed/\(file)") } }
        let resumed = try mpirun(2, ["train", "--resume", "killed", "--override", "--epochs", "1", "--quiet"])
        #expect(resumed.status == 0, "\(resumed.standardError)")
    }
}
