// SchedulerTests: delayed messages with real Redis, Postgres and workers: published when due
// and never before, exactly once across a crash between publish and delete, nothing scheduled
// by a rolled-back handler, cancellable, delivered after a downtime; and HandlerError.notYet
// (deferred without counting a failed delivery, then rejected once it waited its limit).

import Choreo
import ChoreoTesting
import Foundation
import Redis
import Testing

@Suite("Delayed messages and deferrals")
struct SchedulerTests {
    static func schedule(_ key: String, value: Int = 1, ms: Int, id: String? = nil, failTimes: Int = 0) -> String {
        let named = id.map { ",\"id\":\"\($0)\"" } ?? ""
        return "{\"key\":\"\(key)\",\"value\":\(value),\"ms\":\(ms),\"failTimes\":\(failTimes)\(named)}"
    }

    @Test("a scheduled message is published when due, never before, and handled once", arguments: RedisBackend.allCases)
    func deliveredWhenDue(redis backend: RedisBackend) async throws {
        let probe = try ProbeHarness(redisURL: backend.url)
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        let sent = Envelope.nowMilliseconds()
        let command = try probe.send("Schedule", Self.schedule("later", ms: 700))
        try await eventually("the schedule committed") { try probe.command(command.id)["status"] == "succeeded" }
        let record = try await eventuallyValue("the delayed Record handled") { try probe.records(key: "later").first }
        let due = try #require(record.due)
        let handled = try #require(record.handledAt)
        #expect(due >= sent + 700, "due \(due - sent) ms after the schedule was sent")
        #expect(handled >= due, "handled \(handled - due) ms after due")
        #expect(try probe.scheduledCount() == 0)
        // The published copy is kept in the outbox's republish window, not unpublished.
        try await eventually("nothing left to publish") { try probe.outboxCount() == 0 }
        #expect(try probe.records(key: "later").count == 1)
        let entries = try probe.redis.xrange(probe.definition.commandStream).filter { $0["type"] == "Record" }
        #expect(entries.count == 1)
        #expect(entries.first?["due"] == String(due))
        #expect(entries.first?["causation"] == command.id)
        #expect(entries.first?["correlation"] == command.id)
    }

    @Test("a rolled-back handler schedules nothing; its successful retry schedules exactly once")
    func rolledBackSchedulesNothing() async throws {
        let probe = try ProbeHarness()
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        let flaky = try probe.send("Schedule", Self.schedule("flaky", ms: 100, failTimes: 2))
        try await eventually("the flaky schedule succeeded on its third delivery") {
            try probe.command(flaky.id)["status"] == "succeeded"
        }
        // A sentinel scheduled later than any copy a rolled-back attempt could have left.
        try probe.send("Schedule", Self.schedule("sentinel", ms: 400))
        try await eventually("the sentinel delivered") { try probe.records(key: "sentinel").count == 1 }
        #expect(try probe.records(key: "flaky").count == 1)
        #expect(try probe.redis.xrange(probe.definition.commandStream).filter { $0["type"] == "Record" }.count == 2)
    }

    @Test("a cancelled message is never published")
    func cancel() async throws {
        let probe = try ProbeHarness()
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        let id = "cancel-me-\(probe.name)"
        let scheduled = try probe.send("Schedule", Self.schedule("cancelled", ms: 30_000, id: id))
        try await eventually("scheduled") { try probe.command(scheduled.id)["status"] == "succeeded" }
        #expect(try probe.scheduledCount() == 1)
        let cancel = try probe.send("CancelScheduled", "{\"id\":\"\(id)\"}")
        try await eventually("cancelled") { try probe.command(cancel.id)["status"] == "succeeded" }
        // The row is gone, so nothing is left to publish it from.
        #expect(try probe.scheduledCount() == 0)
        #expect(try probe.redis.xrange(probe.definition.commandStream).filter { $0["type"] == "Record" }.isEmpty)
        // Cancelling again (or after delivery) is no error and changes nothing.
        let again = try probe.send("CancelScheduled", "{\"id\":\"\(id)\"}")
        try await eventually("cancelled again") { try probe.command(again.id)["status"] == "succeeded" }
        #expect(try probe.records(key: "cancelled").isEmpty)
    }

    @Test("a message due while its service is down is delivered when the service returns")
    func dueWhileDown() async throws {
        let probe = try ProbeHarness()
        var worker = try probe.startWorker()
        let command = try probe.send("Schedule", Self.schedule("down", ms: 60_000))
        try await eventually("scheduled") { try probe.command(command.id)["status"] == "succeeded" }
        probe.stop(worker)
        // Fell due while nobody runs.
        try probe.postgres.execute("UPDATE \(probe.name).scheduled SET due_at = now() - interval '1 s'")
        #expect(try probe.records(key: "down").isEmpty)
        worker = try probe.startWorker()
        defer { probe.stop(worker) }
        let record = try await eventuallyValue("delivered after the restart") { try probe.records(key: "down").first }
        #expect(try #require(record.handledAt) > #require(record.due))
    }

