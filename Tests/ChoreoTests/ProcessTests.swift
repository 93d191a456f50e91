import Choreo
import ChoreoTesting
import Foundation
import Postgres
import Redis
import Testing

@Suite("Worker processes, crashes and outages")
struct ProcessTests {
    @Test("two processes share the work; kill -9 mid-batch loses and doubles nothing; SIGTERM drains, exit 0")
    func poolKillAndDrain() async throws {
        let probe = try ProbeHarness()
        let file = try probe.writeTopology(processes: 2, batch: 10)
        let supervisor = try probe.spawnChoreo(["worker", probe.name, "--topology", file])
        try await eventually("two live workers", timeout: 30) { try probe.liveWorkers().count == 2 }
        for index in 0..<300 { try probe.send("Sleep", "{\"key\":\"s\",\"value\":\(index),\"ms\":3}") }
        try await eventually("work under way", timeout: 30) { try probe.recordCount() >= 40 }
        let victim = try #require(try probe.liveWorkers().first)
        kill(victim.pid, SIGKILL)
        try await eventually("every message applied", timeout: 60) { try probe.recordCount() == 300 }
        try await eventually("nothing pending", timeout: 30) { try probe.pendingCount() == 0 }
        #expect(try probe.inboxCount() == 300)
        #expect(try probe.deadLetters().isEmpty)
        let handlers = try probe.postgres.query("SELECT count(DISTINCT handled_by) AS n FROM \(probe.name).records")
        #expect(try handlers.first?.decode(Int.self, "n") ?? 0 >= 2)
        try await eventually("the supervisor restarted the killed child", timeout: 30) {
            let live = try probe.liveWorkers()
            return live.count == 2 && !live.contains { $0.pid == victim.pid }
        }
        kill(supervisor, SIGTERM)
        let status = try await waitForExit(supervisor, timeout: 15)
        #expect(status == 0)
    }

    @Test("a crash between commit and XACK doubles nothing and still publishes the outbox")
    func crashAfterCommit() async throws {
        let probe = try ProbeHarness()
        let file = try probe.writeTopology(processes: 1, batch: 5)
        let sent = try (0..<5).map { try probe.send("Record", "{\"key\":\"c\",\"value\":\($0)}") }
        let crashing = try probe.spawnChoreo(
            ["worker", probe.name, "--single", "--topology", file],
            extraEnvironment: ["CHOREO_FAULT": "exit-after-commit:1"])
        let status = try await waitForExit(crashing, timeout: 30)
        #expect(status == 99)
        #expect(try probe.recordCount() == 5)
        #expect(try probe.pendingCount() == 5)
        #expect(try probe.outboxCount() == 10)  // an event and a result per message
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        try await eventually("adopted and acknowledged", timeout: 30) { try probe.pendingCount() == 0 }
        try await eventually("outbox relayed", timeout: 30) { try probe.outboxCount() == 0 }
        #expect(try probe.recordCount() == 5)
        for message in sent { #expect(try probe.command(message.id)["status"] == "succeeded") }
        #expect(try probe.redis.xlen(probe.definition.eventStream) == 5)
        #expect(try probe.deadLetters().isEmpty)
    }

    @Test("Postgres unreachable for a while: messages stay pending, then are processed, none lost or dead")
    func postgresOutage() async throws {
        let admin = try PostgresConnection(url: TestEnvironment.adminDatabaseURL)
        let (database, url) = try TestEnvironment.scratchDatabase()
        let probe = try ProbeHarness(postgresURL: url)
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        for index in 0..<10 { try probe.send("Record", "{\"key\":\"before\",\"value\":\(index)}") }
        try await eventually("first messages handled") { try probe.recordCount() == 10 }

        try admin.execute("ALTER DATABASE \(database) ALLOW_CONNECTIONS false")
        try admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", [database])
        for index in 0..<20 { try probe.send("Record", "{\"key\":\"during\",\"value\":\(index)}") }
        try await eventually("the worker holds a batch pending") { try probe.pendingCount() > 0 }
        // The holding loop's waits double from 50 ms to 1 s: 3 s into the outage several rounds
        // went by, and the held entry is still this consumer's first delivery (a retry through
        // an outage counts none, and the entry was not adopted).
        let outage = Date()
        try await eventually("still held after several retry rounds, no delivery counted", timeout: 20) {
            guard
                let row = try probe.redis.xpending(probe.definition.commandStream, group: probe.name, count: 1).first
            else { return false }
            #expect(row.deliveries == 1, "\(row)")
            return Date().timeIntervalSince(outage) > 3
        }
        try admin.execute("ALTER DATABASE \(database) ALLOW_CONNECTIONS true")
        let check = try PostgresConnection(url: url)
        try await eventually("all processed after Postgres returned", timeout: 30) {
            try check.query("SELECT count(*) AS n FROM \(probe.name).records").first?.decode(Int.self, "n") == 30
        }
        try await eventually("nothing pending") { try probe.pendingCount() == 0 }
        #expect(try probe.deadLetters().isEmpty)
    }

    @Test("Redis restart (AOF): consumers reconnect and continue")
    func redisRestart() async throws {
        let server = try EphemeralRedis()
        let probe = try ProbeHarness(redisURL: server.url)
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        for index in 0..<50 { try probe.send("Record", "{\"key\":\"a\",\"value\":\(index)}") }
        try await eventually("first half") { try probe.recordCount() == 50 }
        server.stop()
        try server.start()
        try await eventually("producer reconnects", timeout: 10) {
            (try? probe.redis.command(["PING"])) == .status("PONG")
        }
        for index in 0..<50 { try probe.send("Record", "{\"key\":\"b\",\"value\":\(index)}") }
        try await eventually("second half after the restart", timeout: 30) { try probe.recordCount() == 100 }
        try await eventually("nothing pending") { try probe.pendingCount() == 0 }
        #expect(try probe.deadLetters().isEmpty)
    }
}
