// Reading IDX files (the format of MNIST and Fashion-MNIST), plain or gzip.
//
// An IDX file is: two zero bytes, a type byte (0x08 = unsigned byte), the
// number of dimensions d, then d big-endian 32-bit sizes, then the data in
// row-major order. Only unsigned-byte data is read. zlib's gzread reads
// gzip-compressed and plain files alike.
import BackpropCore
import BackpropIO
import CZlib
import Foundation

/// An IDX array of unsigned bytes.
public struct IDXArray: Sendable, Equatable {
    public let shape: [Int]
    public let bytes: [UInt8]

    /// The most bytes an IDX array may declare (1 GiB).
    public static let byteLimit = 1 << 30
    /// The most a gzip-compressed IDX file may inflate, as a multiple of its size.
    public static let inflationLimit = 200

    /// Reads an IDX file (plain or .gz).
    /// - Throws: `StorageError.missingFile`, `.io`, `.invalidContent` for a bad header or short data.
    public static func read(_ path: String) throws(StorageError) -> IDXArray {
        guard FileSystem.exists(path) else { throw .missingFile(path: path) }
        guard let file = gzopen(path, "rb") else { throw .io(path: path, reason: "cannot open") }
        defer { gzclose(file) }

        func readExactly(_ count: Int, _ what: String) throws(StorageError) -> [UInt8] {
            var buffer = [UInt8](repeating: 0, count: count)
            var done = 0
            while done < count {
                let chunk = Int32(min(count - done, 1 << 30))
                let n = buffer.withUnsafeMutableBytes { gzread(file, $0.baseAddress! + done, UInt32(chunk)) }
                guard n > 0 else {
                    throw .invalidContent(path: path, object: "IDX \(what)", reason: "ends after \(done) of \(count) bytes (truncated or not IDX)")
                }
                done += Int(n)
            }
            return buffer
        }

        let magic = try readExactly(4, "header")
        guard magic[0] == 0, magic[1] == 0 else {
            throw .invalidContent(path: path, object: "IDX header", reason: "does not start with two zero bytes; not an IDX file")
        }
        guard magic[2] == 0x08 else {
            throw .invalidContent(path: path, object: "IDX header", reason: "element type 0x\(String(magic[2], radix: 16)) is not unsigned byte (0x08)")
        }
        let rank = Int(magic[3])
        guard (1...4).contains(rank) else {
            throw .invalidContent(path: path, object: "IDX header", reason: "declares \(rank) dimensions")
        }
        let sizeBytes = try readExactly(4 * rank, "dimensions")
        var shape: [Int] = []
        var total = 1
        for d in 0..<rank {
            let size = sizeBytes[(4 * d)..<(4 * d + 4)].reduce(0) { $0 << 8 | Int($1) }
            guard size > 0 else {
                throw .invalidContent(path: path, object: "IDX header", reason: "declares dimension \(d + 1) of size 0")
            }
            total *= size
            guard total <= byteLimit else {
                throw .invalidContent(path: path, object: "IDX header", reason: "declares more than \(byteLimit) bytes")
            }
            shape.append(size)
        }
        let count = total
        // gzip: a few hundred bytes can inflate to the limit. Real data
        // (images, labels) compresses a few times; refuse more than
        // `inflationLimit` times the file's own size before inflating it.
        if gzdirect(file) == 0, let size = try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int,
           count > inflationLimit * max(size, 1) {
            throw .invalidContent(path: path, object: "IDX data",
                                  reason: "declares \(count) bytes from a \(size)-byte gzip file, more than \(inflationLimit) times its size")
        }
        return IDXArray(shape: shape, bytes: try readExactly(count, "data"))
    }
}

/// Turns the four IDX files of MNIST or Fashion-MNIST into one dataset file.
public enum IDXImport {
    /// The file stems, in Debian's dataset-fashion-mnist naming.
    public static let stems = (
        trainImages: "train-images-idx3-ubyte", trainLabels: "train-labels-idx1-ubyte",
        testImages: "t10k-images-idx3-ubyte", testLabels: "t10k-labels-idx1-ubyte")

