// ConsoleWaterfall: a command's saga as a waterfall, rendered on the server as SVG. One bar per
// message, from its publish (or, for a delayed message, its due time) to its last handling; in it
// one segment per handling service, from the publish to that service's inbox timestamp (when its
// transaction began: the queueing and the read), labelled with the service and the milliseconds,
// and the slowest hop of the saga marked, so the slow step is obvious at a glance. The gap from a
// segment's end to the next message's publish is the handler's transaction and the outbox
// publish.

import Foundation
import Operations

/// The saga waterfall of the command page.
enum ConsoleWaterfall {
    static let labelWidth = 260.0
    static let plotWidth = 840.0
    static let rowGap = 6.0
    static let headHeight = 22.0

    /// The waterfall of `trace`'s steps (empty when it has none).
    static func svg(_ trace: SagaTrace) -> String {
        guard let first = trace.steps.first else { return "" }
        let start = trace.steps.map { min($0.at, $0.due ?? $0.at) }.min() ?? first.at
        let ends = trace.steps.flatMap { step in [step.due ?? step.at] + step.handlings.compactMap(\.at) }
        let end = max(ends.max() ?? start, start + 1)
        let span = Double(end - start)
        func x(_ at: Int64) -> Double { labelWidth + plotWidth * Double(at - start) / span }
        // The slowest hop: the longest publish-to-handled of any message and service.
        var slowest: (step: Int, service: String, ms: Int64)?
        for (index, step) in trace.steps.enumerated() {
            let published = step.due ?? step.at
            for handling in step.handlings {
                guard let at = handling.at else { continue }
                if at - published > (slowest?.ms ?? -1) { slowest = (index, handling.service, at - published) }
            }
        }
        var rows = ""
        var y = headHeight
        for (index, step) in trace.steps.enumerated() {
            let published = step.due ?? step.at
            let timed = step.handlings.filter { $0.at != nil }
            let untimed = step.handlings.filter { $0.at == nil }
            let height = max(30 + Double(timed.count) * 14, untimed.isEmpty ? 0 : 46)
            let last = timed.compactMap(\.at).max() ?? published
            var row = """
                <g class="bar" data-type="\(escape(step.type))" data-id="\(escape(step.id))" data-stream="\(escape(step.stream))">
                <rect class="track" x="\(svgNumber(labelWidth))" y="\(svgNumber(y))" width="\(svgNumber(plotWidth))" height="\(svgNumber(height))"></rect>
                <text class="row-label" x="4" y="\(svgNumber(y + 14))">\(escape(step.type))\(step.replays > 0 ? " (replay \(step.replays))" : "")</text>
                <text class="row-sub" x="4" y="\(svgNumber(y + 27))">\(escape(ConsoleMap.display(step.stream))) · +\(published - start) ms</text>
                <rect class="span" x="\(svgNumber(x(published)))" y="\(svgNumber(y + 6))" width="\(svgNumber(max(2, x(last) - x(published))))" height="6"><title>\(escape(step.type)): published +\(published - start) ms, last handled +\(last - start) ms</title></rect>

                """
            if let due = step.due, due > step.at {
                row += """
                    <line class="tick" x1="\(svgNumber(x(step.at)))" x2="\(svgNumber(x(due)))" y1="\(svgNumber(y + 9))" y2="\(svgNumber(y + 9))" stroke-dasharray="3 3"><title>scheduled at +\(step.at - start) ms, due +\(due - start) ms</title></line>

                    """
            }
            for (offset, handling) in timed.enumerated() {
                guard let at = handling.at else { continue }
                let top = y + 18 + Double(offset) * 14
                let ms = at - published
                let isSlowest = slowest.map { $0.step == index && $0.service == handling.service } ?? false
                let outcome = handling.outcome.replacingOccurrences(of: " ", with: "-")
                // The label goes right of the bar, else left of it, else inside at the end.
                let fitsRight = x(at) + 150 <= labelWidth + plotWidth
                let fitsLeft = x(published) - 150 >= labelWidth
                row += """
                    <rect class="hop \(escape(outcome))\(isSlowest ? " slowest" : "")" data-service="\(escape(handling.service))" data-ms="\(ms)" x="\(svgNumber(x(published)))" y="\(svgNumber(top))" width="\(svgNumber(max(2, x(at) - x(published))))" height="10"><title>\(escape(handling.service)) \(escape(handling.outcome))\(handling.outcome == "handled" ? ": its transaction began" : "") \(ms) ms after the publish\(handling.error.map { ": " + escape(String($0.prefix(200))) } ?? "")</title></rect>
                    <text class="hop-label" x="\(svgNumber(fitsRight ? x(at) + 4 : fitsLeft ? x(published) - 4 : labelWidth + plotWidth - 4))" y="\(svgNumber(top + 9))" text-anchor="\(fitsRight ? "start" : "end")">\(escape(handling.service)) \(escape(handling.outcome == "handled" ? "" : handling.outcome + " "))\(ms) ms\(isSlowest ? " (slowest)" : "")</text>

                    """
            }
            if !untimed.isEmpty {
                let text = untimed.map { "\($0.service): \($0.outcome)" }.joined(separator: ", ")
                row += """
                    <text class="row-sub" x="4" y="\(svgNumber(y + 40))">\(escape(text))</text>

                    """
            }
            rows += row + "</g>\n"
            y += height + rowGap
        }
        var ticks = ""
        for step in 0...4 {
            let at = start + Int64(span * Double(step) / 4)
            ticks += """
                <line class="tick" x1="\(svgNumber(x(at)))" x2="\(svgNumber(x(at)))" y1="\(svgNumber(headHeight - 4))" y2="\(svgNumber(y))"></line><text class="axis" x="\(svgNumber(x(at)))" y="14" text-anchor="\(step == 0 ? "start" : step == 4 ? "end" : "middle")">+\(at - start) ms</text>
                """
        }
        let width = labelWidth + plotWidth + 8
        return """
            <div class="waterfall-scroll"><svg class="waterfall" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \(svgNumber(width)) \(svgNumber(y))" width="\(svgNumber(width))" height="\(svgNumber(y))" role="img" aria-label="Saga waterfall: \(trace.steps.count) messages over \(end - start) ms">
            \(ticks)
            \(rows)</svg></div>
            """
    }

}
