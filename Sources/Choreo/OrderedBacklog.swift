// OrderedBacklog: the entries of a partition its owner holds but has not settled, in stream
// order, and what the owner does next (read new entries, wait for the head's backoff, retry
// the head alone, or handle the rest in a batch), as a plain value.

import Foundation
import Redis

/// A partition owner's unsettled entries, oldest first. While it is not empty the owner reads
/// no new entries: a failed head holds back its partition's later messages (not other
/// partitions'), and a dead-lettered head no longer does.
struct OrderedBacklog: Sendable, Equatable {
    /// One unsettled entry.
    struct Held: Sendable, Equatable {
        var id: String
        /// The entry, once read; `nil` for one adopted from a previous owner (read by its claim).
        var entry: StreamEntry?
        /// Deliveries Redis has counted.
        var deliveries: Int
        /// When a failed entry is due again; `nil` if it has not failed here.
        var due: Date?
        /// Its last error, for the dead letter's reason.
        var error: String?

        /// Handled alone, claimed again (counting a delivery): it failed, or a previous owner
        /// held it (it may be the message that crashed that owner).
        var suspect: Bool { entry == nil || due != nil }
    }

    /// What the owner does next.
    enum Step: Sendable, Equatable {
        /// Nothing held: read new entries.
        case read
        /// The head failed and waits for its backoff until then.
        case wait(until: Date)
        /// Claim the head again (it counts a delivery) and handle it alone.
        case retryHead(Held)
        /// Handle these held entries (never run, or run and held back) in one batch.
        case batch([Delivery])
    }

    private(set) var held: [Held] = []

    var isEmpty: Bool { held.isEmpty }
    var count: Int { held.count }

    /// The next step at `now`, with batches of at most `batch` entries.
    func next(now: Date, batch: Int) -> Step {
        guard let head = held.first else { return .read }
        if head.suspect {
            if let due = head.due, due > now { return .wait(until: due) }
            return .retryHead(head)
        }
        let run = held.prefix { !$0.suspect }.prefix(max(1, batch))
        return .batch(run.compactMap { held in held.entry.map { Delivery(entry: $0, attempt: held.deliveries) } })
    }

    /// Takes over a previous owner's pending entries (content not read yet). A retried one
    /// keeps waiting out its backoff (`due`).
    mutating func adopt(_ rows: [(id: String, deliveries: Int, due: Date?)]) {
        let known = Set(held.map(\.id))
        for row in rows where !known.contains(row.id) {
            held.append(Held(id: row.id, entry: nil, deliveries: row.deliveries, due: row.due))
        }
        held.sort { Self.precedes($0.id, $1.id) }
    }

    /// Applies a handled batch: `deliveries` as handled, `states` by entry id (an entry without
    /// a state was acknowledged without a handler: trimmed, poison, ignored). Settled entries
    /// leave; a retrying one waits until `now + after`; a held one stays, in order.
    mutating func apply(_ deliveries: [Delivery], states: [String: MessageState], now: Date) {
        var byID = Dictionary(held.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for delivery in deliveries {
            let id = delivery.entry.id
            switch states[id] {
            case .retrying(let attempt, let after, let error)?:
                byID[id] = Held(
                    id: id, entry: delivery.entry, deliveries: attempt, due: now.addingTimeInterval(after),
                    error: error)
            case .delivered?:
                byID[id] = Held(id: id, entry: delivery.entry, deliveries: delivery.attempt, due: byID[id]?.due)
            default:
                byID[id] = nil
            }
        }
        held = byID.values.sorted { Self.precedes($0.id, $1.id) }
    }

    /// A batch whose handling gave up unexpectedly: its entries stay, the first due again
    /// after `after` seconds.
    mutating func hold(_ deliveries: [Delivery], after: Double, error: String, now: Date) {
        var states: [String: MessageState] = [:]
        for (index, delivery) in deliveries.enumerated() {
            states[delivery.entry.id] =
                index == 0
                ? .retrying(attempt: delivery.attempt, after: after, error: error)
                : .delivered(attempt: delivery.attempt)
        }
        apply(deliveries, states: states, now: now)
    }

    /// Forgets entry `id` (settled elsewhere: dead-lettered past max_deliveries, or gone).
    mutating func remove(_ id: String) { held.removeAll { $0.id == id } }

    /// Forgets everything (the lease was lost or given up: the next owner adopts the entries).
    mutating func clear() { held.removeAll() }

    /// Whether entry id `lhs` comes before `rhs` in the stream.
    static func precedes(_ lhs: String, _ rhs: String) -> Bool {
        let zero = StreamID(milliseconds: 0, sequence: 0)
        return (StreamID(lhs) ?? zero) < (StreamID(rhs) ?? zero)
    }
}
