// SystemStatus: a snapshot of every service as an operator sees it (processes from heartbeats,
// per stream (each partition of a partitioned one, with its lease owner): length, group lag,
// pending and the oldest pending age, consumers live or gone,
// throughput between two snapshots; dead letters) with the problems highlighted. Shared by
// `choreo status` and the console.

import Choreo
import Foundation
import Redis

/// A snapshot of the whole system.
public struct SystemStatus: Codable, Sendable {
    /// One worker process, from its heartbeat.
    public struct Process: Codable, Sendable {
        public var consumer: String
        public var host: String
        public var pid: Int32
        public var live: Bool
        public var lastBeatMsAgo: Int64
        public var upSeconds: Int64
    }

    /// One consumer of a group, as Redis knows it.
    public struct Consumer: Codable, Sendable {
        public var name: String
        public var pending: Int
        public var idleMs: Int
        /// Whether a live heartbeat carries this consumer name.
        public var live: Bool
    }

    /// One consumed stream of a service.
    public struct Stream: Codable, Sendable {
        public var stream: String
        public var length: Int
        /// Entries not yet delivered to the group (nil when Redis cannot tell).
        public var lag: Int?
        /// Delivered, not yet acknowledged.
        public var pending: Int
        /// Age of the oldest pending entry, in ms.
        public var oldestPendingMs: Int64?
        public var entriesRead: Int?
        public var consumers: [Consumer]
        /// Entries read per second since the previous snapshot.
        public var perSecond: Double?
        /// For a partition of a partitioned stream: the stream (e.g. `{orders}.events`).
        public var partitionOf: String?
        /// Its partition number.
        public var partition: Int?
        /// The consumer holding the partition's lease for this group (nil: none, or not a
        /// partition).
        public var owner: String?
    }

    /// One service.
    public struct Service: Codable, Sendable {
        public var name: String
        public var processes: [Process]
        public var liveProcesses: Int
        public var streams: [Stream]
        public var deadLetters: Int
        /// Dead letters added since the previous look.
        public var newDeadLetters: Int
        /// Delayed messages still scheduled (from the freshest heartbeat's count; nil when no
        /// live process has counted them).
        public var scheduled: Int?
        /// When the next one is due, ms since epoch.
        public var nextDue: Int64?
        public var problems: [String]

        /// The reading of `stream` as the service consumes it: the stream itself, or its
        /// partitions summed (length, lag, pending, entries read, rate; the oldest pending).
        public func reading(of stream: String) -> Stream? {
            if let whole = streams.first(where: { $0.stream == stream }) { return whole }
            let parts = streams.filter { $0.partitionOf == stream }
            guard !parts.isEmpty else { return nil }
            func sum(_ values: [Int?]) -> Int? { values.contains { $0 == nil } ? nil : values.reduce(0) { $0 + $1! } }
            let rates = parts.map(\.perSecond)
            return Stream(
                stream: stream, length: parts.reduce(0) { $0 + $1.length }, lag: sum(parts.map(\.lag)),
                pending: parts.reduce(0) { $0 + $1.pending },
                oldestPendingMs: parts.compactMap(\.oldestPendingMs).max(),
                entriesRead: sum(parts.map(\.entriesRead)), consumers: [],
                perSecond: rates.contains { $0 == nil } ? nil : rates.reduce(0) { $0 + $1! })
        }
    }

    /// When taken, ms since the epoch.
    public var at: Int64
    public var services: [Service]
    /// The gateway's readiness, if it was asked.
    public var gateway: String?
    /// Redis's memory against its maxmemory, when it could be read.
    public var redisMemory: RedisMemory?
    /// Every problem, prefixed by its service (Redis's own first).
    public var problems: [String] {
        (redisMemory?.problem.map { [$0] } ?? [])
            + services.flatMap { service in service.problems.map { "\(service.name): \($0)" } }
    }

    /// The Redis hash where `choreo status` remembers the dead-letter counts of the last look.
    public static let lastLookKey = "choreo:status:last-look"

