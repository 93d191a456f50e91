// BenchService: a throw-away probe service for benchmarks: its topology file, schema and
// streams, and its worker processes; `remove()` stops the workers and deletes all of it.

import Choreo
import Foundation
import Postgres
import Probe
import Redis

/// A probe service of a benchmark's own, with `choreo worker --single` processes.
final class BenchService {
    /// Its definition (name, streams).
    let definition: ServiceDefinition
    let file: String
    let redis: RedisConnection
    let postgres: PostgresConnection
    private(set) var pids: [pid_t] = []

    /// Writes the topology (`policy` is the YAML flow mapping of its policy) and, with a
    /// schema, applies the probe's migrations.
    init(prefix: String, options: BenchOptions, schema: Bool, policy: String, redis: RedisConnection) throws {
        let name = "\(prefix)_\(Envelope.randomHex(4))"
        definition = ServiceDefinition(name: name, schema: schema ? name : nil, code: "probe")
        file = NSTemporaryDirectory() + "/\(name).yml"
        self.redis = redis
        postgres = try PostgresConnection(url: options.postgres)
        try """
        version: 1
        redis: \(options.redis)
        postgres: \(options.postgres)
        services:
          \(name):
            code: probe
            \(schema ? "schema: \(name)" : "")
            policy: \(policy)
        """.write(toFile: file, atomically: true, encoding: .utf8)
        if schema { try RuntimeSchema.migrate(schema: name, service: Probe.service(name: name), on: postgres) }
    }

    /// The service's name (also its schema and consumer group).
    var name: String { definition.name }

    /// Starts `count` worker processes of this binary.
    @discardableResult
    func startWorkers(_ count: Int) throws -> [pid_t] {
        let started = try Self.spawnWorkers(count, service: name, topology: file)
        pids += started
        return started
    }

    /// Stops the workers (SIGTERM, waiting for them), deletes the streams, the schema and the file.
    func remove() {
        for pid in pids { kill(pid, SIGTERM) }
        for pid in pids {
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        pids = []
        _ = try? redis.command(["DEL", definition.commandStream, definition.eventStream, definition.deadStream])
        if definition.schema != nil { _ = try? postgres.execute("DROP SCHEMA \(name) CASCADE") }
        try? FileManager.default.removeItem(atPath: file)
    }

    /// Starts `count` `choreo worker <service> --single` processes of this binary for the
    /// topology file `topology`, logging errors only, with the URLs from the file.
    static func spawnWorkers(_ count: Int, service: String, topology: String) throws -> [pid_t] {
        var environment = ProcessInfo.processInfo.environment
        environment["LOG_LEVEL"] = "error"
        environment["REDIS_URL"] = nil
        environment["DATABASE_URL"] = nil
        return try (0..<count).map { _ in
            try ChildProcess.spawn(
                ChildProcess.currentExecutable, ["worker", service, "--single", "--topology", topology],
                environment: environment)
        }
    }
}
