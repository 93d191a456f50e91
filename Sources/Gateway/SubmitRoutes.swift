// SubmitRoutes: which requests the channel-level submit (SubmitFastPath) may answer itself, and
// the command envelope it makes of one. Every condition the router would check is checked here
// the same way; a request that fails any of them is left to the router, which answers it.

import Choreo
import ChoreoJSON
import HTTPTypes
import Metrics
import NIOCore

/// The POST routes without path parameters, by path, and the checks of a takeable request.
struct SubmitRoutes: Sendable {
    /// A route the fast path serves.
    struct Route: Sendable {
        /// The route's path, e.g. `/v1/orders`.
        var path: String
        /// The route.
        var definition: RouteDefinition
        /// The service that owns its commands.
        var service: ServiceDefinition
        /// `choreo_gateway_fast_submits_total{route}`: its submissions answered at the channel
        /// level (a subset of `choreo_gateway_requests_total`).
        var fastSubmits: Metrics.Counter
    }

    private let byPath: [String: Route]

    /// The topology's POST routes whose path has no parameters.
    init(topology: Topology) {
        var byPath: [String: Route] = [:]
        for route in topology.routes where route.method == "POST" && route.pathParameters.isEmpty {
            guard let service = topology.service(route.service) else { continue }
            byPath[route.path] = Route(
                path: route.path, definition: route, service: service,
                fastSubmits: Metrics.Counter(
                    label: "choreo_gateway_fast_submits_total", dimensions: [("route", route.path)]))
        }
        self.byPath = byPath
    }

    /// Whether no route qualifies.
    var isEmpty: Bool { byPath.isEmpty }

    /// A request the fast path may take, judged by its head.
    struct Candidate: Sendable {
        /// Its route.
        var route: Route
        /// The API key to charge to the rate limit, when there is one.
        var limitedKey: String?
        /// The authenticated key's name (the command's principal), when keys are on.
        var principal: String?
    }

    /// The route of a request the fast path may take, judged by its head: a POST to a route
    /// here, JSON, no Idempotency-Key or Expect, a key that authenticates and may call the
    /// route when keys are on (with a rate limit, only once this process has loaded its
    /// script), and a service known from checks under a second old to have capacity.
    func candidate(_ head: HTTPRequest, gateway: Gateway) -> Candidate? {
        guard head.method == .post, var path = head.path else { return nil }
        if let query = path.firstIndex(of: "?") { path = String(path[..<query]) }
        guard let route = byPath[path] else { return nil }
        let fields = head.headerFields
        guard fields[.idempotencyKey] == nil, fields[.expect] == nil,
            Gateway.isJSON(fields[.contentType])
        else { return nil }
        let configuration = gateway.configuration
        var limitedKey: String?
        var principal: String?
        if configuration.keys.isEnabled {
            guard let key = configuration.keys.authenticate(authorization: fields[.authorization]), key.allows(path)
            else { return nil }
            principal = key.name
            if configuration.rateLimit != nil {
                guard RateLimit.isLoaded else { return nil }
                limitedKey = key.name
            }
        }
        guard
            gateway.store.hasCapacity(
                route.service, requireLiveWorker: configuration.requireLiveWorker,
                backpressure: configuration.backpressure) == true
        else { return nil }
        return Candidate(route: route, limitedKey: limitedKey, principal: principal)
    }

    /// The command for a complete request, or nil when the body is not one the route accepts
    /// (the router then answers with the reason).
    func envelope(_ head: HTTPRequest, route: Route, body: ByteBuffer) -> Envelope? {
        guard body.readableBytes > 0,
            let value = try? body.withUnsafeReadableBytes({ try JSONValue.parseBody(bytes: $0) }),
            BodyValidator.errors(value, fields: route.definition.body).isEmpty
        else { return nil }
        return Envelope(
            type: route.definition.type, data: String(buffer: body),
            traceparent: Gateway.traceparent(header: head.headerFields[.traceparent]))
    }
}
