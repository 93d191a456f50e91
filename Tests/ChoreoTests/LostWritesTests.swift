import Choreo
import ChoreoTesting
import Foundation
import Redis
import Testing

@Suite("Redis losing acknowledged writes", .timeLimit(.minutes(2)))
struct LostWritesTests {
    @Test("Redis back from an older snapshot: every effect's event and result is published again, once")
    func restoredFromOlderSnapshot() async throws {
        let server = try EphemeralRedis(appendOnly: false)
        let probe = try ProbeHarness(redisURL: server.url)
        var worker = try probe.startWorker()
        let warm = try probe.send("Record", "{\"key\":\"warm\",\"value\":0}")
        try await eventually("the first message handled") { try probe.recordCount() == 1 && probe.pendingCount() == 0 }
        // The snapshot Redis will come back from; everything after it is acknowledged, then lost.
        try probe.redis.command(["SAVE"])
        let sent = try (1...20).map { try probe.send("Record", "{\"key\":\"k\($0)\",\"value\":\($0)}") }
        try await eventually("20 more handled and published") {
            try probe.recordCount() == 21 && probe.pendingCount() == 0 && probe.outboxCount() == 0
        }
        probe.stop(worker)

        server.stop()
        try server.start()
        let redis = try RedisConnection(url: server.url)
        #expect(try redis.xlen(probe.definition.eventStream) == 1, "Redis lost the events published after the snapshot")
        #expect(try redis.command(["EXISTS", Topology.commandKey(sent[0].id)]).int == 0)

        // A new worker process (nothing in memory) sees that Redis is not the server the outbox
        // rows went to, and publishes the window again.
        worker = try probe.startWorker()
        defer { probe.stop(worker) }
        try await eventually("every event and result is back", timeout: 20) {
            let causes = Set(try redis.xrange(probe.definition.eventStream).compactMap { $0["causation"] })
            let decided = try sent.allSatisfy {
                try redis.command(["HGET", Topology.commandKey($0.id), "status"]).string == "succeeded"
            }
            return causes.isSuperset(of: sent.map(\.id)) && decided
        }
        #expect(try probe.recordCount() == 21, "no effect applied twice")
        #expect(try probe.command(warm.id)["status"] == "succeeded")
    }
}
