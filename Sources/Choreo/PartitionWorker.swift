// PartitionWorker: the consumer loop of one partition of a partitioned stream: takes the
// partition's lease when the process's share allows, first finishes the previous owner's
// pending entries in order, then reads and handles batches one at a time, stopping each at its
// first failed message (which holds back the partition's later messages until it succeeds or
// is dead-lettered), renews the lease, and gives it up when over its share or stopping.

import Foundation
import Logging
import Redis

/// The loop's mutable part, owned by the loop's thread (see ``ConsumerLoop``).
struct PartitionWorker {
    let loop: ConsumerLoop
    /// The loop's own connection (blocking reads, claims, the lease).
    let redis: RedisConnection
    let index: Int
    let balancer: PartitionBalancer
    let lease: PartitionLease
    /// Whether this consumer holds the lease.
    var owner = false
    var backlog = OrderedBacklog()
    var renewedAt = Date.distantPast
    /// When the partition was first seen without an owner (this loop not allowed to take it).
    var freeSince: Date?
    /// When the outbox rows this loop's last batch published must be marked, unless a batch's
    /// transaction (this loop's or another's on the same processor) marks them first.
    var purgeDue: Date?

    init(loop: ConsumerLoop, redis: RedisConnection, index: Int, balancer: PartitionBalancer) {
        self.loop = loop
        self.redis = redis
        self.index = index
        self.balancer = balancer
        self.lease = PartitionLease(
            partition: loop.stream, group: loop.group, consumer: loop.consumer, ttl: loop.policy.claimIdle)
    }

    var policy: ServicePolicy { loop.policy }
    /// How often the owner renews its lease.
    var renewInterval: Double { max(0.1, min(2, lease.ttl / 3)) }
    /// How often a loop without the lease looks whether it may take it (a partition given back
    /// in a rebalance waits this long at most for its next owner).
    var checkInterval: Double { max(0.05, min(0.25, lease.ttl / 4)) }

    mutating func run() {
        var delay = 0.05
        while loop.state.readsMore {
            do {
                try step()
                delay = 0.05
            } catch {
                loop.logger.error(
                    "partition loop error; retrying",
                    metadata: ["error": "\(error)", "retry_in_ms": "\(Int(delay * 1000))"])
                loop.pause(delay)
                delay = min(delay * 2, 1)
            }
        }
        // Stopping: the next owner need not wait for the lease to expire. Entries still held
        // stay pending; it adopts them first.
        if owner { give(up: "stopping") }
        if purgeDue != nil { try? withProcessor { try $0.purgeOutbox() } }
        loop.logger.info("consumer drained and stopped")
    }

    /// One turn: take the lease if allowed, else renew it, rebalance, and handle what is next.
    mutating func step() throws {
        try balancer.refresh(redis)
        if let due = purgeDue, due <= Date() {
            try withProcessor { try $0.purgeOutbox(ifDueAt: Date()) }
            purgeDue = nil
        }
        guard owner else { return try tryAcquire() }
        guard keepLease() else { return }
        if balancer.releaseIfOverShare(index) {
            give(up: "over this process's share (\(balancer.share.fair) of \(balancer.share.count))", counted: true)
            return
        }
        switch backlog.next(now: Date(), batch: policy.batch) {
        case .read:
            try readNew()
        case .wait(let until):
            let untilPurge = purgeDue?.timeIntervalSinceNow ?? .infinity
            loop.pause(max(0.001, min(until.timeIntervalSinceNow, renewInterval, untilPurge)))
        case .retryHead(let head):
            try withProcessor { try retry(head, processor: $0) }
        case .batch(let deliveries):
            try withProcessor { _ = handle(deliveries, processor: $0) }
        }
    }

