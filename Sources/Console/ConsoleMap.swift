// ConsoleMap: the overview's topology map, rendered on the server as SVG (no script, no CDN,
// the strict CSP kept). Responsible for laying out who writes each stream (the gateway, the
// services) and who reads it (each service's consumer group) in three columns, and for putting
// the live numbers on it: each read edge with its group's rate and lag, each stream with what its
// writers add per second, each service with its live processes, its dead letters (a link to
// them) and its problems highlighted.

import Choreo
import Foundation
import Operations

/// The topology map of the overview.
enum ConsoleMap {
    /// A box of the map.
    struct Node {
        enum Kind: String { case writer, stream, service }
        var id: String
        var kind: Kind
        var x: Double
        var y: Double = 0
        var width: Double
        var height: Double = 0
        var inPorts: [Int] = []
        var outPorts: [Int] = []
    }

    /// A line from a writer to a stream, or from a stream to a reading service.
    struct Edge {
        var from: String
        var to: String
        /// Its label ("12/s · lag 0"); empty for none.
        var label: String
        var rate: Double?
        var bad: Bool
        /// Where the label goes: beside the source (reads) or the target (writes).
        var labelAtSource: Bool
    }

    static let portSpacing = 16.0
    static let gap = 6.0
    static let columns = (writer: 8.0, stream: 250.0, service: 700.0)
    static let widths = (writer: 120.0, stream: 190.0, service: 170.0)
    static let width = 880.0

    /// The streams drawn, in order: each service's commands, then its events when someone
    /// reads them, then any other stream named by `subscribes` or `publishes`.
    static func streams(_ topology: Topology) -> [String] {
        var streams: [String] = []
        func add(_ stream: String) { if !streams.contains(stream) { streams.append(stream) } }
        let read = Set(topology.services.flatMap(\.subscribes))
        for service in topology.services {
            add(service.commandStream)
            if read.contains(service.eventStream) { add(service.eventStream) }
        }
        for service in topology.services { (service.subscribes + service.publishes).forEach(add) }
        return streams
    }

    /// Who writes `stream`: the gateway (a route's service's commands), its owner (its events),
    /// and every service that declares it in `publishes`.
    static func writers(of stream: String, _ topology: Topology) -> [String] {
        var writers: [String] = []
        for service in topology.services where service.commandStream == stream {
            if topology.routes.contains(where: { $0.service == service.name }) { writers.append("gateway") }
        }
        for service in topology.services where service.eventStream == stream || service.publishes.contains(stream) {
            writers.append(service.name)
        }
        return writers
    }

    /// A stream key as people say it: `{orders}.events` is `orders.events`.
    static func display(_ stream: String) -> String {
        stream.replacingOccurrences(of: "{", with: "").replacingOccurrences(of: "}", with: "")
    }

    static func rate(_ perSecond: Double?) -> String {
        guard let perSecond else { return "–/s" }
        return perSecond >= 10 || perSecond == 0 ? "\(Int(perSecond.rounded()))/s" : String(format: "%.1f/s", perSecond)
    }

