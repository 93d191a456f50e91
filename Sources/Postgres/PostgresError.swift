// PostgresError: failures of the Postgres client, carrying the SQLSTATE where the server gave one.

/// An error from the Postgres client. Its `description` is one line naming what failed.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public enum Kind: String, Sendable {
        /// The connection URL could not be parsed.
        case invalidURL
        /// No connection could be opened (refused, unreachable, bad credentials, no database).
        case connectionFailed
        /// The connection broke during a statement; its effect is unknown (rolled back if it
        /// was inside a transaction).
        case connectionLost
        /// The server rejected a statement; see ``PostgresError/sqlState``.
        case server
        /// A value could not be decoded into the requested Swift type.
        case decoding
        /// A parameter cannot be sent as it is (it holds a NUL character, which Postgres text
        /// cannot store and a C string would cut): nothing was sent. Retrying cannot help.
        case invalidParameter
    }

    /// The kind of failure.
    public var kind: Kind
    /// The five-character SQLSTATE code when the server reported one, e.g. `23505`.
    public var sqlState: String?
    /// The primary message.
    public var message: String
    /// The server's DETAIL line, if any.
    public var detail: String?
    /// The constraint named by the server, if any (for unique and foreign key violations).
    public var constraint: String?

    /// Creates an error.
    public init(
        _ kind: Kind, message: String, sqlState: String? = nil, detail: String? = nil, constraint: String? = nil
    ) {
        self.kind = kind
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.constraint = constraint
    }

    /// `23505`: a unique constraint was violated.
    public var isUniqueViolation: Bool { sqlState == "23505" }
    /// `40001`: a serializable transaction must be retried.
    public var isSerializationFailure: Bool { sqlState == "40001" }
    /// `40P01`: a deadlock was detected; the transaction must be retried.
    public var isDeadlock: Bool { sqlState == "40P01" }
    /// The connection is unusable or could not be made (kind, or SQLSTATE class 08 / 57P).
    public var isConnectionError: Bool {
        kind == .connectionFailed || kind == .connectionLost || sqlState?.hasPrefix("08") == true
            || sqlState == "57P01" || sqlState == "57P02" || sqlState == "57P03"
    }
    /// The database cannot do the work right now, whatever the statement: the connection is
    /// down, or the server is read-only (a failover's standby, `default_transaction_read_only`,
    /// 25006), out of resources (class 53: disk full, out of memory, too many connections),
    /// shutting down, or failing I/O (class 58). Not the statement's or the message's fault:
    /// retry the same work later.
    public var isUnavailable: Bool {
        isConnectionError || sqlState == "25006" || sqlState?.hasPrefix("53") == true
            || sqlState?.hasPrefix("58") == true || sqlState?.hasPrefix("57P") == true
    }
    /// Retrying the whole transaction may succeed (serialization failure, deadlock, lost connection).
    public var isTransient: Bool { isSerializationFailure || isDeadlock || isConnectionError }

    public var description: String {
        var text: String
        switch kind {
        case .invalidURL: text = "invalid Postgres URL: \(message)"
        case .connectionFailed: text = "cannot connect to Postgres: \(message)"
        case .connectionLost: text = "lost the connection to Postgres: \(message)"
        case .server: text = "Postgres error \(sqlState ?? "?????"): \(message)"
        case .decoding: text = "cannot decode Postgres value: \(message)"
        case .invalidParameter: text = "invalid Postgres parameter: \(message)"
        }
        if let detail { text += " (\(detail))" }
        return text
    }
}
