// BatchProcessor+Transactions: a batch's Postgres side. One transaction (inbox dedup, the
// handlers' writes, outbox rows, commit) optimistic for the whole batch, in one round trip
// when handlers only queue writes; falling back to the inbox checked first, then to one
// transaction per message when something in it fails.

import Foundation
import Postgres

extension BatchProcessor {
    func transactOptimistically(stream: String, items: [Item], postgres: PostgresConnection, schema: String)
        throws
        -> ([Handled], [OutboxMessage])
    {
        do {
            // First deliveries are almost never duplicates: the inbox rows are inserted strictly
            // in the same pipeline as the handlers' writes (and their first query) and the
            // commit: one round trip when handlers only queue writes, one more per query. A
            // duplicate or any failure aborts it, and the batch is redone with the inbox checked
            // first (a batch of one: as the message's own transaction).
            if items.allSatisfy({ $0.delivery.attempt == 1 }) {
                do {
                    return try transact(stream: stream, items: items, postgres: postgres, schema: schema, strict: true)
                } catch is OptimisticAbort {
                    metrics.batchFallback(stream: stream)
                }
            }
            // A batch of one checked first is already a message's own transaction (its failures
            // are the message's, handled below); a larger batch falls back to that on any failure.
            if items.count > 1 { return try transact(stream: stream, items: items, postgres: postgres, schema: schema) }
            throw OptimisticAbort()
        } catch is OptimisticAbort {
            if items.count > 1 { metrics.batchFallback(stream: stream) }
            var results: [Handled] = []
            var published: [OutboxMessage] = []
            for item in items {
                if ordered, let last = results.last?.outcome, last.isFailure || last == .held {
                    results.append(Handled(outcome: .held, emissions: []))
                    continue
                }
                var tries = 0
                while true {
                    tries += 1
                    do {
                        let (result, messages) = try transact(
                            stream: stream, items: [item], postgres: postgres, schema: schema)
                        results += result
                        published += messages
                    } catch let error as SingleFailure {
                        // A lost race (deadlock, serialization failure, a concurrent append to
                        // the same version) is retried at once a few times: it is not the
                        // message's fault, and should not count as a failed delivery.
                        // A lock wait that ran out (lock_timeout: a lock held elsewhere) is not
                        // retried at once: the message is retried with backoff while the rest of
                        // the batch proceeds.
                        if error.concurrency, !error.lockTimeout, tries < 4 {
                            usleep(UInt32.random(in: 1_000...(5_000 * UInt32(tries))))
                            continue
                        }
                        results.append(
                            Handled(
                                outcome: error.poison ? .poison(error.message) : .failed(error.message), emissions: []))
                    }
                    break
                }
            }
            return (results, published)
        }
    }

    private struct SingleFailure: Error {
        var message: String
        var concurrency = false
        /// Retrying cannot help (a parameter Postgres cannot store): dead-letter at once.
        var poison = false
        /// The message's lock wait ran out its lock_timeout.
        var lockTimeout = false
    }

    /// SQLSTATEs of lost races: deadlock, serialization failure, lock timeout, unique violation
    /// (an optimistic-concurrency append that lost).
    static let concurrencyStates: Set<String> = ["40P01", "40001", "55P03", "23505"]

    /// One transaction for `items`: inbox rows, handlers, queued writes, outbox rows, commit.
    ///
    /// With `strict`, the inbox rows are inserted without a conflict clause, lazily with the
    /// first flush or the commit (every item is taken as fresh; a duplicate aborts the batch).
    /// Otherwise they are inserted first, skipping known ids, and only fresh items are handled.
    private func transact(
        stream: String, items: [Item], postgres: PostgresConnection, schema: String, strict: Bool = false
    ) throws
        -> ([Handled], [OutboxMessage])
    {
        let step = TransactionStep(postgres: postgres, optimistic: strict || items.count > 1)
        var (session, fresh) = try open(stream: stream, items: items, schema: schema, strict: strict, step)
        let (results, undo) = try runHandlers(
            stream: stream, items: items, session: session, schema: schema, fresh: &fresh, step)
        let messages = try commit(items: items, results: results, undo: undo, session: session, schema: schema, step)
        return (results, messages)
    }

    /// How a failing step of ``transact(stream:items:postgres:schema:strict:)`` ends the
    /// transaction: rolled back; an infrastructure error as it is; in a batch or a strict
    /// attempt, an ``OptimisticAbort`` (redo it checked, message by message); for one message's
    /// own transaction, its failure.
    private struct TransactionStep {
        let postgres: PostgresConnection
        /// A failure aborts the attempt (there is a fallback) rather than failing the message.
        let optimistic: Bool

