// ConsumerLoop+Settling: what both kinds of consumer loop (a stream's, a partition's) do with a
// batch beyond handling it: hold it through infrastructure outages without counting
// deliveries, and settle entries past max_deliveries (acknowledged when already applied,
// dead-lettered otherwise).

import Foundation
import Logging
import Postgres
import Redis

extension ConsumerLoop {
    /// Runs `operation`, retrying infrastructure failures with backoff without counting
    /// deliveries, and keeping the held entries from being adopted by other consumers.
    /// Returns nil if it gave up (other error, or stop requested and shutdown_timeout passed).
    func holding<T>(
        _ ids: [String], processor: BatchProcessor, redis: RedisConnection, _ operation: () throws -> T
    ) -> T? {
        var delay = 0.05
        let started = Date()
        var lastTouch = Date()
        while true {
            do {
                return try operation()
            } catch  where BatchProcessor.isInfrastructure(error) {
                // Postgres answering but unable (read-only after a failover, out of disk or
                // connections): the session may keep the condition (a read-only default
                // applies to new sessions only), so the next attempt reconnects.
                if let error = error as? PostgresError, !error.isConnectionError { processor.postgres?.close() }
                if !state.readsMore, Date().timeIntervalSince(started) > policy.shutdownTimeout / 2 {
                    logger.error(
                        "giving up a held batch at shutdown; it stays pending", metadata: ["error": "\(error)"])
                    return nil
                }
                logger.warning(
                    "infrastructure unavailable; holding the batch",
                    metadata: [
                        "error": "\(error)", "entries": "\(ids.count)", "retry_in_ms": "\(Int(delay * 1000))",
                    ])
                usleep(UInt32(delay * 1_000_000))
                delay = min(delay * 2, 1)
                if Date().timeIntervalSince(lastTouch) > policy.claimIdle / 3 {
                    // Reset the entries' idle time (JUSTID does not count a delivery).
                    _ = try? redis.command(
                        ["XCLAIM", stream, group, consumer, "0"] + ids + ["JUSTID"])
                    lastTouch = Date()
                }
            } catch {
                logger.error(
                    "batch failed unexpectedly; entries stay pending", metadata: ["error": "\(error)"])
                return nil
            }
        }
    }

    /// Entries past max_deliveries: an entry whose effect was committed (its inbox row
    /// exists: the consumer died between commit and ack) is acknowledged, never dead; its
    /// outbox rows, if still there, are published by the relay. The rest are dead-lettered.
    /// Returns false when it could not decide yet (another consumer is still committing one of
    /// the entries): nothing was settled, ask again later.
    @discardableResult
    func settleOverLimit(
        _ overLimit: [(entry: StreamEntry, attempt: Int)], owners: [String: String], lastErrors: [String: String],
        processor: BatchProcessor, redis: RedisConnection
    ) throws -> Bool {
        let envelopes = overLimit.compactMap { try? Envelope(entry: $0.entry) }
        guard let applied = try processor.alreadyApplied(envelopes, stream: stream) else {
            logger.warning(
                "entries past max_deliveries are being committed elsewhere; deciding later",
                metadata: ["count": "\(overLimit.count)"])
            return false
        }
        var commands: [[String]] = []
        var acks: [String] = []
        var deadCount = 0
        for (entry, attempt) in overLimit {
            let envelope = try? Envelope(entry: entry)
            acks.append(entry.id)
            let last = lastErrors[entry.id]
            if let envelope, applied.contains(envelope.id) {
                metrics.settled(
                    stream: stream, type: envelope.type, outcome: .duplicate, state: .acked)
                continue
            }
            let owner = owners[entry.id] ?? "?"
            let reason =
                "exceeded max_deliveries (\(policy.maxDeliveries)): "
                + (last ?? "consumer \(owner) stopped without settling it")
            commands += processor.publisher.deadLetterCommands(
                entry: entry, stream: stream, consumer: consumer, deliveries: attempt - 1,
                reason: reason, envelope: envelope)
            deadCount += 1
        }
        let (writes, after) = BatchProcessor.inOrder(commands + [["XACK", stream, group] + acks])
        try redis.writeThen(writes, then: after)
        if deadCount > 0 {
            logger.error(
                "adopted entries past max_deliveries dead-lettered", metadata: ["count": "\(deadCount)"])
        }
        if deadCount < overLimit.count {
            logger.info(
                "entries past max_deliveries were already applied; acknowledged",
                metadata: ["count": "\(overLimit.count - deadCount)"])
        }
        return true
    }
}
