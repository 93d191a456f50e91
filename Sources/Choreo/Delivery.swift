// Delivery and Settlement: a stream entry handed to the batch processor with its attempt
// number, and what must happen in Redis once the batch's transaction has committed.

import Redis

/// A stream entry delivered to this consumer, with its delivery number (1 = first).
public struct Delivery: Sendable, Equatable {
    /// The entry.
    public var entry: StreamEntry
    /// 1 for the first delivery; the retry number plus one after that.
    public var attempt: Int

    /// Creates a delivery.
    public init(entry: StreamEntry, attempt: Int) {
        self.entry = entry
        self.attempt = attempt
    }
}

/// What a committed batch still owes Redis: publish the outbox, dead-letter, acknowledge, then
/// delete the published outbox rows. Retried as a whole if Redis is unreachable.
public struct Settlement: Sendable {
    /// The stream the batch was read from.
    public var stream: String
    /// Redis commands in order: publishes and dead letters, then the XACK.
    public var commands: [[String]]
    /// Outbox rows to delete once the commands succeeded.
    public var outboxSeqs: [Int64]
    /// The outcome and resulting state of each entry, by entry id.
    public var settled: [(id: String, type: String, outcome: MessageOutcome, state: MessageState)]
    /// The messages the batch's handlers emitted (committed to the outbox), in order.
    public var published: [OutboxMessage] = []
}
