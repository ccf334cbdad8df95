@testable import BackpropCore
import BackpropTestSupport
import Foundation
import Testing

/// Augmentation (Augmentation.swift): each sample translated and mirrored as
/// drawn for (seed, epoch, sample) while its bytes become floats.
struct AugmentationTests {
    /// out(y, x, c) = in(y − dy, W − 1 − (x − dx), c) mirrored, in(y − dy, x − dx, c) not, 0 outside: the definition, pixel by pixel.
    func reference(_ image: [Float], _ shape: ImageShape, dy: Int, dx: Int, mirrored: Bool) -> [Float] {
        var out = [Float](repeating: 0, count: image.count)
        for y in 0..<shape.height {
            for x in 0..<shape.width {
                let sy = y - dy, sx = x - dx
                guard sy >= 0, sy < shape.height, sx >= 0, sx < shape.width else { continue }
                let column = mirrored ? shape.width - 1 - sx : sx
                for c in 0..<shape.channels {
                    out[(y * shape.width + x) * shape.channels + c] = image[(sy * shape.width + column) * shape.channels + c]
                }
            }
        }
        return out
    }

    func transformed(_ image: [Float], _ shape: ImageShape, dy: Int, dx: Int, mirrored: Bool) -> [Float] {
        var out = [Float](repeating: .nan, count: image.count)
        out.withUnsafeMutableBufferPointer { out in
            Augmentation.transform(shape: shape, dy: dy, dx: dx, mirrored: mirrored, into: out.baseAddress!,
                                   copySpan: { from, count, to in for i in 0..<count { to[i] = image[from + i] } })
        }
        return out
    }

