import Choreo
import ChoreoTesting
import Foundation
import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Postgres
import Testing

/// A gateway over a probe harness, with the probe's routes.
struct GatewayFixture {
    let probe: ProbeHarness
    let gateway: Gateway

    init(requireLiveWorker: Bool = true) throws {
        probe = try ProbeHarness().withRoutes()
        var configuration = GatewayConfiguration()
        configuration.requireLiveWorker = requireLiveWorker
        configuration.maxBodyBytes = 2048
        gateway = try Gateway(topology: probe.topology, configuration: configuration)
        gateway.start()
    }

    var records: String { "/v1/\(probe.name)/records" }

    /// Starts a worker for the probe and waits for its heartbeat, so submits are not refused.
    func runningWorker() async throws -> WorkerProcess {
        let worker = try probe.startWorker()
        try await eventually("worker heartbeat") { try probe.liveWorkers().count == 1 }
        return worker
    }

    func test<T>(_ body: @Sendable (any TestClientProtocol) async throws -> T) async throws -> T {
        let app = Application(router: gateway.router())
        return try await app.test(.router, body)
    }
}

let json: HTTPFields = [.contentType: "application/json"]

func body(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

func object(_ response: TestResponse) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])
}

@Suite("Gateway")
struct GatewayTests {
    @Test("submit: 202 with Location; long-wait returns the result as soon as it lands")
    func submitAndWait() async throws {
        let fixture = try GatewayFixture()
        defer { fixture.gateway.stop() }
        let worker = try await fixture.runningWorker()
        defer { fixture.probe.stop(worker) }
        try await fixture.test { client in
            let accepted = try await client.execute(
                uri: fixture.records, method: .post, headers: json, body: body("{\"key\":\"a\",\"value\":7}"))
            #expect(accepted.status == .accepted)
            let id = try #require(try object(accepted)["id"] as? String)
            #expect(accepted.headers[.location] == "/v1/commands/\(id)")
            #expect(try object(accepted)["status"] as? String == "accepted")
            let started = Date()
            let done = try await client.execute(uri: "/v1/commands/\(id)?wait=20", method: .get)
            #expect(done.status == .ok)
            #expect(Date().timeIntervalSince(started) < 15)
            let record = try object(done)
            #expect(record["status"] as? String == "succeeded")
            #expect((record["result"] as? [String: Any])?["value"] as? Int == 7)
            #expect(record["type"] as? String == "Record")
            #expect(record["submittedAt"] != nil && record["completedAt"] != nil)
            // Prefer: wait works too, and a terminal command answers at once.
            let again = try await client.execute(
                uri: "/v1/commands/\(id)", method: .get, headers: [HTTPField.Name("Prefer")!: "wait=10"])
            #expect(again.status == .ok)
        }
    }

    @Test("a long-wait that sees no result answers 202 when the wait ends")
    func waitTimesOut() async throws {
        let fixture = try GatewayFixture()
        defer { fixture.gateway.stop() }
        let worker = try await fixture.runningWorker()
        defer { fixture.probe.stop(worker) }
        // The handler waits for an advisory lock the test holds, so the command stays
        // undecided for as long as the test needs, however loaded the machine is.
        let key = TestEnvironment.uniqueName("lock")
        let holder = try PostgresConnection(url: TestEnvironment.databaseURL)
        try holder.query("SELECT pg_advisory_lock(hashtext($1))", [key])
        try await fixture.test { client in
            let accepted = try await client.execute(
                uri: "/v1/\(fixture.probe.name)/locked", method: .post, headers: json,
                body: body("{\"key\":\"\(key)\",\"value\":1}"))
            let id = try #require(try object(accepted)["id"] as? String)
            let pending = try await client.execute(uri: "/v1/commands/\(id)?wait=0.5", method: .get)
            #expect(pending.status == .accepted, "\(String(buffer: pending.body))")
            #expect(try object(pending)["status"] as? String == "accepted")
            try holder.query("SELECT pg_advisory_unlock(hashtext($1))", [key])
            let done = try await client.execute(uri: "/v1/commands/\(id)?wait=20", method: .get)
            #expect(done.status == .ok)
        }
    }

