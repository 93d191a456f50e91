// ResultWaiters: long-waiting requests parked by command id, woken by one Redis connection that
// tails choreo.results. A waiter costs a continuation or a callback, not a connection or a
// thread; the channel-level long-wait (LongWaitFastPath) parks callbacks, so a parked request
// holds no Swift-concurrency task at all.

import Choreo
import Foundation
import Logging
import Redis
import ServiceLifecycle
import Synchronization

/// Parks waiters by command id and wakes them when a result for that id lands.
public final class ResultWaiters: ServiceLifecycle.Service, Sendable {
    /// A parked request: how to wake it, and for an async waiter the task that re-checks the
    /// status and then sleeps until the deadline (cancelled as soon as the waiter is woken, so
    /// an answered long-wait holds no sleeping task for the rest of its timeout).
    private struct Waiter: Sendable {
        var resume: @Sendable (Bool) -> Void
        var timer: Task<Void, Never>?
    }

    private let waiters = Mutex<[String: [UInt64: Waiter]]>([:])
    private let counter = Mutex<UInt64>(0)
    private let running = Mutex(true)
    let redisURL: String
    let logger: Logger

    /// Creates the registry; call ``start()`` to begin tailing.
    public init(redisURL: String, logger: Logger) {
        self.redisURL = redisURL
        self.logger = logger
    }

    /// The number of parked waiters.
    public var count: Int { waiters.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    /// Waits until a result for `id` lands (true) or `timeout` seconds pass (false).
    /// `afterRegistering` runs once the waiter is registered and may return true to finish at
    /// once (the caller re-reads the status there, so a result that landed just before the
    /// registration is not missed).
    public func wait(for id: String, timeout: Double, afterRegistering: @escaping @Sendable () async -> Bool) async
        -> Bool
    {
        let token = counter.withLock { value -> UInt64 in
            value += 1
            return value
        }
        guard running.withLock({ $0 }) else { return false }
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            waiters.withLock {
                $0[id, default: [:]][token] = Waiter(resume: { continuation.resume(returning: $0) })
            }
            let timer = Task {
                if await afterRegistering() {
                    self.resume(id: id, token: token, with: true)
                    return
                }
                do {
                    try await Task.sleep(nanoseconds: UInt64(max(0, timeout) * 1_000_000_000))
                } catch {
                    return  // woken: the waiter was already resumed
                }
                self.resume(id: id, token: token, with: false)
            }
            let parked = waiters.withLock { map -> Bool in
                guard map[id]?[token] != nil else { return false }
                map[id]?[token]?.timer = timer
                return true
            }
            if !parked { timer.cancel() }
        }
    }

    private func resume(id: String, token: UInt64, with value: Bool) {
        let waiter = waiters.withLock { map -> Waiter? in
            let found = map[id]?.removeValue(forKey: token)
            if map[id]?.isEmpty == true { map[id] = nil }
            return found
        }
        waiter?.timer?.cancel()
        waiter?.resume(value)
    }

    /// Parks `wake` for callers outside Swift concurrency (a channel handler): it is called
    /// once, on the results tail's thread (it must not block), with true when a result for `id`
    /// lands and false at shutdown; never after ``unpark(_:token:)``. Returns the token to
    /// unpark with, or nil when the registry no longer parks (shutting down).
    public func park(_ id: String, wake: @escaping @Sendable (Bool) -> Void) -> UInt64? {
        let token = counter.withLock { value -> UInt64 in
            value += 1
            return value
        }
        guard running.withLock({ $0 }) else { return nil }
        waiters.withLock { $0[id, default: [:]][token] = Waiter(resume: wake) }
        // A shutdown that began meanwhile has woken everything parked before this one.
        if !running.withLock({ $0 }), unpark(id, token: token) { return nil }
        return token
    }

    /// Removes a parked callback without calling it (its request was answered otherwise, or its
    /// connection closed); true when it was still parked.
    @discardableResult
    public func unpark(_ id: String, token: UInt64) -> Bool {
        waiters.withLock { map -> Bool in
            let found = map[id]?.removeValue(forKey: token)
            if map[id]?.isEmpty == true { map[id] = nil }
            return found != nil
        }
    }

    /// Wakes every waiter of `id`.
    public func wake(_ id: String) {
        let woken = waiters.withLock { $0.removeValue(forKey: id) } ?? [:]
        for waiter in woken.values {
            waiter.timer?.cancel()
            waiter.resume(true)
        }
    }

    /// Wakes every waiter (shutdown): they answer with the status they can read.
    public func wakeAll() {
        let all = waiters.withLock { map -> [Waiter] in
            defer { map.removeAll() }
            return map.values.flatMap(\.values)
        }
        for waiter in all {
            waiter.timer?.cancel()
            waiter.resume(false)
        }
    }

    /// Starts tailing `choreo.results` on a dedicated thread with one connection.
    public func start() {
        let thread = Thread { self.tail() }
        thread.name = "choreo results tail"
        thread.start()
    }

    /// Runs as a service of the application: on graceful shutdown (SIGTERM/SIGINT) it stops
    /// parking new waiters and answers every parked one, before the HTTP server drains.
    public func run() async throws {
        try? await gracefulShutdown()
        stop()
    }

    /// Stops tailing and wakes every waiter.
    public func stop() {
        running.withLock { $0 = false }
        wakeAll()
    }

    private func tail() {
        var connection: RedisConnection?
        var last = "$"
        while running.withLock({ $0 }) {
            do {
                if connection == nil {
                    connection = try RedisConnection(url: redisURL)
                    if last == "$" {
                        last = try connection?.xinfoStream(Topology.resultsStream).lastGeneratedID ?? "0-0"
                    }
                }
                guard let redis = connection else { continue }
                let reply = try redis.command(
                    ["XREAD", "COUNT", "500", "BLOCK", "1000", "STREAMS", Topology.resultsStream, last], blockingFor: 1)
                for batch in (reply.array ?? []) {
                    guard let parts = batch.array, parts.count == 2 else { continue }
                    for element in parts[1].array ?? [] {
                        guard let entry = element.array, entry.count == 2, let id = entry[0].string else { continue }
                        last = id
                        if let command = entry[1].fieldMap["command"]?.string { wake(command) }
                    }
                }
            } catch let error as RedisError where error.serverCode == "ERR" && last == "$" {
                last = "0-0"
            } catch {
                logger.warning("results tail failed; reconnecting", metadata: ["error": "\(error)"])
                connection = nil
                usleep(200_000)
            }
        }
    }
}