    /// Finds `stem.gz` or `stem` in `directory`.
    static func locate(_ stem: String, in directory: String) throws(StorageError) -> String {
        for candidate in ["\(directory)/\(stem).gz", "\(directory)/\(stem)"] where FileSystem.exists(candidate) {
            return candidate
        }
        throw .missingFile(path: "\(directory)/\(stem)[.gz]")
    }

    /// The image shape of one sample's dimensions [H, W] or [H, W, C]; nil for any other.
    public static func imageShape(of dimensions: [Int]) -> ImageShape? {
        guard dimensions.count == 2 || dimensions.count == 3, dimensions.allSatisfy({ $0 >= 1 && $0 <= 1 << 20 }) else { return nil }
        return ImageShape(height: dimensions[0], width: dimensions[1], channels: dimensions.count == 3 ? dimensions[2] : 1)
    }

    /// Reads one split from its images and labels files.
    static func split(images: String, labels: String, limit: Int?) throws(StorageError) -> Dataset {
        let x = try IDXArray.read(images)
        let y = try IDXArray.read(labels)
        guard x.shape.count >= 2 else {
            throw .invalidContent(path: images, object: "IDX header", reason: "has \(x.shape.count) dimension; images need at least 2")
        }
        guard y.shape.count == 1 else {
            throw .invalidContent(path: labels, object: "IDX header", reason: "has \(y.shape.count) dimensions; labels need 1")
        }
        guard x.shape[0] == y.shape[0] else {
            throw .wrongShape(path: labels, object: "labels", expected: "\(x.shape[0]) (the images in \(images))", found: "\(y.shape[0])")
        }
        let featureCount = x.shape.dropFirst().reduce(1, *)
        let n = min(limit ?? x.shape[0], x.shape[0])
        var dataset = Dataset(name: images, features: Array(x.bytes.prefix(n * featureCount)),
                              labels: Array(y.bytes.prefix(n)), featureCount: featureCount, scale: 1 / 255)
        // [N, H, W] or [N, H, W, C] are images (what --augment needs).
        dataset.imageShape = imageShape(of: Array(x.shape.dropFirst()))
        return dataset
    }

    /// Reads the four files from `directory` and writes the dataset file `output`.
    ///
    /// - Parameters:
    ///   - directory: where the four IDX files are (gzipped or plain).
    ///   - output: the dataset file to write.
    ///   - name: the name recorded in the file.
    ///   - trainLimit: keep only the first training samples (to make a small sample).
    ///   - testLimit: keep only the first test samples.
    ///   - classNames: the classes' names, stored in the file.
    /// - Returns: the train and test sets written.
    @discardableResult
    public static func run(
        from directory: String, to output: String, name: String,
        trainLimit: Int? = nil, testLimit: Int? = nil, classNames: [String]? = nil
    ) throws(StorageError) -> (train: Dataset, test: Dataset) {
        let (train, test) = try read(from: directory, trainLimit: trainLimit, testLimit: testLimit)
        try DatasetFile.write(train: train, test: test, attributes: attributes(name: name, directory: directory),
                              classNames: classNames, to: output)
        return (train, test)
    }

    /// Reads the four files of `directory` (the first `trainLimit` and `testLimit` samples).
    public static func read(from directory: String, trainLimit: Int? = nil, testLimit: Int? = nil)
        throws(StorageError) -> (train: Dataset, test: Dataset) {
        let train = try split(images: try locate(stems.trainImages, in: directory),
                              labels: try locate(stems.trainLabels, in: directory), limit: trainLimit)
        let test = try split(images: try locate(stems.testImages, in: directory),
                             labels: try locate(stems.testLabels, in: directory), limit: testLimit)
        return (train, test)
    }

    /// The root attributes of an imported file: where it came from.
    public static func attributes(name: String, directory: String) -> [String: String] {
        ["source": "\(name) IDX files from \(directory)", "name": name]
    }
}
