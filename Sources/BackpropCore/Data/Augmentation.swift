/// The features of a sample as an image: height × width × channels,
/// row-major with the channels last (HWC), as IDX and NumPy store images.
public struct ImageShape: Sendable, Equatable, Codable, CustomStringConvertible {
    public let height: Int
    public let width: Int
    public let channels: Int

    public init(height: Int, width: Int, channels: Int = 1) {
        self.height = height
        self.width = width
        self.channels = channels
    }

    /// The values of one image.
    public var featureCount: Int { height * width * channels }

    /// "28x28", or "32x32x3" with more than one channel.
    public var description: String { "\(height)x\(width)" + (channels == 1 ? "" : "x\(channels)") }

    /// "H,W" or "H,W,C" (the form flags take), each a whole number ≥ 1; nil otherwise.
    public init?(parsing text: String) {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2 || parts.count == 3, parts.allSatisfy({ ($0 ?? 0) >= 1 && ($0 ?? 0) <= 1 << 20 }) else { return nil }
        self.init(height: parts[0]!, width: parts[1]!, channels: parts.count == 3 ? parts[2]! : 1)
    }
}

/// Augmentation of image samples in training: each sample, in each epoch,
/// is translated by (dy, dx), each uniform in −shift … shift pixels (the
/// uncovered pixels 0), and with `flip` mirrored left–right with probability
/// ½ — applied while its bytes are converted to floats for the step, so
/// there is no second copy of the data. The draw is keyed by (seed, epoch,
/// the sample's index in the dataset): the same on any worker or rank
/// count and after a resume. Evaluation and prediction see the images as stored.
public struct Augmentation: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The largest translation, in pixels, along each axis.
    public var shift: Int
    public var flip: Bool

    public init(shift: Int = 0, flip: Bool = false) {
        self.shift = shift
        self.flip = flip
    }

    /// Whether any sample is ever changed.
    public var isActive: Bool { shift > 0 || flip }

    /// "shift=2,flip" (the form `--augment` takes), "none" for nothing.
    public var description: String {
        let parts = (shift > 0 ? ["shift=\(shift)"] : []) + (flip ? ["flip"] : [])
        return parts.isEmpty ? "none" : parts.joined(separator: ",")
    }

    /// Reads "shift=S", "flip", both joined by a comma, or "none"; nil for anything else.
    public init?(parsing text: String) {
        self.init()
        guard text != "none" else { return }
        var seen = Set<String>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false).map({ $0.trimmingCharacters(in: .whitespaces) }) {
            let key = String(part.prefix { $0 != "=" })
            guard seen.insert(key).inserted else { return nil }
            if part == "flip" {
                flip = true
            } else if key == "shift", let s = Int(part.dropFirst(6)), s >= 1, s <= 1 << 20 {
                shift = s
            } else {
                return nil
            }
        }
    }

    /// How many different images the draws can make of one sample: (2S + 1)² translations, × 2 with flips.
    public var viewCount: Int { (2 * shift + 1) * (2 * shift + 1) * (flip ? 2 : 1) }

    /// The place of a draw among the `viewCount` views, in the order a teacher's
    /// views are stored (docs/file-formats.md): dy, then dx, each −S … S, then
    /// unmirrored before mirrored. 0 … viewCount − 1 for a draw this augmentation can make.
    public func viewIndex(dy: Int, dx: Int, mirrored: Bool) -> Int {
        let span = 2 * shift + 1
        return ((dy + shift) * span + (dx + shift)) * (flip ? 2 : 1) + (mirrored ? 1 : 0)
    }

    /// Whether every draw of `other` is one of this augmentation's views.
    public func covers(_ other: Augmentation) -> Bool { other.shift <= shift && (!other.flip || flip) }

    static var stream: UInt64 { 0x4155_474D }  // "AUGM"

    /// What sample `sample` gets in `epoch`: its translation (down, right) and whether it is mirrored.
    /// dy from the low 32 of the key's 64 bits, dx from the next 31, the mirror from the top bit.
    public func draw(seed: UInt64, epoch: Int, sample: Int) -> (dy: Int, dx: Int, mirrored: Bool) {
        let bits = KeyedRandom.bits(seed: seed, stream: Self.stream, step: UInt64(epoch), index: UInt64(sample))
        let span = UInt64(2 * shift + 1)
        let dy = Int(((bits & 0xFFFF_FFFF) * span) >> 32) - shift
        let dx = Int((((bits >> 32) & 0x7FFF_FFFF) * span) >> 31) - shift
        return (dy, dx, flip && bits >> 63 == 1)
    }

    /// out(y, x, c) = u(y − dy, x − dx, c), where u is the image (mirrored:
    /// u(y, x, c) = in(y, W − 1 − x, c)) and 0 outside it. Each output row
    /// is one span of its source row, converted by `copySpan(from, count,
    /// to)` (from: the index of the first value in the stored row) and,
    /// mirrored, reversed pixel by pixel in place.
    @inline(__always)
    static func transform<T: NetworkScalar>(shape: ImageShape, dy: Int, dx: Int, mirrored: Bool, into out: UnsafeMutablePointer<T>,
                                            copySpan: (_ from: Int, _ count: Int, _ to: UnsafeMutablePointer<T>) -> Void) {
        let H = shape.height, W = shape.width, C = shape.channels
        // x − dx within 0..<W: x in first ..< end.
        let first = max(0, dx), end = min(W, W + dx)
        for y in 0..<H {
            let row = out + y * W * C
            let sy = y - dy
            guard sy >= 0 && sy < H && first < end else {
                row.update(repeating: 0, count: W * C)
                continue
            }
            row.update(repeating: 0, count: first * C)
            (row + end * C).update(repeating: 0, count: (W - end) * C)
            // Unmirrored, columns x − dx; mirrored, W − 1 − (x − dx): either way one run of end − first columns.
            let column = mirrored ? W - end + dx : first - dx
            copySpan((sy * W + column) * C, (end - first) * C, row + first * C)
            if mirrored {
                var (a, b) = (first, end - 1)
                while a < b {
                    for c in 0..<C { swap(&row[a * C + c], &row[b * C + c]) }
                    a += 1
                    b -= 1
                }
            }
        }
    }
}

/// Augmentation as a step applies it: the draw's seed and the image shape.
struct AugmentationPlan: Sendable {
    let augmentation: Augmentation
    let shape: ImageShape
    let seed: UInt64
}
