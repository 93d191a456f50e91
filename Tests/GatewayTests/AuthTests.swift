import Choreo
import ChoreoTesting
import Foundation
import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Gateway authentication and rate limits")
struct AuthTests {
    func gateway(_ probe: ProbeHarness, limit: RateLimit? = nil) throws -> Gateway {
        var configuration = GatewayConfiguration()
        configuration.requireLiveWorker = false
        configuration.keys = try APIKeyring(
            spec:
                "ops_\(probe.name):ops-secret-0123456789,reader:reader-secret-012345:/v1/commands|/v1/\(probe.name)/records/"
        )
        configuration.rateLimit = limit
        return try Gateway(topology: probe.topology, configuration: configuration)
    }

    func headers(_ key: String?) -> HTTPFields {
        var fields: HTTPFields = [.contentType: "application/json"]
        if let key { fields[.authorization] = "Bearer \(key)" }
        return fields
    }

    @Test("no or a wrong key is 401; a key limited to other routes is 403; health stays open")
    func keys() async throws {
        let probe = try ProbeHarness().withRoutes()
        let gateway = try gateway(probe)
        let app = Application(router: gateway.router())
        try await app.test(.router) { client in
            let uri = "/v1/\(probe.name)/records"
            let payload = ByteBuffer(string: "{\"key\":\"a\",\"value\":1}")
            let missing = try await client.execute(uri: uri, method: .post, headers: headers(nil), body: payload)
            #expect(missing.status == .unauthorized)
            #expect(missing.headers[.wwwAuthenticate] == "Bearer")
            #expect(missing.headers[.contentType] == "application/problem+json")
            let wrong = try await client.execute(
                uri: uri, method: .post, headers: headers("nope-nope-nope-nope"), body: payload)
            #expect(wrong.status == .unauthorized)
            let forbidden = try await client.execute(
                uri: uri, method: .post, headers: headers("reader-secret-012345"), body: payload)
            #expect(forbidden.status == .forbidden)
            let ok = try await client.execute(
                uri: uri, method: .post, headers: headers("ops-secret-0123456789"), body: payload)
            #expect(ok.status == .accepted)
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
        }
    }

    @Test("a key's rate limit is shared by two gateways: 429 with Retry-After past the burst")
    func sharedRateLimit() async throws {
        let probe = try ProbeHarness().withRoutes()
        // One token per 100 s: the eight requests fit in one refill period even on a busy machine.
        let limit = RateLimit(perSecond: 0.01, burst: 4)
        let first = Application(router: try gateway(probe, limit: limit).router())
        let second = Application(router: try gateway(probe, limit: limit).router())
        let uri = "/v1/\(probe.name)/records"
        var statuses: [HTTPResponse.Status] = []
        var retryAfter: String?
        for index in 0..<8 {
            let app = index % 2 == 0 ? first : second
            let response = try await app.test(.router) { client in
                try await client.execute(
                    uri: uri, method: .post, headers: headers("ops-secret-0123456789"),
                    body: ByteBuffer(string: "{\"key\":\"r\",\"value\":\(index)}"))
            }
            statuses.append(response.status)
            if response.status == .tooManyRequests { retryAfter = response.headers[.retryAfter] }
        }
        #expect(statuses.prefix(5).allSatisfy { $0 == .accepted }, "\(statuses)")
        #expect(statuses.suffix(3).allSatisfy { $0 == .tooManyRequests }, "\(statuses)")
        #expect(retryAfter.flatMap { Int($0) } ?? 0 >= 1)
    }

    @Test("key specs are validated and secrets are not kept")
    func keySpecs() throws {
        #expect(throws: APIKeyError.self) { try APIKeyring(spec: "short:abc") }
        let ring = try APIKeyring(spec: "a:0123456789abcdef0123\n# comment\nb:fedcba9876543210fedc:/v1/x")
        #expect(ring.keys.map(\.name) == ["a", "b"])
        #expect(ring.authenticate("0123456789abcdef0123")?.name == "a")
        #expect(ring.authenticate("0123456789abcdef012") == nil)
        #expect(ring.keys[1].allows("/v1/x/1") && !ring.keys[1].allows("/v1/y"))
        #expect(!"\(ring)".contains("0123456789abcdef0123"))
    }
}
