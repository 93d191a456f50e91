// ServicePolicy: the per-service delivery settings, with defaults and validation.

/// How a service's worker pool reads, retries, dead-letters and shuts down.
public struct ServicePolicy: Sendable, Equatable {
    /// Entries read per `XREADGROUP` and handled in one Postgres transaction.
    public var batch: Int = 100
    /// How long one `XREADGROUP` blocks waiting for new entries, in seconds.
    public var block: Double = 2
    /// Deliveries after which a failing message is dead-lettered (the handler runs this often).
    public var maxDeliveries: Int = 5
    /// The retry delay schedule.
    public var backoff = Backoff()
    /// Idle time after which entries of another (presumably dead) consumer are adopted, in seconds.
    public var claimIdle: Double = 30
    /// Time a process has to finish its batch in hand after SIGTERM, in seconds.
    public var shutdownTimeout: Double = 20
    /// Default number of processes of `choreo worker`.
    public var processes: Int = 2
    /// Entries kept in this service's commands and events streams (`maxlen`). Only entries every
    /// consumer group has acknowledged are trimmed (``StreamRetention``); a backlog of
    /// unacknowledged entries over this is backpressure (the gateway answers 503), never a loss.
    public var maxLength: Int = 1_000_000
    /// How long inbox rows (processed message ids) are kept, in seconds (default 7 days).
    public var inboxRetention: Double = 7 * 24 * 3600
    /// Group lag above which the gateway answers 503 instead of enqueueing, if set.
    public var maxLag: Int?
    /// How long a batch transaction waits for a row lock before it gives up and the batch is
    /// handled message by message (short transactions), in seconds. Batches hold their row locks
    /// until they commit, so two processes updating the same hot rows (e.g. a product's stock)
    /// would otherwise wait on each other, or deadlock and wait out Postgres's detector.
    public var batchLockTimeout: Double = 0.05
    /// How long one message's own transaction (after a batch fell back to message by message)
    /// waits for a lock, in seconds: a lock held elsewhere (an operator's open `FOR UPDATE`)
    /// delays that message only; it is retried with backoff while the others proceed.
    public var lockTimeout: Double = 5
    /// The longest one statement of a handler may run, in seconds (`statement_timeout`).
    public var statementTimeout: Double = 30
    /// How long a message whose handler says it came too early
    /// (``HandlerError/notYet(_:code:)``) is delivered again before it is rejected, in seconds.
    public var notYetLimit: Double = 30
    /// Messages larger than this (all fields, in bytes) are poison: dead-lettered unread, so a
    /// runaway producer cannot make a worker parse megabytes.
    public var maxMessageBytes: Int = 1 << 20
    /// How many partitions of one partitioned stream a process handles at once (each in order,
    /// one batch at a time). 1, the default, makes a process one consumer, like an unpartitioned
    /// stream's: a stream's throughput then grows with the process count (`--processes`,
    /// replicas), up to one process per partition.
    public var partitionConcurrency: Int = 1

    /// The defaults.
    public init() {}

    /// The problems of this policy as (key, message) pairs; empty when valid.
    public func problems() -> [(String, String)] {
        var problems: [(String, String)] = []
        if batch < 1 || batch > 1000 { problems.append(("batch", "must be between 1 and 1000 (got \(batch))")) }
        if block <= 0 { problems.append(("block", "must be positive (got \(block)s)")) }
        if maxDeliveries < 1 { problems.append(("max_deliveries", "must be at least 1 (got \(maxDeliveries))")) }
        if backoff.initial <= 0 { problems.append(("backoff.initial", "must be positive (got \(backoff.initial)s)")) }
        if backoff.max < backoff.initial {
            problems.append(("backoff.max", "must be at least backoff.initial (got \(backoff.max)s)"))
        }
        if backoff.multiplier < 1 {
            problems.append(("backoff.multiplier", "must be at least 1 (got \(backoff.multiplier))"))
        }
        if backoff.jitter < 0 || backoff.jitter >= 1 {
            problems.append(("backoff.jitter", "must be in [0, 1) (got \(backoff.jitter))"))
        }
        if claimIdle <= 0 { problems.append(("claim_idle", "must be positive (got \(claimIdle)s)")) }
        if shutdownTimeout <= 0 { problems.append(("shutdown_timeout", "must be positive (got \(shutdownTimeout)s)")) }
        if batchLockTimeout <= 0 {
            problems.append(("batch_lock_timeout", "must be positive (got \(batchLockTimeout)s)"))
        }
        if lockTimeout <= 0 { problems.append(("lock_timeout", "must be positive (got \(lockTimeout)s)")) }
        if statementTimeout <= 0 {
            problems.append(("statement_timeout", "must be positive (got \(statementTimeout)s)"))
        }
        if notYetLimit <= 0 { problems.append(("not_yet_limit", "must be positive (got \(notYetLimit)s)")) }
        if maxMessageBytes < 1024 {
            problems.append(("max_message_bytes", "must be at least 1024 (got \(maxMessageBytes))"))
        }
        if partitionConcurrency < 1 || partitionConcurrency > StreamPartitioning.maximumCount {
            problems.append(
                (
                    "partition_concurrency",
                    "must be between 1 and \(StreamPartitioning.maximumCount) (got \(partitionConcurrency))"
                ))
        }
        if processes < 1 { problems.append(("processes", "must be at least 1 (got \(processes))")) }
        if maxLength < 1000 { problems.append(("maxlen", "must be at least 1000 (got \(maxLength))")) }
        if inboxRetention < claimIdle * 10 {
            problems.append(("inbox_retention", "must be much longer than claim_idle (got \(inboxRetention)s)"))
        }
        return problems
    }

    /// The session defaults of a worker's Postgres connection, set on every (re)connect: one
    /// message's own transaction waits `lock_timeout` for a lock, and every statement runs at
    /// most `statement_timeout`. As session settings they cost no statement per transaction (a
    /// batch of one, the common case below full load, is BEGIN, the inbox row, the handler's
    /// statements, the outbox row and COMMIT); a batch of several adds its brief lock wait.
    package var postgresSessionSettings: [String: String] {
        [
            "lock_timeout": "\(max(1, Int(lockTimeout * 1000)))ms",
            "statement_timeout": "\(max(1, Int(statementTimeout * 1000)))ms",
        ]
    }
}
