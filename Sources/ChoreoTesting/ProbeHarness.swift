// ProbeHarness: a probe service of a test's own (unique name, schema and streams) with helpers
// to send messages, run workers in-process, and read back effects.

import Choreo
import Foundation
import Postgres
import Probe
import Redis

/// One test's private service running the probe's code.
public final class ProbeHarness: @unchecked Sendable {
    /// The topology with the one service.
    public var topology: Topology
    /// The service's name (also its schema).
    public let name: String
    /// A Redis connection for the test.
    public let redis: RedisConnection
    /// A Postgres connection for the test.
    public let postgres: PostgresConnection

    /// Creates a harness; `policy` defaults to quick retries for tests.
    public init(
        policy: ServicePolicy? = nil, schema: Bool = true, redisURL: String = TestEnvironment.redisURL,
        postgresURL: String = TestEnvironment.databaseURL
    ) throws {
        name = TestEnvironment.uniqueName("probe")
        let definition = ServiceDefinition(
            name: name, schema: schema ? name : nil, policy: policy ?? Self.testPolicy, code: "probe")
        topology = Topology(redisURL: redisURL, postgresURL: postgresURL, services: [definition])
        redis = try RedisConnection(url: redisURL)
        postgres = try PostgresConnection(url: postgresURL)
    }

    /// The policy of test harnesses: quick retries (3 deliveries), 2 s claim_idle, short blocks.
    public static var testPolicy: ServicePolicy {
        var policy = ServicePolicy()
        policy.block = 0.2
        policy.maxDeliveries = 3
        policy.backoff = Backoff(initial: 0.05, max: 0.5, multiplier: 2, jitter: 0.1)
        policy.claimIdle = 2
        policy.shutdownTimeout = 5
        return policy
    }

    /// The service definition.
    public var definition: ServiceDefinition { topology.services.first { $0.name == name }! }

    /// The probe's code under this harness's name.
    public var service: Service { Probe.service(name: name) }

    /// Starts an in-process worker (migrations first). Stop it with `stop(_:)`.
    public func startWorker(consumer: String? = nil, intervals: Maintenance.Intervals = ProbeHarness.quickIntervals)
        throws -> WorkerProcess
    {
        let worker = try WorkerProcess(
            service: service, topology: topology, consumer: consumer ?? WorkerProcess.consumerName(),
            intervals: intervals)
        try worker.migrate()
        worker.start()
        return worker
    }

    /// Maintenance that runs often enough for tests.
    public static var quickIntervals: Maintenance.Intervals {
        var intervals = Maintenance.Intervals()
        intervals.relay = 0.2
        intervals.relayAge = 0.5
        intervals.janitor = 1
        return intervals
    }

    /// Drains and stops a worker.
    public func stop(_ worker: WorkerProcess) {
        worker.requestStop()
        worker.waitUntilStopped(timeout: 10)
    }

    /// XADDs a message to the service's commands stream; returns the envelope.
    @discardableResult
    public func send(_ type: String, _ data: String = "{}", id: String? = nil) throws -> Envelope {
        let envelope = id.map { Envelope(id: $0, type: type, data: data) } ?? Envelope(type: type, data: data)
        try redis.xadd(definition.commandStream, fields: envelope.fields)
        return envelope
    }

    /// XADDs raw fields (for poison tests).
    public func sendRaw(_ fields: [StreamField]) throws {
        try redis.xadd(definition.commandStream, fields: fields)
    }

    /// Rows in the probe's `records` table.
    public func recordCount() throws -> Int {
        try postgres.query("SELECT count(*) AS n FROM \(name).records").first?.decode(Int.self, "n") ?? 0
    }

    /// One row of the probe's `records` table.
    public struct Record: Sendable, Equatable {
        /// The message that made it.
        public var messageID: String
        /// Its value.
        public var value: Int
        /// When the message was due (a scheduled message), milliseconds since the epoch.
        public var due: Int64?
        /// When it was handled, milliseconds since the epoch.
        public var handledAt: Int64?
    }

