/// A teacher's class probabilities p beside a split's rows, one row of
/// [views, classes] a sample: what a distilled run is taught
/// (`Distillation`). A column like the targets: whoever slices the rows
/// (`RowSource.rows`, a subset, a streamed batch) slices it beside them.
///
/// The images the probabilities are of: with no views (one), the sample as
/// stored; otherwise each of `views`' views (`Augmentation.viewIndex`), so
/// that a sample augmented in training is taught the teacher's probabilities
/// of the image the student sees (Beyer et al. 2022, "consistent teaching").
public struct TeacherColumn: Sendable, Equatable {
    /// [count, views, classes] row-major.
    public let probabilities: [Float]
    /// The views each row holds the probabilities of (inactive: one, the stored image).
    public let views: Augmentation

    public init(_ probabilities: [Float], views: Augmentation = Augmentation()) {
        self.probabilities = probabilities
        self.views = views
    }

    /// The values a sample holds: views × classes.
    func rowWidth(samples: Int) -> Int { probabilities.count / max(samples, 1) }

    /// The rows of samples `rows` (of `samples` in all).
    func rows(_ rows: Range<Int>, of samples: Int) -> TeacherColumn {
        let width = rowWidth(samples: samples)
        return TeacherColumn(Array(probabilities[(rows.lowerBound * width)..<(rows.upperBound * width)]), views: views)
    }

    /// The rows of the samples `indices` (of `samples` in all), in that order.
    func rows<S: Sequence>(at indices: S, of samples: Int) -> TeacherColumn where S.Element: BinaryInteger {
        let width = rowWidth(samples: samples)
        var picked: [Float] = []
        for i in indices { picked += probabilities[(Int(i) * width)..<((Int(i) + 1) * width)] }
        return TeacherColumn(picked, views: views)
    }

    /// Mixes the column into `hash` as a split's fingerprint has always
    /// continued after its rows (`RowSource.taughtFingerprint`): the
    /// probabilities, then the views' description when there are views.
    func mix(into hash: inout Fingerprint) {
        hash.mix(array: probabilities)
        if views.isActive { hash.mix(array: Array(views.description.utf8)) }
    }

    /// The column's own identity, "teacher 1000x1x10 fnv1a64 …" for `samples`
    /// rows: what tells a changed teacher from changed data on resume.
    public func fingerprint(samples: Int) -> String {
        var hash = Fingerprint()
        mix(into: &hash)
        let width = probabilities.count / max(samples * views.viewCount, 1)
        return "teacher \(samples)x\(views.viewCount)x\(width) fnv1a64 " + hash.hex
    }
}

extension Fingerprint {
    /// The hash as 16 hex digits.
    public var hex: String {
        let digits = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
