// RuntimeMetrics: the worker's metrics through swift-metrics (exported by whatever backend the
// process bootstraps, Prometheus in `choreo worker`), with metric objects cached per label set.

import Metrics
import Synchronization

/// Metric names follow Prometheus conventions:
/// - `choreo_messages_total{service,stream,type,outcome}`: settled messages by outcome
///   (`handled`, `duplicate`, `rejected`, `failed`, `poison`)
/// - `choreo_messages_retried_total{service,stream,type}` / `choreo_messages_dead_total{...}`
/// - `choreo_handler_duration_seconds{service,stream,type}` / `choreo_batch_duration_seconds{service,stream}`
/// - `choreo_batch_fallbacks_total{service,stream}`: optimistic batches redone per message
/// - `choreo_trimmed_pending_total{service,stream}`: entries trimmed while pending
/// - `choreo_group_lag{service,stream}`, `choreo_group_pending{service,stream}`,
///   `choreo_outbox_backlog{service}`, `choreo_dead_letters{service}`
public final class RuntimeMetrics: Sendable {
    /// The service the metrics describe.
    public let service: String
    private let counters = Mutex<[String: Counter]>([:])
    private let timers = Mutex<[String: Timer]>([:])
    private let gauges = Mutex<[String: Gauge]>([:])

    /// Creates the metrics of `service`.
    public init(service: String) {
        self.service = service
    }

    private func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        let key = label + dimensions.map { "|\($0.1)" }.joined()
        return counters.withLock { cache in
            if let existing = cache[key] { return existing }
            let made = Counter(label: label, dimensions: [("service", service)] + dimensions)
            cache[key] = made
            return made
        }
    }

    private func timer(_ label: String, _ dimensions: [(String, String)]) -> Timer {
        let key = label + dimensions.map { "|\($0.1)" }.joined()
        return timers.withLock { cache in
            if let existing = cache[key] { return existing }
            let made = Timer(
                label: label, dimensions: [("service", service)] + dimensions, preferredDisplayUnit: .seconds)
            cache[key] = made
            return made
        }
    }

    /// A gauge of this service.
    public func gauge(_ label: String, _ dimensions: [(String, String)] = []) -> Gauge {
        let key = label + dimensions.map { "|\($0.1)" }.joined()
        return gauges.withLock { cache in
            if let existing = cache[key] { return existing }
            let made = Gauge(label: label, dimensions: [("service", service)] + dimensions)
            cache[key] = made
            return made
        }
    }

    private struct TypeKey: Hashable {
        var stream: String
        var type: String
        var outcome: String
    }

    private let outcomeCounters = Mutex<[TypeKey: Counter]>([:])
    private let handlerTimers = Mutex<[TypeKey: Timer]>([:])

    func settled(stream: String, type: String, outcome: MessageOutcome, state: MessageState) {
        let key = TypeKey(stream: stream, type: type, outcome: outcome.label)
        let counter = outcomeCounters.withLock { cache in
            if let existing = cache[key] { return existing }
            let made = Counter(
                label: "choreo_messages_total",
                dimensions: [("service", service), ("stream", stream), ("type", type), ("outcome", outcome.label)])
            cache[key] = made
            return made
        }
        counter.increment()
        switch state {
        case .retrying: self.counter("choreo_messages_retried_total", [("stream", stream), ("type", type)]).increment()
        case .dead: self.counter("choreo_messages_dead_total", [("stream", stream), ("type", type)]).increment()
        default: break
        }
    }

    func handlerDuration(stream: String, type: String, since start: ContinuousClock.Instant) {
        let key = TypeKey(stream: stream, type: type, outcome: "")
        let timer = handlerTimers.withLock { cache in
            if let existing = cache[key] { return existing }
            let made = Timer(
                label: "choreo_handler_duration_seconds",
                dimensions: [("service", service), ("stream", stream), ("type", type)],
                preferredDisplayUnit: .seconds)
            cache[key] = made
            return made
        }
        timer.recordInterval(since: start)
    }

    func batchDuration(stream: String, since start: ContinuousClock.Instant) {
        timer("choreo_batch_duration_seconds", [("stream", stream)]).recordInterval(since: start)
    }

    func batchFallback(stream: String) {
        counter("choreo_batch_fallbacks_total", [("stream", stream)]).increment()
    }

    func trimmedWhilePending(stream: String) {
        counter("choreo_trimmed_pending_total", [("stream", stream)]).increment()
    }
}

extension Timer {
    func recordInterval(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }
}
