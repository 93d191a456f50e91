// PartitionHarness: a test's own partitioned events stream (a probe service `src` whose events
// are split into partitions by `key`) and a probe service `sink` that consumes it, with helpers
// to publish keyed events into their partitions and to read back the order they were handled in.

import Choreo
import Foundation
import Postgres
import Probe
import Redis

/// A partitioned stream and its consumer, unique to one test.
public final class PartitionHarness: @unchecked Sendable {
    /// The topology: `src` (publishes the partitioned stream, never run) and `sink`.
    public let topology: Topology
    /// The publishing service's name.
    public let source: String
    /// The consuming service's name (also its schema and consumer group).
    public let sink: String
    /// The stream's partitioning.
    public let partitioning: StreamPartitioning
    /// A Redis connection for the test.
    public let redis: RedisConnection
    /// A Postgres connection for the test.
    public let postgres: PostgresConnection

    /// Whether the partitioned stream is `sink`'s own commands stream (no `src`).
    public let commands: Bool

    /// Creates the harness: `partitions` partitions keyed by the payload's `key`, of `src`'s
    /// events stream that `sink` consumes, or with `commands`, of `sink`'s own commands stream.
    public init(
        partitions: Int = 8, policy: ServicePolicy = ProbeHarness.testPolicy,
        redisURL: String = TestEnvironment.redisURL, postgresURL: String = TestEnvironment.databaseURL,
        commands: Bool = false
    ) throws {
        self.commands = commands
        source = TestEnvironment.uniqueName("psrc")
        sink = TestEnvironment.uniqueName("psink")
        var publisher = ServiceDefinition(name: source, policy: policy, code: "probe")
        var consumer = ServiceDefinition(name: sink, schema: sink, policy: policy, code: "probe")
        if commands {
            let partitioning = StreamPartitioning(stream: consumer.commandStream, count: partitions, keyField: "key")
            consumer.commandPartitioning = partitioning
            self.partitioning = partitioning
        } else {
            let partitioning = StreamPartitioning(stream: publisher.eventStream, count: partitions, keyField: "key")
            publisher.eventPartitioning = partitioning
            consumer.subscribes = [publisher.eventStream]
            self.partitioning = partitioning
        }
        topology = Topology(redisURL: redisURL, postgresURL: postgresURL, services: [publisher, consumer])
        redis = try RedisConnection(url: redisURL)
        postgres = try PostgresConnection(url: postgresURL)
    }

    /// The consuming service's definition.
    public var definition: ServiceDefinition { topology.service(sink)! }

    /// Publishes a `Sequenced` event for `key` into its partition, as the runtime's outbox
    /// relay would; returns the partition's key.
    @discardableResult
    public func publish(key: String, value: Int, ms: Int = 0, failTimes: Int = 0, gate: String? = nil) throws
        -> String
    {
        let data =
            "{\"key\":\"\(key)\",\"value\":\(value),\"ms\":\(ms),\"failTimes\":\(failTimes)"
            + (gate.map { ",\"gate\":\"\($0)\"" } ?? "") + "}"
        let envelope = Envelope(type: "Sequenced", data: data)
        let stream = topology.route(partitioning.stream, fields: envelope.fields)
        try redis.xadd(stream, fields: envelope.fields)
        return stream
    }

    /// Publishes many events in one round trip per node, in order.
    public func publish(_ events: [(key: String, value: Int)], ms: Int = 0) throws {
        var commands: [[String]] = []
        for event in events {
            let data = "{\"key\":\"\(event.key)\",\"value\":\(event.value),\"ms\":\(ms)}"
            let envelope = Envelope(type: "Sequenced", data: data)
            commands.append(
                RedisConnection.xaddArguments(
                    topology.route(partitioning.stream, fields: envelope.fields), fields: envelope.fields))
        }
        for start in stride(from: 0, to: commands.count, by: 500) {
            try redis.pipelineCheckingErrors(Array(commands[start..<min(start + 500, commands.count)]))
        }
    }

    /// Applies the sink's migrations (its tables exist before a worker starts).
    public func migrate() throws {
        try WorkerProcess(service: Probe.service(name: sink), topology: topology).migrate()
    }

    /// Starts an in-process worker of `sink` (migrations first).
    public func startWorker(consumer: String? = nil) throws -> WorkerProcess {
        let worker = try WorkerProcess(
            service: Probe.service(name: sink), topology: topology, consumer: consumer ?? WorkerProcess.consumerName(),
            intervals: ProbeHarness.quickIntervals)
        try worker.migrate()
        try worker.checkPartitions()
        worker.start()
        return worker
    }

    /// Drains and stops an in-process worker.
    public func stopWorker(_ worker: WorkerProcess) {
        worker.requestStop()
        worker.waitUntilStopped(timeout: 10)
    }

