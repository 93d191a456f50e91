// Probe: a small service whose handlers do what a message tells them (record a row, fail N
// times, always fail, reject, sleep, poison, nothing), for the runtime's tests and benchmarks.

import Choreo
import Foundation
import Postgres

/// A service for exercising the runtime. Message types:
/// - `Record {key, value}`: inserts a row in `records` (queued write), publishes `Recorded`,
///   succeeds the command.
/// - `RecordNow {key, value}`: the same with an immediate query (reads back the row).
/// - `FailTimes {key, value, times}`: throws on the first `times` deliveries, then records
///   the attempt number as the value.
/// - `FailWhileBlocked {key, value}`: throws while a row with that key is in `blocks` (a
///   transient failure a test can switch off), then records.
/// - `LockedRecord {key, value}`: takes the transaction-scoped advisory lock named by `key`
///   (waiting while someone else holds it), then records the delivery attempt as the value.
/// - `WriteQueryFail {key, value, times}`: queues an INSERT into `writes`, runs a query, and
///   throws on the first `times` deliveries (a rolled-back message must leave no write), then
///   records.
/// - `Recorded` (an event of another probe it subscribes to): inserts its id into `seen`.
/// - `Crash`: ends the worker process at once (exit 98), as a handler bug that kills the process
///   would; only where `CHOREO_PROBE_CRASH=1` is set (worker child processes of a test),
///   elsewhere it throws.
/// - `AlwaysFail`: always throws `deliberate failure`.
/// - `Reject {reason}`: a business rejection.
/// - `Sleep {key, value, ms}`: sleeps, then records.
/// - `Poison`: throws a poison error.
/// - `Sequenced {key, value, ms?, failTimes?, gate?}`: sleeps `ms`, throws on the first
///   `failTimes` deliveries and while a row `gate` is in `blocks`, then inserts a row in `sequenced`, whose serial `n` is the handling order
///   (ordered consumption of partitioned streams).
/// - `Noop`: does nothing (benchmarks).
/// - `Insert {key, value}`: one INSERT and one event, no result (benchmarks).
/// - `GetRecord {key}`: a query: the newest record with that key, or `not_found`.
/// - `Schedule {key, value, ms, id?, failTimes?}`: schedules `Record {key, value}` to itself
///   `ms` later (with `id` as its id if given), succeeds with the scheduled id; with
///   `failTimes`, throws after scheduling on the first deliveries (nothing may be scheduled).
/// - `CancelScheduled {id}`: cancels a scheduled message.
/// - `RecordWhenOpen {key, value}`: not ready (``HandlerError/notYet(_:code:)``, code
///   `gate_closed`) until a row with that key is in `gates`; then records the number of
///   deferrals as the value.
///
/// - `ScheduleMany {key, count, atMs, spreadMs}`: schedules `count` `Fire {key, value}` to
///   itself, due evenly over `spreadMs` from `atMs` (benchmarks).
/// - `Fire {key, value}`: records the row with its times, nothing else (benchmarks).
///
/// `records` keeps, per row, when the message was sent and due (scheduled ones) and when it
/// was handled.
public enum Probe {
    struct Row: Codable {
        var key: String
        var value: Int
    }

    struct Times: Codable {
        var key: String
        var value: Int
        var times: Int
    }

    struct Nap: Codable {
        var key: String
        var value: Int
        var ms: Int
    }

    struct Step: Codable {
        var key: String
        var value: Int
        var ms: Int?
        var failTimes: Int?
        var gate: String?
    }

    struct Reason: Codable {
        var reason: String
    }

    struct Later: Codable {
        var key: String
        var value: Int
        var ms: Int
        var id: String?
        var failTimes: Int?
    }

    struct Handle: Codable {
        var id: String
    }

    struct Many: Codable {
        var key: String
        var count: Int
        var atMs: Int64
        var spreadMs: Int
    }

    struct FireCommand: CommandContract {
        static var messageType: String { "Fire" }
        var key: String
        var value: Int
    }

    struct RecordCommand: CommandContract {
        static var messageType: String { "Record" }
        var key: String
        var value: Int
    }

