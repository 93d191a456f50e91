import Choreo
import ChoreoTesting
import Foundation
import Redis
import Testing

@Suite("Redis durability: replicated writes")
struct DurabilityTests {
    static var replicated: RedisDurability { RedisDurability(level: .replicated, replicas: 1, timeout: 0.5) }

    @Test("replicated on the cluster: every publish reaches a replica before its outbox rows go")
    func replicatedOnCluster() async throws {
        var probe = try ProbeHarness(redisURL: TestCluster.url)
        probe.topology.redisDurability = Self.replicated
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        for index in 0..<50 { try probe.send("Record", "{\"key\":\"k\(index)\",\"value\":\(index)}") }
        try await eventually("50 records, nothing pending, the outbox empty") {
            try probe.recordCount() == 50 && probe.pendingCount() == 0 && probe.outboxCount() == 0
        }
        #expect(try probe.redis.xlen(probe.definition.eventStream) == 50)
        // What the master has, its replica has: WAIT with no new writes answers at once.
        let replicas = try probe.redis.onEveryNode(["WAIT", "1", "100"])
        #expect(replicas.allSatisfy { $0.reply.int == 1 })
        #expect(throws: RedisError.self) {
            try probe.redis.waitForReplicas(
                RedisDurability(level: .replicated, replicas: 2, timeout: 0.1), keys: [probe.definition.eventStream])
        }
    }

    @Test("replicated without a replica: effects commit, published rows stay and are republished, none deleted")
    func replicatedWithoutReplica() async throws {
        var probe = try ProbeHarness()
        probe.topology.redisDurability = Self.replicated
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        for index in 0..<5 { try probe.send("Record", "{\"key\":\"k\(index)\",\"value\":\(index)}") }
        try await eventually("5 records, nothing pending") { try probe.recordCount() == 5 && probe.pendingCount() == 0 }
        // The relay publishes the rows again (the standalone server has no replica to wait for)
        // and keeps them: more copies in the stream than messages, every row still there.
        try await eventually("the relay republished", timeout: 15) {
            try probe.redis.xlen(probe.definition.eventStream) > 5
        }
        #expect(try probe.outboxCount() == 10, "an event and a result per message")
        #expect(try probe.inboxCount() == 5)
    }
}
