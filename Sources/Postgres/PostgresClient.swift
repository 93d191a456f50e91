// PostgresClient: the async face of a PostgresConnection, running its blocking libpq calls on a
// dedicated serial queue so that async code and SwiftNIO event loops never block.

import Dispatch

/// An async-safe Postgres client: one ``PostgresConnection`` owned by a private serial
/// dispatch queue. Each call hops to the queue, runs there, and resumes the caller.
public final class PostgresClient: Sendable {
    private let connection: PostgresConnection
    private let queue: DispatchQueue

    /// Connects to `url`; see ``PostgresConnection/init(url:connectTimeout:)``.
    public init(url: String, connectTimeout: Int = 5) throws {
        self.connection = try PostgresConnection(url: url, connectTimeout: connectTimeout)
        self.queue = DispatchQueue(label: "choreo.postgres.\(connection.endpoint)")
    }

    /// Runs `body` with exclusive use of the blocking connection, on the client's queue.
    /// Use it for transactions: `try await client.withConnection { try $0.transaction { ... } }`.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws
        -> T
    {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try body(self.connection) })
            }
        }
    }

    /// Runs one statement; see ``PostgresConnection/query(_:_:)``.
    @discardableResult
    public func query(_ sql: String, _ parameters: [(any PostgresEncodable)?] = []) async throws -> PostgresResult {
        try await withConnection { try $0.query(sql, parameters) }
    }
}