    /// The map as an SVG element.
    static func svg(topology: Topology, status: SystemStatus, history: ConsoleHistory, lagLimit: Int = 1000) -> String {
        let streams = streams(topology)
        // What each stream's writers add per second, read once per render.
        var added: [String: Double] = [:]
        for stream in streams { added[stream] = history.streamRates(stream).last?.perSecond }
        var edges: [Edge] = []
        for stream in streams {
            let writers = writers(of: stream, topology)
            let added = added[stream]
            for writer in writers {
                edges.append(
                    Edge(
                        from: "w:" + writer, to: "s:" + stream, label: writers.count == 1 ? rate(added) : "",
                        rate: writers.count == 1 ? added : nil, bad: false, labelAtSource: false))
            }
        }
        for service in topology.services {
            let state = status.services.first { $0.name == service.name }
            for stream in service.consumedStreams {
                let reading = state?.reading(of: stream)
                let lag = reading?.lag
                let bad =
                    (lag ?? 0) > lagLimit
                    || (state?.problems.contains { $0.contains(stream) } ?? false)
                edges.append(
                    Edge(
                        from: "s:" + stream, to: "c:" + service.name,
                        label: "\(rate(reading?.perSecond)) · lag \(lag.map(String.init) ?? "?")",
                        rate: reading?.perSecond, bad: bad, labelAtSource: true))
            }
        }
        // Writers: the gateway, then services in topology order (those that write anything).
        let writerNames = (["gateway"] + topology.services.map(\.name)).filter { name in
            edges.contains { $0.from == "w:" + name }
        }
        var nodes: [String: Node] = [:]
        var order: [String] = []
        func place(_ ids: [String], kind: Node.Kind, x: Double, width: Double, minimum: Double) -> Double {
            var y = 28.0
            for id in ids {
                var node = Node(id: id, kind: kind, x: x, width: width)
                node.inPorts = edges.indices.filter { edges[$0].to == id }
                node.outPorts = edges.indices.filter { edges[$0].from == id }
                node.y = y
                node.height = max(minimum, Double(max(node.inPorts.count, node.outPorts.count)) * portSpacing + 6)
                y += node.height + gap
                nodes[id] = node
                order.append(id)
            }
            return y
        }
        let bottom =
            [
                place(
                    writerNames.map { "w:" + $0 }, kind: .writer, x: columns.writer, width: widths.writer, minimum: 24),
                place(streams.map { "s:" + $0 }, kind: .stream, x: columns.stream, width: widths.stream, minimum: 30),
                place(
                    topology.services.map { "c:" + $0.name }, kind: .service, x: columns.service, width: widths.service,
                    minimum: 46),
            ].max() ?? 0

        func port(_ node: Node, _ edge: Int, out: Bool) -> (x: Double, y: Double) {
            let ports = out ? node.outPorts : node.inPorts
            let index = Double(ports.firstIndex(of: edge) ?? 0)
            let y = node.y + (node.height - Double(ports.count) * portSpacing) / 2 + (index + 0.5) * portSpacing
            return (out ? node.x + node.width : node.x, y)
        }
        var paths = ""
        var labels = ""
        for (index, edge) in edges.enumerated() {
            guard let from = nodes[edge.from], let to = nodes[edge.to] else { continue }
            let start = port(from, index, out: true)
            let end = port(to, index, out: false)
            let bend = (end.x - start.x) / 2
            let thickness = 1.2 + min(3.5, log10(1 + (edge.rate ?? 0)))
            paths += """
                <path class="edge\(edge.bad ? " bad" : "")" data-from="\(escape(String(edge.from.dropFirst(2))))" data-to="\(escape(String(edge.to.dropFirst(2))))" data-rate="\(edge.rate.map { String(format: "%.1f", $0) } ?? "")" stroke-width="\(svgNumber(thickness))" d="M\(svgNumber(start.x)),\(svgNumber(start.y)) C\(svgNumber(start.x + bend)),\(svgNumber(start.y)) \(svgNumber(end.x - bend)),\(svgNumber(end.y)) \(svgNumber(end.x)),\(svgNumber(end.y))"><title>\(escape(display(String(edge.from.dropFirst(2))))) → \(escape(display(String(edge.to.dropFirst(2))))): \(escape(edge.label))</title></path>

                """
            guard !edge.label.isEmpty else { continue }
            let at = edge.labelAtSource ? start : end
            labels += """
                <text class="label\(edge.bad ? " bad" : "")" x="\(svgNumber(at.x + (edge.labelAtSource ? 5 : -5)))" y="\(svgNumber(at.y + 4))" text-anchor="\(edge.labelAtSource ? "start" : "end")">\(escape(edge.label))</text>

                """
        }
        var boxes = ""
        for id in order {
            guard let node = nodes[id] else { continue }
            boxes += box(node, status: status, added: added)
        }
        let height = bottom + 4
        return """
            <svg class="map" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \(svgNumber(width)) \(svgNumber(height))" width="\(svgNumber(width))" height="\(svgNumber(height))" role="img" aria-label="Topology map: \(topology.services.count) services, \(streams.count) streams">
            <text class="heading" x="\(svgNumber(columns.writer))" y="16">writers</text><text class="heading" x="\(svgNumber(columns.stream))" y="16">streams · added/s · length</text><text class="heading" x="\(svgNumber(columns.stream + widths.stream + 6))" y="16">read/s · lag</text><text class="heading" x="\(svgNumber(columns.service))" y="16">services</text>
            <g class="edges">
            \(paths)</g>
            \(boxes)
            <g class="labels">
            \(labels)</g>
            </svg>
            """
    }

    /// One node: a rounded box with its name and numbers, a link for a service.
    static func box(_ node: Node, status: SystemStatus, added: [String: Double]) -> String {
        let name = String(node.id.dropFirst(2))
        let x = svgNumber(node.x)
        let y = svgNumber(node.y)
        let rect =
            "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(svgNumber(node.width))\" height=\"\(svgNumber(node.height))\" rx=\"5\"></rect>"
        let line1 = svgNumber(node.y + 13)
        let line2 = svgNumber(node.y + 26)
        let line3 = svgNumber(node.y + 39)
        let textX = svgNumber(node.x + 7)
        switch node.kind {
        case .writer:
            return """
                <g class="node writer" data-name="\(escape(name))">\(rect)<text x="\(textX)" y="\(svgNumber(node.y + node.height / 2 + 4))">\(escape(name))</text></g>

                """
        case .stream:
            let length = status.services.lazy.compactMap { $0.reading(of: name)?.length }.first
            return """
                <g class="node stream" data-name="\(escape(name))">\(rect)<text class="name" x="\(textX)" y="\(line1)">\(escape(display(name)))</text><text class="numbers" x="\(textX)" y="\(line2)">\(escape(rate(added[name]))) · length \(length.map(String.init) ?? "?")</text></g>

                """
        case .service:
            let state = status.services.first { $0.name == name }
            let problems = state?.problems ?? []
            let dead = state?.deadLetters ?? 0
            let processes = state.map { "\($0.liveProcesses)/\($0.processes.count) live" } ?? "not seen"
            return """
                <g class="node service\(problems.isEmpty ? "" : " bad")" data-name="\(escape(name))" data-dead="\(dead)"><title>\(escape(problems.isEmpty ? "\(name): no problems" : problems.joined(separator: "\n")))</title>\(rect)<text class="name" x="\(textX)" y="\(line1)">\(escape(name))</text><text class="numbers" x="\(textX)" y="\(line2)">\(escape(processes))</text><a href="/console/dead/\(urlPart(name))"><text class="dead\(dead > 0 ? " bad" : "")" x="\(textX)" y="\(line3)">\(dead) dead</text></a>\(problems.isEmpty ? "" : "<text class=\"flag\" x=\"\(svgNumber(node.x + node.width - 8))\" y=\"\(line1)\" text-anchor=\"end\">\(problems.count) problem\(problems.count == 1 ? "" : "s")</text>")</g>

                """
        }
    }
}
