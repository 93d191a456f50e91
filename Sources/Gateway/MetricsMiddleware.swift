// MetricsMiddleware: per-request metrics, the JSON access log, and X-Request-Id / traceparent echo.

import Choreo
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import Synchronization

/// Counts requests by method, route and status, records their latency, writes a JSON access log
/// line (with the trace id), and echoes `X-Request-Id` (or assigns one) and `traceparent`.
struct MetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger
    /// Request counters by method, route and status, and duration timers by route: made once
    /// (swift-metrics factory lookups are costly per request).
    private let cache = Cache()

    private final class Cache: Sendable {
        let counters = Mutex<[String: Metrics.Counter]>([:])
        let timers = Mutex<[String: Metrics.Timer]>([:])
    }

    init(logger: Logger) {
        self.logger = logger
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let start = ContinuousClock.now
        var response = try await next(request, context)
        let route = context.endpointPath ?? "unmatched"
        let requestID = request.headers[.requestID] ?? Envelope.randomHex(8)
        response.headers[.requestID] = requestID
        let traceparent = request.headers[.traceparent]
        if let traceparent { response.headers[.traceparent] = traceparent }
        let method = request.method.rawValue
        let status = String(response.status.code)
        let counterKey = "\(method) \(route) \(status)"
        cache.counters.withLock { counters in
            if let counter = counters[counterKey] { return counter }
            let counter = Metrics.Counter(
                label: "choreo_gateway_requests_total",
                dimensions: [("method", method), ("route", route), ("status", status)])
            counters[counterKey] = counter
            return counter
        }.increment()
        let elapsed = ContinuousClock.now - start
        cache.timers.withLock { timers in
            if let timer = timers[route] { return timer }
            let timer = Metrics.Timer(
                label: "choreo_gateway_request_duration_seconds", dimensions: [("route", route)],
                preferredDisplayUnit: .seconds)
            timers[route] = timer
            return timer
        }.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        guard logger.logLevel <= .info else { return response }
        var metadata: Logger.Metadata = [
            "method": "\(method)", "path": "\(request.uri.path)", "status": "\(status)",
            "ms": "\(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)",
            "request_id": "\(requestID)",
        ]
        if let traceparent, let trace = TraceParent(header: traceparent) { metadata["trace_id"] = "\(trace.traceID)" }
        logger.info("request", metadata: metadata)
        return response
    }
}
