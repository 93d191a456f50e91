// PublishedOutbox: the outbox rows a batch processor has published and not yet marked
// published, and when they are due to be marked on their own. The marking rides in the next
// batch's transaction when one comes within `delay`; at low and mid load that saves a commit
// per batch. A plain value: the processor owns one, the consumer loops ask it how long they
// may block.

import Foundation

/// Published outbox rows waiting for their `published_at` marking.
struct PublishedOutbox: Sendable, Equatable {
    /// How long rows wait for a batch's transaction to mark them before they are marked on
    /// their own. Well under the relay's age (2 s), so the relay never takes them for leftovers.
    static let delay: Double = 0.25

    /// The rows' sequence numbers, oldest first.
    private(set) var seqs: [Int64] = []
    /// When the oldest of them was published (nil when none waits).
    private(set) var since: Date?

    var isEmpty: Bool { seqs.isEmpty }

    /// Adds rows published at `now`.
    mutating func add(_ published: [Int64], now: Date) {
        guard !published.isEmpty else { return }
        seqs += published
        if since == nil { since = now }
    }

    /// Seconds until the rows must be marked on their own (0 when overdue; nil when none waits).
    func untilDue(now: Date) -> Double? {
        since.map { max(0, Self.delay - now.timeIntervalSince($0)) }
    }

    /// Whether rows wait and have waited `delay`.
    func isDue(now: Date) -> Bool { untilDue(now: now) == 0 }

    /// Forgets the first `count` rows (marked by a transaction); the rest keep their time.
    mutating func marked(first count: Int) {
        seqs.removeFirst(min(count, seqs.count))
        if seqs.isEmpty { since = nil }
    }
}
