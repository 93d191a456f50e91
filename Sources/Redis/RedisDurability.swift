// RedisDurability: when a write counts as done: once the master acknowledged it (Redis's
// default), or once replicas have it too (WAIT), so a failover cannot lose it.

/// How durable a write must be before Choreo relies on it (answers `202`, deletes the outbox
/// rows it published).
public struct RedisDurability: Sendable, Equatable, CustomStringConvertible {
    /// The two levels.
    public enum Level: String, Sendable, CaseIterable {
        /// The master acknowledged the write (Redis's default): a master that dies before its
        /// replicas received the write loses it.
        case acknowledged
        /// ``RedisDurability/replicas`` replicas acknowledged it too (`WAIT`).
        case replicated
    }

    /// The level.
    public var level: Level
    /// Replicas that must acknowledge a write (`replicated`).
    public var replicas: Int
    /// How long to wait for them, in seconds; fewer in time is an outage (the write is retried).
    public var timeout: Double
    /// How long published outbox rows are kept, in seconds, to be published again when Redis
    /// turns out to have lost writes (a restart or failover seen by the workers). Longer than
    /// a failover plus its detection; default 30 s.
    public var republishWindow: Double = 30

    /// A durability setting.
    public init(level: Level = .acknowledged, replicas: Int = 1, timeout: Double = 1) {
        self.level = level
        self.replicas = replicas
        self.timeout = timeout
    }

    /// Redis's default: acknowledged by the master.
    public static let acknowledged = RedisDurability()

    /// Whether writes wait for replicas.
    public var waits: Bool { level == .replicated && replicas > 0 }

    public var description: String {
        waits ? "replicated (\(replicas) replica(s) within \(timeout) s)" : "acknowledged (master only)"
    }
}
