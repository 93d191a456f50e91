import ChoreoJSON
import ChoreoTesting
import Foundation
import Postgres
import Redis
import Testing

@testable import Choreo

@Suite("Lifecycles and values")
struct LifecycleTests {
    @Test("backoff grows exponentially, is capped, and jitter stays within bounds")
    func backoff() {
        let backoff = Backoff(initial: 0.2, max: 1, multiplier: 2, jitter: 0.2)
        #expect(backoff.baseDelay(afterFailures: 1) == 0.2)
        #expect(backoff.baseDelay(afterFailures: 2) == 0.4)
        #expect(backoff.baseDelay(afterFailures: 3) == 0.8)
        #expect(backoff.baseDelay(afterFailures: 4) == 1)
        #expect(backoff.baseDelay(afterFailures: 40) == 1)
        #expect(abs(backoff.delay(afterFailures: 1, unit: 0) - 0.16) < 1e-9)
        #expect(abs(backoff.delay(afterFailures: 1, unit: 0.999_999) - 0.24) < 1e-6)
    }

    @Test("a message settles to acked, retrying or dead by outcome and attempt")
    func messageStates() {
        var policy = ServicePolicy()
        policy.maxDeliveries = 3
        #expect(MessageState.settle(.handled, attempt: 1, policy: policy) == .acked)
        #expect(MessageState.settle(.duplicate, attempt: 2, policy: policy) == .acked)
        #expect(MessageState.settle(.rejected, attempt: 1, policy: policy) == .acked)
        #expect(MessageState.settle(.poison("bad"), attempt: 1, policy: policy) == .dead(reason: "bad"))
        guard case .retrying(2, let after, "boom") = MessageState.settle(.failed("boom"), attempt: 2, policy: policy)
        else {
            Issue.record("expected retrying")
            return
        }
        #expect(after > 0)
        guard case .dead(let reason) = MessageState.settle(.failed("boom"), attempt: 3, policy: policy) else {
            Issue.record("expected dead at max_deliveries")
            return
        }
        #expect(reason.contains("boom"))
    }

    @Test("a consumer goes active -> draining -> stopped and never back")
    func consumerStates() {
        let draining = ConsumerState.active.after(.stopRequested)
        #expect(draining == .draining)
        #expect(!draining.readsMore)
        #expect(draining.after(.stopRequested) == .draining)
        #expect(draining.after(.finished) == .stopped)
        #expect(ConsumerState.stopped.after(.stopRequested) == .stopped)
    }

    @Test("an envelope round-trips through stream fields; bad fields are named")
    func envelope() throws {
        let original = Envelope(type: "PlaceOrder", data: "{\"a\":1}", replays: 2)
        let decoded = try Envelope(entry: StreamEntry(id: "1-0", fields: original.fields))
        #expect(decoded == original)
        #expect(original.traceID?.count == 32)
        #expect(original.childTraceparent().hasPrefix("00-\(original.traceID!)-"))
        let missingType = StreamEntry(id: "1-0", fields: [StreamField("id", "x")])
        #expect(throws: Envelope.DecodingError(reason: "missing field 'type'")) { try Envelope(entry: missingType) }
        let badAt = StreamEntry(
            id: "1-0", fields: [StreamField("id", "x"), StreamField("type", "T"), StreamField("at", "soon")])
        #expect(throws: Envelope.DecodingError(reason: "field 'at' is not a number")) { try Envelope(entry: badAt) }
    }

    @Test("runs of one plain single-row INSERT are merged into multi-row INSERTs; anything else is left alone")
    func coalescing() {
        let insert = "INSERT INTO records (message_id, key, value) VALUES ($1, $2, $3)"
        #expect(StatementCoalescer.parse(insert)?.parameters == 3)
        for other in [
            "INSERT INTO t (a) VALUES ($1) ON CONFLICT DO NOTHING", "INSERT INTO t (a) VALUES ($1) RETURNING a",
            "INSERT INTO t (a, b) VALUES ($2, $1)", "INSERT INTO t (a) VALUES ($1::int)",
            "INSERT INTO t (a) SELECT $1", "UPDATE t SET a = $1", "INSERT INTO t (a) VALUES ($1); DELETE FROM t",
        ] {
            #expect(StatementCoalescer.parse(other) == nil, "\(other)")
        }
        let update = PostgresStatement("UPDATE t SET a = $1", [1])
        let rows = (0..<85).map { (index: Int) in PostgresStatement(insert, ["m" + String(index), "k", index]) }
        let merged = StatementCoalescer.coalesce([update] + rows + [update] + rows.prefix(1))
        // 85 = 64 + 16 + 4 + 1; the lone INSERT after the UPDATE stays as it is.
        #expect(merged.map(\.parameters.count) == [1, 192, 48, 12, 3, 1, 3])
        #expect(merged[1].sql.hasSuffix("($190, $191, $192)"))
        #expect(merged[4].sql == insert)
        #expect(merged[1].parameters.compactMap { $0?.postgresText }.prefix(4) == ["m0", "k", "0", "m1"])
    }

