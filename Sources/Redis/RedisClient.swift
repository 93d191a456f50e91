// RedisClient: the async face of a RedisConnection. One dedicated thread owns the blocking
// connection; commands submitted concurrently are written together as one pipeline and their
// replies handed back in order (automatic pipelining), so async code and SwiftNIO event loops
// never block on hiredis and many concurrent callers share each round trip.

import Foundation
import Synchronization

/// An async-safe Redis client: one ``RedisConnection`` owned by a private thread.
///
/// ``command(_:)`` calls from concurrent tasks are queued and sent in one pipeline per round
/// trip (up to 512 at a time), which is what lets one connection serve thousands of requests
/// per second. ``withConnection(_:)`` runs a closure with exclusive use of the connection, in
/// submission order with the commands.
public final class RedisClient: Sendable {
    private enum Job: Sendable {
        case command([String], CheckedContinuation<RedisReply, Error>)
        /// Commands sent back to back (a MULTI ... EXEC), answered together.
        case group([[String]], CheckedContinuation<[RedisReply], Error>)
        case closure(@Sendable (RedisConnection) -> Void)
    }

    /// Where one job's replies go in a flushed pipeline.
    private enum Waiter {
        case one([String], CheckedContinuation<RedisReply, Error>)
        case many(Int, CheckedContinuation<[RedisReply], Error>)
    }

    /// The queue shared with the owning thread, and whether the client was released.
    private final class Shared: Sendable {
        let jobs = Mutex<(pending: [Job], closed: Bool)>(([], false))
        let wakeup = DispatchSemaphore(value: 0)
        let connection: RedisConnection

        init(connection: RedisConnection) { self.connection = connection }

        func submit(_ job: Job) {
            let accepted = jobs.withLock { state -> Bool in
                guard !state.closed else { return false }
                state.pending.append(job)
                return true
            }
            guard !accepted else {
                wakeup.signal()
                return
            }
            let closed = RedisError.connectionLost(endpoint: "", reason: "the client was closed")
            switch job {
            case .command(_, let continuation): continuation.resume(throwing: closed)
            case .group(_, let continuation): continuation.resume(throwing: closed)
            case .closure(let body): body(connection)
            }
        }

        /// The owning thread's loop: drain the queue, pipeline consecutive commands.
        func run() {
            while true {
                wakeup.wait()
                let (batch, closed) = jobs.withLock { state in
                    defer { state.pending.removeAll(keepingCapacity: true) }
                    return (state.pending, state.closed)
                }
                var commands: [[String]] = []
                var waiters: [Waiter] = []
                for job in batch {
                    switch job {
                    case .command(let arguments, let continuation):
                        commands.append(arguments)
                        waiters.append(.one(arguments, continuation))
                    case .group(let group, let continuation):
                        commands += group
                        waiters.append(.many(group.count, continuation))
                    case .closure(let body):
                        flush(&commands, &waiters)
                        body(connection)
                    }
                    if commands.count >= 512 { flush(&commands, &waiters) }
                }
                flush(&commands, &waiters)
                if closed, jobs.withLock({ $0.pending.isEmpty }) {
                    connection.close()
                    return
                }
            }
        }

        private func flush(_ commands: inout [[String]], _ waiters: inout [Waiter]) {
            guard !commands.isEmpty else { return }
            defer {
                commands.removeAll(keepingCapacity: true)
                waiters.removeAll(keepingCapacity: true)
            }
            let replies: [RedisReply]
            do {
                replies = try connection.pipeline(commands)
            } catch {
                for waiter in waiters {
                    switch waiter {
                    case .one(_, let continuation): continuation.resume(throwing: error)
                    case .many(_, let continuation): continuation.resume(throwing: error)
                    }
                }
                return
            }
            var next = 0
            for waiter in waiters {
                switch waiter {
                case .one(let arguments, let continuation):
                    let reply = replies[next]
                    next += 1
                    if case .error(let message) = reply {
                        continuation.resume(
                            throwing: RedisError.server(command: arguments.first?.uppercased() ?? "", message: message))
                    } else {
                        continuation.resume(returning: reply)
                    }
                case .many(let count, let continuation):
                    continuation.resume(returning: Array(replies[next..<next + count]))
                    next += count
                }
            }
        }
    }

    private let shared: Shared

    /// Connects to `configuration` (blocking the caller while it connects).
    public init(configuration: RedisConfiguration) throws {
        let shared = Shared(connection: try RedisConnection(configuration: configuration))
        self.shared = shared
        let thread = Thread { shared.run() }
        thread.name = "choreo.redis.\(configuration.endpoint)"
        thread.start()
    }

    /// Connects to the server at `url`.
    public convenience init(url: String) throws {
        try self.init(configuration: RedisConfiguration(url: url))
    }

    deinit {
        shared.jobs.withLock { $0.closed = true }
        shared.wakeup.signal()
    }

    /// Runs `body` with exclusive use of the blocking connection, on the client's thread.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws -> T) async throws -> T
    {
        try await withCheckedThrowingContinuation { continuation in
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
        return try await withCheckedThrowingContinuation { continuation in
            shared.submit(.command(arguments, continuation))
        }
    }

    /// Sends `commands` back to back in one pipeline with other callers' commands (nothing
    /// else in between: use it for `MULTI` ... `EXEC`), and returns their replies in order,
    /// error replies in place.
    public func group(_ commands: [[String]]) async throws -> [RedisReply] {
        guard !commands.isEmpty else { return [] }
        return try await withCheckedThrowingContinuation { continuation in
            shared.submit(.group(commands, continuation))
        }
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