    /// The records with `key`, oldest value first.
    public func records(key: String) throws -> [Record] {
        try postgres.query(
            "SELECT message_id, value, due, handled_at FROM \(name).records WHERE key = $1 ORDER BY value, message_id",
            [key]
        ).rows.map {
            Record(
                messageID: try $0.decode(String.self, "message_id"), value: try $0.decode(Int.self, "value"),
                due: try $0.decodeIfPresent(Int64.self, "due"),
                handledAt: try $0.decodeIfPresent(Int64.self, "handled_at"))
        }
    }

    /// Delayed messages still scheduled.
    public func scheduledCount() throws -> Int {
        try postgres.query("SELECT count(*) AS n FROM \(name).scheduled").first?.decode(Int.self, "n") ?? 0
    }

    /// Rows in the inbox.
    public func inboxCount() throws -> Int {
        try postgres.query("SELECT count(*) AS n FROM \(name).inbox").first?.decode(Int.self, "n") ?? 0
    }

    /// Messages in the outbox not yet published (a row holds a batch's messages; published
    /// rows stay for the republish window).
    public func outboxCount() throws -> Int {
        try postgres.query(
            """
            SELECT coalesce(sum(json_array_length(fields::json)), 0)::bigint AS n FROM \(name).outbox
            WHERE published_at IS NULL
            """
        ).first?.decode(Int.self, "n") ?? 0
    }

    /// Entries pending in the service's group on its commands stream.
    public func pendingCount() throws -> Int {
        try redis.xpendingSummary(definition.commandStream, group: name).count
    }

    /// The dead letters, oldest first.
    public func deadLetters() throws -> [DeadLetter] {
        try redis.xrange(definition.deadStream).map(DeadLetter.init(entry:))
    }

    /// The command hash fields of `id`.
    public func command(_ id: String) throws -> [String: String] {
        try redis.command(["HGETALL", Topology.commandKey(id)]).fieldMap.compactMapValues(\.string)
    }
}

extension ProbeHarness {
    /// Writes this harness's topology as YAML (for `choreo` child processes) and returns its path.
    public func writeTopology(processes: Int = 2, batch: Int = 20, maxlen: Int? = nil) throws -> String {
        let policy = definition.policy
        let yaml = """
            version: 1
            redis: \(topology.redisURL)
            postgres: \(topology.postgresURL)
            services:
              \(name):
                code: probe
                schema: \(name)
                policy:
            \(Self.policyYAML(policy, batch: batch, processes: processes))
                  not_yet_limit: \(Int(policy.notYetLimit * 1000))ms
            """ + (maxlen.map { "\n      maxlen: \($0)" } ?? "")
        let path = TestEnvironment.workDirectory + "/\(name).yml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The lines of a service's `policy:` mapping in a test topology (indented under it): the
    /// delivery settings of `policy`, with `batch` and `processes`.
    public static func policyYAML(_ policy: ServicePolicy, batch: Int, processes: Int) -> String {
        [
            "batch: \(batch)", "block: \(Int(policy.block * 1000))ms", "max_deliveries: \(policy.maxDeliveries)",
            "backoff: { initial: \(Int(policy.backoff.initial * 1000))ms, max: \(Int(policy.backoff.max * 1000))ms }",
            "claim_idle: \(Int(policy.claimIdle * 1000))ms", "shutdown_timeout: \(Int(policy.shutdownTimeout))s",
            "processes: \(processes)",
        ].map { "      " + $0 }.joined(separator: "\n")
    }

    /// Starts `choreo` with `arguments`, logging to a file in the work folder.
    public func spawnChoreo(_ arguments: [String], extraEnvironment: [String: String] = [:]) throws -> pid_t {
        try Self.spawnChoreo(arguments, extraEnvironment: extraEnvironment)
    }

    /// Starts `choreo` with `arguments` (warnings logged, the URLs from its topology file, not
    /// from this process's environment).
    public static func spawnChoreo(_ arguments: [String], extraEnvironment: [String: String] = [:]) throws -> pid_t {
        var environment = ProcessInfo.processInfo.environment
        environment["LOG_LEVEL"] = "warning"
        for (key, value) in extraEnvironment { environment[key] = value }
        environment["REDIS_URL"] = nil
        environment["DATABASE_URL"] = nil
        return try ChildProcess.spawn(TestEnvironment.choreoBinary, arguments, environment: environment)
    }

    /// The live heartbeats of the service.
    /// Starts `choreo gateway` on a free port for the topology file at `path` (stopped when the
    /// test process exits) and waits until it answers; returns its pid and port.
    public func spawnGateway(
        topology path: String, environment: [String: String] = [:], arguments: [String] = []
    ) async throws -> (pid: pid_t, port: Int) {
        let port = try freePort()
        let pid = try spawnChoreo(
            ["gateway", "--port", String(port), "--topology", path] + arguments, extraEnvironment: environment)
        ChildReaper.register(pid)
        try await eventually("the gateway up on port \(port)", timeout: 30) {
            (try? httpGet(port: port, path: "/healthz"))?.hasPrefix("HTTP/1.1 200") ?? false
        }
        return (pid, port)
    }

    public func liveWorkers() throws -> [Heartbeat] {
        try Heartbeat.all(service: name, redis: redis).filter { $0.isLive() }
    }
}

/// Waits for `pid` to exit, at most `timeout` seconds; returns its exit code, or nil on timeout
/// (and then kills it).
public func waitForExit(_ pid: pid_t, timeout: Double) async throws -> Int32? {
    let deadline = Date().addingTimeInterval(timeout)
    var status: Int32 = 0
    while Date() < deadline {
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid { return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f) }
        try await Task.sleep(nanoseconds: 20_000_000)
    }
    kill(pid, SIGKILL)
    waitpid(pid, &status, 0)
    return nil
}

