import Foundation

// A small SVG 1.1 chart writer: line charts (linear or log10 y axis) and grouped bar charts,
// with axes, ticks, axis labels, a title and a legend. No dependencies; the output is one
// standalone document that browsers and XML parsers accept.
//
// Structure of the output, which tests rely on: every line series is exactly one
// `<polyline class="series" data-series="NAME">`, every bar one `<rect class="bar">`; the axis
// labels are `<text class="x-label">` and `<text class="y-label">`.

public struct SVGPlot: Sendable {
    public enum YScale: Sendable { case linear, log10 }

    public struct Line: Sendable {
        public var name: String
        /// (x, y) in data units; on a log10 axis points with y ≤ 0 are left out.
        public var points: [(x: Double, y: Double)]
        public var color: String
        public var markers: Bool
    }

    public struct BarSeries: Sendable {
        public var name: String
        /// One value per category; nil draws no bar.
        public var values: [Double?]
        public var color: String
    }

    /// Colours for series in order (colour-blind-safe Tableau 10).
    public static let palette = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7"]

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var yScale: YScale
    /// x ticks only at whole numbers (epochs, layer indices).
    public var integerX = false
    /// Stretch a linear y axis to include 0.
    public var includeZero = false
    public var width: Double = 720
    public var height: Double = 440
    public private(set) var lines: [Line] = []
    public private(set) var categories: [String] = []
    public private(set) var bars: [BarSeries] = []

