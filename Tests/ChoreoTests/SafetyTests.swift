import Choreo
import ChoreoTesting
import Foundation
import Postgres
import Redis
import Testing

/// Outside the happy path: rollbacks, hostile strings, crashes between commit and ack, and
/// Postgres refusing writes. Each test runs real workers on real Redis and Postgres.
@Suite("Safety outside the happy path", .timeLimit(.minutes(5)))
struct SafetyTests {
    @Test("a message that queued a write, queried, then threw leaves no write behind: exactly one row after its retry")
    func rollbackRemovesQueuedWrites() async throws {
        let probe = try ProbeHarness()
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        // Alone and inside a batch with others (the savepoint must not swallow earlier messages' writes).
        let alone = try probe.send("WriteQueryFail", "{\"key\":\"w\",\"value\":1,\"times\":1}")
        try await eventually("the lone message applied") { try probe.command(alone.id)["status"] == "succeeded" }
        probe.stop(worker)
        var batch: [Envelope] = []
        for index in 0..<6 {
            let times = index % 2 == 0 ? 0 : 1
            batch.append(try probe.send("WriteQueryFail", "{\"key\":\"b\",\"value\":\(index),\"times\":\(times)}"))
        }
        let second = try probe.startWorker()
        defer { probe.stop(second) }
        try await eventually("every batch message applied") {
            try batch.allSatisfy { try probe.command($0.id)["status"] == "succeeded" }
        }
        for message in [alone] + batch {
            let rows = try probe.postgres.query(
                "SELECT count(*) AS n FROM \(probe.name).writes WHERE message_id = $1", [message.id]
            ).first?.decode(Int.self, "n")
            #expect(rows == 1, "message \(message.id) left \(rows ?? -1) writes")
        }
        #expect(try probe.recordCount() == 7)
        #expect(try probe.deadLetters().isEmpty)
    }