extension ProbeHarness {
    /// Adds the probe's HTTP routes (POST /v1/{name}/records, GET /v1/{name}/records/{key}).
    public func withRoutes() -> ProbeHarness {
        topology.routes = [
            RouteDefinition(
                method: "POST", path: "/v1/\(name)/records", service: name, type: "Record",
                body: ["key": FieldSpec(type: .string, max: 50), "value": FieldSpec(type: .integer, min: 0)]),
            RouteDefinition(
                method: "POST", path: "/v1/\(name)/sleeps", service: name, type: "Sleep",
                body: [
                    "key": FieldSpec(type: .string), "value": FieldSpec(type: .integer),
                    "ms": FieldSpec(type: .integer),
                ]),
            RouteDefinition(
                method: "POST", path: "/v1/\(name)/locked", service: name, type: "LockedRecord",
                body: ["key": FieldSpec(type: .string, max: 50), "value": FieldSpec(type: .integer, min: 0)]),
            RouteDefinition(method: "GET", path: "/v1/\(name)/records/{key}", service: name, type: "GetRecord"),
        ]
        return self
    }
}

/// What a finished `choreo` command printed and its exit status.
public struct CommandRun: Sendable {
    /// The exit status.
    public var status: Int32
    /// Standard output.
    public var output: String
    /// Standard error.
    public var errors: String

    /// A finished run.
    public init(status: Int32, output: String, errors: String) {
        self.status = status
        self.output = output
        self.errors = errors
    }

    /// Standard output parsed as JSON.
    public var json: Any? { try? JSONSerialization.jsonObject(with: Data(output.utf8)) }
}

/// Runs `choreo arguments...` to completion (at most `timeout` seconds) with the test servers'
/// URLs in its environment, capturing its output.
public func runChoreo(
    _ arguments: [String], environment extra: [String: String] = [:], timeout: Double = 60
) async throws -> CommandRun {
    let base = TestEnvironment.workDirectory + "/run-" + TestEnvironment.uniqueName("out")
    func quote(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
    let line =
        "exec " + ([TestEnvironment.choreoBinary] + arguments).map(quote).joined(separator: " ")
        + " >\(quote(base + ".out")) 2>\(quote(base + ".err")) </dev/null"
    var environment = ProcessInfo.processInfo.environment
    environment["REDIS_URL"] = TestEnvironment.redisURL
    environment["DATABASE_URL"] = TestEnvironment.databaseURL
    environment["LOG_LEVEL"] = "warning"
    for (key, value) in extra { environment[key] = value }
    let pid = try ChildProcess.spawn("/bin/sh", ["-c", line], environment: environment)
    let status = try await waitForExit(pid, timeout: timeout) ?? -1
    let output = (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? ""
    let errors = (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? ""
    return CommandRun(status: status, output: output, errors: errors)
}
