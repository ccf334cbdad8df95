import BackpropConfig
import Foundation

/// sweep.svg: the validation metric against each searched setting, a panel
/// a setting, a dot a trial and rung (darker: a later rung), the chosen
/// trial ringed. Numbers on a linear axis (log for a log-uniform range),
/// choices spread evenly in the file's order. One self-contained SVG that a
/// browser opens.
enum SweepPlot {
    static func svg(_ plan: SweepPlan, _ results: [TrialResult], chosen: Int?) -> String {
        let scored = results.filter { $0.score?.isFinite == true }
        let (panelWidth, panelHeight, gap) = (260.0, 200.0, 50.0)
        let columns = min(plan.space.count, 3), rows = (plan.space.count + 2) / 3
        let (width, height) = (gap + Double(columns) * (panelWidth + gap), 50 + Double(rows) * (panelHeight + gap + 10))
        let scores = scored.map { $0.score! }
        let (low, high) = (scores.min() ?? 0, scores.max() ?? 1)
        let span = high > low ? high - low : 1
        let metric = scored.first?.metric.replacingOccurrences(of: "_", with: " ") ?? "validation"
        let rungs = max(plan.rungEpochs.count, 1)
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var svg = [#"<svg xmlns="http://www.w3.org/2000/svg" width="\#(Int(width))" height="\#(Int(height))" viewBox="0 0 \#(Int(width)) \#(Int(height))" font-family="sans-serif" font-size="11">"#,
                   #"<rect width="100%" height="100%" fill="white"/>"#,
                   #"<text x="\#(f(width / 2))" y="22" text-anchor="middle" font-size="14">\#(escape(metric)) of \#(plan.trialCount) trials</text>"#]
        for (place, entry) in plan.space.enumerated() {
            let (originX, originY) = (gap + Double(place % 3) * (panelWidth + gap), 40 + Double(place / 3) * (panelHeight + gap + 10))
            svg.append(##"<g class="panel" data-setting="\##(escape(entry.key))"><rect x="\##(f(originX))" y="\##(f(originY))" width="\##(f(panelWidth))" height="\##(f(panelHeight))" fill="none" stroke="#999"/>"##)
            svg.append(#"<text x="\#(f(originX + panelWidth / 2))" y="\#(f(originY + panelHeight + 28))" text-anchor="middle">\#(escape(entry.key))</text>"#)
            svg.append(#"<text x="\#(f(originX - 4))" y="\#(f(originY + 4))" text-anchor="end">\#(String(format: "%.3g", high))</text>"#)
            svg.append(#"<text x="\#(f(originX - 4))" y="\#(f(originY + panelHeight))" text-anchor="end">\#(String(format: "%.3g", low))</text>"#)
            // Where a trial's value of this setting lies along the panel, 0…1.
            let position: (SettingValue) -> Double
            switch entry.dimension {
            case .choice(let values):
                position = { value in Double((values.firstIndex(of: value) ?? 0) * 2 + 1) / Double(2 * values.count) }
                for (i, value) in values.enumerated() {
                    let x = originX + panelWidth * Double(2 * i + 1) / Double(2 * values.count)
                    svg.append(#"<text x="\#(f(x))" y="\#(f(originY + panelHeight + 14))" text-anchor="middle">\#(escape(value.text ?? value.yaml))</text>"#)
                }
            case .uniform(let a, let b): position = { (($0.number ?? a) - a) / (b - a) }
            case .logUniform(let a, let b): position = { (Foundation.log($0.number ?? a) - Foundation.log(a)) / (Foundation.log(b) - Foundation.log(a)) }
            case .wholeUniform(let a, let b): position = { (($0.number ?? Double(a)) - Double(a)) / Double(max(b - a, 1)) }
            }
            if case .choice = entry.dimension {} else {
                let bounds = entry.dimension.bounds
                svg.append(#"<text x="\#(f(originX))" y="\#(f(originY + panelHeight + 14))">\#(String(format: "%.3g", bounds.0))</text>"#)
                svg.append(#"<text x="\#(f(originX + panelWidth))" y="\#(f(originY + panelHeight + 14))" text-anchor="end">\#(String(format: "%.3g", bounds.1))</text>"#)
            }
            for result in scored {
                let value = plan.settings(ofTrial: result.trial)[place].value
                let x = originX + 8 + (panelWidth - 16) * min(max(position(value), 0), 1)
                let y = originY + 8 + (panelHeight - 16) * (1 - (result.score! - low) / span)
                let shade = 0.25 + 0.75 * Double(result.rung + 1) / Double(rungs)
                let ring = result.trial == chosen && result.rung == rungs - 1 ? ##" stroke="#d62728" stroke-width="2""## : ""
                svg.append(##"<circle class="trial" data-trial="\##(result.trial)" data-rung="\##(result.rung + 1)" cx="\##(f(x))" cy="\##(f(y))" r="4" fill="#1f77b4" fill-opacity="\##(String(format: "%.2f", shade))"\##(ring)/>"##)
            }
            svg.append("</g>")
        }
        svg.append("</svg>")
        return svg.joined(separator: "\n") + "\n"
    }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }
}

extension SweepPlan.Dimension {
    /// A range's low and high ((0, 1) for a choice).
    var bounds: (Double, Double) {
        switch self {
        case .choice: return (0, 1)
        case .uniform(let a, let b), .logUniform(let a, let b): return (a, b)
        case .wholeUniform(let a, let b): return (Double(a), Double(b))
        }
    }
}
