// Gateway: the HTTP front of Choreo, generic over the routes of streams.yml: POST routes submit
// commands (202 + Location), GET /v1/commands/{id} polls or long-waits, GET routes are queries
// answered by the owning service, plus health, readiness and metrics.

import Choreo
import ChoreoJSON
import Foundation
import HTTPTypes
import Hummingbird
import Instrumentation
import Logging
import Metrics
import NIOCore
import Prometheus
import Redis
import Synchronization
import Tracing

/// The gateway: builds the Hummingbird application for a topology.
public final class Gateway: Sendable {
    /// The topology it serves.
    public let topology: Topology
    /// Its settings.
    public let configuration: GatewayConfiguration
    /// Redis operations.
    public let store: CommandStore
    /// Parked long-waiters.
    public let waiters: ResultWaiters
    let logger: Logger
    let extensions: [any GatewayExtension]
    /// Metrics and access log of answered requests.
    let requests: RequestRecorder
    /// The `Server` header.
    static let serverName = "choreo"

    /// Connects to Redis; throws when the configuration is invalid or Redis unreachable.
    /// `extensions` add routes of their own (e.g. the reference system's `/graphql`).
    public init(
        topology: Topology, configuration: GatewayConfiguration = GatewayConfiguration(), logger: Logger? = nil,
        extensions: [any GatewayExtension] = []
    ) throws {
        self.extensions = extensions
        if let problem = configuration.problems().first {
            throw Problem(.internalServerError, "Bad configuration", detail: problem)
        }
        self.topology = topology
        self.configuration = configuration
        let logger = logger ?? Logger(label: "choreo.gateway")
        self.logger = logger
        self.requests = RequestRecorder(logger: logger)
        self.store = try CommandStore(topology: topology, poolSize: configuration.redisPoolSize)
        self.waiters = ResultWaiters(redisURL: topology.redisURL, logger: logger)
        _ = MetricsServer.sharedRegistry
    }

    /// Starts the results tail and the readings refresher. Call once before serving.
    public func start() {
        waiters.start()
        refresher.withLock { task in
            guard task == nil else { return }
            task = Task { [self] in await refreshReadings() }
        }
    }

    /// Stops the results tail (answering every waiter) and the readings refresher.
    public func stop() {
        waiters.stop()
        refresher.withLock { task in
            task?.cancel()
            task = nil
        }
    }

    private let refresher = Mutex<Task<Void, Never>?>(nil)