    @Test("a known 3×4 image: shifted down 1 and left 1, and mirrored, gives the pixels worked out by hand")
    func handComputed() {
        let shape = ImageShape(height: 3, width: 4)
        let image: [Float] = [1, 2, 3, 4,
                              5, 6, 7, 8,
                              9, 10, 11, 12]
        #expect(transformed(image, shape, dy: 1, dx: -1, mirrored: false) == [0, 0, 0, 0,
                                                                             2, 3, 4, 0,
                                                                             6, 7, 8, 0])
        #expect(transformed(image, shape, dy: 0, dx: 0, mirrored: true) == [4, 3, 2, 1,
                                                                           8, 7, 6, 5,
                                                                           12, 11, 10, 9])
        #expect(transformed(image, shape, dy: -2, dx: 2, mirrored: true) == [0, 0, 12, 11,
                                                                            0, 0, 0, 0,
                                                                            0, 0, 0, 0])
        #expect(transformed(image, shape, dy: 0, dx: 4, mirrored: false) == [Float](repeating: 0, count: 12))
    }

    @Test("every translation up to ±3 and both mirrors, with 1 and 3 channels, match the definition")
    func everyShift() {
        for shape in [ImageShape(height: 5, width: 7), ImageShape(height: 4, width: 3, channels: 3)] {
            let image = (0..<shape.featureCount).map { Float($0 + 1) }
            for dy in -3...3 {
                for dx in -3...3 {
                    for mirrored in [false, true] {
                        #expect(transformed(image, shape, dy: dy, dx: dx, mirrored: mirrored)
                                == reference(image, shape, dy: dy, dx: dx, mirrored: mirrored), "\(shape) \(dy) \(dx) \(mirrored)")
                    }
                }
            }
        }
    }

    @Test("the draws: dy and dx uniform over −s…s, a mirror half the time, keyed by (seed, epoch, sample) alone")
    func draws() {
        let augmentation = Augmentation(shift: 2, flip: true)
        var counts = [Int](repeating: 0, count: 25), mirrors = 0
        let n = 20_000
        for sample in 0..<n {
            let d = augmentation.draw(seed: 1, epoch: 3, sample: sample)
            counts[(d.dy + 2) * 5 + d.dx + 2] += 1
            if d.mirrored { mirrors += 1 }
            #expect(d == augmentation.draw(seed: 1, epoch: 3, sample: sample))
        }
        // Each of the 25 translations within 5σ of n/25, the mirrors of n/2.
        let expected = Double(n) / 25, σ = (expected * 24 / 25).squareRoot()
        #expect(counts.allSatisfy { abs(Double($0) - expected) < 5 * σ }, "\(counts)")
        #expect(abs(Double(mirrors) - Double(n) / 2) < 5 * (Double(n) / 4).squareRoot())
        let epochs = (0..<100).filter { augmentation.draw(seed: 1, epoch: 3, sample: $0) != augmentation.draw(seed: 1, epoch: 4, sample: $0) }
        let seeds = (0..<100).filter { augmentation.draw(seed: 1, epoch: 3, sample: $0) != augmentation.draw(seed: 2, epoch: 3, sample: $0) }
        #expect(epochs.count > 80 && seeds.count > 80)
        #expect((0..<200).allSatisfy { let d = Augmentation(flip: true).draw(seed: 5, epoch: 1, sample: $0); return d.dy == 0 && d.dx == 0 })
        #expect((0..<200).allSatisfy { Augmentation(shift: 3).draw(seed: 5, epoch: 1, sample: $0).mirrored == false })
    }

    @Test("gather applies each sample's draw while converting bytes (and floats), and leaves evaluation's rows as stored")
    func gather() {
        let shape = ImageShape(height: 5, width: 6)
        var bytes = randomDataset(count: 40, featureCount: 30, classCount: 3, seed: 8)
        bytes.imageShape = shape
        let plan = AugmentationPlan(augmentation: Augmentation(shift: 2, flip: true), shape: shape, seed: 11)
        let (stored, _) = bytes.arrays(outputCount: 3, as: Float.self)
        guard case .bytes(let raw, let scale) = bytes.features else { Issue.record("byte features"); return }
        let floats = Dataset(name: "floats", features: .floats(raw.map { Float($0) * scale }), targets: bytes.targets, featureCount: 30)
        let indices: [Int32] = [3, 0, 39, 17, 17, 22]
        for dataset in [bytes, floats] {
            var x = [Float](repeating: .nan, count: indices.count * 30), t = [Float](repeating: .nan, count: indices.count * 3)
            indices.withUnsafeBufferPointer { indices in
                dataset.gather(indices, inputs: &x, targets: &t, outputCount: 3, augmentation: plan, epoch: 2)
            }
            var changed = 0
            for (r, index) in indices.enumerated() {
                let d = plan.augmentation.draw(seed: 11, epoch: 2, sample: Int(index))
                let row = Array(stored[(Int(index) * 30)..<(Int(index) * 30 + 30)])
                let expected = reference(row, shape, dy: d.dy, dx: d.dx, mirrored: d.mirrored)
                #expect(Array(x[(r * 30)..<(r * 30 + 30)]) == expected, "\(dataset.name) row \(r)")
                if expected != row { changed += 1 }
            }
            #expect(changed >= 4, "\(changed) of \(indices.count) rows augmented")
            // Without a plan, the rows as stored.
            indices.withUnsafeBufferPointer { indices in dataset.gather(indices, inputs: &x, targets: &t, outputCount: 3) }
            #expect(x == indices.flatMap { stored[(Int($0) * 30)..<(Int($0) * 30 + 30)] })
        }
    }

    @Test("--augment and --image-shape parse their forms and refuse the rest")
    func parsing() {
        #expect(Augmentation(parsing: "shift=2,flip") == Augmentation(shift: 2, flip: true))
        #expect(Augmentation(parsing: "flip, shift=1") == Augmentation(shift: 1, flip: true))
        #expect(Augmentation(parsing: "none") == Augmentation() && Augmentation().description == "none")
        #expect(Augmentation(shift: 3, flip: true).description == "shift=3,flip")
        for bad in ["", "shift=0", "shift=-1", "shift=nan", "shift=inf", "shift=2,shift=3", "flip,flip", "rotate", "shift", "shift=9999999999"] {
            #expect(Augmentation(parsing: bad) == nil, "\(bad)")
        }
        #expect(ImageShape(parsing: "28,28") == ImageShape(height: 28, width: 28))
        #expect(ImageShape(parsing: "32,32,3")?.description == "32x32x3")
        for bad in ["28", "0,28", "28,-1", "a,b", "1,2,3,4", "28,28,"] { #expect(ImageShape(parsing: bad) == nil, "\(bad)") }
    }

    @Test("a trainer refuses --augment on a dataset without an image shape, or with one of other features")
    func refusals() throws {
        var dataset = randomDataset(count: 20, featureCount: 12, classCount: 3, seed: 1)
        var c = TrainingConfiguration()
        c.sizes = [12, 5, 3]
        c.augmentation = Augmentation(shift: 1)
        #expect(throws: TrainingError.self) { try Trainer(configuration: c, dataset: dataset) }
        dataset.imageShape = ImageShape(height: 3, width: 3)
        #expect(throws: TrainingError.self) { try Trainer(configuration: c, dataset: dataset) }
        dataset.imageShape = ImageShape(height: 3, width: 4)
        _ = try Trainer(configuration: c, dataset: dataset)
    }

    /// A teacher of views over `dataset`'s images: for each sample, each view of `views` made by `reference`
    /// in the documented order (dy, then dx, each −S … S, then unmirrored, mirrored), and a distribution
    /// of 3 classes unique to it; `byImage` maps every view's image to its distribution.
    func viewTeacher(_ dataset: Dataset, views: Augmentation) -> (probabilities: [Float], byImage: [[Float]: [Float]]) {
        let shape = dataset.imageShape!
        let (stored, _) = dataset.arrays(outputCount: 3, as: Float.self)
        var probabilities: [Float] = [], byImage: [[Float]: [Float]] = [:]
        for n in 0..<dataset.count {
            let image = Array(stored[(n * shape.featureCount)..<((n + 1) * shape.featureCount)])
            var v = 0
            for dy in -views.shift...views.shift {
                for dx in -views.shift...views.shift {
                    for mirrored in views.flip ? [false, true] : [false] {
                        let q: [Float] = [Float(n) / 256, Float(v) / 256, 1 - Float(n) / 256 - Float(v) / 256]
                        probabilities += q
                        byImage[reference(image, shape, dy: dy, dx: dx, mirrored: mirrored)] = q
                        v += 1
                    }
                }
            }
        }
        return (probabilities, byImage)
    }

    @Test("a teacher of views teaches each sample the probabilities of the very image the student is shown, for any augmentation within the views, and of the stored image without one")
    func teacherViews() {
        var dataset = randomDataset(count: 12, featureCount: 30, classCount: 3, seed: 8)
        dataset.imageShape = ImageShape(height: 5, width: 6)
        let views = Augmentation(shift: 2, flip: true)
        #expect(views.viewCount == 50 && Augmentation(shift: 1).viewCount == 9 && Augmentation(flip: true).viewCount == 2)
        let (probabilities, byImage) = viewTeacher(dataset, views: views)
        #expect(byImage.count == 12 * 50, "every view of every sample a different image")
        dataset.teacher = TeacherColumn(probabilities, views: views)
        let indices: [Int32] = [3, 0, 11, 7, 7, 2, 9, 5]
        let students = [Augmentation(shift: 2, flip: true), Augmentation(shift: 1), Augmentation(flip: true), Augmentation(shift: 2)]
        for student in students.map(Optional.some) + [nil] {
            let plan = student.map { AugmentationPlan(augmentation: $0, shape: dataset.imageShape!, seed: 5) }
            var x = [Float](repeating: .nan, count: indices.count * 30), t = [Float](repeating: .nan, count: indices.count * 3)
            var q = [Float](repeating: .nan, count: indices.count * 3)
            indices.withUnsafeBufferPointer { indices in
                q.withUnsafeMutableBufferPointer { q in
                    dataset.gather(indices, inputs: &x, targets: &t, outputCount: 3, teacher: q.baseAddress!, augmentation: plan, epoch: 4)
                }
            }
            for r in 0..<indices.count {
                let shown = Array(x[(r * 30)..<(r * 30 + 30)])
                #expect(byImage[shown] == Array(q[(r * 3)..<(r * 3 + 3)]), "\(student?.description ?? "none"), row \(r)")
            }
        }
        #expect(views.covers(Augmentation(shift: 1, flip: true)) && !Augmentation(shift: 1).covers(Augmentation(flip: true))
                && !Augmentation(flip: true).covers(Augmentation(shift: 1)) && Augmentation(flip: true).covers(Augmentation()))
    }

    @Test("a trainer refuses an augmentation beyond its teacher's views, and views of another count; the views follow the rows into a split")
    func teacherViewRefusals() throws {
        var dataset = randomDataset(count: 20, featureCount: 12, classCount: 3, seed: 1)
        dataset.imageShape = ImageShape(height: 3, width: 4)
        dataset.teacher = TeacherColumn(viewTeacher(dataset, views: Augmentation(flip: true)).probabilities, views: Augmentation(flip: true))
        var c = TrainingConfiguration()
        (c.sizes, c.distillAlpha) = ([12, 5, 3], 0.5)
        for allowed in [Augmentation(), Augmentation(flip: true)] {
            c.augmentation = allowed
            _ = try Trainer(configuration: c, dataset: dataset)
        }
        c.augmentation = Augmentation(shift: 1, flip: true)
        #expect(throws: TrainingError.self) { try Trainer(configuration: c, dataset: dataset) }
        c.augmentation = Augmentation(flip: true)
        var miscounted = dataset
        miscounted.teacher = TeacherColumn(dataset.teacher!.probabilities, views: Augmentation(shift: 1, flip: true))
        #expect(throws: TrainingError.self) { try Trainer(configuration: c, dataset: miscounted) }
        let (train, validation) = try dataset.split(validationFraction: 0.25, seed: 3)
        #expect(train.teacher?.views == dataset.teacher?.views && validation.teacher?.views == dataset.teacher?.views)
        #expect(train.teacher!.probabilities.count == train.count * 2 * 3)
        var plainTeacher = dataset
        plainTeacher.teacher = TeacherColumn(Array(dataset.teacher!.probabilities.prefix(20 * 3)))
        #expect(plainTeacher.taughtFingerprint != dataset.taughtFingerprint && plainTeacher.teacherFingerprint != dataset.teacherFingerprint)
    }
}
