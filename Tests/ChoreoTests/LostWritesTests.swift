import ChoreoTesting
import Foundation
import Redis
import Testing

@testable import Choreo

@Suite("Redis losing acknowledged writes", .timeLimit(.minutes(2)))
struct LostWritesTests {
    /// Whether `redis` holds again an event caused by each of `sent` and its succeeded result.
    static func republished(_ sent: [Envelope], probe: ProbeHarness, redis: RedisConnection) throws -> Bool {
        let causes = Set(try redis.xrange(probe.definition.eventStream).compactMap { $0["causation"] })
        let decided = try sent.allSatisfy {
            try redis.command(["HGET", Topology.commandKey($0.id), "status"]).string == "succeeded"
        }
        return causes.isSuperset(of: sent.map(\.id)) && decided
    }

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
            try Self.republished(sent, probe: probe, redis: redis)
        }
        #expect(try probe.recordCount() == 21, "no effect applied twice")
        #expect(try probe.command(warm.id)["status"] == "succeeded")
    }

    @Test("a republished window keeps the process's heartbeat fresh: the relay beats between its chunks")
    func relayKeepsTheHeartbeat() async throws {
        let probe = try ProbeHarness()
        let worker = try probe.startWorker()
        _ = try (1...30).map { try probe.send("Record", "{\"key\":\"b\($0)\",\"value\":\($0)}") }
        try await eventually("30 handled and published") {
            try probe.recordCount() == 30 && probe.pendingCount() == 0 && probe.outboxCount() == 0
        }
        probe.stop(worker)  // its heartbeat goes with it
        // As after Redis lost writes: the window is unpublished again; only the relay runs.
        try probe.postgres.query("UPDATE \(probe.name).outbox SET published_at = NULL")
        var intervals = ProbeHarness.quickIntervals
        intervals.heartbeat = 0
        let process = try WorkerProcess(
            service: probe.service, topology: probe.topology, consumer: "relay-\(probe.name)", intervals: intervals)
        let published = try process.maintenance.relay(
            redis: probe.redis, postgres: probe.postgres, schema: probe.name, minimumAge: 0)
        #expect(published >= 30)
        #expect(
            try Heartbeat.all(service: probe.name, redis: probe.redis).contains {
                $0.consumer == "relay-\(probe.name)"
            },
            "no heartbeat written while the relay ran")
    }

    @Test(
        "a replica that missed the last writes promoted behind the master's address: the running worker publishes them again, once"
    )
    func promotedReplicaMissedWrites() async throws {
        let master = try EphemeralRedis(appendOnly: false)
        let replica = try EphemeralRedis(appendOnly: false)
        let standby = try RedisConnection(url: replica.url)
        try standby.command(["REPLICAOF", "127.0.0.1", String(master.port)])
        // The system knows one address; a failover moves what is behind it (a virtual IP).
        let proxy = try TCPProxy(target: master.port)
        defer { proxy.stop() }
        let probe = try ProbeHarness(redisURL: proxy.url)
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        let warm = try probe.send("Record", "{\"key\":\"warm\",\"value\":0}")
        try await eventually("the first message handled, its event on the replica", timeout: 20) {
            try probe.recordCount() == 1 && probe.pendingCount() == 0
                && standby.xlen(probe.definition.eventStream) == 1
        }
        // The replica is cut off and promoted with what it has (as a failover does when the
        // master stops answering it); the master still takes writes, acknowledged and then lost.
        try standby.command(["REPLICAOF", "NO", "ONE"])
        let sent = try (1...20).map { try probe.send("Record", "{\"key\":\"k\($0)\",\"value\":\($0)}") }
        try await eventually("20 more handled and published to the old master", timeout: 20) {
            try probe.recordCount() == 21 && probe.pendingCount() == 0 && probe.outboxCount() == 0
        }
        master.stop()
        proxy.redirect(to: replica.port)
        #expect(try standby.xlen(probe.definition.eventStream) == 1, "the promoted replica lacks the last events")

        // The worker keeps running: it reconnects to the same address, finds another server
        // there (its run id), and publishes the republish window again.
        try await eventually("every event and result is back", timeout: 30) {
            try Self.republished(sent, probe: probe, redis: standby)
        }
        #expect(try probe.recordCount() == 21, "no effect applied twice")
        #expect(try standby.command(["HGET", Topology.commandKey(warm.id), "status"]).string == "succeeded")
    }
}
