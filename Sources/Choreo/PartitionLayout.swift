// PartitionLayout: guards a partitioned stream's partition count across restarts. Redis
// records the count a stream's partitions were written with; a worker started with another
// count proceeds only when the old partitions are drained (nothing undelivered or pending for
// any group), since re-hashing keys with entries still in flight would break their order.

import Redis

/// The recorded partition count of each partitioned stream, and the check of a new one.
public enum PartitionLayout {
    /// The key recording `stream`'s partition count (in the stream's own slot).
    public static func key(_ stream: String) -> String { "choreo:partitions:\(stream)" }

    /// A partition count change that would break per-key order.
    public struct ChangeRefused: Error, CustomStringConvertible {
        /// The stream, e.g. `{orders}.events`.
        public var stream: String
        /// The count its entries were written with.
        public var recorded: Int
        /// The count streams.yml asks for.
        public var configured: Int
        /// The old streams still holding undelivered or pending entries, with the numbers.
        public var busy: [String]

        public var description: String {
            "\(stream) was written with \(recorded) partition(s) but streams.yml says \(configured): "
                + "its old partitions still hold messages (\(busy.joined(separator: "; "))). Changing the count "
                + "re-hashes keys, which would break their order: drain first (stop the gateway and every "
                + "publisher of the stream, keep its consumers running on the old count until `choreo status` "
                + "shows no lag or pending on it), then start the new count"
        }
    }

    /// Checks every partitioned stream `service` publishes or consumes (and every stream that
    /// was partitioned before); records a new count once the old partitions are drained.
    /// Returns a line per count recorded or changed; throws ``ChangeRefused``.
    @discardableResult
    public static func check(_ topology: Topology, service: ServiceDefinition, redis: RedisConnection) throws
        -> [String]
    {
        var notes: [String] = []
        for stream in [service.commandStream, service.eventStream] + service.subscribes {
            let configured = topology.partitioning(of: stream)?.count ?? 1
            let recordedText = try redis.command(["GET", key(stream)]).string
            var recorded = recordedText.flatMap { Int($0) }
            if recorded == nil {
                guard configured > 1 else { continue }
                // Never recorded: partitioned now, perhaps one stream before.
                recorded = try redis.command(["EXISTS", stream]).int == 1 ? 1 : configured
            }
            guard let recorded, recorded != configured else {
                if recordedText == nil { try redis.command(["SET", key(stream), String(configured), "NX"]) }
                continue
            }
            let old =
                recorded > 1
                ? StreamPartitioning(stream: stream, count: recorded).keys : [stream]
            var busy: [String] = []
            for name in old where try redis.command(["EXISTS", name]).int == 1 {
                let last = try redis.command(["XINFO", "STREAM", name]).fieldMap["last-generated-id"]?.string ?? "0-0"
                for group in try redis.xinfoGroups(name) {
                    let undelivered = group.lag ?? (OrderedBacklog.precedes(group.lastDeliveredID, last) ? 1 : 0)
                    if undelivered > 0 || group.pending > 0 {
                        busy.append(
                            "\(name): group \(group.name) has \(group.lag.map(String.init) ?? "some") undelivered, "
                                + "\(group.pending) pending")
                    }
                }
            }
            guard busy.isEmpty else {
                throw ChangeRefused(stream: stream, recorded: recorded, configured: configured, busy: busy)
            }
            try redis.command(["SET", key(stream), String(configured)])
            notes.append("\(stream): partition count \(recorded) -> \(configured) (the old streams were drained)")
        }
        return notes
    }
}
