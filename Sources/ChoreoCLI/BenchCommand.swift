// `choreo bench`: throughput benchmarks of the Redis and Postgres clients and of the runtime,
// each a median of several runs, with a baseline measured in the same run.

import ArgumentParser
import Choreo
import Foundation
import Postgres
import Redis

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks (medians of --runs runs; no timed assertions).",
        subcommands: [
            JSONBench.self, RedisBench.self, PostgresBench.self, RuntimeBench.self, ReplayBench.self, SoakBench.self,
            ScheduledBench.self, PartitionBench.self,
        ])
}

/// Options of every benchmark.
struct BenchOptions: ParsableArguments {
    @Option(help: "Redis URL (default: REDIS_URL or the local default).")
    var redis = ProcessInfo.processInfo.environment["REDIS_URL"] ?? Topology.defaultRedisURL

    @Option(help: "Postgres URL (default: DATABASE_URL or the local default).")
    var postgres = ProcessInfo.processInfo.environment["DATABASE_URL"] ?? Topology.defaultPostgresURL

    @Option(help: "Runs per measurement; the median is reported.")
    var runs = 3
}

/// Runs `body` `runs` times; each returns operations per second; prints and returns the median.
@discardableResult
func measure(_ name: String, runs: Int, _ body: () throws -> Double) rethrows -> Double {
    var rates: [Double] = []
    for _ in 0..<runs { rates.append(try body()) }
    return report(name, rates)
}

/// Prints the median of `rates` (and every run) under `name`; returns the median.
@discardableResult
func report(_ name: String, _ rates: [Double]) -> Double {
    guard !rates.isEmpty else { return 0 }
    let median = rates.sorted()[rates.count / 2]
    let spread = rates.map { String(format: "%.0f", $0) }.joined(separator: ", ")
    let padded = name.count < 62 ? name + String(repeating: " ", count: 62 - name.count) : name
    print(padded + String(format: " %10.0f /s   (runs: ", median) + spread + ")")
    fflush(nil)
    return median
}

/// Seconds since `start`.
func elapsed(since start: ContinuousClock.Instant) -> Double {
    let duration = ContinuousClock.now - start
    return Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

struct RedisBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis", abstract: "XADD one by one and pipelined, XREADGROUP + XACK batches.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Messages per run.") var count = 100_000

    func run() throws {
        let redis = try RedisConnection(url: options.redis)
        let fields = Envelope(type: "Bench", data: "{\"n\":1}").fields
        let stream = "bench.redis.\(getpid())"
        defer { _ = try? redis.command(["DEL", stream]) }
        let oneByOne = min(count, 20_000)
        try measure("XADD one at a time", runs: options.runs) {
            let start = ContinuousClock.now
            for _ in 0..<oneByOne { try redis.xadd(stream, fields: fields) }
            return Double(oneByOne) / elapsed(since: start)
        }
        try redis.command(["DEL", stream])
        // The same command as `redis-benchmark ... XADD bench * id x type Bench data {"n":1}`.
        let short = [StreamField("id", "x"), StreamField("type", "Bench"), StreamField("data", "{\"n\":1}")]
        for (label, fieldSet) in [("3 fields (as redis-benchmark)", short), ("envelope, 8 fields", fields)] {
            try measure("XADD pipelined by 100, \(label)", runs: options.runs) {
                let batch = [[String]](repeating: RedisConnection.xaddArguments(stream, fields: fieldSet), count: 100)
                let start = ContinuousClock.now
                for _ in 0..<(count / 100) { try redis.pipelineCheckingErrors(batch) }
                return Double(count / 100 * 100) / elapsed(since: start)
            }
            try redis.command(["DEL", stream])
            try measure("XADD pipelined by 1000 (writes overlap replies), \(label)", runs: options.runs) {
                let batch = [[String]](repeating: RedisConnection.xaddArguments(stream, fields: fieldSet), count: 1000)
                let start = ContinuousClock.now
                for _ in 0..<(count / 1000) { try redis.pipelineCheckingErrors(batch) }
                return Double(count / 1000 * 1000) / elapsed(since: start)
            }
            try redis.command(["DEL", stream])
        }
        try measure("XREADGROUP COUNT 100 + XACK per batch", runs: options.runs) {
            try redis.command(["DEL", stream])
            let command = RedisConnection.xaddArguments(stream, fields: fields)
            for _ in 0..<(count / 100) { _ = try redis.pipeline([[String]](repeating: command, count: 100)) }
            try redis.xgroupCreate(stream, group: "g", startID: "0")
            let start = ContinuousClock.now
            var read = 0
            while read < count / 100 * 100 {
                let batches = try redis.xreadgroup(group: "g", consumer: "c", streams: [(stream, ">")], count: 100)
                guard let entries = batches.first?.entries, !entries.isEmpty else { break }
                try redis.xack(stream, group: "g", ids: entries.map(\.id))
                read += entries.count
            }
            return Double(read) / elapsed(since: start)
        }
    }
}

struct PostgresBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postgres", abstract: "INSERT one per transaction, 100 per transaction, 100 pipelined.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Rows per run.") var count = 20_000

    func run() throws {
        let db = try PostgresConnection(url: options.postgres)
        let table = "bench_rows_\(getpid())"
        try db.execute("CREATE TABLE \(table) (id bigserial PRIMARY KEY, key text NOT NULL, value bigint NOT NULL)")
        defer { _ = try? db.execute("DROP TABLE \(table)") }
        let insert = "INSERT INTO \(table) (key, value) VALUES ($1, $2)"
        let single = min(count, 5_000)
        try measure("INSERT, one transaction each", runs: options.runs) {
            let start = ContinuousClock.now
            for index in 0..<single { try db.query(insert, ["k", index]) }
            return Double(single) / elapsed(since: start)
        }
        try measure("INSERT, 100 per transaction, one round trip each", runs: options.runs) {
            let start = ContinuousClock.now
            for batch in 0..<(count / 100) {
                try db.transaction { tx in
                    for index in 0..<100 { try tx.query(insert, ["k", batch * 100 + index]) }
                }
            }
            return Double(count / 100 * 100) / elapsed(since: start)
        }
        try measure("INSERT, 100 per transaction, pipeline mode", runs: options.runs) {
            let start = ContinuousClock.now
            for batch in 0..<(count / 100) {
                let statements =
                    [PostgresStatement("BEGIN")] + (0..<100).map { PostgresStatement(insert, ["k", batch * 100 + $0]) }
                    + [PostgresStatement("COMMIT")]
                for result in try db.pipeline(statements) { _ = try result.get() }
            }
            return Double(count / 100 * 100) / elapsed(since: start)
        }
    }
}