    @Test("a batch's outbox row round-trips every message, escapes and all; old single rows still decode")
    func outboxRows() throws {
        let tricky = "quote \" backslash \\ newline \n tab \t bell \u{7} unicode é ✓"
        let messages = [
            OutboxMessage(
                stream: "orders.events", fields: [StreamField("id", "1"), StreamField("data", tricky)], commandID: nil,
                status: nil, seq: nil),
            OutboxMessage.result(
                commandID: "c-1", status: .failed, type: "PlaceOrder", data: "{\"code\":\"x\"}", causation: "m-1",
                traceparent: Envelope.newTraceparent()),
        ]
        let row = OutboxMessage.encodeBatch(messages)
        #expect(JSONText.isValid(row))
        let decoded = try #require(
            OutboxMessage.decodeRow(stream: OutboxMessage.batchRow, fields: row, commandID: nil, status: nil))
        #expect(decoded == messages)
        #expect(
            OutboxMessage.decodeRow(stream: OutboxMessage.batchRow, fields: "[[\"x\"", commandID: nil, status: nil)
                == nil)
        let single = try #require(
            OutboxMessage.decodeRow(
                stream: "choreo.results", fields: JSONText.array(["id", "r-1", "data", tricky]), commandID: "c-2",
                status: "succeeded"))
        #expect(single.map(\.stream) == ["choreo.results"])
        #expect(single.first?.fields == [StreamField("id", "r-1"), StreamField("data", tricky)])
        #expect(single.first?.status == .succeeded)
    }
}

enum TestPaths {
    static var repositoryRoot: String { TestEnvironment.repositoryRoot }

    static func write(_ text: String) -> String {
        let path = NSTemporaryDirectory() + "/topology-\(UUID().uuidString).yml"
        try? text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

@Suite("Ids")
struct IDTests {
    @Test("message ids are distinct version-4 UUIDs")
    func ids() {
        let ids = (0..<10_000).map { _ in Envelope.newID() }
        #expect(Set(ids).count == ids.count)
        for id in ids.prefix(100) {
            #expect(UUID(uuidString: id) != nil)
            #expect(Array(id)[14] == "4")
            #expect("89ab".contains(Array(id)[19]))
        }
        #expect(Envelope.newTraceparent().split(separator: "-").map(\.count) == [2, 32, 16, 2])
    }
}

@Suite("Published outbox rows as a plain value")
struct PublishedOutboxTests {
    @Test("published outbox rows wait for a batch's transaction, then are due on their own")
    func publishedOutbox() {
        let start = Date()
        var rows = PublishedOutbox()
        #expect(rows.untilDue(now: start) == nil && !rows.isDue(now: start.addingTimeInterval(9)))
        rows.add([1, 2], now: start)
        rows.add([3], now: start.addingTimeInterval(0.2))
        #expect(abs((rows.untilDue(now: start.addingTimeInterval(0.1)) ?? 0) - (PublishedOutbox.delay - 0.1)) < 1e-6)
        #expect(!rows.isDue(now: start.addingTimeInterval(0.1)))
        #expect(rows.isDue(now: start.addingTimeInterval(PublishedOutbox.delay)), "timed from the oldest row")
        rows.marked(first: 2)
        #expect(rows.seqs == [3] && rows.isDue(now: start.addingTimeInterval(PublishedOutbox.delay)))
        rows.marked(first: 1)
        #expect(rows.isEmpty && rows.untilDue(now: start) == nil)
    }
}
