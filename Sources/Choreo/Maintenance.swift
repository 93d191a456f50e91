// Maintenance: a worker process's background duties on their own thread: heartbeat, outbox
// relay (leftovers at start and periodically, FOR UPDATE SKIP LOCKED), janitor (removes gone
// consumers that own nothing), inbox pruning, and the lag/pending/backlog gauges.

import Foundation
import Logging
import Postgres
import Redis
import Synchronization

/// The background duties of one worker process.
public final class Maintenance: Sendable {
    let definition: ServiceDefinition
    let topology: Topology
    let heartbeat: Heartbeat
    let logger: Logger
    let metrics: RuntimeMetrics
    private let running = Mutex(true)

    /// How often each duty runs, in seconds.
    public struct Intervals: Sendable {
        /// Heartbeat period.
        public var heartbeat: Double = 1
        /// Outbox relay period.
        public var relay: Double = 2
        /// Minimum age of an outbox row before the relay publishes it, in seconds.
        public var relayAge: Double = 2
        /// Janitor period.
        public var janitor: Double = 15
        /// Inbox pruning period while nothing is left to prune (with a backlog of expired rows
        /// the pruning goes on at once, in time-boxed rounds).
        public var prune: Double = 10
        /// Longest time one pruning round deletes before the other duties get their turn.
        public var pruneBudget: Double = 0.5
        /// Gauge refresh period.
        public var gauges: Double = 5
        /// Stream retention period (trimming what every group acknowledged, beyond `maxlen`).
        public var trim: Double = 1
        /// How often the Redis servers' identity is compared with the one the outbox rows were
        /// published to (a change means Redis may have lost writes: the window is republished).
        public var epoch: Double = 1
        /// Defaults.
        public init() {}
    }

    let intervals: Intervals

    /// Creates the duties for one process.
    public init(
        definition: ServiceDefinition, topology: Topology, heartbeat: Heartbeat, logger: Logger,
        metrics: RuntimeMetrics,
        intervals: Intervals = Intervals()
    ) {
        self.definition = definition
        self.topology = topology
        self.heartbeat = heartbeat
        self.logger = logger
        self.metrics = metrics
        self.intervals = intervals
    }

    /// Stops the loop (and removes the heartbeat) at its next tick.
    public func stop() { running.withLock { $0 = false } }

    private var isRunning: Bool { running.withLock { $0 } }

    /// Runs until stopped. Blocks the calling thread.
    public func run() {
        var redis: RedisConnection?
        var postgres: PostgresConnection?
        var last: [String: Date] = [:]
        var pruneBacklog = false
        func due(_ duty: String, _ every: Double) -> Bool {
            if let previous = last[duty], Date().timeIntervalSince(previous) < every { return false }
            last[duty] = Date()
            return true
        }
        while isRunning {
            do {
                if redis == nil { redis = try RedisConnection(url: topology.redisURL(for: definition)) }
                if postgres == nil, definition.schema != nil {
                    postgres = try PostgresConnection(url: topology.postgresURL(for: definition))
                }
                guard let redis else { continue }
                try beatIfDue(redis)
                if let postgres, let schema = definition.schema {
                    if due("epoch", intervals.epoch) {
                        try checkEpoch(redis: redis, postgres: postgres, schema: schema)
                    }
                    if due("relay", intervals.relay) { try relay(redis: redis, postgres: postgres, schema: schema) }
                    if due("prune", pruneBacklog ? 0 : intervals.prune) {
                        pruneBacklog = try prune(postgres: postgres, schema: schema)
                    }
                }
                if due("janitor", intervals.janitor) { try janitor(redis) }
                if due("trim", intervals.trim) { try trim(redis) }
                if due("gauges", intervals.gauges) { try gauges(redis: redis, postgres: postgres) }
            } catch {
                logger.warning("maintenance duty failed", metadata: ["error": "\(error)"])
                if BatchProcessor.isInfrastructure(error) {
                    redis?.close()
                }
            }
            usleep(50_000)
        }
        _ = try? redis?.command(["HDEL", Topology.workersKey(definition.name), heartbeat.consumer])
    }

