// ConsumerLoop: one consumer of one stream on its own thread: reads batches with XREADGROUP,
// hands them to the batch processor, retries its failed entries after their backoff, adopts
// entries of dead consumers after claim_idle, holds a batch while Postgres or Redis is down,
// and drains on stop. A partition of a partitioned stream gets the ordered loop instead
// (PartitionWorker).

import Foundation
import Logging
import Postgres
import Redis
import Synchronization

/// A consumer of one stream for one service, run on a dedicated thread by ``run()``.
public final class ConsumerLoop: Sendable {
    /// The stream it consumes.
    public let stream: String
    /// Its consumer name (unique per process).
    public let consumer: String
    let definition: ServiceDefinition
    let service: Service
    let topology: Topology
    let logger: Logger
    let metrics: RuntimeMetrics
    let scheduleSignal: ScheduleSignal?
    /// For a partition of a partitioned stream: its number and the process's share of the
    /// stream's partitions. The loop then reads only while it holds the partition's lease, in
    /// order (``PartitionWorker``).
    let partition: (index: Int, balancer: PartitionBalancer)?
    private let stateBox = Mutex(ConsumerState.active)

    /// Creates a loop; it connects when run. `scheduleSignal` wakes the process's
    /// ``Scheduler`` when a handler schedules a message sooner than it planned to look.
    public convenience init(
        stream: String, consumer: String, definition: ServiceDefinition, service: Service, topology: Topology,
        logger: Logger, metrics: RuntimeMetrics, scheduleSignal: ScheduleSignal? = nil
    ) {
        self.init(
            stream: stream, consumer: consumer, definition: definition, service: service, topology: topology,
            logger: logger, metrics: metrics, scheduleSignal: scheduleSignal, partition: nil)
    }

    /// Creates a loop; with `partition`, the loop of that partition of a partitioned stream.
    init(
        stream: String, consumer: String, definition: ServiceDefinition, service: Service, topology: Topology,
        logger: Logger, metrics: RuntimeMetrics, scheduleSignal: ScheduleSignal?,
        partition: (index: Int, balancer: PartitionBalancer)?
    ) {
        self.scheduleSignal = scheduleSignal
        self.partition = partition
        self.stream = stream
        self.consumer = consumer
        self.definition = definition
        self.service = service
        self.topology = topology
        var logger = logger
        logger[metadataKey: "stream"] = "\(stream)"
        self.logger = logger
        self.metrics = metrics
    }

    /// The current lifecycle state.
    public var state: ConsumerState { stateBox.withLock { $0 } }

    /// Asks the loop to finish its batch in hand and stop.
    public func requestStop() {
        stateBox.withLock { $0 = $0.after(.stopRequested) }
    }

    var policy: ServicePolicy { definition.policy }
    var group: String { definition.name }

    /// Runs until stopped. Blocks the calling thread: give it a thread of its own.
    public func run() {
        defer { stateBox.withLock { $0 = $0.after(.finished) } }
        guard let (processor, redis) = connect() else { return }
        if let partition {
            var worker = PartitionWorker(loop: self, redis: redis, index: partition.index, balancer: partition.balancer)
            worker.run()
        } else if let processor {
            var worker = Worker(loop: self, processor: processor, redis: redis)
            worker.run()
        }
    }

    /// Connects to Redis and Postgres and creates the group, retrying with backoff until it
    /// works or a stop is requested. A partition loop gets no processor of its own: it borrows
    /// one of its process's (``ProcessorPool``).
    private func connect() -> (BatchProcessor?, RedisConnection)? {
        var delay = 0.1
        while state.readsMore {
            do {
                let redis = try RedisConnection(url: topology.redisURL(for: definition))
                do {
                    try redis.xgroupCreate(stream, group: group, startID: "0")
                } catch let error as RedisError where error.isUnavailable && !error.isConnectionError {
                    // Redis refusing writes (at maxmemory) also refuses XGROUP CREATE; a group
                    // that exists already is all a consumer needs.
                    guard try redis.xinfoGroups(stream).contains(where: { $0.name == group }) else { throw error }
                }
                if partition != nil { return (nil, redis) }
                return (try makeProcessor(redis: redis), redis)
            } catch {
                logger.error(
                    "cannot start consumer; retrying",
                    metadata: ["error": "\(error)", "retry_in_ms": "\(Int(delay * 1000))"])
                pause(delay)
                delay = min(delay * 2, 5)
            }
        }
        return nil
    }

