// AuthMiddleware: the API-key check and the per-key rate limit in front of the gateway's routes.

import Hummingbird

/// Checks the bearer API key (401 missing or unknown, 403 not allowed for the route) and the
/// key's rate limit (429 with Retry-After).
struct AuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let gateway: Gateway

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let keys = gateway.configuration.keys
        guard keys.isEnabled else { return try await next(request, context) }
        guard let key = keys.authenticate(authorization: request.headers[.authorization]) else {
            var problem = Problem(
                .unauthorized, "Unauthorized", detail: "send a valid API key as 'Authorization: Bearer <key>'")
            problem.retryAfter = nil
            var response = try problem.response(from: request, context: context)
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        guard key.allows(request.uri.path) else {
            throw Problem(.forbidden, "Forbidden", detail: "API key '\(key.name)' may not call \(request.uri.path)")
        }
        if let limit = gateway.configuration.rateLimit {
            let wait = try await limit.take(key.name, on: gateway.store.client())
            if let wait { throw limit.problem(key: key.name, wait: wait) }
        }
        return try await Principal.$current.withValue(key) { try await next(request, context) }
    }
}