    /// Reads new entries and handles them; while batches come full and settle cleanly, each
    /// settlement also reads the next batch.
    mutating func readNew() throws {
        let untilRenew = max(0.005, renewInterval - Date().timeIntervalSince(renewedAt))
        let untilPurge = max(0.001, purgeDue?.timeIntervalSinceNow ?? .infinity)
        let block = min(policy.block, untilRenew, untilPurge)
        var entries =
            try redis.xreadgroup(
                group: loop.group, consumer: loop.consumer, streams: [(loop.stream, ">")], count: policy.batch,
                blockMilliseconds: max(1, Int(block * 1000))
            ).first?.entries ?? []
        while !entries.isEmpty {
            let deliveries = entries.map { Delivery(entry: $0, attempt: 1) }
            guard backlog.isEmpty, keepLease() else {
                // Read, so pending with this consumer: they wait behind what is held (or for the
                // next owner, who adopts them).
                if owner { backlog.apply(deliveries, states: states(deliveries), now: Date()) }
                return
            }
            entries = try withProcessor { handle(deliveries, processor: $0, prefetch: true) }
        }
    }

    /// All `deliveries` as read and not yet run.
    private func states(_ deliveries: [Delivery]) -> [String: MessageState] {
        Dictionary(
            deliveries.map { ($0.entry.id, MessageState.delivered(attempt: $0.attempt)) },
            uniquingKeysWith: { first, _ in first })
    }

    /// Claims a failed or adopted head again (counting a delivery) and handles it alone, or
    /// dead-letters it past max_deliveries.
    mutating func retry(_ head: OrderedBacklog.Held, processor: BatchProcessor) throws {
        let claimed = try redis.xclaim(
            loop.stream, group: loop.group, consumer: loop.consumer, minIdleMilliseconds: 0, ids: [head.id])
        guard let entry = claimed.first else {
            // Acknowledged meanwhile (by a previous owner finishing its batch), or trimmed.
            backlog.remove(head.id)
            return
        }
        let attempt = head.deliveries + 1
        guard attempt <= policy.maxDeliveries else {
            let settled = try loop.settleOverLimit(
                [(entry, attempt)], owners: [head.id: loop.consumer],
                lastErrors: head.error.map { [head.id: $0] } ?? [:],
                processor: processor, redis: redis)
            if settled {
                backlog.remove(head.id)
            } else {
                backlog.hold(
                    [Delivery(entry: entry, attempt: attempt)], after: 1, error: head.error ?? "undecided",
                    now: Date())
            }
            return
        }
        handle([Delivery(entry: entry, attempt: attempt)], processor: processor)
    }

    /// Commits and settles one ordered batch, holding it through infrastructure outages; what
    /// failed or was held back stays in the backlog. Returns prefetched new entries (only after
    /// a batch that settled completely).
    @discardableResult
    mutating func handle(_ deliveries: [Delivery], processor: BatchProcessor, prefetch: Bool = false) -> [StreamEntry] {
        let started = ContinuousClock.now
        let ids = deliveries.map(\.entry.id)
        guard
            let settlement = loop.holding(
                ids, processor: processor, redis: redis,
                { try processor.commit(stream: loop.stream, deliveries: deliveries) }
            )
        else {
            backlog.hold(
                deliveries, after: policy.backoff.initial, error: "the batch could not be handled", now: Date())
            return []
        }
        FaultInjection.reached(.exitAfterCommit)
        let clean = settlement.settled.allSatisfy {
            if case .acked = $0.state { return true }
            if case .dead = $0.state { return true }
            return false
        }
        let read =
            prefetch && clean && deliveries.count >= policy.batch && loop.state.readsMore
            ? RedisConnection.xreadgroupArguments(
                group: loop.group, consumer: loop.consumer, streams: [(loop.stream, ">")], count: policy.batch)
            : nil
        guard
            let next = loop.holding(
                ids, processor: processor, redis: redis, { try processor.settle(settlement, prefetch: read) })
        else {
            backlog.hold(
                deliveries, after: policy.backoff.initial, error: "the batch could not be settled", now: Date())
            return []
        }
        loop.metrics.batchDuration(stream: loop.stream, since: started)
        var states: [String: MessageState] = [:]
        for item in settlement.settled { states[item.id] = item.state }
        backlog.apply(deliveries, states: states, now: Date())
        let prefetched = next.first?.entries ?? []
        // Its published outbox rows are marked by the next batch's transaction, or on their own
        // once they waited PublishedOutbox.delay.
        if let wait = processor.untilPurge() {
            let due = Date().addingTimeInterval(wait)
            purgeDue = min(purgeDue ?? due, due)
        }
        return prefetched
    }

