// PartitionBalancer: how many partitions of one stream a worker process should own for its
// group (its fair share: the partition count over the live processes, rounded up), which the
// process's partition loops consult before taking a free lease or after finishing a batch.

import Foundation
import Redis
import Synchronization

/// The share of one stream's partitions this process owns, shared by its partition loops.
///
/// Rebalancing needs no coordinator: each process counts the live processes of its service
/// (their heartbeats), owns at most `ceil(partitions / processes)` leases and gives back the
/// ones over that at a batch boundary, so when a process joins, the others release and it takes
/// the freed leases; when one leaves, its leases expire and the others take them. A partition
/// left free for twice the lease time is taken even past the share, so a miscount (a dead
/// process whose heartbeat has not yet gone stale) never leaves a partition unread.
final class PartitionBalancer: Sendable {
    /// The plain-value decisions, testable without Redis.
    struct Share: Sendable, Equatable {
        /// Partitions of the stream.
        var count: Int
        /// Live processes of the service (at least this one).
        var processes = 1
        /// The partitions this process owns.
        var owned: Set<Int> = []

        /// The most partitions this process should own.
        var fair: Int { (count + max(1, processes) - 1) / max(1, processes) }

        /// Whether a loop may take free partition `index`; `freeFor` is how long it has been
        /// seen free, `grace` how long a free partition waits before any process takes it.
        func mayAcquire(freeFor: Double, grace: Double) -> Bool {
            owned.count < fair || freeFor >= grace
        }

        /// Whether the owner of `index` should give it up now (this process owns more than its
        /// share); the highest-numbered ones go first, so a rebalance moves few partitions.
        func shouldRelease(_ index: Int) -> Bool {
            guard owned.count > fair, owned.contains(index) else { return false }
            return owned.sorted().suffix(owned.count - fair).contains(index)
        }
    }

    /// The stream as consumed (e.g. `{orders}.events`).
    let stream: String
    let service: String
    let consumer: String
    /// How long a heartbeat counts a process as live for the share, in seconds.
    let liveWindow: Double
    /// The processors the process's partition loops take turns with (partition_concurrency).
    let processors: ProcessorPool
    private let state: Mutex<(share: Share, refreshedAt: Date)>

    init(stream: String, count: Int, service: String, consumer: String, liveWindow: Double, concurrency: Int = 1) {
        self.processors = ProcessorPool(size: concurrency)
        self.stream = stream
        self.service = service
        self.consumer = consumer
        self.liveWindow = liveWindow
        self.state = Mutex((Share(count: count), .distantPast))
    }

    /// The current share (a copy).
    var share: Share { state.withLock { $0.share } }

    /// Recounts the live processes that consume the stream, at most once a second per process.
    func refresh(_ redis: RedisConnection) throws {
        let due = state.withLock { state -> Bool in
            guard Date().timeIntervalSince(state.refreshedAt) >= 1 else { return false }
            state.refreshedAt = Date()
            return true
        }
        guard due else { return }
        let now = Envelope.nowMilliseconds()
        var live = Set(
            try Heartbeat.all(service: service, redis: redis).filter {
                Double(now - $0.at) / 1000 < liveWindow && $0.streams.contains(stream)
            }.map(\.consumer))
        live.insert(consumer)
        state.withLock { $0.share.processes = live.count }
    }

    /// Whether a loop may try to take free partition `index`.
    func mayAcquire(_ index: Int, freeFor: Double, grace: Double) -> Bool {
        state.withLock { $0.share.mayAcquire(freeFor: freeFor, grace: grace) }
    }

    /// Records that this process owns `index`.
    func acquired(_ index: Int) { _ = state.withLock { $0.share.owned.insert(index) } }

    /// Records that this process no longer owns `index`.
    func released(_ index: Int) { _ = state.withLock { $0.share.owned.remove(index) } }

    /// Whether the owner of `index` should give it up; if so it is counted as released.
    func releaseIfOverShare(_ index: Int) -> Bool {
        state.withLock { state in
            guard state.share.shouldRelease(index) else { return false }
            state.share.owned.remove(index)
            return true
        }
    }
}