    /// A batch processor with its own Postgres connection (services with a schema), settling
    /// through `redis`; ordered for a partition.
    func makeProcessor(redis: RedisConnection) throws -> BatchProcessor {
        let postgres = try definition.schema.map {
            // lz4 for the outbox's batch rows (TOASTed): pglz took a tenth of the
            // server's time in the INSERT benchmark.
            try PostgresConnection(
                url: topology.postgresURL(for: definition), searchPath: [$0, "public"],
                settings: definition.policy.postgresSessionSettings,
                preferredSettings: ["default_toast_compression": "lz4"])
        }
        var logger = logger
        if partition != nil {
            // Shared by the process's loops of the stream's partitions.
            logger[metadataKey: "stream"] = "\(topology.logicalStream(ofKey: stream))"
            logger[metadataKey: "partition"] = nil
        }
        return BatchProcessor(
            definition: definition, service: service, topology: topology, redis: redis, postgres: postgres,
            consumer: consumer, logger: logger, metrics: metrics, scheduleSignal: scheduleSignal,
            ordered: partition != nil)
    }

    /// Sleeps up to `seconds`, waking early when a stop is requested.
    func pause(_ seconds: Double) {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline, state.readsMore { usleep(10_000) }
    }

    /// The loop's mutable part, owned by the loop's thread.
    private struct Worker {
        let loop: ConsumerLoop
        let processor: BatchProcessor
        /// The processor's Redis connection (reads, claims, acknowledgements).
        let redis: RedisConnection
        /// Own failed entries: when each is due for retry, and its last error.
        var retries: [String: (due: Date, error: String)] = [:]
        var nextReclaim = Date()
        var pendingCursor = "-"

        var policy: ServicePolicy { loop.policy }

        mutating func run() {
            var delay = 0.05
            while loop.state.readsMore {
                do {
                    if Date() >= nextReclaim { try reclaim() }
                    let untilReclaim = max(0.005, nextReclaim.timeIntervalSinceNow)
                    // Published rows wait this read for a batch whose transaction marks them.
                    let untilPurge = max(0.001, processor.untilPurge() ?? .infinity)
                    let block = min(policy.block, untilReclaim, untilPurge)
                    var entries =
                        try redis.xreadgroup(
                            group: loop.group, consumer: loop.consumer, streams: [(loop.stream, ">")],
                            count: policy.batch, blockMilliseconds: max(1, Int(block * 1000))
                        ).first?.entries ?? []
                    // While batches come full, each settlement also reads the next batch
                    // (one round trip instead of two).
                    while !entries.isEmpty {
                        entries = handle(entries.map { Delivery(entry: $0, attempt: 1) }, prefetch: true)
                    }
                    try processor.purgeOutbox(ifDueAt: Date())
                    delay = 0.05
                } catch {
                    loop.logger.error(
                        "consumer loop error; retrying",
                        metadata: ["error": "\(error)", "retry_in_ms": "\(Int(delay * 1000))"])
                    loop.pause(delay)
                    delay = min(delay * 2, 1)
                }
            }
            try? processor.purgeOutbox()
            loop.logger.info("consumer drained and stopped")
        }

        /// Commits and settles one batch, holding it through infrastructure outages. With
        /// `prefetch`, a full batch's settlement also reads the next new entries, returned
        /// (they are delivered to this consumer and must be handled next).
        @discardableResult
        mutating func handle(_ deliveries: [Delivery], prefetch: Bool = false) -> [StreamEntry] {
            let started = ContinuousClock.now
            let ids = deliveries.map(\.entry.id)
            guard let settlement = holding(ids, { try processor.commit(stream: loop.stream, deliveries: deliveries) })
            else {
                return []
            }
            FaultInjection.reached(.exitAfterCommit)
            let read =
                prefetch && deliveries.count >= policy.batch && loop.state.readsMore && Date() < nextReclaim
                ? RedisConnection.xreadgroupArguments(
                    group: loop.group, consumer: loop.consumer, streams: [(loop.stream, ">")], count: policy.batch)
                : nil
            guard let next = holding(ids, { try processor.settle(settlement, prefetch: read) }) else { return [] }
            loop.metrics.batchDuration(stream: loop.stream, since: started)
            for item in settlement.settled {
                if case .retrying(_, let after, let error) = item.state {
                    retries[item.id] = (Date().addingTimeInterval(after), error)
                } else if !retries.isEmpty {
                    retries[item.id] = nil
                }
            }
            if let earliest = retries.values.map(\.due).min(), earliest < nextReclaim { nextReclaim = earliest }
            return next.first?.entries ?? []
        }

