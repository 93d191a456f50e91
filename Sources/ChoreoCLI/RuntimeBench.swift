// `choreo bench runtime`: messages per second through real worker processes (no-op handler and
// one-INSERT handler with inbox and outbox; 1 and 2 processes; batch sizes), next to a bare
// XREADGROUP + XACK loop measured in the same run.

import ArgumentParser
import Choreo
import Foundation
import Postgres
import Probe
import Redis

struct RuntimeBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runtime", abstract: "Worker throughput against a bare XREADGROUP + XACK baseline.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Messages per run for the no-op handler.") var count = 100_000
    @Option(help: "Messages per run for the INSERT handler.") var insertCount = 50_000
    @Option(help: "Batch sizes to compare for the INSERT handler.") var batches = "10,100,500"
    @Option(help: "Sections to run, comma-separated: noop, insert, batches.") var sections = "noop,insert,batches"

    func run() throws {
        let redis = try RedisConnection(url: options.redis)
        let picked = Set(sections.split(separator: ",").map { String($0) })
        // The no-op worker is compared with the bare loop run by run (baseline, then worker),
        // so that both see the same machine: the reported ratio is the median of the runs'
        // ratios, less sensitive to this VM's drift than a ratio of medians.
        var baselines: [Double] = []
        var ratios: [Int: [Double]] = [:]
        var rates: [Int: [Double]] = [:]
        for _ in 0..<options.runs {
            let baseline = try bareLoop(redis: redis, count: count)
            baselines.append(baseline)
            for processes in [1, 2] where picked.contains("noop") {
                let rate = try workers(
                    redis: redis, type: "Noop", schema: false, batch: 100, processes: processes, count: count)
                rates[processes, default: []].append(rate)
                ratios[processes, default: []].append(rate / baseline)
            }
        }
        report("baseline: bare XREADGROUP COUNT 100 + XACK", baselines)
        for processes in [1, 2] where picked.contains("noop") {
            report("no-op handler, no schema, batch 100, \(processes) process(es)", rates[processes] ?? [])
            let paired = (ratios[processes] ?? []).sorted()
            print(
                "  -> no-op, \(processes) process(es): "
                    + String(format: "%.0f%% of the baseline", paired[paired.count / 2] * 100)
                    + " (median of the runs' ratios: "
                    + (ratios[processes] ?? []).map { String(format: "%.0f%%", $0 * 100) }.joined(separator: ", ") + ")"
            )
        }
        for processes in [1, 2] where picked.contains("insert") {
            try measure("one INSERT + inbox + outbox, batch 100, \(processes) process(es)", runs: options.runs) {
                try workers(
                    redis: redis, type: "Insert", schema: true, batch: 100, processes: processes, count: insertCount)
            }
        }
        for batch in batches.split(separator: ",").compactMap({ Int($0) }) where picked.contains("batches") {
            try measure("one INSERT + inbox + outbox, batch \(batch), 1 process", runs: options.runs) {
                try workers(redis: redis, type: "Insert", schema: true, batch: batch, processes: 1, count: insertCount)
            }
        }
    }

    /// The ceiling: one connection reading batches of 100 and acknowledging them.
    func bareLoop(redis: RedisConnection, count: Int) throws -> Double {
        let stream = "bench.bare.\(getpid())"
        defer { _ = try? redis.command(["DEL", stream]) }
        try preload(redis: redis, stream: stream, type: "Noop", count: count)
        try redis.xgroupCreate(stream, group: "g", startID: "0")
        let start = ContinuousClock.now
        var read = 0
        while read < count {
            let batches = try redis.xreadgroup(group: "g", consumer: "c", streams: [(stream, ">")], count: 100)
            guard let entries = batches.first?.entries, !entries.isEmpty else { break }
            try redis.xack(stream, group: "g", ids: entries.map(\.id))
            read += entries.count
        }
        return Double(read) / elapsed(since: start)
    }

    func preload(redis: RedisConnection, stream: String, type: String, count: Int) throws {
        var commands: [[String]] = []
        commands.reserveCapacity(500)
        for index in 0..<count {
            let envelope = Envelope(type: type, data: "{\"key\":\"k\",\"value\":\(index)}")
            commands.append(RedisConnection.xaddArguments(stream, fields: envelope.fields))
            if commands.count == 500 {
                _ = try redis.pipeline(commands)
                commands.removeAll(keepingCapacity: true)
            }
        }
        if !commands.isEmpty { _ = try redis.pipeline(commands) }
    }

    /// Preloads `count` messages, starts `processes` worker processes, and measures the rate
    /// from the first read until the group has no lag and nothing pending.
    func workers(redis: RedisConnection, type: String, schema: Bool, batch: Int, processes: Int, count: Int) throws
        -> Double
    {
        let service = try BenchService(
            prefix: "bench", options: options, schema: schema, policy: "{ batch: \(batch), block: 500ms }",
            redis: redis)
        defer { service.remove() }
        let definition = service.definition
        let name = service.name
        try preload(redis: redis, stream: definition.commandStream, type: type, count: count)
        try redis.xgroupCreate(definition.commandStream, group: name, startID: "0")
        try service.startWorkers(processes)
        var startRead = 0
        var start = ContinuousClock.now
        let deadline = Date().addingTimeInterval(300)
        while Date() < deadline {
            let group = try redis.xinfoGroups(definition.commandStream).first { $0.name == name }
            if let read = group?.entriesRead, read > 0 {
                startRead = read
                start = ContinuousClock.now
                break
            }
            usleep(1_000)
        }
        while Date() < deadline {
            let group = try redis.xinfoGroups(definition.commandStream).first { $0.name == name }
            if let group, group.lag == 0, group.pending == 0 { break }
            usleep(2_000)
        }
        return Double(count - startRead) / elapsed(since: start)
    }
}
