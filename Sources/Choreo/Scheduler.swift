// Scheduler: publishes a service's delayed messages when they are due. One per worker process,
// on its own thread; several processes share the table with FOR UPDATE SKIP LOCKED. In one
// transaction a due row is deleted, published (XADD with a `due` field) and kept as a published
// outbox row for the republish window: a crash before the commit leaves the row, which is
// published again, and the consumers' inboxes drop the copy. Deleting before publishing makes
// a handler that schedules the same id meanwhile wait for the outcome instead of seeing a row
// that is about to go.

import ChoreoJSON
import Foundation
import Logging
import Postgres
import Redis
import Synchronization

/// Delivers the delayed messages of one service.
public final class Scheduler: Sendable {
    let definition: ServiceDefinition
    let topology: Topology
    let logger: Logger
    let metrics: RuntimeMetrics
    /// Wakes it for messages scheduled by this process.
    public let signal: ScheduleSignal
    private let running = Mutex(true)

    /// Rows published per transaction.
    static let batch = 500
    /// The longest time between two looks at the table (messages scheduled by other processes
    /// for sooner than that are at most this late; this process's own wake it at once).
    static let pollInterval: Int64 = 200
    /// The same with nothing scheduled at all.
    static let idlePollInterval: Int64 = 1000

    /// Creates the scheduler of one process.
    public init(
        definition: ServiceDefinition, topology: Topology, logger: Logger, metrics: RuntimeMetrics,
        signal: ScheduleSignal = ScheduleSignal()
    ) {
        self.definition = definition
        self.topology = topology
        self.logger = logger
        self.metrics = metrics
        self.signal = signal
    }

    /// Stops the loop.
    public func stop() {
        running.withLock { $0 = false }
        signal.wake()
    }

    private var isRunning: Bool { running.withLock { $0 } }

    /// Runs until stopped. Blocks the calling thread.
    public func run() {
        guard let schema = definition.schema else { return }
        var redis: RedisConnection?
        var postgres: PostgresConnection?
        var cursor: Int64?
        var lastFullScan: Int64 = 0
        var lastRecentScan: Int64 = 0
        while isRunning {
            do {
                if redis == nil { redis = try RedisConnection(url: topology.redisURL(for: definition)) }
                if postgres == nil { postgres = try PostgresConnection(url: topology.postgresURL(for: definition)) }
                guard let redis, let postgres else { continue }
                // A cursor scan starts at the latest due time delivered: the index's head is
                // the rows just deleted (dead until vacuum), and a scan from the start would
                // step over all of them each time. Rows can fall due behind the cursor: those
                // committed after their due time (the transaction took longer than the delay)
                // are picked up by a scan from a few seconds behind it, now and then; those
                // left by another process that crashed mid-publish, by a scan from the start,
                // rarely.
                let now = Envelope.nowMilliseconds()
                var from = cursor
                var scan = false
                if cursor == nil || now - lastFullScan >= Self.fullScanInterval {
                    from = nil
                    scan = true
                    lastFullScan = now
                    lastRecentScan = now
                } else if let cursor, now - lastRecentScan >= Self.recentScanInterval {
                    from = cursor - Self.recentWindow
                    scan = true
                    lastRecentScan = now
                }
                // Between scans, one cheap look decides whether a publishing transaction is
                // needed at all (most looks of a quiet service find nothing due).
                var next = scan ? nil : try nextDue(postgres: postgres, schema: schema, from: cursor)
                var published = 0
                if scan || (next ?? Int64.max) <= Envelope.nowMilliseconds() {
                    let (delivered, latest) = try deliverDue(
                        redis: redis, postgres: postgres, schema: schema, from: from)
                    if let latest { cursor = max(cursor ?? latest, latest) }
                    if delivered >= Self.batch { continue }
                    published = delivered
                    next = try nextDue(postgres: postgres, schema: schema, from: cursor)
                }
                // The cursor also moves when another process published what was due: to the
                // next row still there, or to now when there is none.
                let moved = min(next ?? Envelope.nowMilliseconds(), Envelope.nowMilliseconds())
                cursor = max(cursor ?? moved, moved)
                // Nothing scheduled: look again in a second (this process's own schedules wake
                // it at once; another process's are published by that process).
                let poll = next == nil ? Self.idlePollInterval : Self.pollInterval
                var wake = min(next ?? Int64.max, Envelope.nowMilliseconds() + poll)
                // Due rows another process is publishing right now (locked, so skipped): give
                // it a moment rather than spinning.
                if published == 0, wake <= Envelope.nowMilliseconds() { wake = Envelope.nowMilliseconds() + 2 }
                signal.wait(until: wake)
            } catch {
                logger.warning("scheduler failed; retrying", metadata: ["error": "\(error)"])
                if BatchProcessor.isInfrastructure(error) {
                    redis?.close()
                    redis = nil
                    postgres = nil
                }
                signal.wait(until: Envelope.nowMilliseconds() + 500)
            }
        }
    }

    /// How often the scan for due rows starts a few seconds (``recentWindow``) behind the
    /// cursor, in milliseconds: the most a row committed after its due time waits.
    static let recentScanInterval: Int64 = 1000
    /// How far behind the cursor that scan starts, in milliseconds.
    static let recentWindow: Int64 = 2000
    /// How often the scan starts at the beginning of the table, in milliseconds: the most a
    /// row left behind by a process that crashed while publishing it waits (besides the
    /// restart of this scheduler, which starts with such a scan).
    static let fullScanInterval: Int64 = 30_000

