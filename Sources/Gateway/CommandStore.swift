// CommandStore: the gateway's Redis operations: submit a command (its status record, then the
// XADD, with the idempotency check by script; one merged MULTI/EXEC on a standalone server);
// read a command's status; check a service's liveness and lag.
// Calls go through a small pool of RedisClients (each pipelines concurrent callers' commands),
// so no event loop ever blocks on hiredis.

import Choreo
import ChoreoJSON
import Foundation
import Redis
import Synchronization

/// A command's record as the gateway reports it.
public struct CommandRecord: Sendable, Equatable {
    /// Command id.
    public var id: String
    /// Message type.
    public var type: String
    /// Status.
    public var status: CommandStatus
    /// Result JSON (succeeded).
    public var result: String?
    /// Error JSON (failed, dead).
    public var error: String?
    /// Submission time, ms since epoch.
    public var submittedAt: Int64?
    /// Completion time, ms since epoch.
    public var completedAt: Int64?
    /// The API key name that submitted it (nil when authentication was off).
    public var principal: String?

    init?(id: String, fields: [String: String]) {
        guard let raw = fields["status"], let status = CommandStatus(rawValue: raw) else { return nil }
        self.id = id
        self.type = fields["type"] ?? fields["resultType"] ?? ""
        self.status = status
        self.result = fields["result"]
        self.error = fields["error"]
        self.submittedAt = fields["submittedAt"].flatMap { Int64($0) }
        self.completedAt = fields["completedAt"].flatMap { Int64($0) }
        self.principal = fields["principal"]
    }

    /// `{id, type, status, result?, error?, submittedAt, completedAt?}` with result and error as
    /// embedded JSON and times as RFC 3339.
    public var json: String {
        var out: [UInt8] = Array("{\"id\":".utf8)
        JSONText.appendQuoted(id, to: &out)
        out += Array(",\"type\":".utf8)
        JSONText.appendQuoted(type, to: &out)
        out += Array(",\"status\":\"\(status.rawValue)\"".utf8)
        if let result, JSONText.isValid(result) { out += Array(",\"result\":\(result)".utf8) }
        if let error, JSONText.isValid(error) { out += Array(",\"error\":\(error)".utf8) }
        if let submittedAt { out += Array(",\"submittedAt\":\"\(Self.rfc3339(submittedAt))\"".utf8) }
        if let completedAt, status.isTerminal { out += Array(",\"completedAt\":\"\(Self.rfc3339(completedAt))\"".utf8) }
        out += Array(",\"links\":{\"self\":\"/v1/commands/\(id)\"}}".utf8)
        return String(decoding: out, as: UTF8.self)
    }

    static func rfc3339(_ milliseconds: Int64) -> String {
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
            parts.tm_hour, parts.tm_min, parts.tm_sec, Int(milliseconds % 1000))
    }
}

/// The outcome of a submission.
public enum SubmitOutcome: Sendable, Equatable {
    /// A new command was enqueued.
    case accepted(String)
    /// The idempotency key named an earlier command with the same body.
    case replayed(String)
    /// The idempotency key named an earlier command with a different body.
    case conflict(String)

    /// The command id.
    var id: String {
        switch self {
        case .accepted(let id), .replayed(let id), .conflict(let id): return id
        }
    }
}

/// Redis operations of the gateway.
public final class CommandStore: Sendable {
    let topology: Topology
    private let clients: [RedisClient]
    private let next = Mutex(0)
    private let liveness = Mutex<[String: (checked: Date, live: Bool)]>([:])
    private let pressures = Mutex<[String: (checked: Date, pressure: Pressure)]>([:])
    /// How long a liveness or lag reading is trusted, in seconds.
    static let readingLifetime: TimeInterval = 2

    /// Opens `poolSize` connections to the topology's Redis.
    public init(topology: Topology, poolSize: Int = 1) throws {
        self.topology = topology
        self.clients = try (0..<max(1, poolSize)).map { _ in
            try RedisClient(url: topology.redisURL, durability: topology.redisDurability)
        }
    }

    /// A client, round robin.
    func client() -> RedisClient {
        let index = next.withLock { value -> Int in
            value = (value + 1) % clients.count
            return value
        }
        return clients[index]
    }

    /// Checks the idempotency record and, when there is none, XADDs the command and records the
    /// key. KEYS: commands stream, idempotency record (one slot: the service's hash tag); ARGV:
    /// id, TTL, body fingerprint, then the envelope's fields.
    static let submitScript = """
        local fingerprint = redis.sha1hex(ARGV[3])
        local previous = redis.call('HMGET', KEYS[2], 'command', 'fingerprint')
        if previous[1] then
          if previous[2] == fingerprint then return {previous[1], 'replayed'} end
          return {previous[1], 'conflict'}
        end
        local fields = {}
        for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
        redis.call('XADD', KEYS[1], '*', unpack(fields))
        redis.call('HSET', KEYS[2], 'command', ARGV[1], 'fingerprint', fingerprint)
        redis.call('EXPIRE', KEYS[2], ARGV[2])
        return {ARGV[1], 'accepted'}
        """

