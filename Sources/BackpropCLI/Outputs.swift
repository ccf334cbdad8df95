import ArgumentParser
import BackpropHDF5
import BackpropIO
import Foundation

/// Refuses an output that is one of the command's inputs (the same path, or
/// the same file through a link): writing it would destroy the input; or one
/// of the files `train` manages in a run directory (`runDirectory`: the run
/// about to start's), whose run it would break.
/// - Throws: `ValidationError` naming the flag, the output and the input.
func refuseOverwritingInputs(_ output: String, flag: String, inputs: [String], runDirectory: String? = nil) throws {
    if RunDirectory.isManagedFile(output, runDirectory: runDirectory) {
        throw ValidationError("\(flag) \(output) names a file that train manages in a run directory "
                              + "(checkpoints, last.h5, best.h5, config.json, metrics.csv, curves.svg, .lock); write the output elsewhere.")
    }
    func sameFile(_ a: String, _ b: String) -> Bool {
        let resolved = [a, b].map { URL(fileURLWithPath: $0).standardizedFileURL.resolvingSymlinksInPath().path }
        if resolved[0] == resolved[1] { return true }
        var first = stat(), second = stat()
        // A path that cannot be stat'ed (an output not written yet) is no input.
        guard (try? systemCall("stat", { stat(a, &first) })) != nil, (try? systemCall("stat", { stat(b, &second) })) != nil else { return false }
        return first.st_dev == second.st_dev && first.st_ino == second.st_ino
    }
    if let input = inputs.first(where: { sameFile(output, $0) }) {
        throw ValidationError("\(flag) \(output) would overwrite \(input), an input of this command; write the output elsewhere.")
    }
}