    @Test("many concurrent long-waiters are all woken by the one results tail")
    func manyWaiters() async throws {
        let fixture = try GatewayFixture(requireLiveWorker: false)
        defer { fixture.gateway.stop() }
        let count = 1000
        try await fixture.test { client in
            var ids: [String] = []
            for index in 0..<count {
                let accepted = try await client.execute(
                    uri: fixture.records, method: .post, headers: json, body: body("{\"key\":\"w\",\"value\":\(index)}")
                )
                ids.append(try #require(try object(accepted)["id"] as? String))
            }
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for id in ids {
                    group.addTask { try await client.execute(uri: "/v1/commands/\(id)?wait=60", method: .get).status }
                }
                try await eventually("all parked", timeout: 30) { fixture.gateway.waiters.count == count }
                let worker = try fixture.probe.startWorker()
                defer { fixture.probe.stop(worker) }
                var statuses: [HTTPResponse.Status] = []
                for try await status in group { statuses.append(status) }
                return statuses
            }
            #expect(statuses.count == count)
            #expect(statuses.allSatisfy { $0 == .ok })
            #expect(fixture.gateway.waiters.count == 0)
        }
    }

    @Test("Idempotency-Key: same body returns the same command; a different body is 422")
    func idempotency() async throws {
        let fixture = try GatewayFixture(requireLiveWorker: false)
        defer { fixture.gateway.stop() }
        try await fixture.test { client in
            var headers = json
            headers[HTTPField.Name("Idempotency-Key")!] = "order-42"
            let first = try await client.execute(
                uri: fixture.records, method: .post, headers: headers, body: body("{\"key\":\"i\",\"value\":1}"))
            let second = try await client.execute(
                uri: fixture.records, method: .post, headers: headers, body: body("{\"value\":1,\"key\":\"i\"}"))
            #expect(first.status == .accepted && second.status == .accepted)
            #expect(try object(first)["id"] as? String == object(second)["id"] as? String)
            #expect(try fixture.probe.redis.xlen(fixture.probe.definition.commandStream) == 1)
            let conflict = try await client.execute(
                uri: fixture.records, method: .post, headers: headers, body: body("{\"key\":\"i\",\"value\":2}"))
            #expect(conflict.status == .unprocessableContent)
            #expect(conflict.headers[.contentType] == "application/problem+json")
        }
    }

    @Test("every error is an RFC 9457 problem with the right status")
    func problems() async throws {
        let fixture = try GatewayFixture(requireLiveWorker: true)
        defer { fixture.gateway.stop() }
        try await fixture.test { client in
            func expectProblem(_ response: TestResponse, _ status: HTTPResponse.Status, _ fragment: String) throws {
                #expect(response.status == status)
                #expect(response.headers[.contentType] == "application/problem+json")
                let problem = try object(response)
                #expect(problem["status"] as? Int == Int(status.code))
                #expect(problem["title"] is String && problem["type"] is String)
                if !fragment.isEmpty {
                    #expect((problem["detail"] as? String)?.contains(fragment) == true, "\(problem)")
                }
            }
            try expectProblem(
                try await client.execute(uri: fixture.records, method: .post, headers: json, body: body("{\"key\":")),
                .badRequest, "not valid JSON")
            // The body is forwarded as sent, so a repeated key (which copy counts?) is refused.
            try expectProblem(
                try await client.execute(
                    uri: fixture.records, method: .post, headers: json,
                    body: body("{\"key\":\"a\",\"value\":1,\"key\":\"b\"}")),
                .badRequest, "'key' appears twice in one object")
            try expectProblem(
                try await client.execute(
                    uri: fixture.records, method: .post, headers: [.contentType: "text/plain"], body: body("hi")),
                .unsupportedMediaType, "application/json")
            try expectProblem(
                try await client.execute(
                    uri: fixture.records, method: .post, headers: json,
                    body: body("{\"key\":\"\(String(repeating: "x", count: 5000))\",\"value\":1}")),
                .contentTooLarge, "over 2048 bytes")
            // A NUL character (escaped or not in the JSON) is refused, naming the field: no
            // store downstream could keep it whole.
            let nul = try await client.execute(
                uri: fixture.records, method: .post, headers: json, body: body("{\"key\":\"a\\u0000b\",\"value\":1}"))
            try expectProblem(nul, .unprocessableContent, "does not match")
            let nulErrors = try #require(try object(nul)["errors"] as? [[String: String]])
            #expect(nulErrors == [["field": "key", "message": "must not contain the NUL character (U+0000)"]])
            let invalid = try await client.execute(
                uri: fixture.records, method: .post, headers: json, body: body("{\"key\":5,\"extra\":true}"))
            try expectProblem(invalid, .unprocessableContent, "does not match")
            let errors = try #require(try object(invalid)["errors"] as? [[String: String]])
            #expect(errors.map { $0["field"] ?? "" }.sorted() == ["extra", "key", "value"])
            #expect(errors.first { $0["field"] == "key" }?["message"] == "must be a string, not integer")
            try expectProblem(
                try await client.execute(uri: "/v1/commands/nope", method: .get), .notFound, "no command nope")
            try expectProblem(try await client.execute(uri: "/v1/nowhere", method: .get), .notFound, "")
            let unavailable = try await client.execute(
                uri: fixture.records, method: .post, headers: json, body: body("{\"key\":\"k\",\"value\":1}"))
            try expectProblem(unavailable, .serviceUnavailable, "no live worker")
            #expect(unavailable.headers[.retryAfter] == "5")
            try expectProblem(
                try await client.execute(uri: "/v1/commands/x?wait=soon", method: .get), .notFound, "")
        }
    }