        func holding<T>(_ ids: [String], _ operation: () throws -> T) -> T? {
            loop.holding(ids, processor: processor, redis: redis, operation)
        }

        /// Retries own failed entries whose backoff has passed and adopts other consumers'
        /// entries idle for claim_idle; dead-letters entries past max_deliveries.
        mutating func reclaim() throws {
            nextReclaim = Date().addingTimeInterval(min(1, policy.claimIdle / 4))
            let floor = Int(policy.backoff.initial * (1 - policy.backoff.jitter) * 1000)
            let rows = try redis.xpending(
                loop.stream, group: loop.group, minIdleMilliseconds: floor, start: pendingCursor, count: 100)
            pendingCursor = rows.count == 100 ? "(" + rows[rows.count - 1].id : "-"
            var own: [PendingEntry] = []
            var foreign: [PendingEntry] = []
            for row in rows {
                if row.consumer == loop.consumer {
                    let wait = policy.backoff.delay(afterFailures: row.deliveries, unit: BatchProcessor.unit(row.id))
                    if Double(row.idleMilliseconds) >= wait * 1000 { own.append(row) }
                } else if Double(row.idleMilliseconds) >= policy.claimIdle * 1000 {
                    foreign.append(row)
                }
            }
            try claim(own, minIdle: floor)
            try adopt(foreign)
            if let earliest = retries.values.map(\.due).min(), earliest < nextReclaim {
                nextReclaim = max(earliest, Date().addingTimeInterval(0.005))
            }
        }

        /// Adopts entries of a consumer silent for claim_idle (dead, or stalled mid-batch). They
        /// may include a message that crashes the process: they are taken over without counting
        /// a delivery (`JUSTID`), then claimed and handled one at a time, so each claim counts a
        /// delivery of that entry only and a killer message reaches max_deliveries alone,
        /// without dragging its batch-mates to the dead stream.
        mutating func adopt(_ rows: [PendingEntry]) throws {
            guard !rows.isEmpty else { return }
            let taken =
                try redis.command(
                    ["XCLAIM", loop.stream, loop.group, loop.consumer, String(Int(policy.claimIdle * 1000))]
                        + rows.map(\.id) + ["JUSTID"]
                ).array?.compactMap(\.string) ?? []
            let byID = Dictionary(rows.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
            for id in taken {
                guard loop.state.readsMore, let row = byID[id] else { break }
                try claim([row], minIdle: 0)
            }
        }

        mutating func claim(_ rows: [PendingEntry], minIdle: Int) throws {
            guard !rows.isEmpty else { return }
            let entries = try redis.xclaim(
                loop.stream, group: loop.group, consumer: loop.consumer, minIdleMilliseconds: minIdle,
                ids: rows.map(\.id))
            let byID = Dictionary(rows.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
            let claimedIDs = Set(entries.map(\.id))
            let vanished = rows.filter { !claimedIDs.contains($0.id) && $0.consumer == loop.consumer }
            if !vanished.isEmpty {
                // Trimmed or deleted while pending: Redis dropped them from the pending list.
                for row in vanished {
                    retries[row.id] = nil
                    loop.metrics.trimmedWhilePending(stream: loop.stream)
                }
                loop.logger.warning(
                    "pending entries were trimmed before retry", metadata: ["count": "\(vanished.count)"])
            }
            var deliveries: [Delivery] = []
            var overLimit: [(entry: StreamEntry, attempt: Int)] = []
            for entry in entries {
                let attempt = (byID[entry.id]?.deliveries ?? 0) + 1
                if attempt > policy.maxDeliveries {
                    overLimit.append((entry, attempt))
                } else {
                    deliveries.append(Delivery(entry: entry, attempt: attempt))
                }
            }
            if !overLimit.isEmpty { try settleOverLimit(overLimit, byID: byID) }
            for start in stride(from: 0, to: deliveries.count, by: policy.batch) {
                handle(Array(deliveries[start..<min(start + policy.batch, deliveries.count)]))
            }
        }

        mutating func settleOverLimit(
            _ overLimit: [(entry: StreamEntry, attempt: Int)], byID: [String: PendingEntry]
        ) throws {
            var errors: [String: String] = [:]
            for (entry, _) in overLimit { errors[entry.id] = retries[entry.id]?.error }
            let settled = try loop.settleOverLimit(
                overLimit, owners: byID.mapValues(\.consumer), lastErrors: errors, processor: processor, redis: redis)
            if settled { for (entry, _) in overLimit { retries[entry.id] = nil } }
        }
    }
}
