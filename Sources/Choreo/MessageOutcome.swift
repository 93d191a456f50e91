// MessageOutcome and MessageState: what happened to one delivered message, and the lifecycle
// it implies (delivered -> acked / retrying / dead), as plain values.

/// What handling one delivery produced.
public enum MessageOutcome: Sendable, Equatable {
    /// The handler succeeded; its effects are committed.
    case handled
    /// The envelope id was already in the inbox: the effect was applied before.
    case duplicate
    /// The handler recorded a business rejection (a `failed` result): a normal outcome.
    case rejected
    /// An event of a type the service has no handler for, on a stream it subscribes to (a
    /// stream carries every event of its publisher): acknowledged without effect.
    case ignored
    /// A transient failure: retry later.
    case failed(String)
    /// The handler said the message came too early (``HandlerError/notYet(_:code:)``): its
    /// work was rolled back and a delayed copy scheduled; the entry is acknowledged.
    case deferred(String)
    /// The message can never succeed: undecodable, unknown type, or the handler said poison.
    case poison(String)
    /// Ordered consumption (a partition): a message after one that failed, not run. It stays
    /// pending with its consumer and runs after the failed one, so its key's order holds.
    case held

    /// Whether the handler's effects (and what it scheduled) were committed.
    var committed: Bool {
        switch self {
        case .handled, .rejected, .deferred: return true
        default: return false
        }
    }

    /// Whether it is a transient failure (``failed(_:)``), which an ordered batch stops at.
    var isFailure: Bool {
        if case .failed = self { return true }
        return false
    }

    /// Label for metrics and logs.
    public var label: String {
        switch self {
        case .handled: return "handled"
        case .duplicate: return "duplicate"
        case .rejected: return "rejected"
        case .ignored: return "ignored"
        case .failed: return "failed"
        case .deferred: return "deferred"
        case .poison: return "poison"
        case .held: return "held"
        }
    }
}

/// The lifecycle of a delivered message.
public enum MessageState: Sendable, Equatable {
    /// Read from the stream, not yet settled.
    case delivered(attempt: Int)
    /// Settled and acknowledged.
    case acked
    /// Left pending; the reclaimer retries it after `after` seconds.
    case retrying(attempt: Int, after: Double, error: String)
    /// Copied to the dead-letter stream and acknowledged.
    case dead(reason: String)

    /// The state after `outcome`, given the delivery policy.
    public static func settle(_ outcome: MessageOutcome, attempt: Int, policy: ServicePolicy, jitterUnit: Double = 0.5)
        -> MessageState
    {
        switch outcome {
        case .handled, .duplicate, .rejected, .ignored, .deferred:
            return .acked
        case .poison(let reason):
            return .dead(reason: reason)
        case .held:
            return .delivered(attempt: attempt)
        case .failed(let error):
            if attempt >= policy.maxDeliveries {
                return .dead(reason: "failed \(attempt) deliveries (max_deliveries \(policy.maxDeliveries)): \(error)")
            }
            return .retrying(
                attempt: attempt, after: policy.backoff.delay(afterFailures: attempt, unit: jitterUnit), error: error)
        }
    }
}
