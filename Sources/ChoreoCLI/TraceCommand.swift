// `choreo trace <command-or-correlation-id>`: a saga as a timeline across services.

import ArgumentParser
import Choreo
import Foundation
import Operations
import Postgres

struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "A saga as a timeline: every message with a correlation id and what each service did with it.",
        discussion: """
            History: the saga's time window of every stream (messages), each service's inbox \
            (handled, read as an operator with the topology's Postgres URL), its dead stream and its \
            pending list. Exit status: 0 found, 1 nothing found, 2 usage or connection error.
            """)

    @Argument(help: "A command id (the saga's correlation id) or any correlation id.") var id: String
    @Option(help: "Seconds after the start to scan.") var window = 3600.0
    @Flag(help: "JSON output.") var json = false
    @OptionGroup var options: TopologyOptions

    func run() throws {
        let context = try OperatorContext(options)
        let postgres = try? PostgresConnection(url: context.topology.postgresURL)
        if postgres == nil {
            FileHandle.standardError.write(Data("choreo trace: Postgres unreachable; outcomes from Redis only\n".utf8))
        }
        let topology = context.topology
        let trace: SagaTrace
        do {
            trace = try SagaTrace.build(
                correlation: id, topology: topology, redis: context.redis, postgres: postgres,
                handles: { service, type in
                    topology.service(service).flatMap(ServiceCatalog.service(for:))?.handler(for: type) != nil
                }, window: window)
        } catch {
            throw Exit.usage("cannot read the saga: \(error)")
        }
        if json {
            print(try prettyJSON(trace))
        } else {
            print(render(trace))
        }
        if trace.steps.isEmpty && trace.command == nil { throw Exit.problems }
    }

    func render(_ trace: SagaTrace) -> String {
        var lines: [String] = []
        if let command = trace.command {
            var line = "command \(trace.correlation) \(command["type"] ?? "") is \(command["status"] ?? "?")"
            if let submitted = command["submittedAt"].flatMap({ Int64($0) }) {
                line += ", submitted \(isoTime(submitted))"
            }
            if let completed = command["completedAt"].flatMap({ Int64($0) }),
                let submitted = command["submittedAt"].flatMap({ Int64($0) })
            {
                line += ", settled after \(completed - submitted) ms"
            }
            lines.append(line)
            if let error = command["error"] { lines.append("  error: \(error)") }
            if let result = command["result"] { lines.append("  result: \(shorten(result, 160))") }
        } else {
            lines.append("no command record for \(trace.correlation) (expired, or not a command id)")
        }
        guard let first = trace.steps.first else {
            lines.append("no messages with correlation \(trace.correlation) in the streams")
            return lines.joined(separator: "\n")
        }
        let origin = first.due ?? first.at
        var previous = origin
        var rows: [[String]] = []
        for step in trace.steps {
            // A delayed message shows at its due time (when it was published).
            let shown = step.due ?? step.at
            let outcomes = step.handlings.map { handling -> String in
                var text = "\(handling.service): \(handling.outcome)"
                if let at = handling.at { text += " +\(at - shown)ms" }
                if let deliveries = handling.deliveries, handling.outcome != "handled" {
                    text += " (\(deliveries) deliveries)"
                }
                if let error = handling.error { text += " \(shorten(error, 60))" }
                return text
            }
            var type = step.type + (step.replays > 0 ? " (replay \(step.replays))" : "")
            if step.due != nil { type += " (delayed, scheduled at +\(step.at - origin)ms)" }
            if let deadline = step.deadlineAt { type += " (deadline at +\(deadline - origin)ms)" }
            rows.append([
                "+\(shown - origin)ms", "+\(shown - previous)", step.stream, type, step.entry,
                outcomes.joined(separator: "; "),
            ])
            previous = shown
        }
        lines.append(table(["AT", "GAP", "STREAM", "TYPE", "ENTRY", "OUTCOME"], rows))
        return lines.joined(separator: "\n")
    }
}
