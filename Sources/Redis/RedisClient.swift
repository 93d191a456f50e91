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
    private enum Job: Sendable {
        case command([String], Reply)
        /// Commands sent back to back (a MULTI ... EXEC), answered together.
        case group([[String]], UnsafeContinuation<[RedisReply], Error>)
        /// Commands run as one transaction; answered with EXEC's results.
        case transaction([[String]], Completion)
        case closure(@Sendable (RedisConnection) -> Void)
    }

    /// Where one job's replies go in a flushed pipeline.
    private enum Waiter {
        case one([String], Reply)
        case many(Int, UnsafeContinuation<[RedisReply], Error>)
    }

    /// How a transaction's caller is answered: called once, on the client's thread.
    public typealias Completion = @Sendable (Result<[RedisReply], Error>) -> Void
    /// How a command's caller is answered: called once, on the client's thread.
    public typealias Reply = @Sendable (Result<RedisReply, Error>) -> Void

    /// Transactions queued in one flush, merged into a single `MULTI` ... `EXEC`.
    private struct MergedTransaction {
        /// The hash slot of its commands (nil: standalone, any transactions merge).
        var slot: Int?
        var commands: [[String]] = []
        var parts: [(commands: Range<Int>, completion: Completion)] = []
    }

    /// The queue, and who owns the connection.
    private struct Queue {
        var pending: [Job] = []
        /// The client's thread has been handed the connection and will send what is pending
        /// before letting go; a caller that finds this false hands it over (one signal).
        var busy = false
        var closed = false
    }

    /// The state shared with the owning thread.
    private final class Shared: Sendable {
        let queue = Mutex(Queue())
        /// One signal per hand-over of the connection to the client's thread.
        let wakeup = DispatchSemaphore(value: 0)
        let connection: RedisConnection
        let durability: RedisDurability

        init(connection: RedisConnection, durability: RedisDurability) {
            self.connection = connection
            self.durability = durability
        }

        /// Queues `job`; hands the connection to the client's thread if nobody owns it.
        func submit(_ job: Job) {
            enum Decision { case queued, handOver, closed }
            let decision = queue.withLock { queue -> Decision in
                guard !queue.closed else { return .closed }
                queue.pending.append(job)
                if queue.busy { return .queued }
                queue.busy = true
                return .handOver
            }
            switch decision {
            case .queued:
                return
            case .handOver:
                wakeup.signal()
            case .closed:
                let closed = RedisError.connectionLost(endpoint: "", reason: "the client was closed")
                switch job {
                case .command(_, let reply): reply(.failure(closed))
                case .group(_, let continuation): continuation.resume(throwing: closed)
                case .transaction(_, let completion): completion(.failure(closed))
                case .closure(let body): body(connection)
                }
            }
        }

        /// The client's thread: each wake-up hands it the connection; it sends what is queued
        /// (everything queued during a round trip goes in the next one) until nothing is, then
        /// lets go.
        func run() {
            while true {
                wakeup.wait()
                while true {
                    let (batch, closed) = queue.withLock { queue -> ([Job], Bool) in
                        if queue.pending.isEmpty { queue.busy = false }
                        defer { queue.pending.removeAll(keepingCapacity: true) }
                        return (queue.pending, queue.closed)
                    }
                    if batch.isEmpty {
                        if closed {
                            connection.close()
                            return
                        }
                        break
                    }
                    process(batch)
                }
            }
        }

        /// Sends `batch`: consecutive commands and groups as one pipeline, transactions merged
        /// into one `MULTI` ... `EXEC` at its end (on a cluster, one per hash slot), closures in
        /// order between pipelines.
        private func process(_ batch: [Job]) {
            var commands: [[String]] = []
            var waiters: [Waiter] = []
            var transactions: [MergedTransaction] = []
            var merged = 0
            for job in batch {
                switch job {
                case .command(let arguments, let reply):
                    commands.append(arguments)
                    waiters.append(.one(arguments, reply))
                case .group(let group, let continuation):
                    commands += group
                    waiters.append(.many(group.count, continuation))
                case .transaction(let group, let completion):
                    let slot = connection.mergeSlot(of: group)
                    var index = transactions.firstIndex { $0.slot == slot }
                    if index == nil {
                        transactions.append(MergedTransaction(slot: slot))
                        index = transactions.count - 1
                    }
                    let start = transactions[index!].commands.count
                    transactions[index!].commands += group
                    transactions[index!].parts.append((start..<transactions[index!].commands.count, completion))
                    merged += group.count
                case .closure(let body):
                    flush(&commands, &waiters, &transactions)
                    merged = 0
                    body(connection)
                }
                if commands.count + merged >= 512 {
                    flush(&commands, &waiters, &transactions)
                    merged = 0
                }
            }
            flush(&commands, &waiters, &transactions)
        }

        private func flush(
            _ commands: inout [[String]], _ waiters: inout [Waiter], _ transactions: inout [MergedTransaction]
        ) {
            guard !commands.isEmpty || !transactions.isEmpty else { return }
            defer {
                commands.removeAll(keepingCapacity: true)
                waiters.removeAll(keepingCapacity: true)
                transactions.removeAll(keepingCapacity: true)
            }
            var blocks: [Int] = []
            for transaction in transactions {
                blocks.append(commands.count)
                commands.append(["MULTI"])
                commands += transaction.commands
                commands.append(["EXEC"])
            }
            let replies: [RedisReply]
            do {
                replies = try connection.pipeline(commands)
            } catch {
                for waiter in waiters {
                    switch waiter {
                    case .one(_, let reply): reply(.failure(error))
                    case .many(_, let continuation): continuation.resume(throwing: error)
                    }
                }
                for transaction in transactions {
                    for part in transaction.parts { part.completion(.failure(error)) }
                }
                return
            }
            var next = 0
            for waiter in waiters {
                switch waiter {
                case .one(let arguments, let answer):
                    let reply = replies[next]
                    next += 1
                    if case .error(let message) = reply {
                        answer(
                            .failure(RedisError.server(command: arguments.first?.uppercased() ?? "", message: message)))
                    } else {
                        answer(.success(reply))
                    }
                case .many(let count, let continuation):
                    continuation.resume(returning: Array(replies[next..<next + count]))
                    next += count
                }
            }
            if durability.waits, !transactions.isEmpty {
                // Transactions count once replicas have them: wait on every master written to.
                let keys = transactions.flatMap { $0.commands.compactMap { RedisSlot.keys(of: $0).first } }
                do {
                    try connection.waitForReplicas(durability, keys: keys)
                } catch {
                    for transaction in transactions {
                        for part in transaction.parts { part.completion(.failure(error)) }
                    }
                    return
                }
            }
            for (transaction, start) in zip(transactions, blocks) {
                // The queueing replies (QUEUED, or the refusal that made EXEC abort) come before EXEC.
                let count = transaction.commands.count
                let queued = replies[(start + 1)..<(start + 1 + count)]
                settle(transaction, exec: replies[start + 1 + count], queued: Array(queued))
            }
        }

        /// Hands each merged transaction its slice of EXEC's results. When Redis refused to run
        /// the merged transaction (a command was rejected while queueing: `EXECABORT`), nothing
        /// ran; each part is then run as its own transaction, so one caller's bad command
        /// fails only that caller.
        private func settle(_ transaction: MergedTransaction, exec: RedisReply, queued: [RedisReply]) {
            if case .array(let results) = exec, results.count == transaction.commands.count {
                for part in transaction.parts { part.completion(.success(Array(results[part.commands]))) }
                return
            }
            if transaction.parts.count > 1 {
                for part in transaction.parts {
                    var alone = [MergedTransaction(slot: transaction.slot)]
                    alone[0].commands = Array(transaction.commands[part.commands])
                    alone[0].parts = [(0..<alone[0].commands.count, part.completion)]
                    var commands: [[String]] = []
                    var waiters: [Waiter] = []
                    flush(&commands, &waiters, &alone)
                }
                return
            }
            // Report why Redis refused it (e.g. `OOM` at maxmemory), not only `EXECABORT`.
            var message: String
            switch exec {
            case .error(let text): message = text
            case .null: message = "EXECABORT the transaction was discarded"
            default: message = "unexpected EXEC reply \(exec.description.prefix(200))"
            }
            for reply in queued {
                if case .error(let refusal) = reply {
                    message = refusal
                    break
                }
            }
            for part in transaction.parts {
                part.completion(.failure(RedisError.server(command: "EXEC", message: message)))
            }
        }
    }

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
