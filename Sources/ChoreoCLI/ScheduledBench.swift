// `choreo bench scheduled`: delayed messages due at a steady rate (scheduled by handlers a few
// seconds ahead, published by the workers' schedulers, handled by the same pool), reporting
// lateness (handled minus due) and early deliveries, next to the latency of the same messages
// sent at once, measured in the same run.

import ArgumentParser
import Choreo
import Foundation
import Postgres
import Redis

struct ScheduledBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scheduled",
        abstract: "Lateness of delayed messages at a steady due rate, against immediate messages at that rate.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Messages due per second.") var rate = 10_000
    @Option(help: "Seconds over which messages fall due.") var seconds = 60.0
    @Option(help: "How far ahead each message is scheduled, in seconds.") var ahead = 3.0
    @Option(help: "Worker processes.") var processes = 2

    func run() throws {
        let redis = try RedisConnection(url: options.redis)
        var scheduled: [Summary] = []
        var immediate: [Summary] = []
        for _ in 0..<options.runs {
            immediate.append(try measureRun(redis: redis, delayed: false))
            scheduled.append(try measureRun(redis: redis, delayed: true))
        }
        func line(_ name: String, _ runs: [Summary]) {
            let median = { (values: [Double]) in values.sorted()[values.count / 2] }
            print(
                name
                    + String(
                        format:
                            ": p50 %.1f ms, p99 %.1f ms, p99.9 %.1f ms, max %.0f ms; handled %.0f/s; early %d; missing %d",
                        median(runs.map(\.p50)), median(runs.map(\.p99)), median(runs.map(\.p999)),
                        median(runs.map(\.max)), median(runs.map(\.rate)), runs.map(\.early).max() ?? 0,
                        runs.map(\.missing).max() ?? 0)
                    + "  (p99 of the runs: " + runs.map { String(format: "%.1f", $0.p99) }.joined(separator: ", ") + ")"
            )
        }
        print(
            "\(rate) messages/s for \(Int(seconds)) s, \(processes) worker process(es), medians of \(options.runs) run(s):"
        )
        line("  baseline: sent at once, latency (handled - sent)", immediate)
        line("  delayed \(ahead) s ahead, lateness (handled - due)", scheduled)
        let ratio =
            scheduled.map(\.p99).sorted()[scheduled.count / 2]
            / max(0.001, immediate.map(\.p99).sorted()[immediate.count / 2])
        print(String(format: "  -> delayed p99 lateness is %.2fx the immediate p99 latency", ratio))
    }

    struct Summary {
        var p50: Double
        var p99: Double
        var p999: Double
        var max: Double
        var rate: Double
        var early: Int
        var missing: Int
    }

    /// One run: a fresh service; every 100 ms, `rate / 10` messages either scheduled `ahead`
    /// seconds ahead (one handler call schedules them, spread over the 100 ms) or sent at once.
    func measureRun(redis: RedisConnection, delayed: Bool) throws -> Summary {
        let service = try BenchService(
            prefix: "sched", options: options, schema: true, policy: "{ batch: 100, block: 500ms }", redis: redis)
        defer { service.remove() }
        let stream = service.definition.commandStream
        try redis.xgroupCreate(stream, group: service.name, startID: "$", makeStream: true)
        try service.startWorkers(processes)
        let perTick = max(1, rate / 10)
        let ticks = Int(seconds * 10)
        let total = perTick * ticks
        let start = Envelope.nowMilliseconds() + 1000
        let first = start + (delayed ? Int64(ahead * 1000) : 0)
        for tick in 0..<ticks {
            // Scheduling runs `ahead` of the due times; immediate messages are sent at their time.
            let sendAt = start + Int64(tick * 100)
            let wait = sendAt - Envelope.nowMilliseconds()
            if wait > 0 { usleep(UInt32(wait * 1000)) }
            if delayed {
                let due = first + Int64(tick * 100)
                let data = "{\"key\":\"f\",\"count\":\(perTick),\"atMs\":\(due),\"spreadMs\":100}"
                try redis.xadd(stream, fields: Envelope(type: "ScheduleMany", data: data).fields)
            } else {
                // Spread over the tick like the delayed ones: ten bursts of a tenth.
                for slice in 0..<10 {
                    let target = sendAt + Int64(slice * 10)
                    let pause = target - Envelope.nowMilliseconds()
                    if pause > 0 { usleep(UInt32(pause * 1000)) }
                    let commands = (0..<(perTick / 10)).map { index in
                        RedisConnection.xaddArguments(
                            stream,
                            fields: Envelope(type: "Fire", data: "{\"key\":\"f\",\"value\":\(index)}").fields)
                    }
                    if !commands.isEmpty { _ = try redis.pipeline(commands) }
                }
            }
        }
        let expected = delayed ? total : (perTick / 10) * 10 * ticks
        let deadline = Date().addingTimeInterval(ahead + 60)
        var handled = 0
        while Date() < deadline {
            handled =
                try service.postgres.query("SELECT count(*) AS n FROM \(service.name).records").first?.decode(
                    Int.self, "n") ?? 0
            if handled >= expected { break }
            usleep(200_000)
        }
        let column = delayed ? "due" : "sent_at"
        let row = try service.postgres.query(
            """
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY handled_at - \(column)) AS p50,
                percentile_cont(0.99) WITHIN GROUP (ORDER BY handled_at - \(column)) AS p99,
                percentile_cont(0.999) WITHIN GROUP (ORDER BY handled_at - \(column)) AS p999,
                max(handled_at - \(column))::double precision AS worst,
                count(*) FILTER (WHERE handled_at < \(column))::bigint AS early,
                (count(*)::double precision * 1000 / greatest(1, max(handled_at) - min(handled_at)))::double precision AS rate
            FROM \(service.name).records
            """
        ).first
        let windows = try service.postgres.query(
            """
            SELECT ((\(column) - \(first)) / 10000)::int AS w,
                percentile_cont(0.99) WITHIN GROUP (ORDER BY handled_at - \(column)) AS p99
            FROM \(service.name).records GROUP BY 1 ORDER BY 1
            """
        ).rows.map { String(format: "%.0f", (try? $0.decode(Double.self, "p99")) ?? 0) }
        print(
            "    \(delayed ? "delayed" : "immediate") run: p99 by 10 s window (ms): " + windows.joined(separator: " "))
        return Summary(
            p50: try row?.decode(Double.self, "p50") ?? 0, p99: try row?.decode(Double.self, "p99") ?? 0,
            p999: try row?.decode(Double.self, "p999") ?? 0, max: try row?.decode(Double.self, "worst") ?? 0,
            rate: try row?.decode(Double.self, "rate") ?? 0, early: try row?.decode(Int.self, "early") ?? 0,
            missing: max(0, expected - handled))
    }
}
