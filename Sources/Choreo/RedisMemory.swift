// RedisMemory: Redis's memory use against its maxmemory, read from INFO memory: at the limit
// (with noeviction) Redis refuses writes, which Choreo treats as an outage (nothing is
// acknowledged, the gateway answers 503); status, /readyz and metrics show the condition.

import Redis

/// A reading of `INFO memory`.
public struct RedisMemory: Sendable, Equatable, Codable {
    /// Bytes in use (`used_memory`).
    public var used: Int
    /// The limit (`maxmemory`); 0 means none.
    public var limit: Int
    /// What Redis does at the limit (`maxmemory_policy`, e.g. `noeviction`).
    public var policy: String

    /// Creates a reading.
    public init(used: Int, limit: Int, policy: String) {
        self.used = used
        self.limit = limit
        self.policy = policy
    }

    /// Reads `INFO memory`; on a Redis Cluster, of every master, and returns the fullest (one
    /// full master refuses the writes of its slots).
    public static func read(_ redis: RedisConnection) throws -> RedisMemory {
        let readings = try redis.onEveryNode(["INFO", "memory"]).map { parse($0.reply.string ?? "") }
        return readings.max { $0.fraction < $1.fraction } ?? RedisMemory(used: 0, limit: 0, policy: "")
    }

    /// Parses the text of `INFO memory`.
    static func parse(_ text: String) -> RedisMemory {
        var values: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { values[String(parts[0])] = String(parts[1]) }
        }
        return RedisMemory(
            used: Int(values["used_memory"] ?? "") ?? 0, limit: Int(values["maxmemory"] ?? "") ?? 0,
            policy: values["maxmemory_policy"] ?? "")
    }

    /// Share of the limit in use (0 without a limit).
    public var fraction: Double { limit > 0 ? Double(used) / Double(limit) : 0 }

    /// At (or within 2% of) the limit under a policy that refuses writes rather than evicting.
    public var refusesWrites: Bool {
        limit > 0 && fraction >= 0.98 && (policy == "noeviction" || policy.hasPrefix("volatile"))
    }

    /// The condition as an operator reads it, when there is one (over 90% of the limit).
    public var problem: String? {
        guard limit > 0, fraction >= 0.9 else { return nil }
        let percent = Int((fraction * 100).rounded())
        let mib = { (bytes: Int) in String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
        return refusesWrites
            ? "redis: memory full (\(mib(used)) of maxmemory \(mib(limit)), policy \(policy)): writes are refused, "
                + "workers hold their batches and the gateway answers 503"
            : "redis: memory at \(percent)% of maxmemory (\(mib(used)) of \(mib(limit)), policy \(policy))"
    }
}
