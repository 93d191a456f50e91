// `choreo status [--watch] [--json]`: every service's processes, streams (lag, pending, oldest
// pending, consumers, throughput) and dead letters, the gateway's readiness, problems first.

import ArgumentParser
import Choreo
import Foundation
import Operations
import Shop

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Services, streams, workers, lag and dead letters at a glance.",
        discussion: "Exit status: 0 no problems, 1 problems found, 2 usage or connection error.")

    @Flag(help: "Refresh every --interval seconds until interrupted.") var watch = false
    @Option(help: "Seconds between refreshes (and the throughput sample).") var interval = 2.0
    @Option(help: "Lag above which a stream is a problem.") var lagLimit = 1000
    @Option(help: "The gateway to ask for readiness (env CHOREO_GATEWAY_URL).")
    var gateway = ProcessInfo.processInfo.environment["CHOREO_GATEWAY_URL"] ?? "http://127.0.0.1:8080"
    @Flag(help: "JSON output.") var json = false
    @OptionGroup var options: TopologyOptions

    func run() async throws {
        let context = try OperatorContext(options)
        let seen = try lastLook(context)
        var previous = try snapshot(context, previous: nil, seen: seen)
        repeat {
            try await Task.sleep(nanoseconds: UInt64(min(interval, 1) * 1e9))
            var current = try snapshot(context, previous: previous, seen: seen)
            current.gateway = await readiness()
            if watch && !json { print("\u{1B}[2J\u{1B}[H", terminator: "") }
            print(json ? try prettyJSON(current) : render(current))
            try remember(current, context)
            if !watch {
                if !current.problems.isEmpty { throw Exit.problems }
                return
            }
            previous = current
            try await Task.sleep(nanoseconds: UInt64(max(interval - 1, 0) * 1e9))
        } while true
    }

    func snapshot(_ context: OperatorContext, previous: SystemStatus?, seen: [String: Int]) throws -> SystemStatus {
        do {
            return try SystemStatus.collect(
                topology: context.topology, redis: context.redis, previous: previous, seenDeadLetters: seen,
                lagLimit: lagLimit)
        } catch {
            throw Exit.usage("cannot read the streams: \(error)")
        }
    }

    /// Dead-letter counts at the operator's last look.
    func lastLook(_ context: OperatorContext) throws -> [String: Int] {
        let reply = try context.redis.command(["HGETALL", SystemStatus.lastLookKey])
        return reply.fieldMap.compactMapValues { $0.string.flatMap { Int($0) } }
    }

    func remember(_ status: SystemStatus, _ context: OperatorContext) throws {
        let pairs = status.services.flatMap { [$0.name, String($0.deadLetters)] }
        if !pairs.isEmpty { _ = try context.redis.command(["HSET", SystemStatus.lastLookKey] + pairs) }
    }

    func readiness() async -> String {
        let client = ShopClient(base: gateway)
        do {
            let reply = try await withThrowingTaskGroup(of: ShopClient.Reply.self) { group in
                group.addTask { try await client.get("/readyz") }
                group.addTask {
                    try await Task.sleep(nanoseconds: 2_000_000_000)
                    throw ShopClient.ClientError("timeout")
                }
                let first = try await group.next()!
                group.cancelAll()
                return first
            }
            return reply.status == 200 ? "ready" : "not ready: \(reply.body)"
        } catch {
            return "unreachable at \(gateway)"
        }
    }

    func render(_ status: SystemStatus) -> String {
        var lines: [String] = []
        let problems = status.problems
        lines.append(
            "choreo status at \(isoTime(status.at)): "
                + (problems.isEmpty ? "no problems" : "\(problems.count) problem(s)"))
        for problem in problems { lines.append("  ! \(problem)") }
        lines.append("gateway: \(status.gateway ?? "not asked")")
        lines.append("")
        var rows: [[String]] = []
        for service in status.services {
            let mark = service.problems.isEmpty ? " " : "!"
            for (index, stream) in service.streams.enumerated() {
                rows.append([
                    index == 0 ? "\(mark) \(service.name)" : "",
                    index == 0 ? "\(service.liveProcesses)/\(service.processes.count)" : "",
                    stream.stream, stream.lag.map(String.init) ?? "?", String(stream.pending),
                    stream.oldestPendingMs.map { "\($0 / 1000)s" } ?? "-",
                    stream.perSecond.map { String(format: "%.0f/s", $0) } ?? "-",
                    index == 0
                        ? "\(service.deadLetters)\(service.newDeadLetters > 0 ? " (+\(service.newDeadLetters))" : "")"
                        : "",
                    index == 0 ? Self.scheduled(service, now: status.at) : "",
                    "\(stream.consumers.filter(\.live).count) live, \(stream.consumers.filter { !$0.live }.count) gone"
                        + (stream.partition == nil ? "" : "; owner \(stream.owner ?? "none")"),
                ])
            }
        }
        lines.append(
            table(
                ["SERVICE", "PROCS", "STREAM", "LAG", "PENDING", "OLDEST", "RATE", "DEAD", "SCHEDULED", "CONSUMERS"],
                rows))
        return lines.joined(separator: "\n")
    }

    /// `3 (next in 12s)`, `0`, or `-` when no live process has counted.
    static func scheduled(_ service: SystemStatus.Service, now: Int64) -> String {
        guard let count = service.scheduled else { return "-" }
        guard count > 0, let next = service.nextDue else { return String(count) }
        let seconds = (next - now) / 1000
        return "\(count) (next \(seconds <= 0 ? "due now" : "in \(seconds)s"))"
    }
}