    /// Records the command as `accepted`, then XADDs it to the service's commands stream; with
    /// an idempotency key, returns the earlier command instead when there is one.
    ///
    /// The record (`choreo:command:{id}`, found by id alone) and the stream (in the service's
    /// slot) may live on different cluster nodes, so the record is written first and the XADD
    /// only once it is: a command in the stream always has its record. A crash in between
    /// leaves a record nobody was given the id of; it expires with its TTL. On a standalone
    /// server both are one transaction.
    ///
    /// The command belongs to `principal` (the submitting API key's name): it is recorded in the
    /// command's hash, and the idempotency key is the principal's own (the same key under two
    /// principals makes two commands).
    public func submit(
        _ envelope: Envelope, service: ServiceDefinition, idempotencyKey: String?, fingerprint: String,
        principal: String? = nil
    ) async throws -> SubmitOutcome {
        guard let idempotencyKey else {
            return try await submitAtomically(envelope, service: service, principal: principal)
        }
        // A partitioned commands stream: the record goes in the partition's slot, the
        // partition picked by the payload's key field (so a retry finds the same one).
        let stream = service.commandStream(data: envelope.data, correlation: envelope.correlation)
        let keys = [
            stream,
            Topology.idempotencyKey(
                service: service.idempotencyTag(for: stream), principal: principal, key: idempotencyKey),
        ]
        let script =
            ["EVAL", Self.submitScript, "2"] + keys + [envelope.id, String(Int(topology.commandTTL)), fingerprint]
            + envelope.fields.flatMap { [$0.name, $0.value] }
        let client = client()
        let replies = try await client.transaction(steps: [
            record(envelope, service: service, principal: principal), [script],
        ])
        for case .error(let message) in replies { throw RedisError.server(command: "EXEC", message: message) }
        guard let parts = replies.last?.array, parts.count == 2, let id = parts[0].string, let kind = parts[1].string
        else {
            throw RedisError.unexpectedReply(command: "EVAL", reply: replies.last?.description ?? "nothing")
        }
        if kind != "accepted" {
            // The earlier command stands; the record written for this attempt's id is not needed.
            _ = try? await client.command(["DEL", Topology.commandKey(envelope.id)])
        }
        switch kind {
        case "replayed": return .replayed(id)
        case "conflict": return .conflict(id)
        default: return .accepted(id)
        }
    }

    /// The commands writing a command's `accepted` record with its TTL.
    private func record(_ envelope: Envelope, service: ServiceDefinition, principal: String?) -> [[String]] {
        let key = Topology.commandKey(envelope.id)
        var record = [
            "HSET", key, "id", envelope.id, "type", envelope.type, "service", service.name, "status", "accepted",
            "submittedAt", String(envelope.at),
        ]
        if let principal { record += ["principal", principal] }
        return [record, ["EXPIRE", key, String(Int(topology.commandTTL))]]
    }

    /// Records and enqueues a command without an idempotency key: the record, then the `XADD`
    /// (one transaction on a standalone server, where concurrent submissions share one
    /// `MULTI` ... `EXEC`, see ``RedisClient/transaction(_:)``).
    private func submitAtomically(_ envelope: Envelope, service: ServiceDefinition, principal: String?)
        async throws -> SubmitOutcome
    {
        try await withUnsafeThrowingContinuation { continuation in
            submit(envelope, service: service, principal: principal) { continuation.resume(with: $0) }
        }
    }

    /// The submission without an idempotency key, for callers outside Swift concurrency (the
    /// gateway's channel-level submit path): `completion` runs once, on the Redis client's
    /// thread, and must hop to its own event loop to act.
    func submit(
        _ envelope: Envelope, service: ServiceDefinition, principal: String? = nil,
        completion: @escaping @Sendable (Result<SubmitOutcome, Error>) -> Void
    ) {
        let id = envelope.id
        let steps = [
            record(envelope, service: service, principal: principal),
            [
                RedisConnection.xaddArguments(
                    service.commandStream(data: envelope.data, correlation: envelope.correlation),
                    fields: envelope.fields)
            ],
        ]
        client().transaction(steps: steps) { result in
            completion(
                result.flatMap { results in
                    for result in results {
                        if case .error(let message) = result {
                            return .failure(RedisError.server(command: "EXEC", message: message))
                        }
                    }
                    return .success(.accepted(id))
                })
        }
    }

