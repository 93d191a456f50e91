// StreamRetention: how long a stream keeps its entries. Trims only entries that every consumer
// group of the stream has acknowledged (never below the oldest pending entry or the lowest
// last-delivered id), keeping at most `limit` of those; measures the backlog that the slowest
// group still owes, which is what the gateway's backpressure and `choreo status` read.

import Foundation
import Redis

/// The retention rule of one stream: keep at most ``limit`` entries, but never remove one that
/// a consumer group (present, or expected by the topology and not yet created) still needs.
///
/// Streams are written without `MAXLEN` (which trims from the head whether or not a group has
/// read the entries); the owning service's maintenance calls ``trim(_:)`` periodically.
public struct StreamRetention: Sendable, Equatable {
    /// The stream.
    public var stream: String
    /// The consumer groups the topology expects on it (a missing one would read from the start
    /// once created, so nothing is trimmed before it exists).
    public var expectedGroups: [String]
    /// The length kept (the owner's `maxlen`); a backlog over it is backpressure.
    public var limit: Int

    /// Creates a rule.
    public init(stream: String, expectedGroups: [String], limit: Int) {
        self.stream = stream
        self.expectedGroups = expectedGroups
        self.limit = limit
    }

    /// What a stream holds, read from Redis.
    public struct Reading: Sendable, Equatable {
        /// The stream's name.
        public var stream: String
        /// Entries in the stream (`XLEN`).
        public var length: Int
        /// Entries the slowest group has not acknowledged yet (its lag plus its pending entries;
        /// the whole stream for an expected group that does not exist yet).
        public var backlog: Int
        /// The slowest group, when any entry is owed.
        public var slowestGroup: String?
        /// Expected groups not created yet.
        public var missingGroups: [String]
        /// Entries with a smaller id are acknowledged by every group (nil: none is, or a group
        /// is missing).
        public var safeBelow: String?
        /// The retention limit.
        public var limit: Int

        /// The backlog is over the limit: a consumer lags (or is missing) and producers should
        /// be held back. Nothing is dropped meanwhile.
        public var isOverLimit: Bool { backlog > limit }
    }

    /// Reads the stream's length, its groups and their progress (a few commands, no scan).
    /// Without `safeBound`, the trim bound is not computed (no `XPENDING`; `safeBelow` is nil).
    public func read(_ redis: RedisConnection, safeBound: Bool = true) throws -> Reading {
        let length = try redis.xlen(stream)
        let exists = try length > 0 || redis.command(["EXISTS", stream]).int == 1
        guard exists else {
            return Reading(
                stream: stream, length: 0, backlog: 0, slowestGroup: nil, missingGroups: [], safeBelow: nil,
                limit: limit)
        }
        let groups = try redis.xinfoGroups(stream)
        let missing = expectedGroups.filter { name in !groups.contains { $0.name == name } }
        var backlog = 0
        var slowest: String?
        var safe: StreamID? = missing.isEmpty && safeBound ? StreamID.maximum : nil
        for group in groups {
            let owed = (group.lag ?? length) + group.pending
            if owed > backlog {
                backlog = owed
                slowest = group.name
            }
            guard safe != nil else { continue }
            var bound = StreamID(group.lastDeliveredID)?.successor ?? StreamID.minimum
            if group.pending > 0, let oldest = try redis.xpendingSummary(stream, group: group.name).smallestID {
                bound = min(bound, StreamID(oldest) ?? StreamID.minimum)
            }
            safe = min(safe ?? bound, bound)
        }
        if let name = missing.first, length > backlog {
            backlog = length
            slowest = name
        }
        return Reading(
            stream: stream, length: length, backlog: backlog, slowestGroup: slowest, missingGroups: missing,
            safeBelow: safe.flatMap { $0 == .minimum ? nil : $0.description }, limit: limit)
    }

    /// Removes the oldest entries beyond ``limit`` that every group has acknowledged, in steps
    /// of at most `step` entries (each step one `XRANGE` for the cut and one exact
    /// `XTRIM MINID`). Returns the entries removed and the reading taken before.
    @discardableResult
    public func trim(_ redis: RedisConnection, step: Int = 10_000, maxSteps: Int = 10) throws -> (
        removed: Int, reading: Reading
    ) {
        let reading = try read(redis)
        var removed = 0
        var length = reading.length
        guard let safeText = reading.safeBelow, let safe = StreamID(safeText) else { return (0, reading) }
        for _ in 0..<maxSteps {
            let excess = length - limit
            guard excess > 0 else { break }
            // The id just past the oldest `excess` entries: trimming below it keeps `limit`.
            let oldest = try redis.xrange(stream, count: min(excess, step))
            guard let last = oldest.last, let lastID = StreamID(last.id) else { break }
            let cut = min(lastID.successor, safe)
            let count =
                try redis.command(["XTRIM", stream, "MINID", cut.description]).int ?? 0
            removed += count
            length -= count
            if count == 0 || cut == safe { break }
        }
        return (removed, reading)
    }
}

extension Topology {
    /// The retention rule of `stream`: its owner's `maxlen` (the service whose commands or
    /// events stream it is), and the services that consume it as expected groups.
    /// A partition of a partitioned stream has the stream's rule (`maxlen` per partition).
    public func retention(of stream: String) -> StreamRetention {
        let logical = logicalStream(ofKey: stream)
        let owner = services.first { $0.commandStream == logical || $0.eventStream == logical }
        return StreamRetention(
            stream: stream, expectedGroups: services.filter { $0.consumedStreams.contains(logical) }.map(\.name),
            limit: owner?.policy.maxLength ?? ServicePolicy().maxLength)
    }

    /// The streams whose backlog holds back commands to `service`: the ones it consumes and its
    /// own events stream (a subscriber that lags behind it), partition by partition.
    public func backpressureStreams(of service: ServiceDefinition) -> [StreamRetention] {
        (service.consumedStreams + [service.eventStream]).flatMap(keys(of:)).map { retention(of: $0) }
    }
}

/// A stream entry id (`milliseconds-sequence`), ordered as Redis orders them.
struct StreamID: Comparable, Hashable, CustomStringConvertible {
    var milliseconds: UInt64
    var sequence: UInt64

    static let minimum = StreamID(milliseconds: 0, sequence: 0)
    static let maximum = StreamID(milliseconds: .max, sequence: .max)

    init(milliseconds: UInt64, sequence: UInt64) {
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    /// Parses `ms-seq` (or `ms`, sequence 0).
    init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2, let ms = UInt64(parts[0]) else { return nil }
        let seq = parts.count == 2 ? UInt64(parts[1]) : 0
        guard let seq else { return nil }
        self.init(milliseconds: ms, sequence: seq)
    }

    /// The smallest id after this one.
    var successor: StreamID {
        sequence == .max
            ? StreamID(milliseconds: milliseconds &+ 1, sequence: 0)
            : StreamID(milliseconds: milliseconds, sequence: sequence + 1)
    }

    var description: String { "\(milliseconds)-\(sequence)" }

    static func < (lhs: StreamID, rhs: StreamID) -> Bool {
        (lhs.milliseconds, lhs.sequence) < (rhs.milliseconds, rhs.sequence)
    }
}
