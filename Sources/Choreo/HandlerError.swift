// HandlerError: the errors a handler throws to steer the runtime.

/// Errors with a meaning for the runtime. Any other error a handler throws is treated as
/// transient: the message is retried with backoff and dead-lettered after `max_deliveries`.
public enum HandlerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The message can never succeed (malformed payload, impossible state): dead-letter it now.
    case poison(String)

    public var description: String {
        switch self {
        case .poison(let reason): return "poison: \(reason)"
        }
    }
}
