// Console: the web console at /console, mounted on the gateway: overview (live: topology map,
// throughput chart, table), a service's dead letters (groups, filters, one letter, replay and
// purge), a command with its saga as a waterfall. It reads through the same SystemStatus,
// DeadLetterSet and SagaTrace as the CLI, with the operator's Redis and Postgres URLs (not the
// gateway's restricted user), and samples the system every few seconds into ConsoleHistory.

import Choreo
import Foundation
import Gateway
import HTTPTypes
import Hummingbird
import Operations
import Postgres
import Redis
import Synchronization

/// The web console, as a gateway extension.
public final class Console: GatewayExtension, Sendable {
    let topology: Topology
    let redis: RedisClient
    let postgresURL: String
    let handles: @Sendable (String, String) -> Bool
    /// Recent snapshots (the sampler's and the pages'), for rates and the chart.
    let history = Mutex(ConsoleHistory())
    let sampling = Mutex(false)
    /// How often the background sampler takes a snapshot.
    static let sampleInterval = Duration.seconds(5)

    /// A console reading `topology`'s streams with the operator's `redisURL` and inboxes with
    /// `postgresURL`; `handles(service, type)` tells the trace which types a service handles.
    public init(
        topology: Topology, redisURL: String, postgresURL: String,
        handles: @escaping @Sendable (String, String) -> Bool = { _, _ in true }
    ) throws {
        self.topology = topology
        self.redis = try RedisClient(url: redisURL)
        self.postgresURL = postgresURL
        self.handles = handles
    }

    public func registerPublic(on router: Router<BasicRequestContext>, gateway: Gateway) {
        let authority = ConsoleAuthority(keyring: gateway.configuration.keys)
        startSampling()
        registerAssets(on: router)
        registerSession(on: router, authority: authority)
        registerOverview(on: router, authority: authority, gateway: gateway)
        registerDeadLetters(on: router, authority: authority)
        registerDeadLetterActions(on: router, authority: authority)
        registerCommands(on: router, authority: authority)
    }

    /// The stylesheet and the script (cached).
    private func registerAssets(on router: Router<BasicRequestContext>) {
        router.get("/console/assets/console.css") { _, _ in
            Self.response(ConsoleAssets.css, type: "text/css; charset=utf-8", cache: true)
        }
        router.get("/console/assets/console.js") { _, _ in
            Self.response(ConsoleAssets.javascript, type: "text/javascript; charset=utf-8", cache: true)
        }
    }

    /// Signing in with an API key (a session cookie) and out.
    private func registerSession(on router: Router<BasicRequestContext>, authority: ConsoleAuthority) {
        router.get("/console/login") { _, _ in Self.html(ConsolePages.login(error: nil)) }
        router.post("/console/login") { request, _ in
            let form = try await Self.form(request)
            guard let secret = form["key"]?.first, let key = authority.keyring.authenticate(secret) else {
                return Self.html(ConsolePages.login(error: "That API key is not valid."), status: .unauthorized)
            }
            var response = Self.redirect("/console")
            response.headers[.setCookie] =
                "\(ConsoleSession.cookieName)=\(authority.cookie(for: key)); Path=/console; HttpOnly; SameSite=Strict; Max-Age=\(Int(ConsoleSession.lifetime))"
            return response
        }
        router.post("/console/logout") { _, _ in
            var response = Self.redirect("/console/login")
            response.headers[.setCookie] =
                "\(ConsoleSession.cookieName)=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0"
            return response
        }
    }

    /// The overview page, its refreshed fragment and its JSON.
    private func registerOverview(on router: Router<BasicRequestContext>, authority: ConsoleAuthority, gateway: Gateway)
    {
        router.get("/console") { request, _ in
            guard let session = authority.session(request) else { return Self.redirect("/console/login") }
            let status = try await self.status(gateway)
            return Self.html(ConsolePages.overview(self.view(status), session: session))
        }
        router.get("/console/fragment") { request, _ in
            guard authority.session(request) != nil else { return Self.html("", status: .unauthorized) }
            return Self.html(ConsolePages.overviewFragment(self.view(try await self.status(gateway))))
        }
        router.get("/console/status.json") { request, _ in
            guard authority.session(request) != nil else { return Self.html("", status: .unauthorized) }
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            let body = String(decoding: try encoder.encode(try await self.status(gateway)), as: UTF8.self)
            return Self.response(body, type: "application/json", cache: false)
        }
    }

