// RedisClient: the async face of a RedisConnection. One dedicated thread owns the blocking
// connection; commands submitted concurrently are written together as one pipeline and their
// replies handed back in order (automatic pipelining), and concurrent transactions share one
// MULTI ... EXEC, so async code and SwiftNIO event loops never block on hiredis and many
// concurrent callers share each round trip.

import Foundation
import Synchronization

/// An async-safe Redis client: one ``RedisConnection`` owned by a private thread.
///
/// Calls from concurrent tasks are queued and sent in one pipeline per round trip (up to 512
/// commands at a time), which is what lets one connection serve thousands of requests per
/// second; ``transaction(_:)`` calls queued together share one `MULTI` ... `EXEC`.
/// ``withConnection(_:)`` runs a closure with exclusive use of the connection, in submission
/// order with the commands.
public final class RedisClient: Sendable {
    /// How a transaction's caller is answered: called once, on the client's thread.
    public typealias Completion = @Sendable (Result<[RedisReply], Error>) -> Void
    /// How a command's caller is answered: called once, on the client's thread.
    public typealias Reply = @Sendable (Result<RedisReply, Error>) -> Void

    private let shared: Shared

    /// Connects to `configuration` (blocking the caller while it connects). With `durability`
    /// ``RedisDurability/Level/replicated``, a transaction is answered only once replicas
    /// acknowledged it (`WAIT` after each round trip that carried transactions).
    public init(configuration: RedisConfiguration, durability: RedisDurability = .acknowledged) throws {
        let shared = Shared(connection: try RedisConnection(configuration: configuration), durability: durability)
        self.shared = shared
        let thread = Thread { shared.run() }
        thread.name = "choreo.redis.\(configuration.endpoint)"
        thread.start()
    }

    /// Connects to the server at `url`.
    public convenience init(url: String, durability: RedisDurability = .acknowledged) throws {
        try self.init(configuration: RedisConfiguration(url: url), durability: durability)
    }

    deinit {
        let handOver = shared.queue.withLock { queue -> Bool in
            queue.closed = true
            defer { queue.busy = true }
            return !queue.busy
        }
        // An owner sees `closed` when it lets go and hands the connection over to be closed.
        if handOver { shared.wakeup.signal() }
    }

    /// Runs `body` with exclusive use of the blocking connection, on the client's thread.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws -> T) async throws -> T
    {
        try await withUnsafeThrowingContinuation { continuation in
            shared.submit(.closure { connection in continuation.resume(with: Result { try body(connection) }) })
        }
    }

    /// Sends one command, pipelined with other callers' commands. Error replies are thrown as
    /// ``RedisError/server(command:message:)``.
    ///
    /// - Parameter blockingFor: extra seconds the reply may take (for `BLOCK` arguments); such
    ///   a command runs on its own, not pipelined.
    @discardableResult
    public func command(_ arguments: [String], blockingFor: Double = 0) async throws -> RedisReply {
        if blockingFor > 0 {
            return try await withConnection { try $0.command(arguments, blockingFor: blockingFor) }
        }
        return try await withUnsafeThrowingContinuation { continuation in
            shared.submit(.command(arguments, { continuation.resume(with: $0) }))
        }
    }

    /// ``command(_:blockingFor:)`` for callers outside Swift concurrency: `reply` is called
    /// once, on the client's thread, with the reply or the error (error replies as
    /// ``RedisError/server(command:message:)``). It must not block.
    public func command(_ arguments: [String], reply: @escaping Reply) {
        shared.submit(.command(arguments, reply))
    }

    /// Sends `commands` back to back in one pipeline with other callers' commands (nothing
    /// else in between: use it for `MULTI` ... `EXEC`), and returns their replies in order,
    /// error replies in place.
    public func group(_ commands: [[String]]) async throws -> [RedisReply] {
        guard !commands.isEmpty else { return [] }
        return try await withUnsafeThrowingContinuation { continuation in
            shared.submit(.group(commands, continuation))
        }
    }