        func fail(_ error: PostgresError) throws -> Never {
            if postgres.inTransaction { _ = try? postgres.execute("ROLLBACK") }
            if error.isUnavailable { throw error }
            if optimistic { throw OptimisticAbort() }
            throw SingleFailure(
                message: "\(error)",
                concurrency: error.sqlState.map(BatchProcessor.concurrencyStates.contains) ?? false,
                poison: error.kind == .invalidParameter, lockTimeout: error.sqlState == "55P03")
        }

        /// A pipeline whose statements Postgres never saw (a parameter it cannot store) fails
        /// like one it refused.
        func send(_ statements: [PostgresStatement]) throws -> [Result<PostgresResult, PostgresError>] {
            do { return try postgres.pipeline(statements) } catch let error as PostgresError
                where !error.isUnavailable
            {
                try fail(error)
            }
        }
    }

    /// Opens the transaction with the inbox rows: strict, lazily with the first flush (every
    /// item taken as fresh); otherwise at once, learning which items are fresh.
    private func open(
        stream: String, items: [Item], schema: String, strict: Bool, _ step: TransactionStep
    ) throws -> (TransactionSession, Set<String>) {
        let postgres = step.postgres
        // Queries (read-only) leave no inbox row: they are always taken as fresh.
        let queries = Set(items.lazy.map(\.envelope).filter { self.queryTypes.contains($0.type) }.map(\.id))
        let envelopes = items.map(\.envelope).filter { !queries.contains($0.id) }
        // One message's own transaction waits as the session does
        // (``ServicePolicy/postgresSessionSettings``); a batch or a strict attempt, which have a
        // fallback, wait for locks only briefly.
        var begin = [PostgresStatement("BEGIN")]
        if strict || items.count > 1 { begin.append(lockTimeout) }
        let inboxRows = PostgresStatement(
            strict ? RuntimeSchema.inboxInsertStrict(schema) : RuntimeSchema.inboxInsert(schema),
            [
                envelopes.map(\.id), envelopes.map { _ in stream }, envelopes.map(\.type),
                envelopes.map(\.correlation),
            ])
        var fresh = queries
        let session: TransactionSession
        if strict {
            fresh.formUnion(envelopes.map(\.id))
            session = TransactionSession(connection: postgres, prelude: begin + [inboxRows])
        } else {
            for result in try step.send(begin + [inboxRows]) {
                switch result {
                case .failure(let error): try step.fail(error)
                case .success(let rows): fresh.formUnion(rows.rows.compactMap { $0.values.first ?? nil })
                }
            }
            session = TransactionSession(connection: postgres)
        }
        return (session, fresh)
    }

    /// Runs each fresh item's handler in its savepoint; returns the outcomes and the ids of the
    /// items whose work was rolled back (their inbox rows go too).
    private func runHandlers(
        stream: String, items: [Item], session: TransactionSession, schema: String, fresh: inout Set<String>,
        _ step: TransactionStep
    ) throws -> ([Handled], [String]) {
        var results: [Handled] = []
        var undo: [String] = []
        var stopped = false
        for (index, item) in items.enumerated() {
            guard fresh.remove(item.envelope.id) != nil else {
                results.append(Handled(outcome: .duplicate, emissions: []))
                continue
            }
            if stopped {
                // Ordered: after a failed message, the rest wait for it (their inbox rows go).
                undo.append(item.envelope.id)
                results.append(Handled(outcome: .held, emissions: []))
                continue
            }
            session.beginMessage(index)
            session.markMessageStart()
            let context = context(item, stream: stream, session: session)
            let started = ContinuousClock.now
            do {
                try traced(item, stream: stream, context)
                context.flushSchedules()
                results.append(
                    Handled(
                        outcome: context.rejected ? .rejected : .handled, emissions: context.emissions,
                        traceparent: context.spanTraceparent, scheduled: context.scheduled,
                        cancels: context.cancelled.count))
            } catch HandlerError.notYet(let reason, let code) where session.aborted == nil {
                do { try session.rollbackMessage() } catch let rollbackError as PostgresError {
                    try step.fail(rollbackError)
                }
                if ordered {
                    // A partition keeps its order: the message is retried in place, holding
                    // back its key's later messages, instead of deferred behind them.
                    undo.append(item.envelope.id)
                    results.append(Handled(outcome: .failed("not yet: \(reason)"), emissions: []))
                    stopped = true
                    handlerTimer(stream: stream, type: item.envelope.type).recordInterval(since: started)
                    continue
                }
                let deferral = deferral(
                    item, stream: stream, reason: reason, code: code, session: session, schema: schema)
                if case .deferred = deferral.outcome { undo.append(item.envelope.id) }
                results.append(deferral)
            } catch {
                if let aborted = session.aborted { try step.fail(aborted) }
                // A lost race surfacing through the handler's own query (its lock wait ran out
                // the batch's lock_timeout, a deadlock, a serialization failure) is not the
                // message's fault: the batch is redone message by message (no lock timeout,
                // immediate retries), not counted as a failed delivery. Under contention that
                // count would otherwise dead-letter valid messages.
                if let postgresError = error as? PostgresError,
                    postgresError.isUnavailable
                        || postgresError.sqlState.map(Self.concurrencyStates.contains) == true
                {
                    try step.fail(postgresError)
                }
                do { try session.rollbackMessage() } catch let rollbackError as PostgresError {
                    try step.fail(rollbackError)
                }
                undo.append(item.envelope.id)
                let outcome: MessageOutcome
                if let handlerError = error as? HandlerError {
                    outcome = .poison(handlerError.description)
                } else if let postgresError = error as? PostgresError, postgresError.kind == .invalidParameter {
                    outcome = .poison("\(postgresError)")
                } else {
                    outcome = .failed("\(error)")
                }
                results.append(Handled(outcome: outcome, emissions: []))
                if ordered, outcome.isFailure { stopped = true }
            }
            handlerTimer(stream: stream, type: item.envelope.type).recordInterval(since: started)
        }
        return (results, undo)
    }

