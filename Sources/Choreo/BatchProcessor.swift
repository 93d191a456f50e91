// BatchProcessor: handles one batch of deliveries with exactly-once effects: decode, run the
// handlers (statelessly, or in the Postgres transactions of BatchProcessor+Transactions.swift),
// then the Redis settlement (publish, dead-letter, ack) and the outbox cleanup.

import Foundation
import Instrumentation
import Logging
import Metrics
import Postgres
import Redis
import Tracing

/// Handles batches for one consumer of one service. Not thread-safe: one per consumer loop.
final class BatchProcessor {
    let definition: ServiceDefinition
    let service: Service
    let publisher: Publisher
    /// Types answered as queries: read-only, so handled without an inbox row (a repeated query
    /// simply answers again).
    let queryTypes: Set<String>
    /// When a publish counts as done (before its outbox rows are deleted).
    let durability: RedisDurability
    /// `nil` only in ``HandlerRunner`` (handlers run against Postgres, nothing is settled).
    let redis: RedisConnection?
    let postgres: PostgresConnection?
    let consumer: String
    let logger: Logger
    let metrics: RuntimeMetrics
    /// Tells this process's scheduler about messages scheduled sooner than it planned to look.
    let scheduleSignal: ScheduleSignal?
    /// Ordered consumption (a partition): a batch stops at its first failed message; the
    /// messages after it are ``MessageOutcome/held`` (not run, left pending), and a message
    /// its handler finds too early is retried in place instead of deferred.
    let ordered: Bool

    init(
        definition: ServiceDefinition, service: Service, topology: Topology, redis: RedisConnection?,
        postgres: PostgresConnection?, consumer: String, logger: Logger, metrics: RuntimeMetrics,
        scheduleSignal: ScheduleSignal? = nil, ordered: Bool = false
    ) {
        self.scheduleSignal = scheduleSignal
        self.ordered = ordered
        self.definition = definition
        self.service = service
        self.publisher = Publisher(service: definition, topology: topology)
        self.queryTypes = topology.queryTypes(of: definition.name)
        self.durability = topology.redisDurability
        self.redis = redis
        self.postgres = postgres
        self.consumer = consumer
        self.logger = logger
        self.metrics = metrics
    }

    /// An error of the infrastructure (Postgres or Redis unreachable, Postgres read-only or out
    /// of resources): the batch is held and retried as is, without counting a delivery.
    static func isInfrastructure(_ error: Error) -> Bool {
        if let error = error as? PostgresError { return error.isUnavailable }
        if let error = error as? RedisError { return error.isUnavailable }
        return false
    }

    struct Item {
        var delivery: Delivery
        var envelope: Envelope
        var handler: MessageHandler
    }

    struct Handled {
        var outcome: MessageOutcome
        var emissions: [Emission]
        /// The handling span's traceparent, when a tracer recorded one.
        var traceparent: String? = nil
        /// Delayed messages it scheduled (committed with it).
        var scheduled: [ScheduledMessage] = []
        /// Scheduled messages it cancelled.
        var cancels = 0
    }

    /// Runs the handlers and commits their effects. Throws only infrastructure errors (then
    /// nothing is committed and the batch can be retried as is).
    func commit(stream: String, deliveries: [Delivery]) throws -> Settlement {
        var settled: [(id: String, type: String, outcome: MessageOutcome, state: MessageState)] = []
        var deadCommands: [[String]] = []
        var items: [Item] = []
        var acks: [String] = []
        for delivery in deliveries {
            let entry = delivery.entry
            if entry.isDeleted {
                metrics.trimmedWhilePending(stream: stream)
                logger.warning("entry trimmed while pending; acknowledging", metadata: ["entry": "\(entry.id)"])
                acks.append(entry.id)
                continue
            }
            /// Poison: dead-lettered at once and acknowledged.
            func poison(_ reason: String, _ envelope: Envelope?) {
                deadCommands += publisher.deadLetterCommands(
                    entry: entry, stream: stream, consumer: consumer, deliveries: delivery.attempt, reason: reason,
                    envelope: envelope)
                settled.append(
                    (entry.id, envelope?.type ?? entry["type"] ?? "", .poison(reason), .dead(reason: reason)))
                acks.append(entry.id)
            }
            let size = entry.fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count }
            if size > definition.policy.maxMessageBytes {
                poison("message of \(size) bytes is over max_message_bytes (\(definition.policy.maxMessageBytes))", nil)
                continue
            }
            let envelope: Envelope
            do {
                envelope = try Envelope(entry: entry)
            } catch {
                poison("undecodable envelope: \(error)", nil)
                continue
            }
            guard let handler = service.handler(for: envelope.type) else {
                if !definition.isCommandStream(stream) {
                    settled.append((entry.id, envelope.type, .ignored, .acked))
                    acks.append(entry.id)
                } else {
                    poison("unknown message type '\(envelope.type)' for service '\(definition.name)'", envelope)
                }
                continue
            }
            items.append(Item(delivery: delivery, envelope: envelope, handler: handler))
        }

