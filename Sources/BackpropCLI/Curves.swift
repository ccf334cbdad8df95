import BackpropCore
import Foundation

/// curves.svg: train and test loss (left axis) and the task's test score (right
/// axis: accuracy 0–100 %, or RMSE from 0) per epoch, as one self-contained
/// SVG that any browser opens. Rewritten after each epoch from the run's
/// history, whose log keeps at most `History.keptEpochs` rows (every 2^k-th
/// epoch and the last), so that drawing costs the same at epoch 10 and at
/// epoch 100,000; a value that is not finite is left out of its curve.
enum Curves {
    static func svg(_ history: History, task: LearningTask, title: String) -> String {
        // A second panel below for per-sample gradient norms and ε, when the run measured them.
        let norms = ["grad_norm_p10", "grad_norm_p50", "grad_norm_p90"]
        let rows = history.epochs
        let hasExtras = rows.contains { $0.extras["epsilon"] != nil || $0.extras["grad_norm_p50"] != nil }
        let (width, height) = (720.0, hasExtras ? 600.0 : 360.0)
        let (left, right, top, bottom) = (60.0, 60.0, 40.0, 50.0)
        let plotWidth = width - left - right, plotHeight = 360 - top - bottom
        // The x axis runs over the logged epochs (0-based), drawn 1-based.
        let (first, last) = (rows.first?.epoch ?? 0, rows.last?.epoch ?? 0)
        let drawn = rows.map(\.epoch)
        // The splits measured: validation each epoch when the run has one, test when reported each epoch.
        let splits = [("validation", \EpochRecord.validationLoss, \EpochRecord.validationScore, "#ff7f0e", "#2ca02c"),
                      ("test", \EpochRecord.testLoss, \EpochRecord.testScore, "#d62728", "#17becf")]
            .filter { split in rows.contains { !$0[keyPath: split.1].isNaN } }
        let losses = rows.flatMap { row in [row.trainLoss] + splits.map { row[keyPath: $0.1] } }.filter(\.isFinite)
        let maximumLoss = max(losses.max() ?? 1, 1e-9) * 1.05
        func x(_ epoch: Int) -> Double { left + (first == last ? plotWidth / 2 : plotWidth * Double(epoch - first) / Double(last - first)) }
        // NaN stays NaN (and its point is left out); ±∞ is clamped to the plot.
        func clamp(_ v: Double) -> Double { v.isNaN ? .nan : Swift.min(Swift.max(v, 0), 1) }
        func yLoss(_ v: Double) -> Double { top + plotHeight * (1 - clamp(v / maximumLoss)) }
        let scores = rows.flatMap { row in splits.map { row[keyPath: $0.2] } }
        let metricName = task.scoreName(on: splits.first?.0 ?? "validation")
        // The right axis and the legend, by task. The legend goes where the
        // curves usually are not: losses start high and fall; accuracy rises
        // and stays high (bottom left is free), RMSE falls (top right is).
        let maximumScore: Double, scoreLabel: (Double) -> String, legendX: Double, legendY: Double
        switch task {
        case .classification:
            maximumScore = 1
            scoreLabel = { "\(Int((100 * $0).rounded()))%" }
            (legendX, legendY) = (left + 12, top + plotHeight - 14)
        case .regression:
            maximumScore = max(scores.filter(\.isFinite).max() ?? 1, 1e-9) * 1.05
            scoreLabel = { String(format: "%.3g", maximumScore * $0) }
            (legendX, legendY) = (left + plotWidth - 378, top + 16)
        }
        func yScore(_ v: Double) -> Double { top + plotHeight * (1 - clamp(v / maximumScore)) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        func series(_ name: String, _ color: String, _ given: [(Double, Double)], dashed: Bool = false) -> String {
            let points = given.filter { $0.0.isFinite && $0.1.isFinite }
            let path = points.map { "\(f($0.0)),\(f($0.1))" }.joined(separator: " ")
            // Dots only where there are few enough to tell apart.
            let dots = points.count > 60 ? "" : points.map { #"<circle cx="\#(f($0.0))" cy="\#(f($0.1))" r="3" fill="\#(color)"/>"# }.joined()
            return #"<g class="series" data-name="\#(name)"><polyline points="\#(path)" fill="none" stroke="\#(color)" stroke-width="2"\#(dashed ? #" stroke-dasharray="6 4""# : "")/>\#(dots)</g>"#
        }
        var svg = [#"<svg xmlns="http://www.w3.org/2000/svg" width="\#(Int(width))" height="\#(Int(height))" viewBox="0 0 \#(Int(width)) \#(Int(height))" font-family="sans-serif" font-size="12">"#,
                   #"<rect width="100%" height="100%" fill="white"/>"#,
                   #"<text x="\#(f(width / 2))" y="22" text-anchor="middle" font-size="15">\#(escape(title))</text>"#]
        // Grid and axes: loss on the left, accuracy (%) on the right.
        for k in 0...4 {
            let y = top + plotHeight * Double(k) / 4
            svg.append(#"<line x1="\#(f(left))" y1="\#(f(y))" x2="\#(f(left + plotWidth))" y2="\#(f(y))" stroke="gainsboro"/>"#)
            svg.append(#"<text x="\#(f(left - 8))" y="\#(f(y + 4))" text-anchor="end">\#(String(format: "%.3g", maximumLoss * (1 - Double(k) / 4)))</text>"#)
            svg.append(#"<text x="\#(f(left + plotWidth + 8))" y="\#(f(y + 4))">\#(scoreLabel(1 - Double(k) / 4))</text>"#)
        }
        for epoch in stride(from: first, through: last, by: max(1, (last - first + 20) / 20)) {
            svg.append(#"<text x="\#(f(x(epoch)))" y="\#(f(top + plotHeight + 18))" text-anchor="middle">\#(epoch + 1)</text>"#)
        }
        svg.append(#"<rect x="\#(f(left))" y="\#(f(top))" width="\#(f(plotWidth))" height="\#(f(plotHeight))" fill="none" stroke="gray"/>"#)
        svg.append(#"<text x="\#(f(left + plotWidth / 2))" y="\#(f(height - 12))" text-anchor="middle">epoch</text>"#)
        svg.append(#"<text transform="translate(16 \#(f(top + plotHeight / 2))) rotate(-90)" text-anchor="middle">loss</text>"#)
        svg.append(#"<text transform="translate(\#(f(width - 12)) \#(f(top + plotHeight / 2))) rotate(90)" text-anchor="middle">\#(metricName)</text>"#)
        var legend = [("train loss", "#1f77b4")]
        svg.append(series("train loss", "#1f77b4", zip(drawn, rows).map { (x($0), yLoss($1.trainLoss)) }))
        for (split, loss, score, lossColor, scoreColor) in splits {
            svg.append(series("\(split) loss", lossColor, zip(drawn, rows).map { (x($0), yLoss($1[keyPath: loss])) }, dashed: true))
            svg.append(series(task.scoreName(on: split), scoreColor, zip(drawn, rows).map { (x($0), yScore($1[keyPath: score])) }))
            legend += [("\(split) loss", lossColor), (task.scoreName(on: split), scoreColor)]
        }
        for (k, (name, color)) in legend.enumerated() {
            // Rows of three, stacked away from the plot's edge.
            let lx = legendX + Double(k % 3) * 130, ly = legendY + Double(k / 3) * (task == .classification ? -16 : 16)
            svg.append(#"<line x1="\#(f(lx))" y1="\#(f(ly))" x2="\#(f(lx + 22))" y2="\#(f(ly))" stroke="\#(color)" stroke-width="3"/><text x="\#(f(lx + 28))" y="\#(f(ly + 4))">\#(name)</text>"#)
        }
        if hasExtras {
            // Gradient norm quantiles (left axis) and ε (right axis), per epoch.
            let panelTop = 360.0 + 10, panelHeight = height - panelTop - 40
            let normValues = rows.flatMap { row in norms.compactMap { row.extras[$0] } }
            let maximumNorm = max(normValues.max() ?? 1, 1e-9) * 1.05
            let epsilons = rows.compactMap { $0.extras["epsilon"] }
            let maximumEpsilon = max(epsilons.max() ?? 1, 1e-9) * 1.05
            func yPanel(_ v: Double, _ maximum: Double) -> Double { panelTop + panelHeight * (1 - clamp(v / maximum)) }
            svg.append(#"<rect x="\#(f(left))" y="\#(f(panelTop))" width="\#(f(plotWidth))" height="\#(f(panelHeight))" fill="none" stroke="gray"/>"#)
            for k in 0...2 {
                let y = panelTop + panelHeight * Double(k) / 2
                if !normValues.isEmpty {
                    svg.append(#"<text x="\#(f(left - 8))" y="\#(f(y + 4))" text-anchor="end">\#(String(format: "%.3g", maximumNorm * (1 - Double(k) / 2)))</text>"#)
                }
                if !epsilons.isEmpty {
                    svg.append(#"<text x="\#(f(left + plotWidth + 8))" y="\#(f(y + 4))">\#(String(format: "%.3g", maximumEpsilon * (1 - Double(k) / 2)))</text>"#)
                }
            }
            var legend: [(String, String)] = []
            for (name, color, label) in [("grad_norm_p10", "#9467bd", "grad norm 10 %"), ("grad_norm_p50", "#8c564b", "median"),
                                         ("grad_norm_p90", "#e377c2", "90 %")] where !normValues.isEmpty {
                let points = zip(drawn, rows).compactMap { i, row in row.extras[name].map { (x(i), yPanel($0, maximumNorm)) } }
                svg.append(series(label, color, points))
                legend.append((label, color))
            }
            if !epsilons.isEmpty {
                let points = zip(drawn, rows).compactMap { i, row in row.extras["epsilon"].map { (x(i), yPanel($0, maximumEpsilon)) } }
                svg.append(series("ε", "#d62728", points, dashed: true))
                legend.append(("ε (right axis)", "#d62728"))
            }
            for (k, (name, color)) in legend.enumerated() {
                let lx = left + 12 + Double(k) * 130, ly = panelTop + 16
                svg.append(#"<line x1="\#(f(lx))" y1="\#(f(ly))" x2="\#(f(lx + 22))" y2="\#(f(ly))" stroke="\#(color)" stroke-width="3"/><text x="\#(f(lx + 28))" y="\#(f(ly + 4))">\#(name)</text>"#)
            }
        }
        svg.append("</svg>")
        return svg.joined(separator: "\n") + "\n"
    }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