    /// The router with every route.
    public func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        // Server spans only when a tracer is bootstrapped: the no-op span still costs its
        // attributes on every request.
        if !(InstrumentationSystem.tracer is NoOpTracer) { router.add(middleware: TracingMiddleware()) }
        router.add(middleware: MetricsMiddleware(recorder: requests))
        router.add(middleware: ProblemMiddleware())
        router.get("/healthz") { _, _ in Self.json(.ok, "{\"status\":\"ok\"}") }
        router.get("/readyz") { _, _ in try await self.readiness() }
        let document = OpenAPIDocument.yaml(for: topology)
        router.get("/openapi.yaml") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/yaml"],
                body: .init(byteBuffer: ByteBuffer(string: document)))
        }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: MetricsServer.sharedRegistry.emitToBuffer())))
        }
        let api = router.group("/v1").add(middleware: AuthMiddleware(gateway: self))
        api.get("/commands/:id") { request, context in
            try await self.commandStatus(request, context)
        }
        for route in topology.routes {
            let path = route.path.split(separator: "/").map { segment in
                segment.hasPrefix("{") && segment.hasSuffix("}")
                    ? ":" + segment.dropFirst().dropLast() : String(segment)
            }.joined(separator: "/")
            let target = router.group().add(middleware: AuthMiddleware(gateway: self))
            if route.method == "POST" {
                let parameters = route.pathParameters
                target.post(RouterPath("/" + path)) { request, context in
                    try await self.submit(route, parameters, request, context)
                }
            } else {
                target.get(RouterPath("/" + path)) { request, context in try await self.query(route, request, context) }
            }
        }
        let secured = router.group().add(middleware: AuthMiddleware(gateway: self))
        for item in extensions {
            item.register(on: secured, gateway: self)
            item.registerPublic(on: router, gateway: self)
        }
        return router
    }

    /// The Hummingbird application on the configured address; valid submissions are answered
    /// at the channel level (``GatewayConfiguration/fastSubmit``) unless a tracer is bootstrapped.
    public func application() -> some ApplicationProtocol {
        let routes = SubmitRoutes(topology: topology)
        let untraced = InstrumentationSystem.tracer is NoOpTracer
        let fast = configuration.fastSubmit && !routes.isEmpty && untraced
        // Long-waits parked on the connection (a server span per request needs the router).
        let fastWait = configuration.fastLongWait && untraced
        let idle = TimeAmount.nanoseconds(Int64(configuration.idleTimeout * 1_000_000_000))
        return Application(
            router: router(),
            server: .http1(
                configuration: .init(
                    additionalChannelHandlers: [IdleConnectionHandler(timeout: idle)]
                        + (fast ? [SubmitFastPath(gateway: self, routes: routes)] : [])
                        + (fastWait ? [LongWaitFastPath(gateway: self)] : []))),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port), serverName: Self.serverName,
                backlog: configuration.backlog),
            logger: logger)
    }

    // MARK: Handlers

    func submit(_ route: RouteDefinition, _ parameters: [String], _ request: Request, _ context: BasicRequestContext)
        async throws -> Response
    {
        guard let service = topology.service(route.service) else { throw Problem.notFound("unknown service") }
        let contentType = request.headers[.contentType] ?? ""
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: configuration.maxBodyBytes)
        } catch {
            throw Problem(
                .contentTooLarge, "Payload too large", detail: "the body is over \(configuration.maxBodyBytes) bytes")
        }
        // A route without body fields (e.g. `POST /v1/orders/{id}/cancel`) may be sent empty.
        let bodyless = buffer.readableBytes == 0 && route.body.isEmpty
        guard bodyless || Self.isJSON(contentType) else {
            throw Problem(
                .unsupportedMediaType, "Unsupported media type",
                detail: "send the body as application/json (got '\(contentType.isEmpty ? "none" : contentType)')")
        }
        guard buffer.readableBytes > 0 || bodyless else {
            throw Problem.badRequest("the body is empty; send a JSON object")
        }
        var value =
            bodyless ? JSONValue.object([:]) : try buffer.withUnsafeReadableBytes { try JSONValue.parseBody(bytes: $0) }
        let errors = BodyValidator.errors(value, fields: route.body)
        guard errors.isEmpty else {
            throw Problem.unprocessable("the body does not match \(route.method) \(route.path)", errors)
        }
        if !parameters.isEmpty, case .object(var object) = value {
            for name in parameters {
                if let parameter = context.parameters.get(name) { object[name] = .string(parameter) }
            }
            value = .object(object)
        }
        try await requireCapacity(service)
        let key = request.headers[.idempotencyKey]
        if let key, key.count > 200 { throw Problem.badRequest("Idempotency-Key is longer than 200 characters") }
        // The body as sent, unless path parameters were merged in or an idempotency key needs
        // the canonical text (sorted keys) to compare bodies.
        let text = key == nil && parameters.isEmpty && !bodyless ? String(buffer: buffer) : value.text
        let envelope = Envelope(type: route.type, data: text, traceparent: Self.traceparent(request))
        let fingerprint = key == nil ? "" : "\(route.method) \(route.path) \(text)"
        switch try await store.submit(
            envelope, service: service, idempotencyKey: key, fingerprint: fingerprint,
            principal: Principal.current?.name)
        {
        case .accepted(let id):
            return Self.accepted(id: id, status: .accepted, request: request)
        case .replayed(let id):
            let status = try await store.command(id)?.status ?? .accepted
            return Self.accepted(id: id, status: status, request: request)
        case .conflict(let id):
            throw Problem.unprocessable(
                "Idempotency-Key '\(key ?? "")' was used for command \(id) with a different body")
        }
    }

    func commandStatus(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        // Another principal's command is as unknown as one that never existed.
        guard id.count <= 64, let record = try await store.command(id),
            Principal.mayRead(
                owner: record.principal, as: Principal.current, authentication: configuration.keys.isEnabled)
        else {
            throw Problem.notFound("no command \(id) (unknown or expired)")
        }
        let wait = try Self.waitSeconds(request, cap: configuration.maxWait)
        if record.status.isTerminal || wait <= 0 { return Self.render(record, request) }
        let store = self.store
        _ = await waiters.wait(for: id, timeout: wait) {
            (try? await store.command(id))?.status.isTerminal ?? false
        }
        return Self.render(try await store.command(id) ?? record, request)
    }

    func query(_ route: RouteDefinition, _ request: Request, _ context: BasicRequestContext) async throws -> Response {
        guard let service = topology.service(route.service) else { throw Problem.notFound("unknown service") }
        var object: [String: JSONValue] = [:]
        for (name, value) in request.uri.queryParameters { object[String(name)] = .string(String(value)) }
        for name in route.pathParameters {
            if let parameter = context.parameters.get(name) { object[name] = .string(parameter) }
        }
        let record = try await ask(
            route.type, service: service, data: JSONValue.object(object).text, traceparent: Self.traceparent(request))
        switch record.status {
        case .succeeded:
            return Self.json(.ok, record.result ?? "null")
        case .failed:
            let error = record.error ?? ""
            if error.contains("\"not_found\"") { throw Problem.notFound(Self.reason(error) ?? "not found") }
            throw Problem.unprocessable(Self.reason(error) ?? "the query was rejected")
        default:
            throw Problem(.badGateway, "Query failed", detail: "\(route.service) could not answer the query")
        }
    }

    /// Sends a query to `service` and waits (up to the query timeout) for its answer: a
    /// terminal record (`succeeded`, or `failed` with a `not_found`/other code). Throws a 503
    /// problem when the service cannot take it, a 504 problem on timeout.
    public func ask(_ type: String, service: ServiceDefinition, data: String, traceparent: String? = nil)
        async throws -> CommandRecord
    {
        try await requireCapacity(service)
        let envelope = Envelope(type: type, data: data, traceparent: traceparent ?? Envelope.newTraceparent())
        let store = self.store
        let id = envelope.id
        let landed = await waiters.wait(for: id, timeout: configuration.queryTimeout) {
            do {
                try await store.sendQuery(envelope, service: service)
            } catch {
                return true
            }
            return (try? await store.command(id))?.status.isTerminal ?? false
        }
        guard landed, let record = try await store.command(id), record.status.isTerminal else {
            throw Problem(
                .gatewayTimeout, "Query timed out",
                detail: "\(service.name) did not answer within \(configuration.queryTimeout) s", retryAfter: 1)
        }
        // Read once: the reply leaves nothing behind (unread, it expires in seconds).
        await store.forget(id)
        return record
    }

    /// Submits a command to `service` and waits up to `wait` seconds for its outcome; returns
    /// the record as it then stands (possibly still `accepted`).
    public func execute(
        _ type: String, service: ServiceDefinition, data: String, wait: Double, traceparent: String? = nil
    ) async throws -> CommandRecord {
        try await requireCapacity(service)
        let envelope = Envelope(type: type, data: data, traceparent: traceparent ?? Envelope.newTraceparent())
        let id: String
        switch try await store.submit(
            envelope, service: service, idempotencyKey: nil, fingerprint: "", principal: Principal.current?.name)
        {
        case .accepted(let accepted), .replayed(let accepted), .conflict(let accepted): id = accepted
        }
        let store = self.store
        _ = await waiters.wait(for: id, timeout: min(wait, configuration.maxWait)) {
            (try? await store.command(id))?.status.isTerminal ?? false
        }
        guard let record = try await store.command(id) else { throw Problem.notFound("command \(id) vanished") }
        return record
    }

    // MARK: Helpers

    static func json(_ status: HTTPResponse.Status, _ body: String, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func accepted(id: String, status: CommandStatus, request: Request) -> Response {
        var headers: HTTPFields = [.location: "/v1/commands/\(id)"]
        if let requestID = request.headers[.requestID] {
            headers[.requestID] = requestID
        }
        return json(.accepted, acceptedBody(id: id, status: status), headers: headers)
    }

    /// Whether a `Content-Type` names JSON (`application/json`, with or without parameters).
    static func isJSON(_ contentType: String?) -> Bool {
        contentType?.lowercased().hasPrefix("application/json") ?? false
    }

    /// The body of a 202: `{"id", "status", "links": {"self"}}`.
    static func acceptedBody(id: String, status: CommandStatus) -> String {
        "{\"id\":\"\(id)\",\"status\":\"\(status.rawValue)\",\"links\":{\"self\":\"/v1/commands/\(id)\"}}"
    }

    static func render(_ record: CommandRecord, _ request: Request) -> Response {
        json(record.status.isTerminal ? .ok : .accepted, record.json)
    }

    /// `Prefer: wait=N` (RFC 7240) or `?wait=N` (the query wins), capped.
    static func waitSeconds(_ request: Request, cap: Double) throws -> Double {
        guard
            let text = request.uri.queryParameters.get("wait")
                ?? preferWait(request.headers[.prefer]).wait.map(String.init)
        else {
            return 0
        }
        guard let seconds = waitValue(text) else {
            throw Problem.badRequest("wait must be a non-negative number of seconds (got '\(text)')")
        }
        return min(seconds, cap)
    }

    /// The `wait` of a `Prefer` header (the last one given), and the header's other preferences.
    static func preferWait(_ header: String?) -> (wait: Substring?, others: [Substring]) {
        var wait: Substring?
        var others: [Substring] = []
        for part in (header ?? "").split(separator: ",") {
            let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if pair.count == 2, pair[0].lowercased() == "wait" { wait = pair[1] } else { others.append(part) }
        }
        return (wait, others)
    }

    /// A wait's seconds, nil when the text is not a non-negative finite number.
    static func waitValue<Text: StringProtocol>(_ text: Text) -> Double? {
        guard let seconds = Double(text), seconds >= 0, seconds.isFinite else { return nil }
        return seconds
    }

    /// The request's W3C traceparent when well-formed, else a new one.
    /// The request's W3C `traceparent` continued with a new span id, or a new trace.
    public static func traceparent(_ request: Request) -> String {
        // A recording tracer: the message is a child of the request's server span.
        if let current = ServiceContext.current, let header = TracePropagation.traceparent(of: current) {
            return header
        }
        return traceparent(header: request.headers[.traceparent])
    }

    /// A new traceparent for a message: a child of the caller's `traceparent` header when it
    /// is valid, else a new trace.
    static func traceparent(header: String?) -> String {
        if let header {
            let parts = header.split(separator: "-")
            if parts.count == 4, parts[0].count == 2, parts[1].count == 32, parts[2].count == 16, parts[3].count == 2,
                parts[1] != "00000000000000000000000000000000"
            {
                return "00-\(parts[1])-\(Envelope.randomHex(8))-\(parts[3])"
            }
        }
        return Envelope.newTraceparent()
    }

    static func reason(_ errorJSON: String) -> String? {
        guard let data = errorJSON.data(using: .utf8),
            let object = try? JSONDecoder().decode([String: String].self, from: data)
        else { return nil }
        return object["reason"]
    }
}