    /// Runs `body` with one of the process's processors for this stream, in turn with the
    /// process's other partition loops (partition_concurrency at once).
    func withProcessor<T>(_ body: (BatchProcessor) throws -> T) throws -> T {
        try balancer.processors.with(
            make: {
                try loop.makeProcessor(redis: RedisConnection(url: loop.topology.redisURL(for: loop.definition)))
            }, body)
    }

    // MARK: The lease

    /// Takes the lease when the share allows (or the partition has been left free too long),
    /// then adopts the previous owner's pending entries.
    mutating func tryAcquire() throws {
        var freeFor = 0.0
        if !balancer.mayAcquire(index, freeFor: 0, grace: .infinity) {
            if try PartitionLease.owner(partition: loop.stream, group: loop.group, redis: redis) != nil {
                freeSince = nil
            } else {
                let since = freeSince ?? Date()
                freeSince = since
                freeFor = Date().timeIntervalSince(since)
            }
        }
        guard balancer.mayAcquire(index, freeFor: freeFor, grace: 2 * lease.ttl), try lease.acquire(redis) else {
            loop.pause(checkInterval)
            return
        }
        owner = true
        renewedAt = Date()
        freeSince = nil
        balancer.acquired(index)
        let adopted = try takeOver()
        loop.logger.info(
            "partition acquired", metadata: ["partition": "\(index)", "adopted": "\(adopted)"])
    }

    /// Moves every pending entry of the partition to this consumer (without counting a
    /// delivery) and into the backlog, in order: they are finished before new entries are read.
    mutating func takeOver() throws -> Int {
        var start = "-"
        var rows: [(id: String, deliveries: Int, due: Date?)] = []
        var foreign: [String] = []
        let now = Date()
        while true {
            let page = try redis.xpending(loop.stream, group: loop.group, start: start, count: 100)
            for row in page {
                var due: Date?
                if row.deliveries >= 2 {
                    // It failed before: it waits out the rest of its backoff.
                    let wait = policy.backoff.delay(afterFailures: row.deliveries, unit: BatchProcessor.unit(row.id))
                    due = now.addingTimeInterval(max(0, wait - Double(row.idleMilliseconds) / 1000))
                }
                rows.append((row.id, row.deliveries, due))
                if row.consumer != loop.consumer { foreign.append(row.id) }
            }
            guard page.count == 100, let last = page.last else { break }
            start = "(" + last.id
        }
        for chunk in stride(from: 0, to: foreign.count, by: 100) {
            try redis.command(
                ["XCLAIM", loop.stream, loop.group, loop.consumer, "0"]
                    + foreign[chunk..<min(chunk + 100, foreign.count)] + ["JUSTID"])
        }
        backlog.adopt(rows)
        return rows.count
    }

    /// Renews the lease when due; false (and the partition dropped) when it was lost.
    mutating func keepLease() -> Bool {
        guard owner else { return false }
        let age = Date().timeIntervalSince(renewedAt)
        guard age >= renewInterval else { return true }
        do {
            if try lease.renew(redis) {
                renewedAt = Date()
                return true
            }
        } catch {
            // Redis unreachable: nobody else can take the lease either until it expires.
            if age < lease.ttl * 0.8 { return true }
        }
        loop.logger.warning("partition lease lost; another consumer owns it now", metadata: ["partition": "\(index)"])
        owner = false
        backlog.clear()
        balancer.released(index)
        return false
    }

    /// Gives the lease up; `counted` when the balancer already counted the release.
    mutating func give(up reason: String, counted: Bool = false) {
        try? lease.release(redis)
        owner = false
        backlog.clear()
        if !counted { balancer.released(index) }
        loop.logger.info("partition released", metadata: ["partition": "\(index)", "reason": "\(reason)"])
    }
}