    @Test(
        "a NUL character never reaches Postgres cut short: the parameter is refused, the message dead-lettered with that reason"
    )
    func nulCharacterIsRefused() async throws {
        let db = try PostgresConnection(url: TestEnvironment.databaseURL)
        let error = #expect(throws: PostgresError.self) {
            try db.query("SELECT $1::text AS t", ["a\u{0}b"])
        }
        #expect(error?.kind == .invalidParameter)
        #expect("\(error!)".contains("NUL"))
        #expect(throws: PostgresError.self) { try db.query("SELECT $1::text[] AS t", [["ok", "a\u{0}b"]]) }
        #expect(throws: PostgresError.self) {
            try db.pipeline([PostgresStatement("SELECT $1::text", ["x\u{0}"])])
        }
        #expect(try db.query("SELECT $1::text AS t", ["a\u{1}b"]).first?.decode(String.self, "t") == "a\u{1}b")

        let probe = try ProbeHarness()
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        let good = try probe.send("Record", "{\"key\":\"fine\",\"value\":1}")
        let bad = try probe.send("Record", "{\"key\":\"a\\u0000b\",\"value\":2}")
        let immediate = try probe.send("RecordNow", "{\"key\":\"c\\u0000d\",\"value\":3}")
        try await eventually("the two NUL messages dead, the good one applied") {
            try probe.deadLetters().count == 2 && probe.command(good.id)["status"] == "succeeded"
        }
        let letters = try probe.deadLetters()
        for letter in letters {
            #expect(letter.errorText.contains("NUL"), "\(letter.errorText)")
            #expect(letter.deliveryCount == 1, "retrying cannot help: dead at once")
        }
        #expect(Set(letters.compactMap { $0.entry["id"] }) == [bad.id, immediate.id])
        #expect(try probe.command(bad.id)["status"] == "dead")
        let keys = try probe.postgres.query("SELECT key FROM \(probe.name).records").rows.compactMap { $0["key"] }
        #expect(keys == ["fine"], "nothing stored truncated")
    }

    @Test("kill -9 of a pool's supervisor: its children drain and exit within seconds, nothing lost or doubled")
    func orphanedChildrenExit() async throws {
        let probe = try ProbeHarness()
        let file = try probe.writeTopology(processes: 2, batch: 10)
        let supervisor = try probe.spawnChoreo(["worker", probe.name, "--topology", file])
        try await eventually("two live workers", timeout: 30) { try probe.liveWorkers().count == 2 }
        let children = try probe.liveWorkers().map(\.pid)
        for index in 0..<100 { try probe.send("Sleep", "{\"key\":\"o\",\"value\":\(index),\"ms\":5}") }
        try await eventually("work under way", timeout: 30) { try probe.recordCount() >= 10 }
        kill(supervisor, SIGKILL)
        _ = try await waitForExit(supervisor, timeout: 5)
        try await eventually("every orphaned child exited", timeout: 5) { children.allSatisfy { !isAlive($0) } }
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        try await eventually("the rest handled by a new worker", timeout: 60) { try probe.recordCount() == 100 }
        try await eventually("nothing pending", timeout: 30) { try probe.pendingCount() == 0 }
        #expect(try probe.inboxCount() == 100)
        #expect(try probe.deadLetters().isEmpty)
    }

    @Test(
        "committed on its last allowed delivery, then killed before XACK: acknowledged, never dead; the command succeeded"
    )
    func committedOnLastDeliveryIsNotDead() async throws {
        let probe = try ProbeHarness()
        let file = try probe.writeTopology(processes: 1, batch: 5)
        #expect(probe.definition.policy.maxDeliveries == 3)
        let message = try probe.send("FailTimes", "{\"key\":\"last\",\"value\":1,\"times\":2}")
        // Deliveries 1 and 2 fail (their batches commit the failure), delivery 3 commits the
        // effect and the process dies before publishing or acknowledging.
        let crashing = try probe.spawnChoreo(
            ["worker", probe.name, "--single", "--topology", file],
            extraEnvironment: ["CHOREO_FAULT": "exit-after-commit:3"])
        #expect(try await waitForExit(crashing, timeout: 30) == 99)
        #expect(try probe.recordCount() == 1)
        let pending = try probe.redis.xpending(probe.definition.commandStream, group: probe.name, count: 10)
        #expect(pending.map(\.deliveries) == [3])
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        try await eventually("adopted and acknowledged", timeout: 30) { try probe.pendingCount() == 0 }
        try await eventually("the result relayed", timeout: 30) {
            try probe.command(message.id)["status"] == "succeeded"
        }
        #expect(try probe.deadLetters().isEmpty)
        #expect(try probe.recordCount() == 1)
        try await Task.sleep(nanoseconds: 500_000_000)
        #expect(try probe.command(message.id)["status"] == "succeeded", "the outcome stays succeeded")
    }

    @Test("a message that kills its worker process is dead-lettered alone; its batch-mates are applied once")
    func processKillerIsIsolated() async throws {
        let probe = try ProbeHarness()
        let file = try probe.writeTopology(processes: 1, batch: 20)
        var sent: [Envelope] = []
        for index in 0..<5 { sent.append(try probe.send("Record", "{\"key\":\"k\",\"value\":\(index)}")) }
        let killer = try probe.send("Crash")
        for index in 5..<10 { sent.append(try probe.send("Record", "{\"key\":\"k\",\"value\":\(index)}")) }
        let supervisor = try probe.spawnChoreo(
            ["worker", probe.name, "--topology", file], extraEnvironment: ["CHOREO_PROBE_CRASH": "1"])
        ChildReaper.register(supervisor)
        try await eventually("the killer dead-lettered, the rest applied", timeout: 90) {
            try probe.deadLetters().count == 1 && probe.recordCount() == 10 && probe.pendingCount() == 0
        }
        let letters = try probe.deadLetters()
        #expect(letters.map { $0.entry["id"] } == [killer.id])
        #expect(letters.first?.errorText.contains("max_deliveries") == true)
        for message in sent { #expect(try probe.command(message.id)["status"] == "succeeded") }
        #expect(try probe.command(killer.id)["status"] == "dead")
        #expect(try probe.inboxCount() == 10)
        kill(supervisor, SIGTERM)
        _ = try await waitForExit(supervisor, timeout: 15)
    }

    @Test("Postgres read-only for 5 s (as after a failover): messages are held, then all processed, none dead")
    func readOnlyDatabaseIsAnOutage() async throws {
        let admin = try PostgresConnection(url: TestEnvironment.adminDatabaseURL)
        let (database, url) = try TestEnvironment.scratchDatabase()
        let probe = try ProbeHarness(postgresURL: url)
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        for index in 0..<10 { try probe.send("Record", "{\"key\":\"before\",\"value\":\(index)}") }
        try await eventually("first messages handled") { try probe.recordCount() == 10 }

        try admin.execute("ALTER DATABASE \(database) SET default_transaction_read_only = on")
        try admin.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            [database])
        let started = Date()
        var index = 0
        while Date().timeIntervalSince(started) < 5 {
            try probe.send("Record", "{\"key\":\"during\",\"value\":\(index)}")
            index += 1
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        #expect(try probe.pendingCount() > 0, "held while read-only")
        #expect(try probe.deadLetters().isEmpty)
        try admin.execute("ALTER DATABASE \(database) RESET default_transaction_read_only")
        let check = try PostgresConnection(url: url)
        try await eventually("every message processed once Postgres takes writes again", timeout: 60) {
            try check.query("SELECT count(*) AS n FROM \(probe.name).records").first?.decode(Int.self, "n")
                == 10 + index
        }
        try await eventually("nothing pending") { try probe.pendingCount() == 0 }
        #expect(try probe.deadLetters().isEmpty)
    }

    @Test("a lock held elsewhere delays only the message that needs it; the rest of its batch proceeds")
    func heldLockDoesNotStallThePool() async throws {
        var policy = ProbeHarness.testPolicy
        policy.maxDeliveries = 50
        policy.lockTimeout = 0.2
        let probe = try ProbeHarness(policy: policy)
        // An operator's session holding the lock the message needs, left open.
        let operatorSession = try PostgresConnection(url: TestEnvironment.databaseURL)
        try operatorSession.execute("BEGIN")
        try operatorSession.query("SELECT pg_advisory_xact_lock(hashtext('hot'))")
        let locked = try probe.send("LockedRecord", "{\"key\":\"hot\",\"value\":0}")
        let others = try (0..<20).map { try probe.send("Record", "{\"key\":\"cold\",\"value\":\($0)}") }
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        try await eventually("the other messages applied while the lock is held", timeout: 15) {
            try others.allSatisfy { try probe.command($0.id)["status"] == "succeeded" }
        }
        #expect(try probe.command(locked.id)["status"] == nil, "still waiting for the lock")
        let later = try probe.send("Record", "{\"key\":\"later\",\"value\":1}")
        try await eventually("new messages keep flowing meanwhile", timeout: 15) {
            try probe.command(later.id)["status"] == "succeeded"
        }
        #expect(try probe.command(locked.id)["status"] == nil)
        try operatorSession.execute("ROLLBACK")
        try await eventually("the locked message applied once the lock is released", timeout: 30) {
            try probe.command(locked.id)["status"] == "succeeded"
        }
        try await eventually("nothing pending") { try probe.pendingCount() == 0 }
        #expect(try probe.recordCount() == 22)
        #expect(try probe.deadLetters().isEmpty)
    }

    @Test(
        "a dead saga message makes its still-accepted command dead with the reason; a decided command keeps its outcome"
    )
    func deadSagaMessageDecidesItsCommand() async throws {
        let probe = try ProbeHarness()
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        let pending = Envelope.newID()
        let decided = Envelope.newID()
        try probe.redis.command(["HSET", Topology.commandKey(pending), "id", pending, "status", "accepted"])
        try probe.redis.command(["HSET", Topology.commandKey(decided), "id", decided, "status", "succeeded"])
        for correlation in [pending, decided] {
            let step = Envelope(type: "Poison", data: "{}", correlation: correlation, causation: correlation)
            try probe.redis.xadd(probe.definition.commandStream, fields: step.fields)
        }
        try await eventually("both saga messages dead") { try probe.deadLetters().count == 2 }
        try await eventually("the waiting command is dead") { try probe.command(pending)["status"] == "dead" }
        let error = try probe.command(pending)["error"] ?? ""
        #expect(error.contains("Poison was dead-lettered by \(probe.name)") && error.contains("poison"), "\(error)")
        #expect(try probe.command(decided)["status"] == "succeeded")
        let results = try probe.redis.xrange(Topology.resultsStream).filter { $0["command"] == pending }
        #expect(results.map { $0["status"] } == ["dead"])
    }
}

/// Whether `pid` is a running process (not gone, not a zombie).
func isAlive(_ pid: pid_t) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return false }
    let state = stat[stat.index(close, offsetBy: 2)]
    return state != "Z" && state != "X"
}