    /// The service's scheduled messages as last counted (carried by the heartbeat, so that
    /// `choreo status` and the console, which read Redis only, can show them).
    private let scheduledSummary = Mutex<(count: Int, next: Int64?, at: Int64)?>(nil)

    /// When the heartbeat was last written.
    private let lastBeat = Mutex(Date.distantPast)

    /// Writes the heartbeat when one is due: between the duties, and between the chunks of a
    /// long relay (a whole republish window after Redis lost writes), so a process busy
    /// republishing is never taken for dead (the gateway's 503 "no live worker", a partition
    /// share counted without it).
    func beatIfDue(_ redis: RedisConnection) throws {
        let due = lastBeat.withLock { last -> Bool in
            guard Date().timeIntervalSince(last) >= intervals.heartbeat else { return false }
            last = Date()
            return true
        }
        if due { try beat(redis) }
    }

    func beat(_ redis: RedisConnection) throws {
        var beat = heartbeat
        beat.at = Envelope.nowMilliseconds()
        if let summary = scheduledSummary.withLock({ $0 }) {
            beat.scheduled = summary.count
            beat.nextDue = summary.next
            beat.scheduledAt = summary.at
        }
        let json = String(decoding: try JSONEncoder().encode(beat), as: UTF8.self)
        try redis.command(["HSET", Topology.workersKey(definition.name), beat.consumer, json])
    }

    /// Publishes outbox rows older than `relayAge` (left by a crash between commit and
    /// publish), locking them so that concurrent relays skip each other's rows.
    @discardableResult
    public func relay(
        redis: RedisConnection, postgres: PostgresConnection, schema: String, minimumAge: Double? = nil
    ) throws -> Int {
        let publisher = Publisher(service: definition, topology: topology)
        var total = 0
        while isRunning {
            let count = try postgres.transaction { tx -> Int in
                let rows = try tx.query(
                    """
                    SELECT seq, stream, fields, command_id, status FROM \(schema).outbox
                    WHERE published_at IS NULL AND created_at < now() - make_interval(secs => $1)
                    ORDER BY seq LIMIT 20 FOR UPDATE SKIP LOCKED
                    """, [minimumAge ?? intervals.relayAge]
                ).rows
                guard !rows.isEmpty else { return 0 }
                var commands: [[String]] = []
                var seqs: [Int] = []
                var messages = 0
                for row in rows {
                    let seq = try row.decode(Int.self, "seq")
                    guard
                        let decoded = OutboxMessage.decodeRow(
                            stream: try row.decode(String.self, "stream"),
                            fields: try row.decode(String.self, "fields"),
                            commandID: row["command_id"], status: row["status"])
                    else {
                        logger.error("outbox row is not valid; left in place", metadata: ["seq": "\(seq)"])
                        continue
                    }
                    for message in decoded { commands += publisher.commands(for: message) }
                    messages += decoded.count
                    seqs.append(seq)
                }
                try redis.pipelineCheckingErrors(commands)
                try redis.waitForReplicas(
                    topology.redisDurability, keys: commands.compactMap { RedisSlot.keys(of: $0).first })
                try tx.query(RuntimeSchema.outboxPublished(schema), [seqs])
                return messages
            }
            total += count
            if count == 0 { break }
            try? beatIfDue(redis)
        }
        if total > 0 { logger.info("outbox relay published leftovers", metadata: ["count": "\(total)"]) }
        return total
    }

