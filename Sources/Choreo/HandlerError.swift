// HandlerError: the errors a handler throws to steer the runtime.

/// Errors with a meaning for the runtime. Any other error a handler throws is treated as
/// transient: the message is retried with backoff and dead-lettered after `max_deliveries`.
public enum HandlerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The message can never succeed (malformed payload, impossible state): dead-letter it now.
    case poison(String)
    /// The message arrived before what it depends on (a deposit before its account, an order
    /// for a user whose profile has not arrived): the runtime rolls back the handler's work and
    /// delivers the message again shortly (a delayed copy on the service's commands stream),
    /// without counting a failed delivery. Once it has waited `not_yet_limit` (default 30 s),
    /// it is rejected instead: a `failed` result with `code` and the reason.
    case notYet(String, code: String = "not_ready")

    public var description: String {
        switch self {
        case .poison(let reason): return "poison: \(reason)"
        case .notYet(let reason, let code): return "not yet (\(code)): \(reason)"
        }
    }
}