    @Test("queries are answered by the owning service: 200, or 404 when it says not found")
    func queries() async throws {
        let fixture = try GatewayFixture()
        defer { fixture.gateway.stop() }
        let worker = try await fixture.runningWorker()
        defer { fixture.probe.stop(worker) }
        try await fixture.test { client in
            let accepted = try await client.execute(
                uri: fixture.records, method: .post, headers: json, body: body("{\"key\":\"q\",\"value\":3}"))
            let id = try #require(try object(accepted)["id"] as? String)
            _ = try await client.execute(uri: "/v1/commands/\(id)?wait=20", method: .get)
            let found = try await client.execute(uri: "\(fixture.records)/q", method: .get)
            #expect(found.status == .ok)
            #expect(try object(found)["value"] as? Int == 3)
            let missing = try await client.execute(uri: "\(fixture.records)/nothing", method: .get)
            #expect(missing.status == .notFound)
            #expect(try object(missing)["detail"] as? String == "no record with key 'nothing'")
        }
    }

    @Test("health, readiness and metrics")
    func operations() async throws {
        let fixture = try GatewayFixture()
        defer { fixture.gateway.stop() }
        try await fixture.test { client in
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
            let notReady = try await client.execute(uri: "/readyz", method: .get)
            #expect(notReady.status == .serviceUnavailable)
            #expect(String(buffer: notReady.body).contains("no live worker"))
            let worker = try fixture.probe.startWorker()
            defer { fixture.probe.stop(worker) }
            try await eventually("ready", timeout: 10) {
                try await client.execute(uri: "/readyz", method: .get).status == .ok
            }
            let metrics = String(buffer: try await client.execute(uri: "/metrics", method: .get).body)
            #expect(metrics.contains("choreo_gateway_requests_total"))
            #expect(metrics.contains("route=\"/readyz\""))
        }
    }
}

@Suite("OpenAPI document")
struct OpenAPITests {
    @Test("the document lists exactly the router's routes and parses as YAML with every path")
    func matchesRouter() async throws {
        let fixture = try GatewayFixture(requireLiveWorker: false)
        defer { fixture.gateway.stop() }
        try await fixture.test { client in
            let response = try await client.execute(uri: "/openapi.yaml", method: .get)
            #expect(response.status == .ok)
            let text = String(buffer: response.body)
            #expect(text.hasPrefix("openapi: 3.1.0"))
            let documented = Set(
                text.split(separator: "\n").filter { $0.hasPrefix("  /") && $0.hasSuffix(":") }.map {
                    String($0.dropFirst(2).dropLast())
                })
            let routed = Set(fixture.probe.topology.routes.map(\.path) + OpenAPIDocument.fixedPaths)
            #expect(documented == routed)
            for path in routed where path.hasPrefix("/v1/\(fixture.probe.name)") || path == "/healthz" {
                let concrete = path.replacingOccurrences(of: "{key}", with: "k")
                let method: HTTPRequest.Method =
                    path.hasSuffix("records") || path.hasSuffix("sleeps") || path.hasSuffix("locked") ? .post : .get
                let status = try await client.execute(uri: concrete, method: method, headers: json, body: body("{}"))
                    .status
                #expect(status != .notFound || path.contains("{key}"), "\(path) is documented but not routed")
            }
        }
        let path = TestEnvironment.workDirectory + "/openapi-\(fixture.probe.name).yaml"
        try OpenAPIDocument.yaml(for: fixture.probe.topology).write(toFile: path, atomically: true, encoding: .utf8)
    }
}