    /// Republishes the outbox rows of the republish window when the Redis servers are not the
    /// ones they were published to: a master's run id or replication id changed (a restart,
    /// possibly from an older snapshot or an AOF that lost its last second, or a failover to a
    /// replica that had not received everything). Consumers' inboxes drop the copies. One
    /// process per service wins the change and resets the rows; the relay publishes them.
    func checkEpoch(redis: RedisConnection, postgres: PostgresConnection, schema: String) throws {
        let epoch = try RedisEpoch.read(redis)
        let republished = try postgres.transaction { tx -> Int? in
            let stored = try tx.query(
                "INSERT INTO \(schema).redis_epoch (id, epoch) VALUES (1, $1) ON CONFLICT (id) DO NOTHING RETURNING id",
                [epoch.text])
            guard stored.rows.isEmpty else { return nil }
            let changed = try tx.query(
                """
                UPDATE \(schema).redis_epoch SET epoch = $1, seen_at = now() WHERE id = 1 AND epoch <> $1
                RETURNING id
                """, [epoch.text])
            guard !changed.rows.isEmpty else { return nil }
            return try tx.query(
                "UPDATE \(schema).outbox SET published_at = NULL WHERE published_at IS NOT NULL"
            ).affectedRows
        }
        if let republished {
            metrics.redisEpochChanged()
            logger.warning(
                "Redis is not the server the outbox was published to (restart or failover): republishing the window",
                metadata: ["epoch": "\(epoch.text)", "rows": "\(republished)"])
            try relay(redis: redis, postgres: postgres, schema: schema, minimumAge: 0)
        }
    }

    /// Rows deleted per pruning statement.
    static let pruneChunk = 5000

    /// Deletes inbox rows older than the retention in chunks (rows locked by another process's
    /// pruning are skipped) until none is left or the round's budget is spent. Returns whether
    /// expired rows remain: the next round then starts at once, so retention keeps up with any
    /// insert rate (a chunk takes milliseconds; the runtime inserts at most tens of thousands
    /// of rows per second).
    @discardableResult
    func prune(postgres: PostgresConnection, schema: String) throws -> Bool {
        let started = Date()
        var total = 0
        var more = false
        repeat {
            let result = try postgres.query(
                """
                DELETE FROM \(schema).inbox WHERE message_id IN (
                    SELECT message_id FROM \(schema).inbox WHERE processed_at < now() - make_interval(secs => $1)
                    LIMIT \(Self.pruneChunk) FOR UPDATE SKIP LOCKED)
                """, [definition.policy.inboxRetention])
            total += result.affectedRows
            more = result.affectedRows == Self.pruneChunk
        } while more && isRunning && Date().timeIntervalSince(started) < intervals.pruneBudget
        // Published outbox rows older than the republish window.
        try postgres.query(
            """
            DELETE FROM \(schema).outbox WHERE seq IN (
                SELECT seq FROM \(schema).outbox WHERE published_at < now() - make_interval(secs => $1)
                ORDER BY seq LIMIT \(Self.pruneChunk) FOR UPDATE SKIP LOCKED)
            """, [topology.redisDurability.republishWindow])
        if total > 0 {
            metrics.pruned(count: total)
            logger.debug("pruned inbox rows", metadata: ["count": "\(total)", "more": "\(more)"])
        }
        return more
    }

    /// Trims the streams this service owns (its commands and events streams, each partition of
    /// a partitioned one) below what every
    /// consumer group acknowledged, beyond `maxlen`; flags a backlog over the limit.
    func trim(_ redis: RedisConnection) throws {
        for stream in topology.keys(of: definition.commandStream) + topology.keys(of: definition.eventStream) {
            let (removed, reading) = try topology.retention(of: stream).trim(redis)
            if removed > 0 { metrics.trimmed(stream: stream, count: removed) }
            metrics.gauge("choreo_stream_backlog", [("stream", stream)]).record(reading.backlog)
            metrics.gauge("choreo_stream_over_limit", [("stream", stream)]).record(reading.isOverLimit ? 1 : 0)
            if reading.isOverLimit {
                if overLimit.withLock({ $0.insert(stream).inserted }) {
                    logger.warning(
                        "stream backlog over its limit: producers are held back (503), nothing is trimmed",
                        metadata: [
                            "stream": "\(stream)", "backlog": "\(reading.backlog)", "limit": "\(reading.limit)",
                            "slowest_group": "\(reading.slowestGroup ?? "?")",
                        ])
                }
            } else {
                overLimit.withLock { _ = $0.remove(stream) }
            }
        }
    }

