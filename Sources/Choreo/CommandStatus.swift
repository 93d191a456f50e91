// CommandStatus: the states of a command as the gateway reports them.

/// The lifecycle of a command: `accepted` until a result lands, then terminal.
public enum CommandStatus: String, Sendable, Equatable, Codable, CaseIterable {
    /// Enqueued, no outcome yet.
    case accepted
    /// The saga finished successfully.
    case succeeded
    /// A business rejection (insufficient funds, duplicate email...): a normal outcome.
    case failed
    /// The command could not be processed and sits in a dead-letter stream.
    case dead

    /// Whether no further change will happen.
    public var isTerminal: Bool { self != .accepted }
}
