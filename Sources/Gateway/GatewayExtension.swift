// GatewayExtension: the seam through which a system adds routes of its own to the generic
// gateway (e.g. the reference system's GraphQL endpoint), using the gateway's submit and ask.

import Hummingbird

/// Routes added to the gateway's router. An extension calls ``Gateway/execute(_:service:data:wait:traceparent:)``
/// and ``Gateway/ask(_:service:data:traceparent:)`` rather than touching Redis.
public protocol GatewayExtension: Sendable {
    /// Adds the extension's routes to `router` (a group behind the gateway's authentication).
    func register(on router: RouterGroup<BasicRequestContext>, gateway: Gateway)

    /// Adds routes that do their own authentication (e.g. the console's cookie sessions).
    func registerPublic(on router: Router<BasicRequestContext>, gateway: Gateway)
}

extension GatewayExtension {
    /// No public routes by default.
    public func registerPublic(on router: Router<BasicRequestContext>, gateway: Gateway) {}

    /// No authenticated routes by default.
    public func register(on router: RouterGroup<BasicRequestContext>, gateway: Gateway) {}
}
