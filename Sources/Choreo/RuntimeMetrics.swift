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
/// - delayed messages: `choreo_scheduled_total{service}` (scheduled by committed handlers),
///   `choreo_scheduled_delivered_total{service}`, `choreo_scheduled_cancels_total{service}`
///   (cancel requests of handlers), `choreo_scheduled_lateness_seconds{service}`
///   (publish time minus due time), `choreo_scheduled_pending{service}` and
///   `choreo_scheduled_next_due_seconds{service}` (gauges)
/// - `choreo_messages_deferred_total{service,stream,type}`: messages a handler said were not
///   ready yet (``HandlerError/notYet(_:code:)``), scheduled again
public final class RuntimeMetrics: Sendable {
    /// The service the metrics describe.
    public let service: String
    /// A metric's identity: its label and up to three dimension values (no array, so a lookup
    /// allocates nothing).
    private struct MetricKey: Hashable {
        var label: String
        var first = ""
        var second = ""
        var third = ""
    }

    /// Every metric object made so far, by label and dimension values: swift-metrics lookups
    /// are too costly per message.
    private let cache = Mutex<[MetricKey: AnyObject]>([:])

    /// Creates the metrics of `service`.
    public init(service: String) {
        self.service = service
    }

    private func metric<M: AnyObject>(
        _ label: String, _ dimensions: [(String, String)], make: (String, [(String, String)]) -> M
    ) -> M {
        var key = MetricKey(label: label)
        for (index, dimension) in dimensions.enumerated() {
            switch index {
            case 0: key.first = dimension.1
            case 1: key.second = dimension.1
            default: key.third += "\u{1}" + dimension.1
            }
        }
        return metric(key) { make(label, [("service", service)] + dimensions) }
    }

    private func metric<M: AnyObject>(_ key: MetricKey, make: () -> M) -> M {
        cache.withLock { cache in
            if let existing = cache[key] as? M { return existing }
            let made = make()
            cache[key] = made
            return made
        }
    }

    private func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        metric(label, dimensions) { Counter(label: $0, dimensions: $1) }
    }

    private func timer(_ label: String, _ dimensions: [(String, String)]) -> Timer {
        metric(label, dimensions) { Timer(label: $0, dimensions: $1, preferredDisplayUnit: .seconds) }
    }

    /// Counts a change of the Redis servers' identity (`choreo_redis_epoch_changes_total`):
    /// a restart or failover after which the outbox window was republished.
    public func redisEpochChanged() {
        counter("choreo_redis_epoch_changes_total", []).increment()
    }

    /// A gauge of this service.
    public func gauge(_ label: String, _ dimensions: [(String, String)] = []) -> Gauge {
        metric(label, dimensions) { Gauge(label: $0, dimensions: $1) }
    }

    /// Counts `count` messages of one stream and type settled with one outcome and state.
    func settled(stream: String, type: String, outcome: MessageOutcome, state: MessageState, count: Int = 1) {
        let label = outcome.label
        metric(MetricKey(label: "choreo_messages_total", first: stream, second: type, third: label)) {
            Counter(
                label: "choreo_messages_total",
                dimensions: [("service", service), ("stream", stream), ("type", type), ("outcome", label)])
        }.increment(by: count)
        switch state {
        case .retrying:
            counter("choreo_messages_retried_total", [("stream", stream), ("type", type)]).increment(by: count)
        case .dead: counter("choreo_messages_dead_total", [("stream", stream), ("type", type)]).increment(by: count)
        default: break
        }
    }

    /// The handler-duration timer of one stream and message type.
    func handlerTimer(stream: String, type: String) -> Timer {
        metric(MetricKey(label: "choreo_handler_duration_seconds", first: stream, second: type)) {
            Timer(
                label: "choreo_handler_duration_seconds",
                dimensions: [("service", service), ("stream", stream), ("type", type)], preferredDisplayUnit: .seconds)
        }
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

    /// Delayed messages scheduled by committed handlers, and cancel requests.
    func scheduled(count: Int, cancels: Int) {
        if count > 0 { counter("choreo_scheduled_total", []).increment(by: count) }
        if cancels > 0 { counter("choreo_scheduled_cancels_total", []).increment(by: cancels) }
    }

    /// Delayed messages published by the scheduler, with how late each was, in seconds.
    func scheduledDelivered(count: Int, lateness: [Double]) {
        counter("choreo_scheduled_delivered_total", []).increment(by: count)
        let timer = timer("choreo_scheduled_lateness_seconds", [])
        for late in lateness { timer.recordNanoseconds(Int64(max(0, late) * 1_000_000_000)) }
    }

    /// A message deferred by its handler (not ready yet).
    func deferred(stream: String, type: String) {
        counter("choreo_messages_deferred_total", [("stream", stream), ("type", type)]).increment()
    }

    /// Inbox rows deleted after the retention window.
    func pruned(count: Int) {
        counter("choreo_inbox_pruned_total", []).increment(by: count)
    }

    /// Entries removed by retention (all acknowledged by every group).
    func trimmed(stream: String, count: Int) {
        counter("choreo_stream_trimmed_total", [("stream", stream)]).increment(by: count)
    }
}

extension Timer {
    func recordInterval(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }
}
