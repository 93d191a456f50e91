// Emission: a message a handler asks the runtime to publish after its transaction commits.

/// A message emitted by a handler, published through the outbox after the commit.
public enum Emission: Sendable, Equatable {
    /// A fact on the service's own events stream.
    case event(type: String, data: String)
    /// A command to another service's commands stream.
    case command(service: String, type: String, data: String)
    /// The outcome of the command that started the saga (its correlation id).
    case result(status: CommandStatus, type: String, data: String)
}
