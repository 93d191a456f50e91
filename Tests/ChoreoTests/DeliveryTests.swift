import Choreo
import ChoreoTesting
import Foundation
import Redis
import Testing

@Suite("Delivery: exactly-once effects, retries, dead letters")
struct DeliveryTests {
    @Test("N messages in: N effects, N results, N events, nothing pending", arguments: RedisBackend.allCases)
    func happyPath(redis backend: RedisBackend) async throws {
        let probe = try ProbeHarness(redisURL: backend.url)
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        let sent = try (0..<300).map { try probe.send("Record", "{\"key\":\"k\(($0))\",\"value\":\($0)}") }
        try await eventually("300 records") { try probe.recordCount() == 300 }
        try await eventually("nothing pending") { try probe.pendingCount() == 0 }
        #expect(try probe.inboxCount() == 300)
        #expect(try probe.redis.xlen(probe.definition.eventStream) == 300)
        try await eventually("outbox drained") { try probe.outboxCount() == 0 }
        let command = try probe.command(sent[42].id)
        #expect(command["status"] == "succeeded")
        #expect(command["result"] == "{\"key\":\"k42\",\"value\":42}")
        let results = try probe.redis.xrange(Topology.resultsStream).filter { $0["command"] == sent[42].id }
        #expect(results.count == 1)
        let event = try #require(try probe.redis.xrange(probe.definition.eventStream, count: 1).first)
        let decoded = try Envelope(entry: event)
        #expect(decoded.type == "Recorded")
        #expect(decoded.correlation == sent[0].id)
        #expect(decoded.causation == sent[0].id)
        #expect(decoded.traceID == sent[0].traceID)
    }

    @Test("the same envelope id delivered twice changes state once", arguments: RedisBackend.allCases)
    func duplicateDelivery(redis backend: RedisBackend) async throws {
        let probe = try ProbeHarness(redisURL: backend.url)
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        let first = try probe.send("Record", "{\"key\":\"dup\",\"value\":1}")
        try probe.send("Record", "{\"key\":\"dup\",\"value\":1}", id: first.id)
        try probe.send("Record", "{\"key\":\"other\",\"value\":2}")
        try probe.send("Record", "{\"key\":\"dup\",\"value\":1}", id: first.id)
        try await eventually("both distinct messages handled, all acked") {
            try probe.recordCount() == 2 && probe.pendingCount() == 0
                && probe.redis.xlen(probe.definition.commandStream) == 4
        }
        #expect(try probe.inboxCount() == 2)
        #expect(try probe.deadLetters().isEmpty)
    }

