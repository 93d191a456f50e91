import ChoreoTesting
import Foundation
import Shop
import Testing

/// The gateway's per-key rate limit across gateway processes.
@Suite("Gateway processes")
struct GatewayProcessTests {
    @Test("two gateway processes share one key's rate limit through Redis")
    func sharedRateLimit() async throws {
        let probe = try ProbeHarness()
        let path = try probe.writeTopology(processes: 1)
        let environment = ["CHOREO_API_KEYS": "ci_\(probe.name):shared-limit-secret-1"]
        // A slow refill (one token per 10 s), so the outcome does not depend on how fast this runs.
        let limit = ["--rate-limit", "0.1/s,burst=5"]
        let first = try await probe.spawnGateway(topology: path, environment: environment, arguments: limit)
        let second = try await probe.spawnGateway(topology: path, environment: environment, arguments: limit)
        var statuses: [Int] = []
        var retryAfter: String?
        let started = Date()
        for index in 0..<20 {
            let client = ShopClient(
                base: "http://127.0.0.1:\(index % 2 == 0 ? first.port : second.port)", apiKey: "shared-limit-secret-1")
            let reply = try await client.get("/v1/commands/none-\(index)")
            statuses.append(reply.status)
            if reply.status == 429 { retryAfter = retryAfter ?? reply.header("retry-after") }
        }
        let elapsed = Date().timeIntervalSince(started)
        let allowed = statuses.filter { $0 == 404 }.count
        // Shared: the burst (5) plus what refills meanwhile; two separate limits would allow 10.
        #expect(allowed >= 5 && allowed <= 5 + Int((elapsed / 10).rounded(.up)), "\(statuses) in \(elapsed) s")
        #expect(allowed < 10 || elapsed > 40, "\(statuses)")
        #expect(statuses.filter { $0 == 429 }.count == 20 - allowed)
        #expect(retryAfter != nil)
        kill(first.pid, SIGTERM)
        kill(second.pid, SIGTERM)
    }
}