    private let overLimit = Mutex(Set<String>())

    /// Removes consumers of this service's groups that have no live heartbeat, own no pending
    /// entries, and have been idle longer than claim_idle. Never one with pending entries:
    /// XGROUP DELCONSUMER would drop them.
    func janitor(_ redis: RedisConnection) throws {
        let beats = try Heartbeat.all(service: definition.name, redis: redis)
        let live = Set(beats.filter { $0.isLive() }.map(\.consumer))
        for stream in topology.consumedKeys(of: definition) {
            for consumer in (try? redis.xinfoConsumers(stream, group: definition.name)) ?? []
            where !live.contains(consumer.name) && consumer.pending == 0
                && Double(consumer.idleMilliseconds) > definition.policy.claimIdle * 1000
            {
                // Re-check right before deleting: it may have been handed entries meanwhile.
                let pending = try redis.xpending(stream, group: definition.name, count: 1, consumer: consumer.name)
                guard pending.isEmpty else { continue }
                try redis.xgroupDeleteConsumer(stream, group: definition.name, consumer: consumer.name)
                logger.info("removed gone consumer", metadata: ["consumer": "\(consumer.name)", "stream": "\(stream)"])
            }
        }
        let stale = beats.filter { Double(Envelope.nowMilliseconds() - $0.at) / 1000 > Heartbeat.staleAfter * 6 }
        if !stale.isEmpty {
            try redis.command(["HDEL", Topology.workersKey(definition.name)] + stale.map(\.consumer))
        }
    }

    func gauges(redis: RedisConnection, postgres: PostgresConnection?) throws {
        if let memory = try? RedisMemory.read(redis) {
            metrics.gauge("choreo_redis_memory_used_bytes").record(memory.used)
            metrics.gauge("choreo_redis_memory_max_bytes").record(memory.limit)
            metrics.gauge("choreo_redis_refusing_writes").record(memory.refusesWrites ? 1 : 0)
        }
        for stream in topology.consumedKeys(of: definition) {
            if let group = try redis.xinfoGroups(stream).first(where: { $0.name == definition.name }) {
                metrics.gauge("choreo_group_lag", [("stream", stream)]).record(group.lag ?? 0)
                metrics.gauge("choreo_group_pending", [("stream", stream)]).record(group.pending)
            }
        }
        metrics.gauge("choreo_dead_letters").record(try redis.command(["XLEN", definition.deadStream]).int ?? 0)
        if let postgres, let schema = definition.schema {
            let backlog =
                try postgres.query(
                    """
                    SELECT coalesce(sum(CASE WHEN stream = '\(OutboxMessage.batchRow)' THEN json_array_length(fields::json)
                        ELSE 1 END), 0)::bigint AS n FROM \(schema).outbox WHERE published_at IS NULL
                    """
                ).first?.decode(Int.self, "n") ?? 0
            metrics.gauge("choreo_outbox_backlog").record(backlog)
            try scheduledGauges(postgres: postgres, schema: schema)
        }
    }

    /// Counts the scheduled messages (gauges, and the heartbeat's summary). A count of a
    /// million rows takes a fifth of a second: a large table is counted once a minute, a small
    /// one at every refresh.
    func scheduledGauges(postgres: PostgresConnection, schema: String) throws {
        if let previous = scheduledSummary.withLock({ $0 }), previous.count >= 100_000,
            Envelope.nowMilliseconds() - previous.at < 60_000
        {
            return
        }
        let scheduled = try Scheduler.summary(postgres: postgres, schema: schema)
        scheduledSummary.withLock { $0 = (scheduled.count, scheduled.next, Envelope.nowMilliseconds()) }
        metrics.gauge("choreo_scheduled_pending").record(scheduled.count)
        let next = scheduled.next.map { Double($0 - Envelope.nowMilliseconds()) / 1000 } ?? 0
        metrics.gauge("choreo_scheduled_next_due_seconds").record(next)
    }
}