    @Test(
        "duplicates inside a full first-delivery batch are absorbed: effects, events and results once each",
        arguments: RedisBackend.allCases)
    func duplicatesInsideABatch(redis backend: RedisBackend) async throws {
        let probe = try ProbeHarness(redisURL: backend.url)
        var worker = try probe.startWorker()
        let early = try (0..<3).map { try probe.send("Record", "{\"key\":\"early\",\"value\":\($0)}") }
        try await eventually("the early messages handled") { try probe.pendingCount() == 0 && probe.recordCount() == 3 }
        probe.stop(worker)
        // One batch read at once: fresh messages mixed with copies of handled ones and a copy
        // of a fresh one inside the same batch (the optimistic batch insert must fall back).
        var fresh: [Envelope] = []
        for index in 0..<8 {
            fresh.append(try probe.send("Record", "{\"key\":\"late\",\"value\":\(index)}"))
            if index % 3 == 0 { try probe.send("Record", "{\"key\":\"early\",\"value\":0}", id: early[index / 3].id) }
        }
        try probe.send("Record", "{\"key\":\"late\",\"value\":0}", id: fresh[0].id)
        worker = try probe.startWorker()
        defer { probe.stop(worker) }
        try await eventually("everything read and acknowledged") {
            let group = try probe.redis.xinfoGroups(probe.definition.commandStream).first
            return try group?.lag == 0 && group?.pending == 0 && probe.outboxCount() == 0
        }
        #expect(try probe.recordCount() == 11)
        #expect(try probe.inboxCount() == 11)
        #expect(try probe.redis.xlen(probe.definition.eventStream) == 11)
        for message in early + fresh { #expect(try probe.command(message.id)["status"] == "succeeded") }
        #expect(try probe.deadLetters().isEmpty)
    }

    @Test("a handler failing twice is retried and succeeds on the third delivery", arguments: RedisBackend.allCases)
    func retryThenSucceed(redis backend: RedisBackend) async throws {
        let probe = try ProbeHarness(redisURL: backend.url)
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        let message = try probe.send("FailTimes", "{\"key\":\"r\",\"value\":0,\"times\":2}")
        try probe.send("Record", "{\"key\":\"behind\",\"value\":1}")
        try await eventually("the flaky message succeeded") { try probe.command(message.id)["status"] == "succeeded" }
        // The probe records the attempt that succeeded.
        #expect(try probe.command(message.id)["result"] == "{\"key\":\"r\",\"value\":3}")
        #expect(try probe.recordCount() == 2)
        #expect(try probe.pendingCount() == 0)
        #expect(try probe.deadLetters().isEmpty)
    }

    @Test(
        "a lock wait that outlasts the batch's lock timeout is a lost race, not a failed delivery",
        arguments: RedisBackend.allCases)
    func lockContention(redis backend: RedisBackend) async throws {
        // A message's own transaction waits up to 30 s for the lock here (5 s by default), so
        // that a poll of this test starved by a loaded machine does not outlast the wait.
        var policy = ProbeHarness.testPolicy
        policy.lockTimeout = 30
        let probe = try ProbeHarness(policy: policy, redisURL: backend.url)
        // Another session holds the lock the handlers need, longer than the batch lock timeout
        // (50 ms) and the first retry delay (200 ms) together.
        // The lock is the probe's own: the test runs on both backends at once.
        let hot = probe.name
        _ = try probe.postgres.query("SELECT pg_advisory_lock(hashtext($1))", [hot])
        let sent = try (0..<5).map { try probe.send("LockedRecord", "{\"key\":\"\(hot)\",\"value\":\($0)}") }
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        // A handler's lock wait outlasts the batch lock timeout (50 ms) several times over:
        // only a transaction without the batch's timeout waits this long.
        try await eventually("a handler waiting on the lock for over 300 ms", timeout: 20) {
            let rows = try probe.postgres.query(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND now() - query_start > interval '300 ms'"
            )
            return try rows.first?.decode(Int.self, "n") ?? 0 >= 1
        }
        _ = try probe.postgres.query("SELECT pg_advisory_unlock(hashtext($1))", [hot])
        try await eventually("every message handled") {
            try sent.allSatisfy { try probe.command($0.id)["status"] == "succeeded" }
        }
        // Each succeeded on its first delivery: the batch was redone message by message and
        // waited for the lock instead of failing the deliveries.
        for message in sent {
            #expect(try probe.command(message.id)["result"] == "{\"key\":\"\(hot)\",\"value\":1}")
        }
        #expect(try probe.deadLetters().isEmpty)
    }

    @Test(
        "a handler that always fails is dead-lettered after exactly max_deliveries, with its error",
        arguments: RedisBackend.allCases)
    func alwaysFailDeadLetters(redis backend: RedisBackend) async throws {
        let probe = try ProbeHarness(redisURL: backend.url)
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        let message = try probe.send("AlwaysFail")
        try probe.send("Record", "{\"key\":\"ok\",\"value\":1}")
        let dead = try await eventuallyValue("a dead letter") { try probe.deadLetters().first }
        #expect(dead.deliveryCount == 3)
        #expect(dead.errorText.contains("deliberate failure on attempt 3"))
        #expect(dead.stream == probe.definition.commandStream)
        #expect(dead.entry["id"] == message.id)
        #expect(dead.type == "AlwaysFail")
        try await eventually("command marked dead and acked") {
            try probe.command(message.id)["status"] == "dead" && probe.pendingCount() == 0
        }
        #expect(try probe.deadLetters().count == 1)
        #expect(try probe.recordCount() == 1)
        #expect(try probe.inboxCount() == 1)
    }

    @Test(
        "poison goes to the dead stream at once with a reason; good messages behind it flow",
        arguments: RedisBackend.allCases)
    func poison(redis backend: RedisBackend) async throws {
        let probe = try ProbeHarness(redisURL: backend.url)
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        try probe.sendRaw([StreamField("type", "Record"), StreamField("data", "{}")])
        try probe.sendRaw([StreamField("id", "x1"), StreamField("type", "Record"), StreamField("data", "{not json")])
        try probe.send("NoSuchType")
        try probe.send("Record", "{\"key\":1}")
        try probe.send("Poison")
        for index in 0..<20 { try probe.send("Record", "{\"key\":\"good\",\"value\":\(index)}") }
        try await eventually("20 good records and 5 dead letters") {
            try probe.recordCount() == 20 && probe.deadLetters().count == 5
        }
        let reasons = try probe.deadLetters().map(\.errorText)
        #expect(reasons[0].contains("missing field 'id'"))
        #expect(reasons[1].contains("'data' is not valid JSON"))
        #expect(reasons[2].contains("unknown message type 'NoSuchType'"))
        #expect(reasons[3].contains("field 'key' is not String"))
        #expect(reasons[4].contains("told to be poison"))
        #expect(try probe.deadLetters().allSatisfy { $0.deliveryCount == 1 })
        try await eventually("nothing pending") { try probe.pendingCount() == 0 }
    }

    @Test(
        "fuzz: random and truncated envelopes all end in the dead stream with a reason; the worker survives",
        arguments: RedisBackend.allCases)
    func fuzzedEnvelopes(redis backend: RedisBackend) async throws {
        let probe = try ProbeHarness(redisURL: backend.url)
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        func random(_ length: Int) -> String {
            String((0..<length).map { _ in "abcdefghijklmnopqrstuvwxyz{}[]\":,0123456789 \\".randomElement()! })
        }
        let total = 300
        for index in 0..<total {
            let valid = Envelope(type: "Record", data: "{\"key\":\"k\",\"value\":\(index)}").fields
            func replacing(_ name: String, _ value: String) -> [StreamField] {
                valid.map { $0.name == name ? StreamField(name, value) : $0 }
            }
            let data = valid.first { $0.name == "data" }!.value
            let fields: [StreamField]
            switch index % 6 {
            case 0: fields = valid.filter { $0.name != ["id", "type", "data"][index / 6 % 3] }
            case 1: fields = replacing("data", String(data.prefix(Int.random(in: 0..<data.count))))
            case 2:
                let bytes = (0..<Int.random(in: 1...200)).map { _ in UInt8.random(in: 0...255) }
                fields = replacing("data", String(decoding: bytes, as: UTF8.self))
            case 3:
                fields = (0..<Int.random(in: 1...6)).map { _ in
                    StreamField("f" + random(4), random(Int.random(in: 0...40)))
                }
            case 4: fields = replacing("data", "{\"key\":\(index),\"value\":\"\(random(5))\"}")
            default: fields = replacing("type", "Fuzz\(index)")
            }
            try probe.sendRaw(fields)
        }
        try await eventually("every fuzzed message dead", timeout: 60) { try probe.deadLetters().count == total }
        #expect(try probe.deadLetters().allSatisfy { !$0.errorText.isEmpty })
        try await eventually("nothing pending") { try probe.pendingCount() == 0 }
        #expect(try probe.recordCount() == 0)
        try probe.send("Record", "{\"key\":\"after\",\"value\":1}")
        try await eventually("the worker still handles good messages") { try probe.recordCount() == 1 }
    }

    @Test("a message over max_message_bytes is poison, dead-lettered unread", arguments: RedisBackend.allCases)
    func oversized(redis backend: RedisBackend) async throws {
        let probe = try ProbeHarness(redisURL: backend.url)
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        try probe.send("Record", "{\"key\":\"" + String(repeating: "x", count: 1_100_000) + "\",\"value\":1}")
        try probe.send("Record", "{\"key\":\"small\",\"value\":2}")
        try await eventually("the small one recorded, the big one dead", timeout: 20) {
            try probe.recordCount() == 1 && probe.deadLetters().count == 1
        }
        #expect(try probe.deadLetters()[0].errorText.contains("over max_message_bytes"))
    }

    @Test(
        "an event type without a handler on a subscribed stream is acknowledged and skipped, not dead",
        arguments: RedisBackend.allCases)
    func unhandledEventOnSubscription(redis backend: RedisBackend) async throws {
        let probe = try ProbeHarness(redisURL: backend.url)
        let events = probe.name + "-feed.events"
        probe.topology.services[0].subscribes = [events]
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        try probe.redis.xadd(events, fields: Envelope(type: "SomethingElseHappened", data: "{}").fields)
        try probe.redis.xadd(events, fields: Envelope(type: "Record", data: "{\"key\":\"feed\",\"value\":7}").fields)
        try await eventually("the handled event recorded") { try probe.recordCount() == 1 }
        try await eventually("nothing pending on the subscription") {
            try probe.redis.xpendingSummary(events, group: probe.name).count == 0
        }
        #expect(try probe.deadLetters().isEmpty)
    }

    @Test("a business rejection is a failed result, acknowledged, not retried", arguments: RedisBackend.allCases)
    func rejection(redis backend: RedisBackend) async throws {
        let probe = try ProbeHarness(redisURL: backend.url)
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        let message = try probe.send("Reject", "{\"reason\":\"insufficient funds\"}")
        try await eventually("failed result") { try probe.command(message.id)["status"] == "failed" }
        #expect(
            try probe.command(message.id)["error"] == "{\"code\":\"probe_rejected\",\"reason\":\"insufficient funds\"}")
        try await eventually("acked") { try probe.pendingCount() == 0 }
        #expect(try probe.deadLetters().isEmpty)
    }

    @Test("immediate queries in handlers see earlier messages' queued writes", arguments: RedisBackend.allCases)
    func immediateQueries(redis backend: RedisBackend) async throws {
        let probe = try ProbeHarness(redisURL: backend.url)
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        for index in 0..<50 {
            try probe.send(index % 2 == 0 ? "Record" : "RecordNow", "{\"key\":\"m\",\"value\":\(index)}")
        }
        try await eventually("50 records") { try probe.recordCount() == 50 }
        try await eventually("nothing pending") { try probe.pendingCount() == 0 }
        #expect(try probe.deadLetters().isEmpty)
    }

    @Test("a stateless service (no schema) consumes, publishes and acknowledges")
    func stateless() async throws {
        let probe = try ProbeHarness(schema: false)
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        for _ in 0..<100 { try probe.send("Noop") }
        try probe.send("Record", "{\"key\":\"a\",\"value\":1}")
        try await eventually("all acked") { try probe.pendingCount() == 0 && probe.deadLetters().count == 1 }
        #expect(try probe.deadLetters()[0].errorText.contains("no schema"))
    }
}
