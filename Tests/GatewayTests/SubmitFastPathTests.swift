import Choreo
import ChoreoTesting
import Foundation
import Gateway
import Hummingbird
import HummingbirdTesting
import Testing

/// The channel-level submit, through a live server: what a client sees must not depend on
/// which path answered.
@Suite("Gateway channel-level submit")
struct SubmitFastPathTests {
    /// A live gateway over a fresh probe; `body` gets the probe and the server's port. In
    /// `keys`, `{probe}` stands for the probe's name (rate limits are kept per key name).
    /// Backpressure is off unless asked for: with it, the channel level takes a submit only
    /// while the lag reading is under 2 s old, and on a loaded test machine a late refresh
    /// hands a request to the router, which would make the tests' path counts flaky.
    func live(
        fastSubmit: Bool = true, requireLiveWorker: Bool = false, backpressure: Bool = false, keys: String? = nil,
        limit: RateLimit? = nil, _ body: @escaping @Sendable (ProbeHarness, Int) async throws -> Void
    ) async throws {
        let probe = try ProbeHarness().withRoutes()
        var configuration = GatewayConfiguration()
        configuration.requireLiveWorker = requireLiveWorker
        configuration.backpressure = backpressure
        configuration.maxBodyBytes = 2048
        configuration.fastSubmit = fastSubmit
        if let keys {
            configuration.keys = try APIKeyring(spec: keys.replacingOccurrences(of: "{probe}", with: probe.name))
        }
        configuration.rateLimit = limit
        let gateway = try Gateway(topology: probe.topology, configuration: configuration)
        gateway.start()
        defer { gateway.stop() }
        if !requireLiveWorker && backpressure {
            try await eventually("the gateway's first readings", timeout: 60) { gateway.hasFreshReadings }
        }
        try await gateway.serveLive { port in try await body(probe, port) }
    }

