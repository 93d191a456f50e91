// RedisClient: the async face of a RedisConnection, running its blocking calls on a dedicated
// serial queue so that async code (and SwiftNIO event loops) never block on hiredis.

import Dispatch

/// An async-safe Redis client: one ``RedisConnection`` owned by a private serial dispatch
/// queue. Every call hops to that queue, runs the blocking hiredis call there, and resumes the
/// caller, so Swift's cooperative threads and SwiftNIO event loops are never blocked.
///
/// Calls are executed one at a time in submission order; for parallelism use several clients.
public final class RedisClient: Sendable {
    private let connection: RedisConnection
    private let queue: DispatchQueue

    /// Connects to `configuration` (blocking the caller while it connects).
    public init(configuration: RedisConfiguration) throws {
        self.connection = try RedisConnection(configuration: configuration)
        self.queue = DispatchQueue(label: "choreo.redis.\(configuration.endpoint)")
    }

    /// Connects to the server at `url`.
    public convenience init(url: String) throws {
        try self.init(configuration: RedisConfiguration(url: url))
    }

    /// Runs `body` with exclusive use of the blocking connection, on the client's queue.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws -> T) async throws -> T
    {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try body(self.connection) })
            }
        }
    }

    /// Sends one command; see ``RedisConnection/command(_:blockingFor:)``.
    @discardableResult
    public func command(_ arguments: [String], blockingFor: Double = 0) async throws -> RedisReply {
        try await withConnection { try $0.command(arguments, blockingFor: blockingFor) }
    }

    /// Sends a pipeline; see ``RedisConnection/pipeline(_:)``.
    public func pipeline(_ commands: [[String]]) async throws -> [RedisReply] {
        try await withConnection { try $0.pipeline(commands) }
    }
}
