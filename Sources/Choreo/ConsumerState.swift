// ConsumerState: the lifecycle of a consumer loop (active -> draining -> stopped) as a value.

/// The lifecycle of a consumer loop.
public enum ConsumerState: String, Sendable, Equatable {
    /// Reading and handling batches.
    case active
    /// Asked to stop: finishes the batch in hand (commit, publish, ack), reads no more.
    case draining
    /// Finished.
    case stopped

    /// What can happen to a consumer.
    public enum Event: Sendable, Equatable {
        /// SIGTERM/SIGINT or a programmatic stop.
        case stopRequested
        /// The loop returned.
        case finished
    }

    /// The state after `event`. Stopping is one-way: a draining consumer never becomes active.
    public func after(_ event: Event) -> ConsumerState {
        switch (self, event) {
        case (.active, .stopRequested): return .draining
        case (_, .finished): return .stopped
        default: return self
        }
    }

    /// Whether the loop should read another batch.
    public var readsMore: Bool { self == .active }
}