    /// `choreo_gateway_fast_submits_total` of the probe's route, from `/metrics`.
    func fastSubmits(_ probe: ProbeHarness, port: Int) async throws -> Int {
        let connection = try RawHTTPConnection(port: port)
        try await connection.send(RawHTTPConnection.request("GET", "/metrics"))
        let text = try await connection.response().body
        let prefix = "choreo_gateway_fast_submits_total{route=\"/v1/\(probe.name)/records\"} "
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return 0 }
        return Int(line.dropFirst(prefix.count)) ?? 0
    }

    static let valid = "{\"key\":\"a\",\"value\":7}"

    @Test("a valid submit is answered at the channel level with the router's status, headers and body")
    func sameResponse() async throws {
        var seen: [Bool: RawHTTPResponse] = [:]
        for fast in [true, false] {
            let box = ResponseBox()
            try await live(fastSubmit: fast) { probe, port in
                let connection = try RawHTTPConnection(port: port)
                let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                try await connection.send(
                    RawHTTPConnection.request(
                        "POST", "/v1/\(probe.name)/records",
                        headers: [
                            ("Content-Type", "application/json"), ("X-Request-Id", "req-1"),
                            ("traceparent", traceparent),
                        ], body: Self.valid))
                let response = try await connection.response()
                #expect(response.status == 202)
                #expect(response.headers["x-request-id"] == "req-1")
                #expect(response.headers["traceparent"] == traceparent)
                let json = try #require(
                    try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
                let id = try #require(json["id"] as? String)
                #expect(json["status"] as? String == "accepted")
                #expect(response.headers["location"] == "/v1/commands/\(id)")
                // The command is recorded and queued with the body as sent and a child trace.
                let record = try probe.command(id)
                #expect(record["status"] == "accepted")
                #expect(record["type"] == "Record")
                let entries = try probe.redis.xrange(probe.definition.commandStream)
                let envelope = try Envelope(entry: try #require(entries.last))
                #expect(envelope.id == id)
                #expect(envelope.data == Self.valid)
                #expect(envelope.traceparent.hasPrefix("00-0af7651916cd43dd8448eb211c80319c-"))
                #expect(try await fastSubmits(probe, port: port) == (fast ? 1 : 0))
                box.response = response
            }
            seen[fast] = box.response
        }
        let fast = try #require(seen[true])
        let routed = try #require(seen[false])
        #expect(Set(fast.headers.keys) == Set(routed.headers.keys))
        for name in ["content-type", "server", "x-request-id", "traceparent"] {
            #expect(fast.headers[name] == routed.headers[name], "\(name)")
        }
    }

    @Test("pipelined requests on one connection are answered in order; the router answers what it must")
    func pipelinedInOrder() async throws {
        try await live { probe, port in
            let path = "/v1/\(probe.name)/records"
            let json = [("Content-Type", "application/json")]
            let connection = try RawHTTPConnection(port: port)
            // One write: valid, invalid (422), a GET, an idempotent submit, wrong media type
            // (415), over the size limit (413 from the router, after a partial read), valid.
            try await connection.send(
                RawHTTPConnection.request("POST", path, headers: json, body: Self.valid)
                    + RawHTTPConnection.request("POST", path, headers: json, body: "{\"key\":\"a\",\"value\":\"x\"}")
                    + RawHTTPConnection.request("GET", "/healthz")
                    + RawHTTPConnection.request(
                        "POST", path, headers: json + [("Idempotency-Key", "k1")], body: Self.valid)
                    + RawHTTPConnection.request("POST", path, headers: [("Content-Type", "text/plain")], body: "x")
                    + RawHTTPConnection.request("POST", path, headers: json, body: Self.valid))
            var statuses: [Int] = []
            var ids: [String] = []
            for _ in 0..<6 {
                let response = try await connection.response()
                statuses.append(response.status)
                if response.status == 202, let location = response.headers["location"] {
                    ids.append(String(location.dropFirst("/v1/commands/".count)))
                    #expect(response.body.contains(ids.last!))
                }
                if response.status >= 400 { #expect(response.headers["content-type"] == "application/problem+json") }
            }
            #expect(statuses == [202, 422, 200, 202, 415, 202])
            #expect(Set(ids).count == 3)
            // Only the first was taken at the channel level: the others queued behind requests
            // the router had in hand, so the router answered them, in order.
            #expect(try await fastSubmits(probe, port: port) == 1)
            let big = "{\"key\":\"\(String(repeating: "x", count: 3000))\",\"value\":1}"
            try await connection.send(RawHTTPConnection.request("POST", path, headers: json, body: big))
            #expect(try await connection.response().status == 413)
        }
    }

    @Test("a burst of pipelined valid submits is taken one after another at the channel level, in order")
    func pipelinedBurst() async throws {
        try await live { probe, port in
            let connection = try RawHTTPConnection(port: port)
            let requests = (0..<20).map { index in
                RawHTTPConnection.request(
                    "POST", "/v1/\(probe.name)/records", headers: [("Content-Type", "application/json")],
                    body: "{\"key\":\"k\(index)\",\"value\":\(index)}")
            }
            try await connection.send(requests.joined())
            var ids: [String] = []
            for _ in 0..<20 {
                let response = try await connection.response()
                #expect(response.status == 202)
                ids.append(String((response.headers["location"] ?? "").dropFirst("/v1/commands/".count)))
            }
            #expect(try await fastSubmits(probe, port: port) == 20)
            // The stream holds them in the order sent, and each response named its own.
            let entries = try probe.redis.xrange(probe.definition.commandStream)
            let envelopes = try entries.map { try Envelope(entry: $0) }
            #expect(envelopes.map(\.id) == ids)
            #expect(envelopes.map(\.data) == (0..<20).map { "{\"key\":\"k\($0)\",\"value\":\($0)}" })
        }
    }

    @Test("Connection: close is honoured after a channel-level 202")
    func connectionClose() async throws {
        try await live { probe, port in
            let connection = try RawHTTPConnection(port: port)
            try await connection.send(
                RawHTTPConnection.request(
                    "POST", "/v1/\(probe.name)/records",
                    headers: [("Content-Type", "application/json"), ("Connection", "close")], body: Self.valid))
            #expect(try await connection.response().status == 202)
            try await connection.waitForClose()
            #expect(try await fastSubmits(probe, port: port) == 1)
        }
    }

    @Test("a client that half-closes after its request still gets the 202, on either path")
    func halfClose() async throws {
        for fast in [true, false] {
            try await live(fastSubmit: fast) { probe, port in
                let connection = try RawHTTPConnection(port: port)
                try await connection.send(
                    RawHTTPConnection.request(
                        "POST", "/v1/\(probe.name)/records", headers: [("Content-Type", "application/json")],
                        body: Self.valid))
                connection.finishSending()
                #expect(try await connection.response().status == 202, "fast: \(fast)")
            }
        }
    }

    @Test("with keys on, a valid key is served at the channel level; a missing or unknown key is the router's 401")
    func keys() async throws {
        try await live(keys: "ops:ops-secret-0123456789,bob:bob-secret-0123456789") { probe, port in
            let connection = try RawHTTPConnection(port: port)
            func submit(_ key: String?) async throws -> RawHTTPResponse {
                var headers = [("Content-Type", "application/json")]
                if let key { headers.append(("Authorization", "Bearer \(key)")) }
                try await connection.send(
                    RawHTTPConnection.request("POST", "/v1/\(probe.name)/records", headers: headers, body: Self.valid))
                return try await connection.response()
            }
            #expect(try await submit(nil).status == 401)
            #expect(try await submit("wrong-wrong-wrong-wrong").status == 401)
            let accepted = try await submit("ops-secret-0123456789")
            #expect(accepted.status == 202)
            #expect(try await fastSubmits(probe, port: port) == 1)
            // The command belongs to the key that submitted it, on this path too.
            let id = try #require(
                (try JSONSerialization.jsonObject(with: Data(accepted.body.utf8)) as? [String: Any])?["id"] as? String)
            #expect(try probe.command(id)["principal"] == "ops")
            for (key, visible) in [("ops-secret-0123456789", true), ("bob-secret-0123456789", false)] {
                try await connection.send(
                    RawHTTPConnection.request(
                        "GET", "/v1/commands/\(id)", headers: [("Authorization", "Bearer \(key)")]))
                let status = try await connection.response().status
                #expect(visible ? status == 202 : status == 404, "\(key): \(status)")
            }
        }
    }

    @Test("with a rate limit, the channel level charges the key and answers 429 past the burst")
    func rateLimited() async throws {
        try await live(keys: "ops_{probe}:ops-secret-0123456789", limit: RateLimit(perSecond: 0.1, burst: 4)) {
            probe, port in
            let connection = try RawHTTPConnection(port: port)
            var statuses: [Int] = []
            var problem: RawHTTPResponse?
            for index in 0..<8 {
                try await connection.send(
                    RawHTTPConnection.request(
                        "POST", "/v1/\(probe.name)/records",
                        headers: [
                            ("Content-Type", "application/json"), ("Authorization", "Bearer ops-secret-0123456789"),
                        ],
                        body: "{\"key\":\"r\",\"value\":\(index)}"))
                let response = try await connection.response()
                statuses.append(response.status)
                if response.status == 429 { problem = response }
            }
            #expect(statuses == [202, 202, 202, 202, 202, 429, 429, 429])
            let refused = try #require(problem)
            #expect(Int(refused.headers["retry-after"] ?? "") ?? 0 >= 1)
            #expect(refused.headers["content-type"] == "application/problem+json")
            #expect(refused.body.contains("ops_\(probe.name)"))
            // The first request may load the limit's script through the router; the rest are
            // answered at the channel level.
            #expect(try await fastSubmits(probe, port: port) >= 4)
        }
    }

    @Test("a service without a live worker is the router's 503; with one, submits are taken at the channel level")
    func liveness() async throws {
        try await live(requireLiveWorker: true) { probe, port in
            let connection = try RawHTTPConnection(port: port)
            let request = RawHTTPConnection.request(
                "POST", "/v1/\(probe.name)/records", headers: [("Content-Type", "application/json")], body: Self.valid)
            try await connection.send(request)
            let refused = try await connection.response()
            #expect(refused.status == 503)
            #expect(refused.headers["retry-after"] != nil)
            let worker = try probe.startWorker()
            defer { probe.stop(worker) }
            try await eventually("worker heartbeat") { try probe.liveWorkers().count == 1 }
            // The router answers 503 while its reading (kept a second) says no live worker,
            // then reads again; submits within a second of a good reading are taken at the
            // channel level.
            try await eventually("a submit accepted", timeout: 10) {
                try await connection.send(request)
                return try await connection.response().status == 202
            }
            // Once the background readings are fresh, submits are taken at the channel level.
            try await eventually("a submit taken at the channel level", timeout: 10) {
                try await connection.send(request)
                #expect(try await connection.response().status == 202)
                return try await fastSubmits(probe, port: port) >= 1
            }
        }
    }
}

/// Carries a response out of a `@Sendable` test body.
private final class ResponseBox: @unchecked Sendable {
    var response: RawHTTPResponse?
}