    /// Takes a snapshot. `previous` (an earlier snapshot) gives throughput, lag growth and new
    /// dead letters; `seenDeadLetters` (per service, from the operator's last look) overrides
    /// the previous snapshot's counts for "new dead letters"; `lagLimit` is the lag above which
    /// a stream is a problem.
    public static func collect(
        topology: Topology, redis: RedisConnection, previous: SystemStatus? = nil,
        seenDeadLetters: [String: Int]? = nil, lagLimit: Int = 1000
    ) throws -> SystemStatus {
        let now = Envelope.nowMilliseconds()
        var services: [Service] = []
        for definition in topology.services {
            let beats = try Heartbeat.all(service: definition.name, redis: redis)
            let processes = beats.map {
                Process(
                    consumer: $0.consumer, host: $0.host, pid: $0.pid, live: $0.isLive(now: now),
                    lastBeatMsAgo: now - $0.at, upSeconds: (now - $0.startedAt) / 1000)
            }
            let liveNames = Set(processes.filter(\.live).map(\.consumer))
            let before = previous?.services.first { $0.name == definition.name }
            var streams: [Stream] = []
            var problems: [String] = []
            for name in topology.consumedKeys(of: definition) {
                // A stream nobody has written to or grouped yet does not exist: no group, length 0.
                let group = (try? redis.xinfoGroups(name))?.first { $0.name == definition.name }
                let length = try redis.xlen(name)
                let summary = group == nil ? nil : try redis.xpendingSummary(name, group: definition.name)
                let consumers =
                    group == nil
                    ? []
                    : try redis.xinfoConsumers(name, group: definition.name).map {
                        Consumer(
                            name: $0.name, pending: $0.pending, idleMs: $0.idleMilliseconds,
                            live: liveNames.contains($0.name))
                    }
                var stream = Stream(
                    stream: name, length: length, lag: group?.lag, pending: group?.pending ?? 0,
                    oldestPendingMs: summary?.smallestID.flatMap { StreamEntry(id: $0, fields: []).milliseconds }.map {
                        now - $0
                    },
                    entriesRead: group?.entriesRead, consumers: consumers)
                if let partitioning = topology.partitioning(of: topology.logicalStream(ofKey: name)),
                    let index = partitioning.index(ofKey: name)
                {
                    stream.partitionOf = partitioning.stream
                    stream.partition = index
                    stream.owner = try redis.command([
                        "GET", PartitionLease.key(partition: name, group: definition.name),
                    ])
                    .string
                    if stream.owner == nil, !liveNames.isEmpty, (stream.lag ?? 0) + stream.pending > 0 {
                        problems.append("partition \(index) of \(partitioning.stream) has no owner")
                    }
                }
                if let earlier = before?.streams.first(where: { $0.stream == name }), let previous,
                    let read = stream.entriesRead, let readBefore = earlier.entriesRead, now > previous.at
                {
                    stream.perSecond = Double(read - readBefore) * 1000 / Double(now - previous.at)
                    if let lag = stream.lag, let lagBefore = earlier.lag, lag > lagBefore, lag > 100 {
                        problems.append("lag on \(name) growing: \(lagBefore) -> \(lag)")
                    }
                }
                if let lag = stream.lag, lag > lagLimit { problems.append("lag on \(name) is \(lag)") }
                if let oldest = stream.oldestPendingMs, oldest > Int64(definition.policy.claimIdle * 2000) {
                    problems.append("a message on \(name) has been pending \(oldest / 1000)s")
                }
                streams.append(stream)
            }
            // Backpressure: a stream of the service whose unacknowledged backlog is over its
            // limit (nothing is trimmed; the gateway refuses the service's commands meanwhile).
            for retention in topology.backpressureStreams(of: definition) {
                let reading = try retention.read(redis, safeBound: false)
                if reading.isOverLimit {
                    let who = reading.slowestGroup.map { " (slowest group: \($0))" } ?? ""
                    problems.append(
                        "backlog on \(reading.stream) is \(reading.backlog), over its limit of \(reading.limit)\(who): "
                            + "commands are refused with 503 until it drains")
                }
                if !reading.missingGroups.isEmpty, reading.length > 0 {
                    problems.append(
                        "\(reading.stream) has no consumer group yet for \(reading.missingGroups.joined(separator: ", ")): "
                            + "it is kept whole until they start")
                }
            }
            let dead = try redis.xlen(definition.deadStream)
            let seen = seenDeadLetters?[definition.name] ?? before?.deadLetters ?? dead
            if liveNames.isEmpty { problems.append("no live worker") }
            let counted = beats.filter { $0.scheduledAt != nil }.max { ($0.scheduledAt ?? 0) < ($1.scheduledAt ?? 0) }
            if let counted, let next = counted.nextDue, liveNames.isEmpty, next < now {
                problems.append("scheduled messages are due and no worker runs to publish them")
            }
            if dead > seen { problems.append("\(dead - seen) new dead letter(s) (\(dead) in all)") }
            services.append(
                Service(
                    name: definition.name, processes: processes, liveProcesses: liveNames.count, streams: streams,
                    deadLetters: dead, newDeadLetters: max(0, dead - seen), scheduled: counted?.scheduled,
                    nextDue: counted?.nextDue, problems: problems))
        }
        return SystemStatus(at: now, services: services, redisMemory: try? RedisMemory.read(redis))
    }
}
