import Choreo
import ChoreoTesting
import Foundation
import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// Commands and Idempotency-Keys belong to the API key (principal) that submitted them.
@Suite("Gateway tenancy: commands belong to their principal")
struct TenancyTests {
    static let alice = "alice-secret-0123456789"
    static let bob = "bob-secret-0123456789"
    static let ops = "ops-secret-0123456789"

    func headers(_ key: String, idempotency: String? = nil) -> HTTPFields {
        var fields: HTTPFields = [.contentType: "application/json", .authorization: "Bearer \(key)"]
        if let idempotency { fields[HTTPField.Name("Idempotency-Key")!] = idempotency }
        return fields
    }

    @Test("two keys: the same Idempotency-Key makes two commands; another principal's command is 404; admin reads all")
    func scopedToPrincipal() async throws {
        let probe = try ProbeHarness().withRoutes()
        var configuration = GatewayConfiguration()
        configuration.requireLiveWorker = false
        configuration.keys = try APIKeyring(
            spec: "alice:\(Self.alice),bob:\(Self.bob),ops:\(Self.ops):admin")
        let gateway = try Gateway(topology: probe.topology, configuration: configuration)
        gateway.start()
        defer { gateway.stop() }
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        let uri = "/v1/\(probe.name)/records"
        let payload = "{\"key\":\"secret-email\",\"value\":1}"
        try await Application(router: gateway.router()).test(.router) { client in
            func submit(_ key: String, _ body: String, idempotency: String? = "k-1") async throws -> TestResponse {
                try await client.execute(
                    uri: uri, method: .post, headers: headers(key, idempotency: idempotency),
                    body: ByteBuffer(string: body))
            }
            let first = try await submit(Self.alice, payload)
            #expect(first.status == .accepted)
            let aliceID = try #require(try object(first)["id"] as? String)
            let bobs = try await submit(Self.bob, payload)
            #expect(bobs.status == .accepted)
            let bobID = try #require(try object(bobs)["id"] as? String)
            #expect(bobID != aliceID, "the same key under another principal is another command")
            #expect(try object(try await submit(Self.alice, payload))["id"] as? String == aliceID)
            // Bob reusing his key with another body: 422 that names only his own command.
            let conflict = try await submit(Self.bob, "{\"key\":\"other\",\"value\":2}")
            #expect(conflict.status == .unprocessableContent)
            let text = String(buffer: conflict.body)
            #expect(!text.contains(aliceID))

            func read(_ id: String, as key: String, wait: Int = 0) async throws -> TestResponse {
                try await client.execute(
                    uri: "/v1/commands/\(id)" + (wait > 0 ? "?wait=\(wait)" : ""), method: .get,
                    headers: [.authorization: "Bearer \(key)"])
            }
            // A stranger asking to wait a minute is refused, not parked: the answer comes long
            // before the wait would run out (a generous margin: the suite runs loaded).
            let started = Date()
            let stranger = try await read(aliceID, as: Self.bob, wait: 60)
            #expect(stranger.status == .notFound)
            #expect(Date().timeIntervalSince(started) < 30, "a stranger's long-wait is refused, not parked")
            #expect(!String(buffer: stranger.body).contains("secret-email"))
            let own = try await read(aliceID, as: Self.alice, wait: 5)
            #expect(own.status == .ok)
            #expect(try object(own)["status"] as? String == "succeeded")
            #expect(try await read(aliceID, as: Self.ops).status == .ok, "admin reads every command")
            #expect(try await read(bobID, as: Self.alice).status == .notFound)
            #expect(try await read(bobID, as: Self.bob).status == .ok)
        }
        #expect(try probe.command(aliceID(in: probe))["principal"] == "alice")
    }

    func aliceID(in probe: ProbeHarness) throws -> String {
        let entries = try probe.redis.xrange(probe.definition.commandStream)
        return try #require(entries.first?["id"])
    }
}