    /// Runs `commands` as one transaction (`MULTI` ... `EXEC`, which this adds) and returns
    /// EXEC's results in order, error results in place. Transactions queued by concurrent
    /// callers in the same round trip are merged into one `MULTI` ... `EXEC`: each caller's
    /// commands still run atomically, and Redis parses two commands fewer per caller. If Redis
    /// rejects a command while queueing, the transaction is discarded (nothing runs) and this
    /// throws ``RedisError/server(command:message:)`` with `EXECABORT`; other callers merged
    /// with it are retried on their own, unaffected.
    public func transaction(_ commands: [[String]]) async throws -> [RedisReply] {
        guard !commands.isEmpty else { return [] }
        return try await withUnsafeThrowingContinuation { continuation in
            shared.submit(.transaction(commands, { continuation.resume(with: $0) }))
        }
    }

    /// ``transaction(_:)`` for callers outside Swift concurrency (a SwiftNIO channel handler):
    /// `completion` is called once, on the client's thread, with EXEC's results or the error.
    /// It must not block; hop to the caller's own executor (e.g. `EventLoop.execute`) to act.
    public func transaction(_ commands: [[String]], completion: @escaping Completion) {
        guard !commands.isEmpty else { return completion(.success([])) }
        shared.submit(.transaction(commands, completion))
    }

    /// Whether the server is a Redis Cluster.
    public var isCluster: Bool { shared.connection.isCluster }

    /// Runs `steps` in order, each as a transaction, a step only once the previous one
    /// succeeded (no error reply inside its EXEC); `completion` gets the EXEC results of every
    /// step, concatenated, or the first failure (later steps then did not run).
    ///
    /// On a standalone server the steps are one transaction, in one round trip (all or nothing).
    /// On a cluster each step must stay inside one hash slot and is sent once the previous
    /// step's EXEC returned: use it to write a record before what makes it visible elsewhere.
    public func transaction(steps: [[[String]]], completion: @escaping Completion) {
        let steps = steps.filter { !$0.isEmpty }
        guard isCluster, steps.count > 1 else { return transaction(steps.flatMap { $0 }, completion: completion) }
        runSteps(steps[...], collected: [], completion: completion)
    }

    /// ``transaction(steps:completion:)`` for async callers.
    public func transaction(steps: [[[String]]]) async throws -> [RedisReply] {
        try await withUnsafeThrowingContinuation { continuation in
            transaction(steps: steps) { continuation.resume(with: $0) }
        }
    }

    private func runSteps(_ steps: ArraySlice<[[String]]>, collected: [RedisReply], completion: @escaping Completion) {
        guard let step = steps.first else { return completion(.success(collected)) }
        shared.submit(
            .transaction(
                step,
                { [self] result in
                    switch result {
                    case .failure(let error):
                        completion(.failure(error))
                    case .success(let replies):
                        for case .error(let message) in replies {
                            return completion(.failure(RedisError.server(command: "EXEC", message: message)))
                        }
                        runSteps(steps.dropFirst(), collected: collected + replies, completion: completion)
                    }
                }))
    }

    /// Runs `script` (EVALSHA, pipelined with other callers' commands), loading it first when
    /// the server does not know it.
    @discardableResult
    public func run(_ script: RedisScript, keys: [String] = [], arguments: [String] = []) async throws -> RedisReply {
        if let digest = script.digest {
            do {
                return try await command(["EVALSHA", digest, String(keys.count)] + keys + arguments)
            } catch let error as RedisError where error.serverCode == "NOSCRIPT" {
                // The server forgot the script: load and run it below.
            }
        }
        return try await withConnection { try script.run(on: $0, keys: keys, arguments: arguments) }
    }

    /// Sends a pipeline; see ``RedisConnection/pipeline(_:)``.
    public func pipeline(_ commands: [[String]]) async throws -> [RedisReply] {
        try await withConnection { try $0.pipeline(commands) }
    }
}
