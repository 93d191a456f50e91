import ChoreoTesting
import Foundation
import Redis
import Testing

@Suite("Redis stream commands")
struct RedisStreamTests {
    let redis: RedisConnection
    let stream = TestEnvironment.uniqueName("s")

    init() throws {
        redis = try RedisConnection(url: TestEnvironment.redisURL)
    }

    @Test("XADD, XREADGROUP, XPENDING, XCLAIM, XACK: a full round trip")
    func roundTrip() throws {
        #expect(try redis.xgroupCreate(stream, group: "g"))
        #expect(try redis.xgroupCreate(stream, group: "g") == false)  // BUSYGROUP is not an error
        let first = try redis.xadd(stream, fields: [StreamField("type", "A"), StreamField("data", "{\"n\":1}")])
        try redis.xadd(stream, fields: [StreamField("type", "B")])

        let batches = try redis.xreadgroup(group: "g", consumer: "alice", streams: [(stream, ">")], count: 10)
        #expect(batches.count == 1)
        #expect(batches[0].stream == stream)
        #expect(batches[0].entries.map { $0["type"] } == ["A", "B"])
        #expect(batches[0].entries[0].id == first)
        #expect(batches[0].entries[0]["data"] == "{\"n\":1}")

        let summary = try redis.xpendingSummary(stream, group: "g")
        #expect(summary.count == 2)
        #expect(summary.consumers == ["alice": 2])
        #expect(summary.smallestID == first)

        usleep(30_000)
        let pending = try redis.xpending(stream, group: "g", minIdleMilliseconds: 20, count: 10)
        #expect(pending.count == 2)
        #expect(pending[0].consumer == "alice")
        #expect(pending[0].deliveries == 1)
        #expect(pending[0].idleMilliseconds >= 20)

        let claimed = try redis.xclaim(stream, group: "g", consumer: "bob", minIdleMilliseconds: 20, ids: [first])
        #expect(claimed.map(\.id) == [first])
        let afterClaim = try redis.xpending(stream, group: "g", count: 10, consumer: "bob")
        #expect(afterClaim.map(\.id) == [first])
        #expect(afterClaim[0].deliveries == 2)

        #expect(try redis.xack(stream, group: "g", ids: batches[0].entries.map(\.id)) == 2)
        #expect(try redis.xpendingSummary(stream, group: "g").count == 0)
    }

    @Test("XAUTOCLAIM claims idle entries and reports ids deleted while pending")
    func autoclaimDeleted() throws {
        try redis.xgroupCreate(stream, group: "g")
        let kept = try redis.xadd(stream, fields: [StreamField("n", "1")])
        let gone = try redis.xadd(stream, fields: [StreamField("n", "2")])
        _ = try redis.xreadgroup(group: "g", consumer: "dead", streams: [(stream, ">")], count: 10)
        try redis.xdel(stream, ids: [gone])
        let result = try redis.xautoclaim(stream, group: "g", consumer: "alive", minIdleMilliseconds: 0)
        #expect(result.entries.map(\.id) == [kept])
        #expect(result.deletedIDs == [gone])
        #expect(result.nextStart == "0-0")
        #expect(try redis.xpendingSummary(stream, group: "g").consumers == ["alive": 1])
    }

    @Test("re-reading pending entries shows deleted ones as deleted")
    func rereadPendingDeleted() throws {
        try redis.xgroupCreate(stream, group: "g")
        let id = try redis.xadd(stream, fields: [StreamField("n", "1")])
        _ = try redis.xreadgroup(group: "g", consumer: "c", streams: [(stream, ">")])
        try redis.xdel(stream, ids: [id])
        let again = try redis.xreadgroup(group: "g", consumer: "c", streams: [(stream, "0")])
        #expect(again.first?.entries.first?.isDeleted == true)
    }

    @Test("XADD MAXLEN ~ trims; XLEN, XRANGE, XREVRANGE, XDEL, XINFO report the stream")
    func inspection() throws {
        for index in 0..<1000 {
            try redis.xadd(stream, fields: [StreamField("n", String(index))], maxLength: 100)
        }
        let length = try redis.xlen(stream)
        #expect(length >= 100 && length < 1000)
        let newest = try redis.xrevrange(stream, count: 2)
        #expect(newest.map { $0["n"] } == ["999", "998"])
        let oldest = try redis.xrange(stream, count: 1)
        #expect(oldest.count == 1)
        #expect(try redis.xdel(stream, ids: [newest[0].id]) == 1)

        try redis.xgroupCreate(stream, group: "g", startID: "0")
        _ = try redis.xreadgroup(group: "g", consumer: "c1", streams: [(stream, ">")], count: 5)
        let groups = try redis.xinfoGroups(stream)
        #expect(groups.count == 1)
        #expect(groups[0].name == "g")
        #expect(groups[0].pending == 5)
        #expect(groups[0].consumers == 1)
        let consumers = try redis.xinfoConsumers(stream, group: "g")
        #expect(consumers.map(\.name) == ["c1"])
        #expect(consumers[0].pending == 5)
        let info = try redis.xinfoStream(stream)
        #expect(info.length == length - 1)
        #expect(info.groups == 1)
        #expect(info.lastEntry?["n"] == "998")

        #expect(try redis.xgroupDeleteConsumer(stream, group: "g", consumer: "c1") == 5)
        #expect(try redis.xinfoConsumers(stream, group: "g").isEmpty)
    }
}
