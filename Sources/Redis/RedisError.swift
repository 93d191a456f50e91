// RedisError: every way a Redis call can fail, each rendering as one line that names what failed.

/// An error from the Redis client. Its `description` is a single line naming the endpoint or
/// command that failed, suitable for showing to an operator as is.
public enum RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The connection URL could not be parsed.
    case invalidURL(url: String, reason: String)
    /// No connection could be opened (refused, unreachable, timed out, or the handshake failed).
    case connectionFailed(endpoint: String, reason: String)
    /// The connection broke during a command; whether the server applied it is unknown.
    /// The next call reconnects.
    case connectionLost(endpoint: String, reason: String)
    /// The server refused the credentials (`WRONGPASS`, `NOAUTH`, ...).
    case authenticationFailed(endpoint: String, reason: String)
    /// The server answered with an error reply (for example `NOGROUP`, `WRONGTYPE`).
    case server(command: String, message: String)
    /// The server's reply did not have the shape the typed helper expected.
    case unexpectedReply(command: String, reply: String)
    /// A command (or transaction) would touch keys in several hash slots of a Redis Cluster: a
    /// programming error (keep such keys in one slot with a hash tag), raised before sending.
    case crossSlot(command: String, keys: [String])
    /// Fewer replicas than required acknowledged the writes in time (`WAIT`): the write may
    /// be lost in a failover, so it does not count yet.
    case notReplicated(endpoint: String, acknowledged: Int, required: Int)
    /// No node of the Redis Cluster serves the key's hash slot (an incomplete cluster, or one in
    /// the middle of a failover).
    case slotNotCovered(slot: Int, key: String)

    /// The error code of a server error: its first word, such as `NOSCRIPT` or `BUSYGROUP`.
    public var serverCode: String? {
        guard case .server(_, let message) = self else { return nil }
        return message.split(separator: " ", maxSplits: 1).first.map(String.init)
    }

    /// Whether Redis cannot do the work right now, whatever the command: the connection is down,
    /// or the server refuses writes (`OOM` at maxmemory, `READONLY` replica after a failover,
    /// `LOADING`, `MASTERDOWN`, `CLUSTERDOWN`, `TRYAGAIN`, `BUSY`, `NOREPLICAS`). Retry later;
    /// the command is not at fault. (A transaction aborted by one of these reports the first
    /// refused command's error, not `EXECABORT`.)
    public var isUnavailable: Bool {
        if isConnectionError { return true }
        if case .slotNotCovered = self { return true }
        if case .notReplicated = self { return true }
        guard let code = serverCode else { return false }
        return Self.unavailableCodes.contains(code)
    }

    static let unavailableCodes: Set<String> = [
        "OOM", "READONLY", "LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY", "NOREPLICAS",
    ]

    /// Whether the error is about the connection rather than the command (worth a retry).
    public var isConnectionError: Bool {
        switch self {
        case .connectionFailed, .connectionLost: return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .invalidURL(let url, let reason):
            return "invalid Redis URL '\(url)': \(reason)"
        case .connectionFailed(let endpoint, let reason):
            return "cannot connect to Redis at \(endpoint): \(reason)"
        case .connectionLost(let endpoint, let reason):
            return "lost the connection to Redis at \(endpoint): \(reason)"
        case .authenticationFailed(let endpoint, let reason):
            return "Redis at \(endpoint) refused the credentials: \(reason)"
        case .server(let command, let message):
            return "Redis \(command) failed: \(message)"
        case .unexpectedReply(let command, let reply):
            return "unexpected reply to Redis \(command): \(reply.prefix(200))"
        case .crossSlot(let command, let keys):
            let shown = keys.prefix(6).map { "'\($0)' (slot \(RedisSlot.of($0)))" }.joined(separator: ", ")
            return
                "Redis \(command) would touch keys in different hash slots of the cluster: \(shown); "
                + "keys of one atomic step must share a hash tag"
        case .notReplicated(let endpoint, let acknowledged, let required):
            return
                "Redis at \(endpoint): \(acknowledged) of \(required) required replica(s) acknowledged the writes in time "
                + "(durability: replicated)"
        case .slotNotCovered(let slot, let key):
            return
                "no node of the Redis Cluster serves hash slot \(slot) (key '\(key)'): the cluster is incomplete "
                + "or failing over"
        }
    }
}