    public init(title: String, xLabel: String, yLabel: String, yScale: YScale = .linear) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.yScale = yScale
    }

    public mutating func addLine(_ name: String, points: [(x: Double, y: Double)], color: String? = nil, markers: Bool = true) {
        let color = color ?? SVGPlot.palette[lines.count % SVGPlot.palette.count]
        lines.append(Line(name: name, points: points, color: color, markers: markers))
    }

    /// Bar charts: set the categories (x axis groups) once, then add one series per legend entry.
    public mutating func setCategories(_ names: [String]) { categories = names }

    public mutating func addBars(_ name: String, values: [Double?], color: String? = nil) {
        precondition(values.count == categories.count,
                     "bar series '\(name)' has \(values.count) values for \(categories.count) categories")
        let color = color ?? SVGPlot.palette[bars.count % SVGPlot.palette.count]
        bars.append(BarSeries(name: name, values: values, color: color))
    }

    public var isBarChart: Bool { !categories.isEmpty }

    // MARK: - Layout

    private var plotLeft: Double { 78 }
    private var plotTop: Double { 44 }
    private var plotRight: Double { width - 170 }  // legend to the right
    private var plotBottom: Double { height - 58 }

    /// The SVG document.
    public func render() -> String {
        var out = """
            <?xml version="1.0" encoding="UTF-8" standalone="no"?>
            <svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="\(f(width))" height="\(f(height))" \
            viewBox="0 0 \(f(width)) \(f(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">

            """
        out += "<title>\(escape(title))</title>\n"
        out += "<rect x=\"0\" y=\"0\" width=\"\(f(width))\" height=\"\(f(height))\" fill=\"white\"/>\n"
        out += "<text class=\"title\" x=\"\(f(width / 2))\" y=\"24\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">\(escape(title))</text>\n"
        let yAxis = yTransform()
        out += yAxisMarkup(yAxis)
        if isBarChart {
            out += barMarkup(yAxis)
        } else {
            out += lineMarkup(yAxis)
        }
        out += frameMarkup()
        out += legendMarkup()
        if yAxis.empty {
            out += "<text class=\"no-data\" x=\"\(f((plotLeft + plotRight) / 2))\" y=\"\(f((plotTop + plotBottom) / 2))\" text-anchor=\"middle\" fill=\"#888\">no data</text>\n"
        }
        out += "</svg>\n"
        return out
    }

    // MARK: - Axes

    private struct Axis {
        var low: Double
        var high: Double
        var ticks: [Double]
        var log: Bool
        var empty: Bool
        /// Data value → axis units (log10 for a log axis).
        func unit(_ value: Double) -> Double { log ? Foundation.log10(value) : value }
    }

    private func yValues() -> [Double] {
        let raw = isBarChart ? bars.flatMap { $0.values.compactMap { $0 } } : lines.flatMap { $0.points.map { $0.y } }
        let finite = raw.filter(\.isFinite)
        return yScale == .log10 ? finite.filter { $0 > 0 } : finite
    }

    private func yTransform() -> Axis {
        var values = yValues()
        if isBarChart || (includeZero && yScale == .linear) { values.append(0) }  // bars start at zero
        guard let low = values.min(), let high = values.max() else {
            return Axis(low: 0, high: 1, ticks: SVGPlot.niceTicks(low: 0, high: 1), log: false, empty: true)
        }
        if yScale == .log10 {
            var lowExponent = floor(log10(low))
            var highExponent = ceil(log10(high))
            if highExponent <= lowExponent { highExponent = lowExponent + 1 }
            if highExponent - lowExponent > 12 { lowExponent = highExponent - 12 }
            let ticks = stride(from: lowExponent, through: highExponent, by: 1).map { pow(10, $0) }
            return Axis(low: lowExponent, high: highExponent, ticks: ticks, log: true, empty: false)
        }
        let ticks = SVGPlot.niceTicks(low: low, high: high)
        return Axis(low: ticks.first ?? low, high: ticks.last ?? high, ticks: ticks, log: false, empty: false)
    }

    private func xRange() -> (low: Double, high: Double, ticks: [Double]) {
        let xs = lines.flatMap { $0.points.map { $0.x } }.filter(\.isFinite)
        guard let low = xs.min(), let high = xs.max() else { return (0, 1, SVGPlot.niceTicks(low: 0, high: 1)) }
        var ticks = SVGPlot.niceTicks(low: low, high: high)
        if integerX && ticks.contains(where: { $0 != $0.rounded() }) {
            ticks = stride(from: floor(low), through: max(ceil(high), floor(low) + 1), by: 1).map { $0 }
        }
        return (ticks.first ?? low, ticks.last ?? high, ticks)
    }

    /// Round tick positions (1, 2, 2.5 or 5 × 10^k) covering [low, high], about five of them.
    public static func niceTicks(low: Double, high: Double, count: Int = 5) -> [Double] {
        var low = low, high = high
        if high - low < 1e-12 * max(abs(low), abs(high), 1) {
            let pad = max(abs(low) * 0.1, 0.5)
            low -= pad
            high += pad
        }
        let rough = (high - low) / Double(max(count, 1))
        let magnitude = pow(10, floor(log10(rough)))
        let step = [1, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= rough } ?? 10 * magnitude
        // Tick k is k·step; computed as a multiple of (or a division by) a power of ten so
        // that 0.6 comes out as 0.6, not 0.6000000000000001.
        func value(_ k: Double) -> Double {
            let units = k * (step / magnitude).rounded(toPlaces: 1)
            return magnitude >= 1 ? units * magnitude : units / (1 / magnitude).rounded()
        }
        let first = floor(low / step), last = ceil(high / step)
        guard last - first < 50 else { return [low, high] }
        return stride(from: first, through: last, by: 1).map { value($0) }
    }

    private func yPixel(_ value: Double, _ axis: Axis) -> Double {
        let span = axis.high - axis.low
        let fraction = span > 0 ? (axis.unit(value) - axis.low) / span : 0.5
        return plotBottom - fraction * (plotBottom - plotTop)
    }

    private func yAxisMarkup(_ axis: Axis) -> String {
        var out = "<g class=\"y-axis\">\n"
        for tick in axis.ticks {
            let y = yPixel(tick, axis)
            out += "<line x1=\"\(f(plotLeft))\" y1=\"\(f(y))\" x2=\"\(f(plotRight))\" y2=\"\(f(y))\" stroke=\"#e5e5e5\"/>\n"
            out += "<line x1=\"\(f(plotLeft - 5))\" y1=\"\(f(y))\" x2=\"\(f(plotLeft))\" y2=\"\(f(y))\" stroke=\"black\"/>\n"
            out += "<text class=\"tick\" x=\"\(f(plotLeft - 8))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(escape(SVGPlot.label(tick)))</text>\n"
        }
        let middle = (plotTop + plotBottom) / 2
        out += "<text class=\"y-label\" x=\"18\" y=\"\(f(middle))\" text-anchor=\"middle\" transform=\"rotate(-90 18 \(f(middle)))\">\(escape(yLabel))</text>\n"
        out += "</g>\n"
        return out
    }

    private func frameMarkup() -> String {
        """
        <line class="axis" x1="\(f(plotLeft))" y1="\(f(plotBottom))" x2="\(f(plotRight))" y2="\(f(plotBottom))" stroke="black"/>
        <line class="axis" x1="\(f(plotLeft))" y1="\(f(plotTop))" x2="\(f(plotLeft))" y2="\(f(plotBottom))" stroke="black"/>
        <text class="x-label" x="\(f((plotLeft + plotRight) / 2))" y="\(f(height - 16))" text-anchor="middle">\(escape(xLabel))</text>

        """
    }

    // MARK: - Lines

    private func lineMarkup(_ axis: Axis) -> String {
        let x = xRange()
        func xPixel(_ value: Double) -> Double {
            let span = x.high - x.low
            let fraction = span > 0 ? (value - x.low) / span : 0.5
            return plotLeft + fraction * (plotRight - plotLeft)
        }
        var out = "<g class=\"x-axis\">\n"
        for tick in x.ticks {
            let px = xPixel(tick)
            out += "<line x1=\"\(f(px))\" y1=\"\(f(plotBottom))\" x2=\"\(f(px))\" y2=\"\(f(plotBottom + 5))\" stroke=\"black\"/>\n"
            out += "<text class=\"tick\" x=\"\(f(px))\" y=\"\(f(plotBottom + 19))\" text-anchor=\"middle\">\(escape(SVGPlot.label(tick)))</text>\n"
        }
        out += "</g>\n"
        for line in lines {
            let visible = line.points.filter { $0.x.isFinite && $0.y.isFinite && (yScale == .linear || $0.y > 0) }
            let coordinates = visible.map { "\(f(xPixel($0.x))),\(f(yPixel($0.y, axis)))" }.joined(separator: " ")
            out += "<polyline class=\"series\" data-series=\"\(escape(line.name))\" points=\"\(coordinates)\" fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"2\"/>\n"
            if line.markers && visible.count <= 200 {
                for point in visible {
                    out += "<circle cx=\"\(f(xPixel(point.x)))\" cy=\"\(f(yPixel(point.y, axis)))\" r=\"2.5\" fill=\"\(line.color)\"/>\n"
                }
            }
        }
        return out
    }

    // MARK: - Bars

    private func barMarkup(_ axis: Axis) -> String {
        let groupWidth = (plotRight - plotLeft) / Double(max(categories.count, 1))
        let barWidth = groupWidth * 0.8 / Double(max(bars.count, 1))
        let zero = yPixel(axis.log ? pow(10, axis.low) : 0, axis)
        var out = "<g class=\"x-axis\">\n"
        for (index, category) in categories.enumerated() {
            let center = plotLeft + (Double(index) + 0.5) * groupWidth
            out += "<text class=\"tick\" x=\"\(f(center))\" y=\"\(f(plotBottom + 19))\" text-anchor=\"middle\">\(escape(category))</text>\n"
        }
        out += "</g>\n"
        for (seriesIndex, series) in bars.enumerated() {
            for (index, value) in series.values.enumerated() {
                guard let value, value.isFinite, axis.log ? value > 0 : true else { continue }
                let left = plotLeft + Double(index) * groupWidth + groupWidth * 0.1 + Double(seriesIndex) * barWidth
                let top = min(yPixel(value, axis), zero)
                let barHeight = abs(zero - yPixel(value, axis))
                out += "<rect class=\"bar\" data-series=\"\(escape(series.name))\" x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(barWidth * 0.92))\" height=\"\(f(barHeight))\" fill=\"\(series.color)\"><title>\(escape(series.name)) \(escape(categories[index])): \(escape(SVGPlot.label(value)))</title></rect>\n"
            }
        }
        return out
    }

    // MARK: - Legend

    private func legendMarkup() -> String {
        let entries: [(String, String)] = isBarChart ? bars.map { ($0.name, $0.color) } : lines.map { ($0.name, $0.color) }
        guard !entries.isEmpty else { return "" }
        var out = "<g class=\"legend\">\n"
        let left = plotRight + 16
        for (index, entry) in entries.enumerated() {
            let y = plotTop + 8 + Double(index) * 20
            out += "<rect x=\"\(f(left))\" y=\"\(f(y - 6))\" width=\"18\" height=\"10\" fill=\"\(entry.1)\"/>\n"
            out += "<text class=\"legend-entry\" x=\"\(f(left + 24))\" y=\"\(f(y + 4))\">\(escape(entry.0))</text>\n"
        }
        out += "</g>\n"
        return out
    }

    // MARK: - Text

    /// A tick label: integers plainly, small or large magnitudes in exponent form.
    static func label(_ value: Double) -> String {
        if value == 0 { return "0" }
        let magnitude = abs(value)
        if magnitude >= 1e5 || magnitude < 1e-3 {
            return String(format: "%.3g", value)
        }
        if value == value.rounded() { return String(format: "%.0f", value) }
        var text = String(format: "%.4f", value)
        while text.hasSuffix("0") { text.removeLast() }
        return text
    }

    private func f(_ value: Double) -> String { String(format: "%.2f", value) }

    func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(character)
            }
        }
        return out
    }
}

extension Double {
    fileprivate func rounded(toPlaces places: Int) -> Double {
        let scale = pow(10, Double(places))
        return (self * scale).rounded() / scale
    }
}