    @Test("a crash between publishing due messages and deleting them publishes again; effects stay once")
    func crashAfterPublish() async throws {
        let probe = try ProbeHarness()
        let file = try probe.writeTopology(processes: 1)
        let worker = try probe.startWorker()
        for index in 0..<5 { try probe.send("Schedule", Self.schedule("crash", value: index, ms: 60_000)) }
        try await eventually("five scheduled") { try probe.scheduledCount() == 5 }
        probe.stop(worker)
        // All due now, so that the first publish takes the five at once.
        try probe.postgres.execute("UPDATE \(probe.name).scheduled SET due_at = now()")
        let crashing = try probe.spawnChoreo(
            ["worker", probe.name, "--single", "--topology", file],
            extraEnvironment: ["CHOREO_FAULT": "exit-after-scheduled-publish:1"])
        #expect(try await waitForExit(crashing, timeout: 30) == 99)
        // Published, but the rows are still there (the transaction never committed).
        #expect(try probe.scheduledCount() == 5)
        #expect(try probe.redis.xrange(probe.definition.commandStream).filter { $0["type"] == "Record" }.count == 5)
        let again = try probe.startWorker()
        defer { probe.stop(again) }
        try await eventually("published again and handled", timeout: 20) {
            try probe.scheduledCount() == 0 && probe.records(key: "crash").count == 5 && probe.pendingCount() == 0
        }
        #expect(try probe.redis.xrange(probe.definition.commandStream).filter { $0["type"] == "Record" }.count == 10)
        #expect(try probe.records(key: "crash").map(\.value) == [0, 1, 2, 3, 4])
        #expect(try probe.deadLetters().isEmpty)
    }

    @Test("notYet: deferred without counting a failed delivery, handled once what it waits for exists")
    func notYetThenReady() async throws {
        let probe = try ProbeHarness()
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        let early = try probe.send("RecordWhenOpen", "{\"key\":\"gate\",\"value\":0}")
        // More deferrals than max_deliveries (3): a failed delivery would be dead by now.
        try await eventually("deferred a few times") {
            try probe.redis.xrange(probe.definition.commandStream).filter { $0["id"] == early.id }.count > 4
        }
        #expect(try probe.command(early.id)["status"] == nil)
        try probe.postgres.execute("INSERT INTO \(probe.name).gates (key) VALUES ('gate')")
        try await eventually("handled once the gate opened") { try probe.command(early.id)["status"] == "succeeded" }
        let record = try #require(try probe.records(key: "gate").first)
        #expect(record.value > 4, "the record notes \(record.value) deferrals")
        #expect(try probe.records(key: "gate").count == 1)
        try await eventually("nothing pending or scheduled") {
            try probe.pendingCount() == 0 && probe.scheduledCount() == 0
        }
        #expect(try probe.deadLetters().isEmpty)
    }

    @Test("notYet past not_yet_limit becomes the handler's rejection")
    func notYetRejectedAtLimit() async throws {
        var policy = ProbeHarness.testPolicy
        policy.notYetLimit = 1
        let probe = try ProbeHarness(policy: policy)
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        let started = Date()
        let early = try probe.send("RecordWhenOpen", "{\"key\":\"never\",\"value\":0}")
        try await eventually("rejected", timeout: 15) { try probe.command(early.id)["status"] == "failed" }
        #expect(Date().timeIntervalSince(started) >= 1)
        let error = try probe.command(early.id)["error"] ?? ""
        #expect(error.contains("\"code\":\"gate_closed\""), "\(error)")
        #expect(error.contains("still not ready"), "\(error)")
        #expect(try probe.records(key: "never").isEmpty)
        try await eventually("nothing left") { try probe.pendingCount() == 0 && probe.scheduledCount() == 0 }
        #expect(try probe.deadLetters().isEmpty)
    }
}

@Suite("Delayed messages: the operator's view")
struct ScheduledOperatorTests {
    @Test("choreo scheduled lists and cancels; choreo status counts them from the heartbeats")
    func listCancelStatus() async throws {
        let probe = try ProbeHarness()
        var intervals = ProbeHarness.quickIntervals
        intervals.gauges = 0.2
        let worker = try probe.startWorker(intervals: intervals)
        defer { probe.stop(worker) }
        let file = try probe.writeTopology()
        let ids = ["op-a-\(probe.name)", "op-b-\(probe.name)"]
        for (index, id) in ids.enumerated() {
            try probe.send("Schedule", SchedulerTests.schedule("op", value: index, ms: 60_000 + index * 1000, id: id))
        }
        try await eventually("both scheduled") { try probe.scheduledCount() == 2 }

        let listed = try await runChoreo(["scheduled", "list", probe.name, "--json", "--topology", file])
        #expect(listed.status == 0, "\(listed.errors)")
        let entries = try #require(listed.json as? [[String: Any]])
        #expect(entries.compactMap { $0["id"] as? String } == ids, "soonest first")
        #expect(entries.first?["type"] as? String == "Record")

        try await eventually("choreo status shows two scheduled") {
            let status = try await runChoreo(["status", "--json", "--topology", file])
            let services = (status.json as? [String: Any])?["services"] as? [[String: Any]]
            return services?.first?["scheduled"] as? Int == 2 && services?.first?["nextDue"] as? Int64 != nil
        }

        let cancelled = try await runChoreo(["scheduled", "cancel", probe.name, ids[0], "--topology", file])
        #expect(cancelled.status == 0, "\(cancelled.errors)")
        #expect(cancelled.output.contains("cancelled \(ids[0])"))
        #expect(try probe.scheduledCount() == 1)
        let again = try await runChoreo(["scheduled", "cancel", probe.name, ids[0], "--topology", file])
        #expect(again.status == 1)
        #expect(again.errors.contains(ids[0]))
        let unknown = try await runChoreo(["scheduled", "list", "nosuch", "--topology", file])
        #expect(unknown.status == 2)
    }
}