    /// A service's dead letters, grouped and filtered, and one letter in full.
    private func registerDeadLetters(on router: Router<BasicRequestContext>, authority: ConsoleAuthority) {
        router.get("/console/dead/:service") { request, context in
            guard let session = authority.session(request) else { return Self.redirect("/console/login") }
            let service = try self.service(context)
            let query = request.uri.queryParameters
            let filter = DeadLetterFilter(
                stream: Self.nonEmpty(query.get("stream")), type: Self.nonEmpty(query.get("type")),
                errorContains: Self.nonEmpty(query.get("error")))
            let (groups, letters, total) = try await self.redis.withConnection { redis in
                let set = DeadLetterSet(service: service, redis: redis)
                return (DeadLetterSet.groups(try set.list()), try set.list(filter, limit: 200), try set.count())
            }
            let view = ConsolePages.DeadView(
                service: service.name, filter: filter, groups: groups, letters: letters, total: total,
                csrf: authority.csrfToken(session), isAdmin: session.isAdmin)
            return Self.html(ConsolePages.deadLetters(view, session: session))
        }
        router.get("/console/dead/:service/:entry") { request, context in
            guard let session = authority.session(request) else { return Self.redirect("/console/login") }
            let service = try self.service(context)
            let entry = try context.parameters.require("entry")
            guard
                let letter = try await self.redis.withConnection({
                    try DeadLetterSet(service: service, redis: $0).get(entry)
                })
            else { throw Problem.notFound("no dead letter \(entry) in \(service.deadStream)") }
            return Self.html(
                ConsolePages.letter(service.name, letter, csrf: authority.csrfToken(session), session: session))
        }
    }

    /// Replaying and purging dead letters (admin scope, CSRF-checked).
    private func registerDeadLetterActions(on router: Router<BasicRequestContext>, authority: ConsoleAuthority) {
        for action in ["replay", "purge"] {
            router.post(RouterPath("/console/dead/:service/\(action)")) { request, context in
                guard let session = authority.session(request) else {
                    throw Problem(.unauthorized, "Unauthorized", detail: "sign in to the console first")
                }
                let service = try self.service(context)
                let form = try await Self.form(request)
                guard authority.verify(request, session: session, token: form["csrf"]?.first) else {
                    throw Problem(
                        .forbidden, "Forbidden", detail: "cross-site request refused (missing or wrong CSRF token)")
                }
                guard session.isAdmin else {
                    throw Problem(.forbidden, "Forbidden", detail: "API key '\(session.name)' lacks the admin scope")
                }
                let entries = form["entry"] ?? []
                let all = form["all"]?.first == "1"
                guard !entries.isEmpty || all else {
                    throw Problem(.badRequest, "Malformed request", detail: "no letters named")
                }
                let filter = DeadLetterFilter(
                    stream: Self.nonEmpty(form["stream"]?.first), type: Self.nonEmpty(form["type"]?.first),
                    errorContains: Self.nonEmpty(form["error"]?.first))
                let (done, failures) = try await self.redis.withConnection { redis -> (Int, [String]) in
                    let set = DeadLetterSet(service: service, redis: redis)
                    let letters =
                        all ? Array(try set.list(filter).reversed()) : try entries.compactMap { try set.get($0) }
                    if action == "purge" { return (try set.purge(letters.map(\.entry.id)), []) }
                    var done = 0
                    var failures: [String] = []
                    do {
                        try set.replay(letters) { done = $0 }
                    } catch {
                        failures.append("after \(done): \(error)")
                    }
                    return (done, failures)
                }
                return Self.html(
                    ConsolePages.outcome(
                        service.name, action: action == "replay" ? "Replay" : "Purge", done: done, failures: failures,
                        session: session))
            }
        }
    }

