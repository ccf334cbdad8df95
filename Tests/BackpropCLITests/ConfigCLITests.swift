import BackpropCore
import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// `--config`: settings files, and their refusals.
extension CLITests {
    @Test("--config: a JSON or YAML file of settings, overridden by flags given on the command line")
    func configFile() throws {
        let file = "\(directory)/run.json"
        try Data(#"{"data": "\#(Self.sample)", "layers": [784, 16, 10], "epochs": 1, "batch-size": 64, "shuffle": false}"#.utf8)
            .write(to: URL(fileURLWithPath: file))
        let result = try backprop("train", "--config", file, "--epochs", "2", "--run-dir", "run")
        #expect(result.status == 0, "\(result.standardError)")
        let checkpoint = try Checkpoint.load(from: "\(directory)/run/model.h5")
        #expect(checkpoint.configuration.epochs == 2, "the flag wins over the file")
        #expect(checkpoint.configuration.batchSize == 64 && !checkpoint.configuration.shuffle && checkpoint.network.sizes == [784, 16, 10])

        let yaml = "\(directory)/run.yaml"
        try Data("# a comment\ndata: \(Self.sample)\nlayers: [784, 12, 10]\nepochs: 1\nbatch-size: 100\nlearning-rate: 0.1\n".utf8)
            .write(to: URL(fileURLWithPath: yaml))
        let fromYAML = try backprop("train", "--config", yaml, "--run-dir", "yaml")
        #expect(fromYAML.status == 0, "\(fromYAML.standardError)")
        let yamlCheckpoint = try Checkpoint.load(from: "\(directory)/yaml/model.h5")
        #expect(yamlCheckpoint.configuration.batchSize == 100 && yamlCheckpoint.configuration.epochs == 1)
        #expect(yamlCheckpoint.configuration.schedule.base == 0.1 && yamlCheckpoint.network.sizes == [784, 12, 10])

        try Data("[1, 2]".utf8).write(to: URL(fileURLWithPath: "\(directory)/bad.json"))
        let bad = try backprop("train", "--config", "bad.json")
        #expect(bad.status != 0 && bad.standardError.contains("bad.json") && bad.standardError.split(separator: "\n").count == 1)
    }

    @Test("the committed recipe datasets/fashion-mnist-best.yaml is a valid run: it resolves (on the sample, which has an image shape) to the settings the README's table was made with")
    func committedRecipe() throws {
        let recipe = URL(fileURLWithPath: Self.sample).deletingLastPathComponent().appendingPathComponent("fashion-mnist-best.yaml").path
        let result = try backprop("train", "--config", recipe, "--data", Self.sample, "--seed", "1", "--print-config", "--format", "json")
        try #require(result.status == 0, "\(result.standardError)")
        let settings = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        #expect(settings["layers"] as? [Int] == [784, 1024, 1024, 10] && settings["epochs"] as? Int == 200)
        #expect(settings["validation-fraction"] as? Double == 0.1 && settings["early-stopping"] as? Int == 50)
        #expect(settings["dropout"] as? Double == 0.3 && settings["input-dropout"] as? Double == 0.1 && settings["augment"] as? String == "flip")
    }

    @Test("--config refuses, by file name and in a moment: keys given twice (JSON and YAML), an unknown key, YAML alias bombs, a second --config")
    func hostileConfigFiles() throws {
        // 9 levels of 9 references: ~387 million values once expanded; and 3 levels of 1,000 (10⁹).
        var bomb = "a: &a [" + Array(repeating: "\"lol\"", count: 9).joined(separator: ",") + "]\n"
        for (previous, name) in zip("abcdefgh", "bcdefghi") {
            bomb += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ",") + "]\n"
        }
        let wide = "a: &a [" + Array(repeating: "1", count: 1000).joined(separator: ",") + "]\n"
            + "b: &b [" + Array(repeating: "*a", count: 1000).joined(separator: ",") + "]\n"
            + "c: [" + Array(repeating: "*b", count: 1000).joined(separator: ",") + "]\n"
        let files = temporaryDirectory("cli-config")  // not in `directory`, which must stay empty
        for (name, text, fragment) in [
            ("twice.json", #"{"epochs": 1, "epochs": 2}"#, "the key 'epochs' is given twice"),
            ("twice.yaml", "epochs: 1\nepochs: 2\n", "the key 'epochs' is given twice"),
            ("unknown.json", #"{"epoch": 1}"#, "'epoch' is not a setting of this command"),
            ("bomb.yaml", bomb, "holds more values, or nests deeper, than a file of settings does"),
            ("wide.yaml", wide, "holds more values, or nests deeper, than a file of settings does"),
        ] {
            try Data(text.utf8).write(to: URL(fileURLWithPath: "\(files)/\(name)"))
            let start = Date()
            try expectFailure(try backprop("train", "--data", Self.sample, "--config", "\(files)/\(name)"), mentions: [name, fragment])
            #expect(Date().timeIntervalSince(start) < 30, "\(name) took \(Date().timeIntervalSince(start)) s")
        }
        try Data(#"{"epochs": 1}"#.utf8).write(to: URL(fileURLWithPath: "\(files)/one.json"))
        let twice = try backprop("train", "--config", "\(files)/one.json", "--config", "\(files)/one.json")
        #expect(twice.status == 64 && twice.standardError.contains("--config is given more than once"), "\(twice.standardError)")
    }

    /// The tables of the import tests, written by NumPy into `directory`.
    func writeTables() throws {
        let make = """
        import numpy as np
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (50, 6), dtype=np.uint8); y = rng.integers(0, 3, 50)
        np.save('x.npy', x); np.save('y.npy', y); np.save('x-float.npy', x.astype(np.float32))
        np.save('x-fraction.npy', x.astype(np.float32) + 0.5); np.save('y-short.npy', y[:10])
        np.save('y-fraction.npy', y + 0.5); np.save('y-wide.npy', np.stack([y, y], axis=1).astype(np.float32))
        open('words.csv', 'w').write('1,2,0\\n3,x,1\\n')
        np.save('x-fortran.npy', np.asfortranarray(x)); open('x-text.npy', 'w').write('not numpy')
        open('header.csv', 'w').write('label,a,b\\n' + ''.join(f'{l},{r[0]},{r[1]}\\n' for r, l in zip(x, y)))
        open('plain.csv', 'w').write(''.join(f'{r[0]},{r[1]},{l}\\n' for r, l in zip(x, y)))
        open('ragged.csv', 'w').write('1,2,3\\n4,5\\n'); open('negative.csv', 'w').write('1,-2,0\\n')
        # RFC 4180 as R's write.csv and Excel write it: BOM, quoted header and fields, CRLF.
        open('quoted.csv', 'wb').write(b'\\xef\\xbb\\xbf"label","a","b"\\r\\n' + b''.join(
            f'{l},"{r[0]}",{r[1]}\\r\\n'.encode() for r, l in zip(x, y)))
        open('wide-header.csv', 'w').write('a,b,c,d,label\\n1,2,0\\n3,4,1\\n')
        open('duplicate.csv', 'w').write('a,a,label\\n1,2,0\\n3,4,1\\n')
        open('open-quote.csv', 'w').write('a,b,label\\n1,"2,0\\n3,4,1\\n')
        open('inner-quote.csv', 'w').write('a,b,label\\n1,2"x,0\\n3,4,1\\n')
        open('fractions.csv', 'w').write('1.5,2,0\\n3,4,1\\n')
        def npy_header(path, shape):  # a header whose shape overflows or does not parse
            h = ("{'descr': '|u1', 'fortran_order': False, 'shape': " + shape + ", }").encode()
            h += b' ' * (64 - (10 + len(h) + 1) % 64) + b'\\n'
            open(path, 'wb').write(b'\\x93NUMPY\\x01\\x00' + len(h).to_bytes(2, 'little') + h)
        npy_header('x-overflow.npy', '(4294967296, 4294967296)'); npy_header('x-huge.npy', '(99999999999999999999, 2)')
        """
        let made = try run("/usr/bin/python3", ["-c", make], in: directory)
        try #require(made.status == 0, "numpy is needed: \(made.standardError)")
    }
}

extension CLITests {
    @Test("train --print-config prints the resolved settings (YAML or JSON), trains nothing, and given back as --config runs the same bits",
          arguments: ["yaml", "json"])
    func printConfig(format: String) throws {
        let flags = ["train", "--data", Self.sample, "--layers", "784,12,10", "--epochs", "2", "--optimizer", "adamw",
                     "--learning-rate", "0.003", "--lr-schedule", "cosine", "--warmup-steps", "2", "--seed", "5"]
        let printed = try backprop(flags + ["--print-config", "--format", format])
        #expect(printed.status == 0, "\(printed.standardError)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty, "--print-config wrote files")
        #expect(printed.standardOutput.contains(format == "yaml" ? "learning-rate: 0.003" : "\"learning-rate\" : 0.003"),
                "\(printed.standardOutput)")
        let file = "\(directory)/settings.\(format)"
        try printed.standardOutput.write(toFile: file, atomically: true, encoding: .utf8)
        let direct = try backprop(flags + ["--run-dir", "direct", "--quiet"])
        let configured = try backprop(["train", "--config", file, "--run-dir", "configured", "--quiet"])
        try #require(direct.status == 0 && configured.status == 0, "\(direct.standardError) \(configured.standardError)")
        let a = try Checkpoint.load(from: "\(directory)/direct/model.h5"), b = try Checkpoint.load(from: "\(directory)/configured/model.h5")
        #expect(a.network.fingerprint == b.network.fingerprint && a.configuration == b.configuration)
        let reprinted = try backprop(["train", "--config", file, "--print-config", "--format", format])
        #expect(reprinted.standardOutput == printed.standardOutput)
        let stray = try backprop(flags + ["--format", "json"])
        #expect(stray.status == 64 && stray.standardError.contains("--format only applies with --print-config"))
    }
}

extension CLITests {
    @Test("shell completion scripts come from the command's definitions: subcommands and train's flags", arguments: ["bash", "zsh", "fish"])
    func completions(shell: String) throws {
        let result = try backprop("--generate-completion-script", shell)
        #expect(result.status == 0 && result.standardOutput.contains("train") && result.standardOutput.contains("learning-rate")
                && result.standardOutput.contains("print-config"), "\(result.standardError)")
    }
}
