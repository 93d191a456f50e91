// LoadProgress: the live counts of a load run (offered, accepted, decided, the running p99 of
// the last verdicts), updated by the run's tasks and read by whoever shows progress.

import Foundation
import Synchronization

/// Live counts of a ``LoadRun``.
public final class LoadProgress: Sendable {
    /// A reading.
    public struct Snapshot: Sendable, Equatable {
        /// Orders offered so far (submits started).
        public var offered = 0
        /// Orders the gateway accepted.
        public var accepted = 0
        /// Orders with a verdict (confirmed, cancelled, failed).
        public var decided = 0
        /// The p99 of the last 1,000 verdicts' submit-to-verdict latencies, in milliseconds.
        public var recentP99: Double = 0
        /// Seconds since the offering began.
        public var seconds: Double = 0

        /// One line: `offered 1200  accepted 1200  decided 1180  p99 (last 1000) 14 ms  12.0 s`.
        public var line: String {
            String(
                format: "offered %d  accepted %d  decided %d  p99 (last 1,000) %.0f ms  %.1f s", offered, accepted,
                decided, recentP99, seconds)
        }
    }

    private struct State {
        var snapshot = Snapshot()
        var recent: [Double] = []
        var next = 0
        var start = Date()
    }

    private let state = Mutex(State())

    /// An empty progress.
    public init() {}

    func started() { state.withLock { $0.start = Date() } }
    func offered() { state.withLock { $0.snapshot.offered += 1 } }
    func accepted() { state.withLock { $0.snapshot.accepted += 1 } }

    func decided(latencyMs: Double) {
        state.withLock { state in
            state.snapshot.decided += 1
            if state.recent.count < 1000 {
                state.recent.append(latencyMs)
            } else {
                state.recent[state.next] = latencyMs
                state.next = (state.next + 1) % 1000
            }
        }
    }

    /// The counts now.
    public func snapshot() -> Snapshot {
        state.withLock { state in
            var snapshot = state.snapshot
            let sorted = state.recent.sorted()
            snapshot.recentP99 = sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))]
            snapshot.seconds = Date().timeIntervalSince(state.start)
            return snapshot
        }
    }
}
