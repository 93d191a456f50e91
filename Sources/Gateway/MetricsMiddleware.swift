// MetricsMiddleware: per-request metrics, the JSON access log, and X-Request-Id / traceparent echo.

import Choreo
import HTTPTypes
import Hummingbird

/// Counts requests by method, route and status, records their latency, writes a JSON access log
/// line (with the trace id), all through the gateway's ``RequestRecorder``, and echoes
/// `X-Request-Id` (or assigns one) and `traceparent`.
struct MetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let recorder: RequestRecorder

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let start = ContinuousClock.now
        var response = try await next(request, context)
        let requestID = request.headers[.requestID] ?? Envelope.randomHex(8)
        response.headers[.requestID] = requestID
        let traceparent = request.headers[.traceparent]
        if let traceparent { response.headers[.traceparent] = traceparent }
        recorder.record(
            method: request.method.rawValue, route: context.endpointPath ?? "unmatched", path: request.uri.path,
            status: response.status.code, elapsed: ContinuousClock.now - start, requestID: requestID,
            traceparent: traceparent)
        return response
    }
}