    /// When the earliest scheduled message (due at `from` or later) is due, in milliseconds
    /// since the epoch, if any.
    func nextDue(postgres: PostgresConnection, schema: String, from: Int64?) throws -> Int64? {
        try postgres.query(
            """
            SELECT (extract(epoch FROM min(due_at)) * 1000)::bigint AS due FROM \(schema).scheduled
            WHERE due_at >= to_timestamp($1::double precision / 1000)
            """, [Double(from ?? 0)]
        ).first?.decodeIfPresent(Int64.self, "due")
    }

    /// Publishes the messages due now (due at `from` or later, in ms since the epoch, when
    /// given), at most ``batch``; returns how many, and the latest due time among them.
    @discardableResult
    public func deliverDue(redis: RedisConnection, postgres: PostgresConnection, schema: String, from: Int64? = nil)
        throws -> (count: Int, latest: Int64?)
    {
        let publisher = Publisher(service: definition, topology: topology)
        return try postgres.transaction { tx -> (count: Int, latest: Int64?) in
            // statement_timestamp(), not clock_timestamp(): a volatile bound cannot bound the
            // index scan, which would then read every future row whenever fewer than a batch
            // are due. Deleted first (in this transaction), published next: a handler inserting a row
            // with the same id meanwhile (a deferred copy of the message being published)
            // waits for this transaction instead of finding a row about to go. A crash before
            // the commit leaves the rows in place, and they are published again.
            let rows = try tx.query(
                """
                WITH due AS (
                    SELECT id FROM \(schema).scheduled
                    WHERE due_at <= statement_timestamp() AND due_at >= to_timestamp($1::double precision / 1000)
                    ORDER BY due_at LIMIT \(Self.batch) FOR UPDATE SKIP LOCKED)
                DELETE FROM \(schema).scheduled s USING due WHERE s.id = due.id
                RETURNING s.id, s.stream, s.fields, (extract(epoch FROM s.due_at) * 1000)::bigint AS due,
                    extract(epoch FROM clock_timestamp() - s.due_at)::double precision AS late
                """, [Double(from ?? 0)]
            ).rows.sorted { (try? $0.decode(Int64.self, "due")) ?? 0 < (try? $1.decode(Int64.self, "due")) ?? 0 }
            guard !rows.isEmpty else { return (0, nil) }
            var messages: [OutboxMessage] = []
            var lateness: [Double] = []
            for row in rows {
                var fields = OutboxMessage.decodeFields(try row.decode(String.self, "fields"))
                if !fields.contains(where: { $0.name == "due" }) {
                    fields.append(StreamField("due", String(try row.decode(Int64.self, "due"))))
                }
                // A delayed message for a partitioned stream goes to its key's partition (the
                // publisher routes it), like one sent at once.
                messages.append(
                    OutboxMessage(
                        stream: try row.decode(String.self, "stream"), fields: fields, commandID: nil, status: nil,
                        seq: nil))
                lateness.append(try row.decode(Double.self, "late"))
            }
            let commands = messages.flatMap { publisher.commands(for: $0) }
            try redis.pipelineCheckingErrors(commands)
            try redis.waitForReplicas(
                topology.redisDurability, keys: commands.compactMap { RedisSlot.keys(of: $0).first })
            FaultInjection.reached(.exitAfterScheduledPublish)
            // Kept as a published outbox row for the republish window: if Redis loses it (a
            // failover, a restart from an older snapshot), the epoch check publishes it again.
            try tx.query(
                "INSERT INTO \(schema).outbox (stream, fields, published_at) VALUES ('\(OutboxMessage.batchRow)', $1, now())",
                [OutboxMessage.encodeBatch(messages)])
            metrics.scheduledDelivered(count: messages.count, lateness: lateness)
            return (messages.count, try rows.last?.decode(Int64.self, "due"))
        }
    }

    /// The scheduled messages of `schema`, soonest first.
    public static func list(postgres: PostgresConnection, schema: String, limit: Int = 100) throws -> [ScheduledEntry] {
        try postgres.query(
            """
            SELECT id, type, stream, (extract(epoch FROM due_at) * 1000)::bigint AS due, fields
            FROM \(schema).scheduled ORDER BY due_at, id LIMIT $1
            """, [limit]
        ).rows.map { row in
            let fields = OutboxMessage.decodeFields(try row.decode(String.self, "fields"))
            return ScheduledEntry(
                id: try row.decode(String.self, "id"), type: try row.decode(String.self, "type"),
                stream: try row.decode(String.self, "stream"), dueAt: try row.decode(Int64.self, "due"),
                correlation: fields.first { $0.name == "correlation" }?.value ?? "")
        }
    }

    /// How many messages `schema` has scheduled, and when the next is due.
    public static func summary(postgres: PostgresConnection, schema: String) throws -> (count: Int, next: Int64?) {
        guard
            let row = try postgres.query(
                """
                SELECT count(*)::bigint AS n, (extract(epoch FROM min(due_at)) * 1000)::bigint AS next
                FROM \(schema).scheduled
                """
            ).first
        else { return (0, nil) }
        return (try row.decode(Int.self, "n"), try row.decodeIfPresent(Int64.self, "next"))
    }

    /// Cancels the scheduled message `id` of `schema`; returns whether it was still scheduled.
    public static func cancel(postgres: PostgresConnection, schema: String, id: String) throws -> Bool {
        try postgres.query(RuntimeSchema.scheduleCancel(schema), [id]).affectedRows > 0
    }
}