    /// One handled event, in handling order.
    public struct Handled: Sendable, Equatable {
        /// The handling order (a serial).
        public var n: Int
        /// The event's key.
        public var key: String
        /// Its value (the publish order within the key).
        public var value: Int
        /// The partition stream it was read from.
        public var stream: String
        /// The consumer that handled it.
        public var handledBy: String
        /// Its delivery number.
        public var attempt: Int
    }

    /// Every handled event, in handling order.
    public func handled() throws -> [Handled] {
        guard try tableExists() else { return [] }
        return try postgres.query(
            "SELECT n, key, value, stream, handled_by, attempt FROM \(sink).sequenced ORDER BY n"
        ).rows.map {
            Handled(
                n: try $0.decode(Int.self, "n"), key: try $0.decode(String.self, "key"),
                value: try $0.decode(Int.self, "value"), stream: try $0.decode(String.self, "stream"),
                handledBy: try $0.decode(String.self, "handled_by"), attempt: try $0.decode(Int.self, "attempt"))
        }
    }

    private func tableExists() throws -> Bool {
        try postgres.query(
            "SELECT count(*) AS n FROM pg_tables WHERE schemaname = $1 AND tablename = 'sequenced'", [sink]
        ).first?.decode(Int.self, "n") == 1
    }

    /// How many events were handled.
    public func handledCount() throws -> Int {
        guard try tableExists() else { return 0 }
        return try postgres.query("SELECT count(*) AS n FROM \(sink).sequenced").first?.decode(Int.self, "n") ?? 0
    }

    /// The keys whose events were handled out of publish order (a value after a larger one).
    public func inversions() throws -> [String] {
        var last: [String: Int] = [:]
        var inverted: Set<String> = []
        for row in try handled() {
            if let previous = last[row.key], row.value <= previous { inverted.insert(row.key) }
            last[row.key] = row.value
        }
        return inverted.sorted()
    }

    /// Entries pending (read, unacknowledged) across the partitions.
    public func pendingCount() throws -> Int {
        try partitioning.keys.reduce(0) { total, key in
            guard try redis.command(["EXISTS", key]).int == 1 else { return total }
            return total + (try redis.xpendingSummary(key, group: sink).count)
        }
    }

    /// Each partition's lease owner (nil: free).
    public func owners() throws -> [String?] {
        try partitioning.keys.map {
            try redis.command(["GET", "choreo:lease:\($0):\(sink)"]).string
        }
    }

    /// Closes gate `name`: `Sequenced` events with that gate fail until ``open(_:)``.
    public func close(_ name: String) throws {
        try postgres.query("INSERT INTO \(sink).blocks (key) VALUES ($1) ON CONFLICT DO NOTHING", [name])
    }

    /// Opens gate `name`.
    public func open(_ name: String) throws {
        try postgres.query("DELETE FROM \(sink).blocks WHERE key = $1", [name])
    }

    /// Keys, one per partition, in different partitions (`count` of them).
    public func keysInDistinctPartitions(_ count: Int, prefix: String = "k") -> [String] {
        var seen: Set<Int> = []
        var keys: [String] = []
        var candidate = 0
        while keys.count < min(count, partitioning.count) {
            let key = "\(prefix)\(candidate)"
            if seen.insert(StreamPartitioning.partition(of: key, count: partitioning.count)).inserted {
                keys.append(key)
            }
            candidate += 1
        }
        return keys
    }

    /// The sink's dead letters.
    public func deadCount() throws -> Int {
        try redis.command(["EXISTS", definition.deadStream]).int == 1 ? try redis.xlen(definition.deadStream) : 0
    }

    /// Writes the topology as YAML for `choreo` child processes; returns its path.
    public func writeTopology(processes: Int, batch: Int = 20) throws -> String {
        let yaml = """
            version: 1
            redis: \(topology.redisURL)
            postgres: \(topology.postgresURL)
            services:
              \(source):
                code: probe
                \(commands ? "" : "events: { partitions: \(partitioning.count), key: key }")
              \(sink):
                code: probe
                schema: \(sink)
                \(commands ? "commands: { partitions: \(partitioning.count), key: key }" : "consumes: [\(source).events]")
                policy:
            \(ProbeHarness.policyYAML(definition.policy, batch: batch, processes: processes))
            """
        let path = TestEnvironment.workDirectory + "/\(sink).yml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Starts `choreo` with `arguments` (a child process, stopped when the test process exits).
    public func spawnChoreo(_ arguments: [String]) throws -> pid_t {
        let pid = try ProbeHarness.spawnChoreo(arguments)
        ChildReaper.register(pid)
        return pid
    }

    /// The live worker processes of `sink`.
    public func liveWorkers() throws -> [Heartbeat] {
        try Heartbeat.all(service: sink, redis: redis).filter { $0.isLive() }
    }
}
