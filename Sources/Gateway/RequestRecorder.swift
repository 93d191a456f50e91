// RequestRecorder: what the gateway records of every answered request, whichever path answered
// it (the router's middleware or the channel-level submit): the request counter by method,
// route and status, the latency timer by route, and the JSON access log line.

import Choreo
import Logging
import Metrics
import Synchronization

/// Records answered requests: `choreo_gateway_requests_total{method,route,status}`,
/// `choreo_gateway_request_duration_seconds{route}` and, at `info`, an access log line with the
/// request id and trace id.
final class RequestRecorder: Sendable {
    let logger: Logger
    /// Counters and timers, made once (swift-metrics factory lookups are costly per request).
    private let counters = Mutex<[String: Metrics.Counter]>([:])
    private let timers = Mutex<[String: Metrics.Timer]>([:])

    init(logger: Logger) {
        self.logger = logger
    }

    /// Records one answered request; `route` is the matched route's pattern (or `unmatched`).
    func record(
        method: String, route: String, path: String, status: Int, elapsed: Duration, requestID: String,
        traceparent: String?
    ) {
        let status = String(status)
        let counterKey = "\(method) \(route) \(status)"
        counters.withLock { counters in
            if let counter = counters[counterKey] { return counter }
            let counter = Metrics.Counter(
                label: "choreo_gateway_requests_total",
                dimensions: [("method", method), ("route", route), ("status", status)])
            counters[counterKey] = counter
            return counter
        }.increment()
        timers.withLock { timers in
            if let timer = timers[route] { return timer }
            let timer = Metrics.Timer(
                label: "choreo_gateway_request_duration_seconds", dimensions: [("route", route)],
                preferredDisplayUnit: .seconds)
            timers[route] = timer
            return timer
        }.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        guard logger.logLevel <= .info else { return }
        var metadata: Logger.Metadata = [
            "method": "\(method)", "path": "\(path)", "status": "\(status)",
            "ms": "\(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)",
            "request_id": "\(requestID)",
        ]
        if let traceparent, let trace = TraceParent(header: traceparent) { metadata["trace_id"] = "\(trace.traceID)" }
        logger.info("request", metadata: metadata)
    }
}
