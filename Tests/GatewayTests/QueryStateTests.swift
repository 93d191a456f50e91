import Choreo
import ChoreoTesting
import Foundation
import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Redis
import Testing

/// Queries are read-only: answering them leaves no inbox row and no long-lived key.
@Suite("Queries leave no state", .timeLimit(.minutes(3)))
struct QueryStateLoadTests {
    @Test("10,000 queries leave no inbox rows and no reply record that outlives a minute")
    func queriesLeaveNothing() async throws {
        let fixture = try GatewayFixture()
        defer { fixture.gateway.stop() }
        let worker = try await fixture.runningWorker()
        defer { fixture.probe.stop(worker) }
        let probe = fixture.probe
        let total = 10_000
        let started = Envelope.nowMilliseconds()
        let answered = try await fixture.test { client -> Int in
            let accepted = try await client.execute(
                uri: fixture.records, method: .post, headers: json, body: body("{\"key\":\"q\",\"value\":3}"))
            let id = try #require(
                try object(accepted)["id"] as? String, "\(accepted.status) \(String(buffer: accepted.body))")
            _ = try await client.execute(uri: "/v1/commands/\(id)?wait=20", method: .get)
            return try await withThrowingTaskGroup(of: Int.self) { group in
                for lane in 0..<50 {
                    group.addTask {
                        var ok = 0
                        for index in stride(from: lane, to: total, by: 50) {
                            let key = index % 10 == 0 ? "nothing" : "q"
                            let response = try await client.execute(uri: "\(fixture.records)/\(key)", method: .get)
                            if response.status == (key == "q" ? .ok : .notFound) { ok += 1 }
                        }
                        return ok
                    }
                }
                return try await group.reduce(0, +)
            }
        }
        #expect(answered == total)
        #expect(try probe.inboxCount() == 1, "only the command's inbox row")
        // Every reply record left in Redis (the gateway deletes them once read) expires soon.
        var cursor = "0"
        var lingering: [String] = []
        repeat {
            let reply = try probe.redis.command(["SCAN", cursor, "MATCH", "choreo:command:*", "COUNT", "1000"])
            let parts = reply.array ?? []
            cursor = parts.first?.string ?? "0"
            for key in parts.dropFirst().first?.array?.compactMap(\.string) ?? [] {
                let fields = try probe.redis.command(["HMGET", key, "resultType", "completedAt"]).array ?? []
                guard fields.first?.string == "GetRecord", let at = fields.last?.string.flatMap({ Int64($0) }),
                    at >= started
                else { continue }
                let ttl = try probe.redis.command(["TTL", key]).int ?? -1
                if ttl < 0 || ttl > 60 { lingering.append(key) }
            }
        } while cursor != "0"
        #expect(lingering.isEmpty, "\(lingering.count) reply records outlive a minute")
    }
}