        var results: [Handled]
        var seqs: [Int64] = []
        var published: [OutboxMessage] = []
        if items.isEmpty {
            results = []
        } else if let postgres, let schema = definition.schema {
            (results, published) = try transactOptimistically(
                stream: stream, items: items, postgres: postgres, schema: schema)
            for seq in published.compactMap(\.seq) where seqs.last != seq { seqs.append(seq) }
            noteScheduled(results)
        } else {
            var stopped = false
            results = items.map { item in
                if stopped { return Handled(outcome: .held, emissions: []) }
                let result = runStateless(stream: stream, item: item)
                if ordered, result.outcome.isFailure { stopped = true }
                return result
            }
            for (item, result) in zip(items, results) where result.outcome == .handled || result.outcome == .rejected {
                published += result.emissions.map {
                    OutboxMessage($0, cause: item.envelope, service: definition, traceparent: result.traceparent)
                }
            }
        }

        var commands: [[String]] = []
        for message in published { commands += publisher.commands(for: message) }
        commands += deadCommands
        for (item, result) in zip(items, results) {
            let entry = item.delivery.entry
            let state = MessageState.settle(
                result.outcome, attempt: item.delivery.attempt, policy: definition.policy,
                jitterUnit: Self.unit(entry.id))
            switch state {
            case .acked:
                acks.append(entry.id)
            case .dead(let reason):
                commands += publisher.deadLetterCommands(
                    entry: entry, stream: stream, consumer: consumer, deliveries: item.delivery.attempt, reason: reason,
                    envelope: item.envelope)
                acks.append(entry.id)
            case .retrying, .delivered:
                break
            }
            settled.append((entry.id, item.envelope.type, result.outcome, state))
        }
        if !acks.isEmpty { commands.append(["XACK", stream, definition.name] + acks) }
        return Settlement(stream: stream, commands: commands, outboxSeqs: seqs, settled: settled, published: published)
    }

    /// Publishes and dead-letters, then acknowledges (``RedisConnection/writeThen(_:then:thenRead:)``:
    /// one transaction on a standalone server, so at `maxmemory`, where Redis refuses `XADD`
    /// but accepts `XACK`, nothing is acknowledged; on a cluster the acknowledgement follows the
    /// writes), then keeps the published outbox rows for marking (``unpurgedOutbox``). Throws
    /// if Redis failed (nothing is lost: the settlement can be retried, and the outbox relay
    /// republishes rows that stay behind).
    ///
    /// With `prefetch` (an XREADGROUP without BLOCK), the next batch is read in the same round
    /// trip and returned.
    @discardableResult
    func settle(_ settlement: Settlement, prefetch: [String]? = nil) throws -> [StreamBatch] {
        guard let redis else {
            throw RedisError.connectionFailed(endpoint: "none", reason: "no Redis connection to settle with")
        }
        let (writes, after) = Self.inOrder(settlement.commands)
        let prefetched = try redis.writeThen(writes, then: after, thenRead: prefetch)
        // Outbox rows go only once replicas have what they published (durability: replicated).
        // Not replicated in time: the rows stay, and the outbox relay republishes them later
        // (consumers' inboxes drop the copies) and deletes them once replicas acknowledge.
        if !settlement.outboxSeqs.isEmpty {
            do {
                try redis.waitForReplicas(durability, keys: writes.compactMap { RedisSlot.keys(of: $0).first })
                unpurgedOutbox.add(settlement.outboxSeqs, now: Date())
            } catch let error as RedisError where !error.isConnectionError {
                logger.warning(
                    "published messages not yet on the replicas; the outbox relay publishes them again",
                    metadata: ["error": "\(error)", "rows": "\(settlement.outboxSeqs.count)"])
            }
        }
        // Acknowledged messages are counted in runs of one type and outcome (one counter
        // update per run, not per message).
        var run: (type: String, outcome: MessageOutcome, count: Int)?
        func flushRun() {
            if let run {
                metrics.settled(
                    stream: settlement.stream, type: run.type, outcome: run.outcome, state: .acked, count: run.count)
            }
            run = nil
        }
        for item in settlement.settled where item.outcome != .held {
            if item.state == .acked {
                if let current = run, current.type == item.type, current.outcome == item.outcome {
                    run?.count += 1
                } else {
                    flushRun()
                    run = (item.type, item.outcome, 1)
                }
                continue
            }
            metrics.settled(stream: settlement.stream, type: item.type, outcome: item.outcome, state: item.state)
            switch item.state {
            case .dead(let reason):
                logger.error(
                    "message dead-lettered",
                    metadata: ["entry": "\(item.id)", "type": "\(item.type)", "reason": "\(reason)"])
            case .retrying(let attempt, let after, let error):
                logger.warning(
                    "message failed; will retry",
                    metadata: [
                        "entry": "\(item.id)", "type": "\(item.type)", "attempt": "\(attempt)",
                        "retry_in_ms": "\(Int(after * 1000))", "error": "\(error)",
                    ])
            default:
                break
            }
        }
        flushRun()
        return prefetched
    }

    /// Settlement commands split into what is written first (what replaces the entries: events,
    /// commands, records, dead letters) and what follows once those are written: the
    /// acknowledgements, and results-stream entries (wake-ups for waiting clients, who then
    /// read the records).
    static func inOrder(_ commands: [[String]]) -> (writes: [[String]], after: [[String]]) {
        var writes: [[String]] = []
        var after: [[String]] = []
        for command in commands {
            if command.first == "XACK"
                || (command.first == "XADD" && command.count > 1 && command[1] == Topology.resultsStream)
            {
                after.append(command)
            } else {
                writes.append(command)
            }
        }
        return (writes, after)
    }

    /// Published outbox rows not yet marked published: their marking rides in the next batch's
    /// transaction when one comes within ``PublishedOutbox/delay``; otherwise the loop marks
    /// them on their own (``purgeOutbox(ifDueAt:)``). Rows left by a crash are republished by
    /// the relay, and the copies are dropped by the consumers' inboxes.
    var unpurgedOutbox = PublishedOutbox()

    /// Seconds until the published rows must be marked on their own (nil: none waiting).
    func untilPurge(now: Date = Date()) -> Double? { unpurgedOutbox.untilDue(now: now) }

    /// Marks the published rows when they waited ``PublishedOutbox/delay`` for a batch to take them.
    func purgeOutbox(ifDueAt now: Date) throws {
        guard unpurgedOutbox.isDue(now: now) else { return }
        try purgeOutbox()
    }

    /// Marks the published outbox rows still unmarked, in a statement of their own.
    func purgeOutbox() throws {
        guard !unpurgedOutbox.isEmpty, let postgres, let schema = definition.schema else { return }
        let seqs = unpurgedOutbox.seqs
        try postgres.query(RuntimeSchema.outboxPublished(schema), [seqs.map { Int($0) }])
        unpurgedOutbox.marked(first: seqs.count)
    }

    /// Counts the committed schedules and cancels, and wakes the scheduler for the soonest.
    private func noteScheduled(_ results: [Handled]) {
        var count = 0
        var cancels = 0
        var soonest = Int64.max
        let now = Envelope.nowMilliseconds()
        for result in results where result.outcome.committed {
            count += result.scheduled.count
            cancels += result.cancels
            for message in result.scheduled { soonest = min(soonest, message.dueAt ?? (now + message.delay)) }
        }
        guard count > 0 || cancels > 0 else { return }
        metrics.scheduled(count: count, cancels: cancels)
        if count > 0 { scheduleSignal?.scheduled(due: soonest) }
    }

    // MARK: Handlers

    let coders = JSONCoders()

    /// Handler-duration timers of the last stream, by message type (a lookup without a lock).
    private var handlerTimers: (stream: String, byType: [String: Timer]) = ("", [:])

    func handlerTimer(stream: String, type: String) -> Timer {
        if handlerTimers.stream == stream, let timer = handlerTimers.byType[type] { return timer }
        if handlerTimers.stream != stream { handlerTimers = (stream, [:]) }
        let timer = metrics.handlerTimer(stream: stream, type: type)
        handlerTimers.byType[type] = timer
        return timer
    }

    func context(_ item: Item, stream: String, session: TransactionSession?) -> MessageContext {
        MessageContext(
            envelope: item.envelope, service: definition.name, stream: stream, attempt: item.delivery.attempt,
            consumer: consumer, logger: logger, session: session, schema: definition.schema, coders: coders)
    }

    private func runStateless(stream: String, item: Item) -> Handled {
        let context = context(item, stream: stream, session: nil)
        let started = ContinuousClock.now
        defer { handlerTimer(stream: stream, type: item.envelope.type).recordInterval(since: started) }
        do {
            try traced(item, stream: stream, context)
            return Handled(
                outcome: context.rejected ? .rejected : .handled, emissions: context.emissions,
                traceparent: context.spanTraceparent)
        } catch HandlerError.notYet(let reason, _) {
            // No schema to keep a delayed copy in: an ordinary retry with backoff.
            return Handled(outcome: .failed("not yet: \(reason)"), emissions: [])
        } catch let error as HandlerError {
            return Handled(outcome: .poison(error.description), emissions: [])
        } catch {
            return Handled(outcome: .failed("\(error)"), emissions: [])
        }
    }

    /// Runs the handler in a consumer span whose parent is the message's traceparent.
    func traced(_ item: Item, stream: String, _ context: MessageContext) throws {
        guard tracing else { return try item.handler(context) }
        let parent = TracePropagation.context(traceparent: item.envelope.traceparent)
        try withSpan(item.envelope.type, context: parent, ofKind: .consumer) { span in
            if span.isRecording {
                // OpenTelemetry's messaging conventions; the consumer group is the service.
                span.attributes["messaging.system"] = "redis"
                span.attributes["messaging.operation.type"] = "process"
                span.attributes["messaging.operation.name"] = "process"
                span.attributes["messaging.destination.name"] = stream
                span.attributes["messaging.consumer.group.name"] = definition.name
                span.attributes["messaging.message.id"] = item.envelope.id
                span.attributes["messaging.message.conversation_id"] = item.envelope.correlation
                span.attributes["choreo.service"] = definition.name
                span.attributes["choreo.message.type"] = item.envelope.type
                span.attributes["choreo.attempt"] = item.delivery.attempt
            }
            // Messages this handler emits are the span's children (LogTracer and OTLP alike).
            context.spanTraceparent = TracePropagation.traceparent(of: span.context)
            try item.handler(context)
        }
    }

    /// Whether a tracer is bootstrapped: without one, handlers run without a span (parsing the
    /// traceparent and opening a no-op span per message cost a quarter of a no-op handler's time).
    let tracing = !(InstrumentationSystem.tracer is NoOpTracer)

    /// Which of `envelopes` (read from `stream`) were already applied: their inbox row is
    /// committed. The check inserts the rows and rolls back, so it waits for a transaction
    /// still committing one of them (another consumer's stalled batch) instead of missing it;
    /// nil when that wait ran out (undecided: ask again later). Stateless services: none.
    func alreadyApplied(_ envelopes: [Envelope], stream: String) throws -> Set<String>? {
        guard let postgres, let schema = definition.schema, !envelopes.isEmpty else { return [] }
        let ids = envelopes.map(\.id)
        let results = try postgres.pipeline([
            PostgresStatement("BEGIN"), PostgresStatement("SET LOCAL lock_timeout = '5s'"),
            PostgresStatement(
                RuntimeSchema.inboxInsert(schema),
                [ids, envelopes.map { _ in stream }, envelopes.map(\.type), envelopes.map(\.correlation)]),
            PostgresStatement("ROLLBACK"),
        ])
        if postgres.inTransaction { _ = try? postgres.execute("ROLLBACK") }
        switch results[2] {
        case .success(let rows):
            let fresh = Set(rows.rows.compactMap { $0.values.first ?? nil })
            return Set(ids).subtracting(fresh)
        case .failure(let error):
            if error.isConnectionError { throw error }
            if error.sqlState == "55P03" { return nil }
            throw error
        }
    }

    /// A strict batch met a known message id: redo it with the inbox checked first.
    struct OptimisticAbort: Error {}

    /// A batch's brief lock wait, in its transaction.
    lazy var lockTimeout = PostgresStatement(
        "SET LOCAL lock_timeout = '\(max(1, Int(definition.policy.batchLockTimeout * 1000)))ms'")

    /// A stable number in [0, 1) per entry, so an entry's retry delay does not flap.
    static func unit(_ id: String) -> Double {
        var hash: UInt64 = 1_469_598_103_934_665_603
        for byte in id.utf8 { hash = (hash ^ UInt64(byte)) &* 1_099_511_628_211 }
        return Double(hash % 10_000) / 10_000
    }
}