    /// The probe service's code, under `name`.
    public static func service(name: String = "probe") -> Service {
        var service = Service(
            name: name,
            migrations: [
                Migration(
                    version: 1, name: "records",
                    sql: """
                        CREATE TABLE records (
                            message_id text PRIMARY KEY, key text NOT NULL, value bigint NOT NULL, handled_by text NOT NULL
                        );
                        """),
                Migration(version: 2, name: "blocks", sql: "CREATE TABLE blocks (key text PRIMARY KEY);"),
                Migration(
                    version: 3, name: "writes",
                    sql: "CREATE TABLE writes (message_id text NOT NULL, attempt int NOT NULL);"),
                Migration(version: 4, name: "seen", sql: "CREATE TABLE seen (message_id text PRIMARY KEY);"),
                Migration(
                    version: 5, name: "scheduling",
                    sql: """
                        CREATE TABLE gates (key text PRIMARY KEY);
                        ALTER TABLE records ADD COLUMN due bigint, ADD COLUMN handled_at bigint, ADD COLUMN sent_at bigint;
                        """),
                Migration(
                    version: 6, name: "sequenced",
                    sql: """
                        CREATE TABLE sequenced (
                            n bigserial PRIMARY KEY, message_id text NOT NULL UNIQUE, key text NOT NULL,
                            value bigint NOT NULL, stream text NOT NULL, handled_by text NOT NULL, attempt int NOT NULL
                        );
                        """),
            ])
        service.on("Record") { context in
            let row = try context.payload(Row.self)
            try record(context, row)
        }
        service.on("RecordNow") { context in
            let row = try context.payload(Row.self)
            let result = try context.query(
                "INSERT INTO records (message_id, key, value, handled_by) VALUES ($1, $2, $3, $4) RETURNING value",
                [context.envelope.id, row.key, row.value, context.consumer])
            guard try result.first?.decode(Int.self, "value") == row.value else { throw ProbeError.readBack }
            try context.publish("Recorded", row)
            try context.succeed(row)
        }
        service.on("FailTimes") { context in
            let spec = try context.payload(Times.self)
            if context.attempt <= spec.times { throw ProbeError.deliberate(attempt: context.attempt) }
            try record(context, Row(key: spec.key, value: context.attempt))
        }
        service.on("FailWhileBlocked") { context in
            let row = try context.payload(Row.self)
            if try context.query("SELECT 1 FROM blocks WHERE key = $1", [row.key]).first != nil {
                throw ProbeError.blocked(row.key)
            }
            try record(context, row)
        }
        service.on("LockedRecord") { context in
            let row = try context.payload(Row.self)
            _ = try context.query("SELECT pg_advisory_xact_lock(hashtext($1))", [row.key])
            try record(context, Row(key: row.key, value: context.attempt))
        }
        service.on("WriteQueryFail") { context in
            let spec = try context.payload(Times.self)
            try context.execute(
                "INSERT INTO writes (message_id, attempt) VALUES ($1, $2)", [context.envelope.id, context.attempt])
            _ = try context.query("SELECT count(*) FROM writes WHERE message_id = $1", [context.envelope.id])
            if context.attempt <= spec.times { throw ProbeError.deliberate(attempt: context.attempt) }
            try record(context, Row(key: spec.key, value: spec.value))
        }
        // A probe subscribed to another probe's events stream records each event it sees.
        service.on("Recorded") { context in
            try context.execute("INSERT INTO seen (message_id) VALUES ($1)", [context.envelope.id])
        }
        service.on("Crash") { context in
            if ProcessInfo.processInfo.environment["CHOREO_PROBE_CRASH"] == "1" { _exit(98) }
            throw ProbeError.deliberate(attempt: context.attempt)
        }
        service.on("AlwaysFail") { context in
            throw ProbeError.deliberate(attempt: context.attempt)
        }
        service.on("Reject") { context in
            try context.reject(try context.payload(Reason.self).reason, code: "probe_rejected")
        }
        service.on("Sleep") { context in
            let nap = try context.payload(Nap.self)
            usleep(UInt32(nap.ms * 1000))
            try record(context, Row(key: nap.key, value: nap.value))
        }
        service.on("Poison") { _ in
            throw HandlerError.poison("the probe was told to be poison")
        }
        // Ordered consumption: the handling order is the serial `n`.
        service.on("Sequenced") { context in
            let step = try context.payload(Step.self)
            if let ms = step.ms, ms > 0 { usleep(UInt32(ms * 1000)) }
            if context.attempt <= step.failTimes ?? 0 { throw ProbeError.deliberate(attempt: context.attempt) }
            if let gate = step.gate, try context.query("SELECT 1 FROM blocks WHERE key = $1", [gate]).first != nil {
                throw ProbeError.blocked(gate)
            }
            try context.execute(
                "INSERT INTO sequenced (message_id, key, value, stream, handled_by, attempt) VALUES ($1, $2, $3, $4, $5, $6)",
                [context.envelope.id, step.key, step.value, context.stream, context.consumer, context.attempt])
        }
        service.on("Noop") { _ in }
        service.on("Schedule") { context in
            let later = try context.payload(Later.self)
            let id = try context.send(
                RecordCommand(key: later.key, value: later.value), to: context.service,
                after: .milliseconds(later.ms), id: later.id)
            if context.attempt <= later.failTimes ?? 0 { throw ProbeError.deliberate(attempt: context.attempt) }
            try context.succeed(Handle(id: id))
        }
        service.on("ScheduleMany") { context in
            let many = try context.payload(Many.self)
            for index in 0..<many.count {
                let at = many.atMs + Int64(index * many.spreadMs / max(1, many.count))
                try context.send(
                    FireCommand(key: many.key, value: index), to: context.service,
                    at: Date(timeIntervalSince1970: Double(at) / 1000))
            }
        }
        service.on("Fire") { context in
            let row = try context.payload(Row.self)
            try context.execute(
                """
                INSERT INTO records (message_id, key, value, handled_by, due, handled_at, sent_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                """,
                [
                    context.envelope.id, row.key, row.value, context.consumer, context.envelope.due,
                    Envelope.nowMilliseconds(), context.envelope.at,
                ])
        }
        service.on("CancelScheduled") { context in
            let handle = try context.payload(Handle.self)
            try context.cancelScheduled(handle.id)
            try context.succeed(handle)
        }
        service.on("RecordWhenOpen") { context in
            let row = try context.payload(Row.self)
            guard try context.query("SELECT 1 FROM gates WHERE key = $1", [row.key]).first != nil else {
                throw HandlerError.notYet("the gate '\(row.key)' is closed", code: "gate_closed")
            }
            try record(context, Row(key: row.key, value: context.envelope.deferrals))
        }
        service.on("GetRecord") { context in
            struct Key: Codable { var key: String }
            let key = try context.payload(Key.self).key
            let rows = try context.query(
                "SELECT key, value FROM records WHERE key = $1 ORDER BY value DESC LIMIT 1", [key])
            guard let row = rows.first else {
                try context.reject("no record with key '\(key)'", code: "not_found")
                return
            }
            try context.succeed(Row(key: try row.decode(String.self, "key"), value: try row.decode(Int.self, "value")))
        }
        service.on("Insert") { context in
            let row = try context.payload(Row.self)
            try context.execute(
                "INSERT INTO records (message_id, key, value, handled_by) VALUES ($1, $2, $3, $4)",
                [context.envelope.id, row.key, row.value, context.consumer])
            try context.publish("Inserted", row)
        }
        return service
    }

    static func record(_ context: MessageContext, _ row: Row) throws {
        try context.execute(
            "INSERT INTO records (message_id, key, value, handled_by, due, handled_at) VALUES ($1, $2, $3, $4, $5, $6)",
            [
                context.envelope.id, row.key, row.value, context.consumer, context.envelope.due,
                Envelope.nowMilliseconds(),
            ])
        try context.publish("Recorded", row)
        try context.succeed(row)
    }

    enum ProbeError: Error, CustomStringConvertible {
        case deliberate(attempt: Int)
        case blocked(String)
        case readBack
        var description: String {
            switch self {
            case .deliberate(let attempt): return "deliberate failure on attempt \(attempt)"
            case .blocked(let key): return "key '\(key)' is blocked (a transient failure)"
            case .readBack: return "read-back mismatch"
            }
        }
    }
}
