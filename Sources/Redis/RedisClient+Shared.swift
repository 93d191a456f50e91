// RedisClient+Shared: the state a RedisClient shares with the thread that owns its connection:
// the queue of submitted jobs, the hand-over of the connection, and the flush that writes the
// queued commands as one pipeline (concurrent transactions merged per slot into one MULTI ...
// EXEC) and answers each caller in order.

import Foundation
import Synchronization

extension RedisClient {
    enum Job: Sendable {
        case command([String], Reply)
        /// Commands sent back to back (a MULTI ... EXEC), answered together.
        case group([[String]], UnsafeContinuation<[RedisReply], Error>)
        /// Commands run as one transaction; answered with EXEC's results.
        case transaction([[String]], Completion)
        case closure(@Sendable (RedisConnection) -> Void)
    }

    /// Where one job's replies go in a flushed pipeline.
    enum Waiter {
        case one([String], Reply)
        case many(Int, UnsafeContinuation<[RedisReply], Error>)
    }

    /// Transactions queued in one flush, merged into a single `MULTI` ... `EXEC`.
    struct MergedTransaction {
        /// The hash slot of its commands (nil: standalone, any transactions merge).
        var slot: Int?
        var commands: [[String]] = []
        var parts: [(commands: Range<Int>, completion: Completion)] = []
    }

    /// The queue, and who owns the connection.
    struct Queue {
        var pending: [Job] = []
        /// The client's thread has been handed the connection and will send what is pending
        /// before letting go; a caller that finds this false hands it over (one signal).
        var busy = false
        var closed = false
    }

    /// The state shared with the owning thread.
    final class Shared: Sendable {
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
}