    /// Sends a query message (no status record, no idempotency).
    public func sendQuery(_ envelope: Envelope, service: ServiceDefinition) async throws {
        let arguments = RedisConnection.xaddArguments(
            service.commandStream(data: envelope.data, correlation: envelope.correlation), fields: envelope.fields)
        try await client().command(arguments)
    }

    /// The command's record, or nil when unknown (or expired).
    public func command(_ id: String) async throws -> CommandRecord? {
        let reply = try await client().command(["HGETALL", Topology.commandKey(id)])
        return CommandRecord(id: id, fields: reply.fieldMap.compactMapValues(\.string))
    }

    /// Whether `service` has a live worker (heartbeat within 10 s), cached for ``readingLifetime`` (2 s).
    public func hasLiveWorker(_ service: String, fresh: Bool = false) async throws -> Bool {
        if !fresh, let cached = liveness.withLock({ $0[service] }),
            Date().timeIntervalSince(cached.checked) < Self.readingLifetime
        {
            return cached.live
        }
        let live = try await client().withConnection { redis in
            try Heartbeat.all(service: service, redis: redis).contains { $0.isLive() }
        }
        liveness.withLock { $0[service] = (Date(), live) }
        return live
    }

    /// What holds back commands to a service: its group's lag on its commands stream and the
    /// first of its streams (consumed, or its own events) whose unacknowledged backlog is over
    /// the stream's limit.
    public struct Pressure: Sendable, Equatable {
        /// The lag of the service's group on its commands stream, when known.
        public var lag: Int?
        /// A stream whose backlog is over its limit, if any.
        public var overLimit: StreamRetention.Reading?
    }

    /// The service's pressure reading, at most ``readingLifetime`` old (read from Redis when
    /// older; the reading is also kept for ``hasCapacity(_:requireLiveWorker:backpressure:)``).
    public func pressure(_ service: ServiceDefinition, fresh: Bool = false) async throws -> Pressure {
        if !fresh, let cached = pressures.withLock({ $0[service.name] }),
            Date().timeIntervalSince(cached.checked) < Self.readingLifetime
        {
            return cached.pressure
        }
        let streams = topology.backpressureStreams(of: service)
        let commandKeys = topology.keys(of: service.commandStream)
        let pressure = try await client().withConnection { redis in
            // (XINFO fails on a stream that does not exist yet: nothing submitted, no lag.)
            var lag: Int?
            if service.policy.maxLag != nil {
                // A partitioned commands stream: its partitions' lags summed.
                for key in commandKeys where try redis.command(["EXISTS", key]).int == 1 {
                    let part = try redis.xinfoGroups(key).first { $0.name == service.name }?.lag
                    lag = (lag ?? 0) + (part ?? 0)
                }
            }
            var over: StreamRetention.Reading?
            for stream in streams {
                let reading = try stream.read(redis, safeBound: false)
                if reading.isOverLimit {
                    over = reading
                    break
                }
            }
            return Pressure(lag: lag, overLimit: over)
        }
        pressures.withLock { $0[service.name] = (Date(), pressure) }
        return pressure
    }

    /// Whether `service` may take a command, judged only from the liveness and pressure
    /// readings of the last ``readingLifetime``, without Redis: nil when a needed reading is missing or older.
    func hasCapacity(_ service: ServiceDefinition, requireLiveWorker: Bool, backpressure: Bool) -> Bool? {
        let now = Date()
        if requireLiveWorker {
            guard let cached = liveness.withLock({ $0[service.name] }),
                now.timeIntervalSince(cached.checked) < Self.readingLifetime
            else { return nil }
            if !cached.live { return false }
        }
        if service.policy.maxLag != nil || backpressure {
            guard let cached = pressures.withLock({ $0[service.name] }),
                now.timeIntervalSince(cached.checked) < Self.readingLifetime
            else { return nil }
            if let limit = service.policy.maxLag, let lag = cached.pressure.lag, lag > limit { return false }
            if backpressure, cached.pressure.overLimit != nil { return false }
        }
        return true
    }

    /// Deletes a query's reply record once read (best effort: it also expires by itself).
    public func forget(_ id: String) async {
        _ = try? await client().command(["DEL", Topology.commandKey(id)])
    }

    /// Redis's memory against its maxmemory (nil when it cannot be read).
    public func memory() async -> RedisMemory? {
        try? await client().withConnection { try RedisMemory.read($0) }
    }

    /// Whether Redis answers.
    public func ping() async -> Bool {
        (try? await client().command(["PING"])) == .status("PONG")
    }
}
