// RedisEpoch: the identity of the Redis servers (each master's run id and replication id). It
// changes when a server restarts (maybe from an older snapshot or an AOF missing its last
// second) or a replica takes over: then writes Redis acknowledged may be gone.

import Redis

/// The identity of the Redis masters, as one comparable text.
public struct RedisEpoch: Sendable, Equatable {
    /// `endpoint=run_id/master_replid` of each master, sorted, joined by spaces.
    public var text: String

    /// Reads it from every master (`INFO server replication`).
    public static func read(_ redis: RedisConnection) throws -> RedisEpoch {
        let parts = try redis.onEveryNode(["INFO", "server", "replication"]).map { node -> String in
            var values: [Substring: Substring] = [:]
            for line in (node.reply.string ?? "").split(whereSeparator: \.isNewline) {
                let pair = line.split(separator: ":", maxSplits: 1)
                if pair.count == 2 { values[pair[0]] = pair[1] }
            }
            return "\(node.endpoint)=\(values["run_id"] ?? "?")/\(values["master_replid"] ?? "?")"
        }
        return RedisEpoch(text: parts.sorted().joined(separator: " "))
    }
}
