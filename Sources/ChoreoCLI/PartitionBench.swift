// `choreo bench partitions`: one hot events stream consumed by worker processes, unpartitioned
// (a plain consumer group, no per-key order) against the same stream split into partitions
// (per-key order), in the same run: messages per second with a one-INSERT handler and with an
// I/O-bound one (it sleeps).

import ArgumentParser
import Choreo
import Foundation
import Postgres
import Redis

struct PartitionBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "partitions",
        abstract: "One hot stream: unpartitioned vs partitioned (per-key order), messages per second.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Partition counts to compare; 1 is the unpartitioned stream.") var partitions = "1,4,8"
    @Option(help: "Worker processes consuming the stream (the same for every count).") var processes = 4
    @Option(help: "Messages per run with the INSERT handler.") var count = 20_000
    @Option(help: "Messages per run with the sleeping handler.") var sleepCount = 2_000
    @Option(help: "How long the I/O-bound handler sleeps per message, in ms.") var sleepMs = 2
    @Option(help: "Keys the messages are spread over.") var keys = 1_000

    func run() throws {
        let counts = partitions.split(separator: ",").compactMap { Int($0) }
        for (label, perRun, ms) in [
            ("one INSERT", count, 0), ("sleeps \(sleepMs) ms + one INSERT", sleepCount, sleepMs),
        ] {
            var rates: [Int: [Double]] = [:]
            // Counts alternate within each run, so every count sees the same machine.
            for _ in 0..<options.runs {
                for partitionCount in counts {
                    rates[partitionCount, default: []].append(
                        try measureRun(partitions: partitionCount, messages: perRun, ms: ms))
                }
            }
            let base = rates[counts.first ?? 1].map { $0.sorted()[$0.count / 2] } ?? 0
            for partitionCount in counts {
                let name =
                    partitionCount == 1
                    ? "\(label), unpartitioned, \(processes) processes"
                    : "\(label), \(partitionCount) partitions, \(processes) processes"
                let median = report(name, rates[partitionCount] ?? [])
                if partitionCount != counts.first, base > 0 {
                    print(String(format: "  -> %.2fx the first", median / base))
                }
            }
        }
    }

    /// Starts the processes, waits until they own the partitions evenly, publishes `messages`
    /// and times them until all are handled.
    func measureRun(partitions: Int, messages: Int, ms: Int) throws -> Double {
        let redis = try RedisConnection(url: options.redis)
        let postgres = try PostgresConnection(url: options.postgres)
        let source = "psrc_\(Envelope.randomHex(4))"
        let sink = "psink_\(Envelope.randomHex(4))"
        let file = NSTemporaryDirectory() + "/\(sink).yml"
        try """
        version: 1
        redis: \(options.redis)
        postgres: \(options.postgres)
        services:
          \(source):
            code: probe
            \(partitions > 1 ? "events: { partitions: \(partitions), key: key }" : "")
          \(sink):
            code: probe
            schema: \(sink)
            consumes: [\(source).events]
            policy: { batch: 100, block: 200ms, claim_idle: 5s }
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let topology = try Topology.load(path: file, environment: [:])
        guard let publisher = topology.service(source) else { throw CommandError("no service \(source)") }
        let pids = try BenchService.spawnWorkers(processes, service: sink, topology: file)
        defer {
            for pid in pids { kill(pid, SIGTERM) }
            for pid in pids {
                var status: Int32 = 0
                waitpid(pid, &status, 0)
            }
            let streams = topology.keys(of: publisher.eventStream)
            _ = try? redis.command(["DEL", "{\(sink)}.commands", "{\(sink)}.dead"] + streams)
            for stream in streams {
                _ = try? redis.command(["DEL", PartitionLease.key(partition: stream, group: sink)])
            }
            _ = try? redis.command(["DEL", PartitionLayout.key(publisher.eventStream), Topology.workersKey(sink)])
            _ = try? postgres.execute("DROP SCHEMA IF EXISTS \(sink) CASCADE")
            try? FileManager.default.removeItem(atPath: file)
        }
        // Ready: every process beating, every partition owned, each process its share.
        let deadline = Date().addingTimeInterval(60)
        while true {
            let live = Set(try Heartbeat.all(service: sink, redis: redis).filter { $0.isLive() }.map(\.consumer))
            var ready = live.count == processes
            if ready, let partitioning = publisher.eventPartitioning {
                let owners = try partitioning.keys.map {
                    try redis.command(["GET", PartitionLease.key(partition: $0, group: sink)]).string
                }
                let share = (partitions + processes - 1) / processes
                let counts = Dictionary(grouping: owners.compactMap { $0 }, by: { $0 }).mapValues(\.count)
                ready = owners.allSatisfy { $0.map(live.contains) == true } && counts.values.allSatisfy { $0 <= share }
            }
            if ready { break }
            guard Date() < deadline else { throw CommandError("the workers did not start within 60 s") }
            usleep(50_000)
        }
        var commands: [[String]] = []
        for index in 0..<messages {
            let data = "{\"key\":\"k\(index % keys)\",\"value\":\(index),\"ms\":\(ms)}"
            let envelope = Envelope(type: "Sequenced", data: data)
            commands.append(
                RedisConnection.xaddArguments(
                    publisher.eventStream(data: data, correlation: envelope.correlation), fields: envelope.fields))
        }
        let start = ContinuousClock.now
        for first in stride(from: 0, to: commands.count, by: 1000) {
            try redis.pipelineCheckingErrors(Array(commands[first..<min(first + 1000, commands.count)]))
        }
        while try postgres.query("SELECT count(*) AS n FROM \(sink).sequenced").first?.decode(Int.self, "n")
            ?? 0 < messages
        {
            guard elapsed(since: start) < 300 else { throw CommandError("not all messages handled within 300 s") }
            usleep(2_000)
        }
        return Double(messages) / elapsed(since: start)
    }
}
