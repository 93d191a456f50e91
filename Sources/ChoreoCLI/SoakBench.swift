// `choreo bench soak`: a long run at a fixed rate through one worker process, sampling the
// inbox's row count, the worker's memory and the stream's length: with a short inbox retention
// all three must level off after the first retention window (nothing grows without bound).

import ArgumentParser
import Choreo
import Foundation
import Postgres
import Probe
import Redis

struct SoakBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soak",
        abstract: "A long fixed-rate run: inbox rows, worker RSS and stream length sampled over time.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Messages per second offered.") var rate = 500
    @Option(help: "Length of the run in seconds.") var seconds = 1800
    @Option(help: "Inbox retention in seconds (short, so pruning is exercised).") var retention = 60
    @Option(help: "Seconds between samples.") var sample = 60

    func run() throws {
        let redis = try RedisConnection(url: options.redis)
        let service = try BenchService(
            prefix: "soak", options: options, schema: true,
            policy: "{ batch: 100, block: 500ms, claim_idle: 5s, inbox_retention: \(retention)s, maxlen: 10000 }",
            redis: redis)
        defer { service.remove() }
        let definition = service.definition
        let name = service.name
        let postgres = service.postgres
        let pid = try service.startWorkers(1)[0]
        print("soak: \(rate) msg/s for \(seconds) s, inbox retention \(retention) s, worker pid \(pid)")
        print("   t(s)      sent   inbox rows   worker RSS (MiB)   commands XLEN   lag")
        let start = Date()
        var sent = 0
        var nextSample = 0.0
        var samples: [(t: Double, inbox: Int, rss: Double)] = []
        let perTick = max(1, rate / 10)
        while true {
            let now = Date().timeIntervalSince(start)
            if now >= nextSample {
                let inbox =
                    try postgres.query("SELECT count(*) AS n FROM \(name).inbox").first?.decode(Int.self, "n") ?? 0
                let rss = Self.rssMiB(pid)
                let length = try redis.xlen(definition.commandStream)
                let lag =
                    length == 0
                    ? 0 : try redis.xinfoGroups(definition.commandStream).first { $0.name == name }?.lag ?? -1
                samples.append((now, inbox, rss))
                print(
                    String(
                        format: "%7.0f %9d %12d %18.1f %15d %5d", now, sent, inbox, rss, length, lag))
                fflush(nil)
                nextSample += Double(sample)
            }
            if now >= Double(seconds) { break }
            // Paced in tenths of a second: the schedule, not the loop's speed, sets the rate.
            let due = Int(now * Double(rate))
            if sent < due {
                let batch = (0..<min(perTick * 2, due - sent)).map { index in
                    RedisConnection.xaddArguments(
                        definition.commandStream,
                        fields: Envelope(type: "Insert", data: "{\"key\":\"s\",\"value\":\(sent + index)}").fields)
                }
                try redis.pipelineCheckingErrors(batch)
                sent += batch.count
            }
            usleep(20_000)
        }
        let settled = samples.filter { $0.t >= Double(retention) * 2 }
        if let first = settled.first, let last = settled.last {
            let inboxes = settled.map(\.inbox)
            print(
                String(
                    format:
                        "after the first retention windows (t >= %d s): inbox rows %d..%d (first %d, last %d); worker RSS %.1f -> %.1f MiB",
                    retention * 2, inboxes.min() ?? 0, inboxes.max() ?? 0, first.inbox, last.inbox, first.rss,
                    last.rss))
        }
    }

    /// The resident set of `pid` in MiB, from /proc.
    static func rssMiB(_ pid: pid_t) -> Double {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        return kilobytes / 1024
    }
}