    /// A command's saga as a timeline (its own commands only, without the admin scope).
    private func registerCommands(on router: Router<BasicRequestContext>, authority: ConsoleAuthority) {
        router.get("/console/commands") { request, _ in
            guard let id = Self.nonEmpty(request.uri.queryParameters.get("id")) else {
                return Self.redirect("/console")
            }
            return Self.redirect("/console/commands/\(urlPart(id))")
        }
        router.get("/console/commands/:id") { request, context in
            guard let session = authority.session(request) else { return Self.redirect("/console/login") }
            let id = try context.parameters.require("id")
            guard id.count <= 100 else { throw Problem.notFound("no such command") }
            // Commands belong to the key that submitted them: without the admin scope, only its own.
            if !session.isAdmin {
                let owner = try await self.redis.command(["HGET", Topology.commandKey(id), "principal"]).string
                guard owner == session.name else { throw Problem.notFound("no such command") }
            }
            let topology = self.topology
            let postgresURL = self.postgresURL
            let handles = self.handles
            let trace = try await self.redis.withConnection { redis in
                let postgres = try? PostgresConnection(url: postgresURL)
                return try SagaTrace.build(
                    correlation: id, topology: topology, redis: redis, postgres: postgres, handles: handles)
            }
            return Self.html(ConsolePages.command(id, trace: trace, session: session))
        }
    }

    /// A fresh snapshot, its rates measured against the newest sample at least a second old
    /// (so they are right on a first paint); kept in the history when the newest is a few
    /// seconds old.
    func status(_ gateway: Gateway?) async throws -> SystemStatus {
        let topology = self.topology
        let baseline = history.withLock { $0.baseline(before: Envelope.nowMilliseconds()) }
        var status = try await redis.withConnection { redis in
            try SystemStatus.collect(topology: topology, redis: redis, previous: baseline)
        }
        if let gateway { status.gateway = await gateway.store.ping() ? "gateway ready" : "gateway cannot reach Redis" }
        let current = status
        history.withLock { history in
            if current.at - (history.newest ?? 0) >= 2000 { history.add(current) }
        }
        return status
    }

    /// What the overview draws: the snapshot, the topology and the history.
    func view(_ status: SystemStatus) -> ConsolePages.OverviewView {
        ConsolePages.OverviewView(status: status, topology: topology, history: history.withLock { $0 })
    }

    /// Starts the background sampler once: a snapshot every ``sampleInterval`` while the
    /// console exists, so the chart has the last minutes and rates have a baseline.
    func startSampling() {
        let started = sampling.withLock { started in
            defer { started = true }
            return started
        }
        guard !started else { return }
        Task.detached { [weak self] in
            while !Task.isCancelled {
                do {
                    guard let console = self else { return }
                    _ = try? await console.status(nil)
                }
                try? await Task.sleep(for: Self.sampleInterval)
            }
        }
    }

    func service(_ context: BasicRequestContext) throws -> ServiceDefinition {
        let name = try context.parameters.require("service")
        guard let service = topology.service(name) else { throw Problem.notFound("no service \(name)") }
        return service
    }

    static func nonEmpty(_ text: String?) -> String? {
        guard let text, !text.isEmpty else { return nil }
        return text
    }

    static func html(_ body: String, status: HTTPResponse.Status = .ok) -> Response {
        var response = response(body, type: "text/html; charset=utf-8", cache: false)
        response.status = status
        return response
    }

    static func response(_ body: String, type: String, cache: Bool) -> Response {
        var headers: HTTPFields = [
            .contentType: type, .cacheControl: cache ? "public, max-age=300" : "no-store",
            HTTPField.Name("X-Content-Type-Options")!: "nosniff", HTTPField.Name("X-Frame-Options")!: "DENY",
            HTTPField.Name("Referrer-Policy")!: "same-origin",
        ]
        headers[HTTPField.Name("Content-Security-Policy")!] =
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }

    /// An `application/x-www-form-urlencoded` body (at most 1 MiB) as name -> values.
    static func form(_ request: Request) async throws -> [String: [String]] {
        let buffer = try await request.body.collect(upTo: 1 << 20)
        var result: [String: [String]] = [:]
        for pair in String(buffer: buffer).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map {
                $0.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
            }
            guard let name = parts.first else { continue }
            result[name, default: []].append(parts.count > 1 ? parts[1] : "")
        }
        return result
    }
}
