// ConsoleChart: the overview's throughput chart of the last minutes and the per-service
// sparklines, drawn on the server as SVG from ConsoleHistory (so a reload keeps them, and the
// first paint has them).

import Foundation

/// Line charts of rates over time.
enum ConsoleChart {
    static let width = 880.0
    static let height = 170.0
    static let plot = (left: 48.0, right: 8.0, top: 10.0, bottom: 22.0)
    /// Series colours come from the stylesheet (`.series.c0` … `.c7`).
    static let colours = 8

    /// A chart of each named series (messages read per second) over the window ending `now`.
    static func svg(_ series: [(name: String, points: [ConsoleHistory.Point])], now: Int64, window: Int64) -> String {
        let plotWidth = width - plot.left - plot.right
        let plotHeight = height - plot.top - plot.bottom
        let peak = series.flatMap(\.points).map(\.perSecond).max() ?? 0
        let top = niceCeiling(max(peak, 1))
        func x(_ at: Int64) -> Double { plot.left + plotWidth * (1 - Double(now - at) / Double(window)) }
        func y(_ value: Double) -> Double { plot.top + plotHeight * (1 - value / top) }
        var lines = ""
        var legend = ""
        for (index, entry) in series.enumerated() {
            let points = entry.points.filter { now - $0.at <= window }
            let colour = "c\(index % colours)"
            if points.count >= 2 {
                let coordinates = points.map { "\(svgNumber(x($0.at))),\(svgNumber(y($0.perSecond)))" }.joined(
                    separator: " ")
                lines +=
                    "<polyline class=\"series \(colour)\" data-service=\"\(escape(entry.name))\" points=\"\(coordinates)\"><title>\(escape(entry.name))</title></polyline>\n"
            } else if let point = points.first {
                lines +=
                    "<circle class=\"series \(colour)\" data-service=\"\(escape(entry.name))\" cx=\"\(svgNumber(x(point.at)))\" cy=\"\(svgNumber(y(point.perSecond)))\" r=\"2\"></circle>\n"
            }
            let latest = points.last.map { ConsoleMap.rate($0.perSecond) } ?? "–/s"
            legend +=
                "<span class=\"legend \(colour)\" data-service=\"\(escape(entry.name))\">\(escape(entry.name)) \(escape(latest))</span> "
        }
        let minutes = Int(window / 60_000)
        var grid = ""
        for step in 0...2 {
            let value = top * Double(step) / 2
            grid +=
                "<line class=\"grid\" x1=\"\(svgNumber(plot.left))\" x2=\"\(svgNumber(width - plot.right))\" y1=\"\(svgNumber(y(value)))\" y2=\"\(svgNumber(y(value)))\"></line><text class=\"axis\" x=\"\(svgNumber(plot.left - 4))\" y=\"\(svgNumber(y(value) + 4))\" text-anchor=\"end\">\(escape(ConsoleMap.rate(value)))</text>"
        }
        grid +=
            "<text class=\"axis\" x=\"\(svgNumber(plot.left))\" y=\"\(svgNumber(height - 6))\">\(minutes) min ago</text><text class=\"axis\" x=\"\(svgNumber(width - plot.right))\" y=\"\(svgNumber(height - 6))\" text-anchor=\"end\">now</text>"
        let empty =
            series.allSatisfy { $0.points.count < 2 }
            ? "<text class=\"axis\" x=\"\(svgNumber(plot.left + 8))\" y=\"\(svgNumber(plot.top + 20))\">measuring: a point every 5 s</text>"
            : ""
        return """
            <div class="chart"><svg class="throughput" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \(svgNumber(width)) \(svgNumber(height))" role="img" aria-label="Messages read per second by service, last \(minutes) minutes">
            \(grid)\(empty)
            \(lines)</svg>
            <p class="legends">\(legend)</p></div>
            """
    }

    /// A small line of the last points (no axes), for a table cell.
    static func spark(_ points: [ConsoleHistory.Point], service: String) -> String {
        let recent = Array(points.suffix(60))
        let peak = max(1, recent.map(\.perSecond).max() ?? 0)
        let coordinates = recent.enumerated().map { index, point in
            "\(svgNumber(Double(index) / Double(max(1, recent.count - 1)) * 120)),\(svgNumber(23 - point.perSecond / peak * 22))"
        }.joined(separator: " ")
        return
            "<svg class=\"spark\" data-service=\"\(escape(service))\" viewBox=\"0 0 120 24\" preserveAspectRatio=\"none\">\(recent.count >= 2 ? "<polyline points=\"\(coordinates)\"></polyline>" : "")</svg>"
    }

    /// 1, 2 or 5 times a power of ten, at or above `value`.
    static func niceCeiling(_ value: Double) -> Double {
        let power = pow(10, floor(log10(value)))
        for factor in [1.0, 2, 5, 10] where factor * power >= value { return factor * power }
        return 10 * power
    }

}
