// WorkerProcess: everything one worker process of a service runs: migrations at start, a
// consumer loop per consumed stream, the scheduler of delayed messages and the maintenance
// duties, each on its own thread; and a
// drain on stop that finishes the batches in hand within shutdown_timeout.

import Foundation
import Logging
import Postgres
import Redis

/// One worker process of a service.
public final class WorkerProcess: Sendable {
    /// The service's definition from the topology.
    public let definition: ServiceDefinition
    /// The consumer name of this process (`host-pid-random`).
    public let consumer: String
    /// The consumer loops, one per consumed stream.
    public let loops: [ConsumerLoop]
    let maintenance: Maintenance
    /// Publishes the service's delayed messages when due.
    public let scheduler: Scheduler
    let service: Service
    let topology: Topology
    let logger: Logger

    /// Prepares a process for `service` as defined in `topology`.
    public init(
        service: Service, topology: Topology, consumer: String = WorkerProcess.consumerName(), logger: Logger? = nil,
        intervals: Maintenance.Intervals = Maintenance.Intervals()
    ) throws {
        guard let definition = topology.service(service.name) else {
            throw TopologyError(
                file: "streams.yml", path: "services", line: nil, message: "no service named '\(service.name)'")
        }
        self.definition = definition
        self.service = service
        self.topology = topology
        self.consumer = consumer
        var logger = logger ?? Logger(label: "choreo.worker")
        logger[metadataKey: "service"] = "\(definition.name)"
        logger[metadataKey: "consumer"] = "\(consumer)"
        self.logger = logger
        let metrics = RuntimeMetrics(service: definition.name)
        let scheduler = Scheduler(definition: definition, topology: topology, logger: logger, metrics: metrics)
        self.scheduler = scheduler
        self.loops = definition.consumedStreams.flatMap { stream -> [ConsumerLoop] in
            guard let partitioning = topology.partitioning(of: stream) else {
                return [
                    ConsumerLoop(
                        stream: stream, consumer: consumer, definition: definition, service: service,
                        topology: topology, logger: logger, metrics: metrics, scheduleSignal: scheduler.signal)
                ]
            }
            // A loop per partition; each reads only while it holds its partition's lease, and
            // the process holds about its share of them.
            let balancer = PartitionBalancer(
                stream: stream, count: partitioning.count, service: definition.name, consumer: consumer,
                liveWindow: max(3, min(Heartbeat.staleAfter, definition.policy.claimIdle)),
                concurrency: definition.policy.partitionConcurrency)
            return (0..<partitioning.count).map { index in
                var logger = logger
                logger[metadataKey: "partition"] = "\(index)"
                return ConsumerLoop(
                    stream: partitioning.key(index), consumer: consumer, definition: definition, service: service,
                    topology: topology, logger: logger, metrics: metrics, scheduleSignal: scheduler.signal,
                    partition: (index, balancer))
            }
        }
        let beat = Heartbeat(
            consumer: consumer, host: ProcessInfo.processInfo.hostName, pid: getpid(),
            startedAt: Envelope.nowMilliseconds(),
            at: Envelope.nowMilliseconds(), streams: definition.consumedStreams)
        self.maintenance = Maintenance(
            definition: definition, topology: topology, heartbeat: beat, logger: logger, metrics: metrics,
            intervals: intervals)
    }

    /// A unique consumer name: `host-pid-random`.
    public static func consumerName() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        return "\(host)-\(getpid())-\(Envelope.randomHex(3))"
    }

    /// Applies the runtime's and the service's migrations (under an advisory lock). A service
    /// with its own login role (``ServiceDefinition/postgresURL``) cannot create tables: its
    /// migrations are `choreo migrate`'s job, run with the shared (owner) URL.
    public func migrate() throws {
        guard let schema = definition.schema, definition.postgresURL == nil else { return }
        let connection = try PostgresConnection(url: topology.postgresURL)
        let applied = try RuntimeSchema.migrate(schema: schema, service: service, on: connection)
        if !applied.isEmpty { logger.info("applied migrations", metadata: ["versions": "\(applied)"]) }
    }

    /// Checks the partition counts of the partitioned streams the service publishes or
    /// consumes against what Redis recorded (``PartitionLayout``): throws when a count changed
    /// while the old partitions still hold messages.
    public func checkPartitions() throws {
        let streams = [definition.commandStream, definition.eventStream] + definition.subscribes
        guard streams.contains(where: { topology.partitioning(of: $0) != nil }) else { return }
        let redis = try RedisConnection(url: topology.redisURL(for: definition))
        for note in try PartitionLayout.check(topology, service: definition, redis: redis) {
            logger.warning("partition count changed", metadata: ["change": "\(note)"])
        }
    }

    private let threads = ThreadGroup()

    /// Starts the consumer loops and the maintenance duties on their own threads.
    public func start() {
        for loop in loops { threads.spawn(name: "consume \(loop.stream)") { loop.run() } }
        threads.spawn(name: "maintenance") { self.maintenance.run() }
        if definition.schema != nil { threads.spawn(name: "scheduler") { self.scheduler.run() } }
        logger.info("worker started", metadata: ["streams": "\(definition.consumedStreams.joined(separator: ","))"])
    }

    /// Asks every loop to drain (finish the batch in hand, read no more).
    public func requestStop() {
        for loop in loops { loop.requestStop() }
    }

    /// Waits until the loops have stopped, at most `timeout` seconds, then stops the
    /// maintenance. Returns whether every loop drained in time.
    @discardableResult
    public func waitUntilStopped(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline, loops.contains(where: { $0.state != .stopped }) { usleep(10_000) }
        let drained = loops.allSatisfy { $0.state == .stopped }
        maintenance.stop()
        scheduler.stop()
        threads.wait(until: Date().addingTimeInterval(1))
        logger.info(drained ? "worker stopped" : "worker stopped before every batch drained")
        return drained
    }
}

/// Threads started for a process, joinable with a deadline.
final class ThreadGroup: @unchecked Sendable {
    private let lock = NSLock()
    private var running = 0

    func spawn(name: String, _ body: @escaping @Sendable () -> Void) {
        lock.withLock { running += 1 }
        let thread = Thread {
            body()
            self.lock.withLock { self.running -= 1 }
        }
        thread.name = name
        thread.stackSize = 4 << 20
        thread.start()
    }

    func wait(until deadline: Date) {
        while Date() < deadline, lock.withLock({ running }) > 0 { usleep(5_000) }
    }
}