    /// A message its handler found too early (``HandlerError/notYet(_:code:)``), its work rolled
    /// back: a delayed copy (same id, one more deferral) on the service's commands stream, so
    /// the service alone sees it again; or, once it has waited `not_yet_limit`, a rejection.
    private func deferral(
        _ item: Item, stream: String, reason: String, code: String, session: TransactionSession, schema: String
    ) -> Handled {
        let now = Envelope.nowMilliseconds()
        let since = item.envelope.deferredSince ?? now
        let waited = Double(now - since) / 1000
        guard waited < definition.policy.notYetLimit else {
            let data = MessageContext.jsonObject([
                "code": code,
                "reason":
                    "\(reason) (still not ready after \(Int(waited.rounded())) s and \(item.envelope.deferrals) retries)",
            ])
            return Handled(
                outcome: .rejected, emissions: [.result(status: .failed, type: item.envelope.type, data: data)])
        }
        var copy = item.envelope
        copy.deferrals += 1
        copy.deferredSince = since
        copy.due = nil
        let delay = Self.deferralDelay(after: item.envelope.deferrals)
        let message = ScheduledMessage(
            id: copy.id, stream: definition.commandStream, type: copy.type, dueAt: nil, delay: delay,
            fields: copy.fields)
        session.enqueue(ScheduledMessage.insert([message], schema: schema))
        metrics.deferred(stream: stream, type: copy.type)
        return Handled(outcome: .deferred(reason), emissions: [], scheduled: [message])
    }

    /// The wait before a deferred message's next delivery, in milliseconds: 50 ms doubling up
    /// to 2 s.
    static func deferralDelay(after deferrals: Int) -> Int64 {
        min(2000, 50 << Int64(min(deferrals, 10)))
    }

    /// Sends the queued writes, the undone inbox rows' deletion, the outbox rows and COMMIT in
    /// one pipeline; returns the committed outbox messages with their row's sequence number.
    private func commit(
        items: [Item], results: [Handled], undo: [String], session: TransactionSession, schema: String,
        _ step: TransactionStep
    ) throws -> [OutboxMessage] {
        let postgres = step.postgres
        var messages: [OutboxMessage] = []
        for (item, result) in zip(items, results) where result.outcome == .handled || result.outcome == .rejected {
            messages += result.emissions.map {
                OutboxMessage($0, cause: item.envelope, service: definition, traceparent: result.traceparent)
            }
        }
        var tail = session.takePending()
        if !undo.isEmpty { tail.append(PostgresStatement(RuntimeSchema.inboxDelete(schema), [undo])) }
        let purged = unpurgedOutbox.seqs
        if !purged.isEmpty {
            tail.append(PostgresStatement(RuntimeSchema.outboxPublished(schema), [purged.map { Int($0) }]))
        }
        let outboxIndex = tail.count
        if !messages.isEmpty {
            tail.append(PostgresStatement(RuntimeSchema.outboxInsert(schema), [OutboxMessage.encodeBatch(messages)]))
        }
        tail.append(PostgresStatement("COMMIT"))
        let outcomes = try step.send(tail)
        for outcome in outcomes {
            if case .failure(let error) = outcome { try step.fail(error) }
        }
        if postgres.inTransaction {
            // COMMIT of an aborted transaction reports ROLLBACK without an error.
            try step.fail(PostgresError(.server, message: "the batch transaction was rolled back"))
        }
        if !purged.isEmpty { unpurgedOutbox.marked(first: purged.count) }
        if !messages.isEmpty, case .success(let rows) = outcomes[outboxIndex] {
            let seq = rows.rows.first?.values.first.flatMap { $0 }.flatMap { Int64($0) }
            for index in messages.indices { messages[index].seq = seq }
        }
        return messages
    }
}
