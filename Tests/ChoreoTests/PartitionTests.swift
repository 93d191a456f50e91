import ChoreoTesting
import Foundation
import Operations
import Redis
import Testing

@testable import Choreo

@Suite("Partitioned streams: per-key order across processes", .serialized)
struct PartitionTests {
    @Test("a publish goes to hash(key) mod N; partitions carry their own hash tags")
    func routing() throws {
        let partitioning = StreamPartitioning(stream: "{orders}.events", count: 8, keyField: "orderId")
        #expect(partitioning.key(3) == "{orders#p3}.events")
        #expect(partitioning.index(ofKey: "{orders#p3}.events") == 3)
        #expect(partitioning.index(ofKey: "{orders}.events") == nil)
        let data = "{\"orderId\":\"o-42\",\"total\":5}"
        let index = partitioning.partition(data: data, correlation: "c-1")
        #expect(index == StreamPartitioning.partition(of: "o-42", count: 8))
        // Every event of one order, whatever its saga, lands in one partition.
        #expect(partitioning.partition(data: "{\"orderId\":\"o-42\"}", correlation: "c-2") == index)
        // No key field: the correlation id.
        #expect(
            partitioning.partition(data: "{\"total\":5}", correlation: "c-1")
                == StreamPartitioning.partition(of: "c-1", count: 8))
        // Integers route by their digits.
        #expect(
            partitioning.partition(data: "{\"orderId\":42}", correlation: "x")
                == StreamPartitioning.partition(of: "42", count: 8))
        // FNV-1a 32 (stable across versions and languages).
        #expect(StreamPartitioning.partition(of: "a", count: 1_000_000_007) == 0xE40C_292C % 1_000_000_007)
        // Spread: 1,000 keys over 8 partitions, none empty or hot.
        var counts = [Int](repeating: 0, count: 8)
        for key in 0..<1000 { counts[StreamPartitioning.partition(of: "order-\(key)", count: 8)] += 1 }
        #expect(counts.allSatisfy { $0 > 80 && $0 < 170 }, "\(counts)")
        // The partitions' hash tags spread over a 3-master cluster's slot ranges.
        let masters = Set(
            partitioning.keys.map { key in
                let slot = RedisSlot.of(key)
                return slot <= 5460 ? 0 : slot <= 10922 ? 1 : 2
            })
        #expect(masters.count == 3)
    }

    @Test("streams.yml: events partitions and key; errors name the path")
    func topology() throws {
        let yaml = """
            version: 1
            services:
              orders:
                schema: orders
                events: { partitions: 4, key: orderId }
              payments:
                schema: payments
                consumes: [orders.events]
                policy: { partition_concurrency: 2 }
            """
        let topology = try Topology.parse(yaml: yaml)
        let orders = try #require(topology.service("orders"))
        #expect(
            orders.eventPartitioning == StreamPartitioning(stream: "{orders}.events", count: 4, keyField: "orderId"))
        let payments = try #require(topology.service("payments"))
        #expect(topology.consumedKeys(of: payments).suffix(4) == orders.eventPartitioning!.keys[...])
        #expect(topology.logicalStream(ofKey: "{orders#p2}.events") == "{orders}.events")
        #expect(payments.policy.partitionConcurrency == 2)
        let commands = try Topology.parse(
            yaml: "version: 1\nservices:\n  orders:\n    commands: { partitions: 2, key: orderId }\n")
        #expect(
            commands.service("orders")?.commandPartitioning?.keys == ["{orders#p0}.commands", "{orders#p1}.commands"])
        #expect(commands.keys(of: "orders.commands") == ["{orders#p0}.commands", "{orders#p1}.commands"])
        let outbox = OutboxMessage(
            .event(type: "OrderPlaced", data: "{\"orderId\":\"o-1\"}"), cause: Envelope(type: "PlaceOrder", data: "{}"),
            service: orders)
        // The outbox keeps the stream; the publisher writes to the key's partition.
        #expect(outbox.stream == orders.eventStream)
        #expect(
            Publisher(service: orders, topology: topology).commands(for: outbox).first?[1]
                == orders.eventPartitioning!.key(StreamPartitioning.partition(of: "o-1", count: 4)))
        for (bad, message) in [
            ("events: { partitions: 0 }", "must be between 1 and"),
            ("events: { key: orderId }", "is required"),
            ("events: { partitions: 4, key: 'a b' }", "must be a payload field name"),
            ("commands: { partitions: 4 }", "is required for a commands stream"),
        ] {
            let text = "version: 1\nservices:\n  orders:\n    \(bad)\n"
            #expect(throws: TopologyError.self) { try Topology.parse(yaml: text) }
            do { _ = try Topology.parse(yaml: text) } catch { #expect("\(error)".contains(message), "\(error)") }
        }
    }

    @Test(
        "a retrying head holds back only its own partition's later messages; a dead head does not block",
        arguments: RedisBackend.allCases)
    func retryHoldsOnlyItsPartition(redis backend: RedisBackend) async throws {
        var policy = ProbeHarness.testPolicy
        policy.maxDeliveries = 50
        policy.backoff = Backoff(initial: 0.1, max: 0.2, multiplier: 2, jitter: 0.1)
        let harness = try PartitionHarness(partitions: 8, policy: policy, redisURL: backend.url)
        try harness.migrate()
        let keys = harness.keysInDistinctPartitions(3)
        let (held, free, dead) = (keys[0], keys[1], keys[2])
        try harness.close("gate")
        try harness.publish(key: held, value: 1, gate: "gate")
        try harness.publish(key: dead, value: 1, failTimes: 1000)
        for value in 2...4 { try harness.publish(key: held, value: value) }
        for value in 2...4 { try harness.publish(key: dead, value: value) }
        for value in 1...4 { try harness.publish(key: free, value: value) }
        let worker = try harness.startWorker()
        defer {
            worker.requestStop()
            worker.waitUntilStopped(timeout: 10)
        }
        try await eventually("the free key's messages handled", timeout: 60) {
            try harness.handled().filter { $0.key == free }.count == 4
        }
        // The failed head has been retried a few times: its later messages are still waiting.
        let heldPartition = harness.partitioning.key(StreamPartitioning.partition(of: held, count: 8))
        try await eventually("the held head retried", timeout: 60) {
            try harness.redis.xpending(heldPartition, group: harness.sink, count: 1).first?.deliveries ?? 0 >= 3
        }
        #expect(try harness.handled().filter { $0.key == held }.isEmpty)
        #expect(try harness.redis.xpendingSummary(heldPartition, group: harness.sink).count == 4)
        // choreo status and the console: each partition with its owner and numbers.
        let status = try SystemStatus.collect(topology: harness.topology, redis: harness.redis)
        let sink = try #require(status.services.first { $0.name == harness.sink })
        let partitions = sink.streams.filter { $0.partitionOf == harness.partitioning.stream }
        #expect(partitions.map(\.partition) == Array(0..<8))
        #expect(partitions.allSatisfy { $0.owner == worker.consumer })
        #expect(partitions.first { $0.stream == heldPartition }?.pending == 4)
        #expect(sink.reading(of: harness.partitioning.stream)?.pending ?? 0 >= 4)
        try harness.open("gate")
        try await eventually("the held key's messages handled after its head", timeout: 60) {
            try harness.handled().filter { $0.key == held }.count == 4
        }
        let heldRows = try harness.handled().filter { $0.key == held }
        #expect(heldRows.map(\.value) == [1, 2, 3, 4])
        #expect(heldRows[0].attempt >= 3)
        #expect(heldRows.dropFirst().allSatisfy { $0.attempt == 1 }, "held-back messages count no failed delivery")
        let freeRows = try harness.handled().filter { $0.key == free }
        #expect(freeRows.map(\.value) == [1, 2, 3, 4])
        #expect(freeRows.last!.n < heldRows.first!.n, "the other partition did not wait for the failed head")
        // A head that always fails goes dead after max_deliveries, then its partition moves on.
        try await eventually("the dead head's partition moved on", timeout: 90) {
            try harness.handled().filter { $0.key == dead }.count == 3
        }
        #expect(try harness.handled().filter { $0.key == dead }.map(\.value) == [2, 3, 4])
        #expect(try harness.deadCount() == 1)
        try await eventually("nothing pending", timeout: 30) { try harness.pendingCount() == 0 }
        #expect(try harness.inversions().isEmpty)
    }

    @Test(
        "3 processes, kill -9 and restarts moving partitions: every key handled in publish order, once",
        arguments: RedisBackend.allCases)
    func orderAcrossKills(redis backend: RedisBackend) async throws {
        let harness = try PartitionHarness(partitions: 8, redisURL: backend.url)
        let file = try harness.writeTopology(processes: 3, batch: 10)
        let supervisor = try harness.spawnChoreo(["worker", harness.sink, "--topology", file])
        defer { kill(supervisor, SIGTERM) }
        try await eventually("three live workers sharing the 8 partitions (3, 3, 2)", timeout: 60) {
            let live = Set(try harness.liveWorkers().map(\.consumer))
            let owners = try harness.owners()
            guard live.count == 3, owners.allSatisfy({ $0.map(live.contains) == true }) else { return false }
            let counts = Dictionary(grouping: owners.compactMap { $0 }, by: { $0 }).mapValues(\.count)
            return counts.count == 3 && counts.values.allSatisfy { $0 == 2 || $0 == 3 }
        }
        // Four rounds of 400 keyed events; in each of the first three, an owner of partitions is
        // killed once half the round is handled, so its partitions' remaining events (and the
        // next rounds') go to other consumers, in order.
        let keys = (0..<40).map { "key-\($0)" }
        var events: [(key: String, value: Int)] = []
        var killed: [pid_t] = []
        for round in 0..<4 {
            var batch: [(key: String, value: Int)] = []
            for value in (round * 10 + 1)...(round * 10 + 10) { for key in keys { batch.append((key, value)) } }
            events += batch
            try harness.publish(batch, ms: 4)
            guard round < 3 else { break }
            try await eventually("half of round \(round + 1) handled", timeout: 120) {
                try harness.handledCount() >= events.count - batch.count / 2
            }
            let owners = Set(try harness.owners().compactMap { $0 })
            let live = try harness.liveWorkers().filter { !killed.contains($0.pid) && owners.contains($0.consumer) }
            let victim = try #require(live.randomElement())
            kill(victim.pid, SIGKILL)
            killed.append(victim.pid)
            try await eventually("round \(round + 1) handled", timeout: 120) {
                try harness.handledCount() == events.count
            }
        }
        try await eventually("every event handled", timeout: 120) { try harness.handledCount() == events.count }
        try await eventually("nothing pending", timeout: 60) { try harness.pendingCount() == 0 }
        let rows = try harness.handled()
        #expect(rows.count == events.count, "each event applied once")
        #expect(try harness.inversions().isEmpty)
        #expect(try harness.deadCount() == 0)
        // Partitions did move: some partition was handled by more than one consumer.
        let consumersByPartition = Dictionary(grouping: rows, by: \.stream).mapValues { Set($0.map(\.handledBy)).count }
        #expect(consumersByPartition.values.contains { $0 > 1 }, "\(consumersByPartition)")
        #expect(Set(rows.map(\.handledBy)).count > 3)
    }

    @Test("changing the partition count is refused while the old partitions hold messages, accepted once drained")
    func countChange() async throws {
        let harness = try PartitionHarness(partitions: 4)
        try harness.migrate()
        let sink = harness.definition
        #expect(try PartitionLayout.check(harness.topology, service: sink, redis: harness.redis).isEmpty)
        #expect(try harness.redis.command(["GET", PartitionLayout.key(harness.partitioning.stream)]).string == "4")
        for value in 1...5 { try harness.publish(key: "k", value: value) }
        // The groups exist once a consumer has read the partitions: start one, stop it at once.
        var wider = harness.topology
        let index = try #require(wider.services.firstIndex { $0.name == harness.source })
        wider.services[index].eventPartitioning?.count = 8
        var worker = try harness.startWorker()
        try await eventually("handled", timeout: 60) { try harness.handledCount() == 5 }
        harness.stopWorker(worker)
        for value in 6...8 { try harness.publish(key: "k", value: value) }
        #expect {
            try PartitionLayout.check(wider, service: sink, redis: harness.redis)
        } throws: { error in
            let text = "\(error)"
            return error is PartitionLayout.ChangeRefused && text.contains("written with 4 partition(s)")
                && text.contains("3 undelivered") && text.contains("drain first")
        }
        #expect(try harness.redis.command(["GET", PartitionLayout.key(harness.partitioning.stream)]).string == "4")
        worker = try harness.startWorker()
        try await eventually("drained", timeout: 60) { try harness.handledCount() == 8 && harness.pendingCount() == 0 }
        harness.stopWorker(worker)
        let notes = try PartitionLayout.check(wider, service: sink, redis: harness.redis)
        #expect(notes.count == 1 && notes[0].contains("4 -> 8"), "\(notes)")
        #expect(try harness.redis.command(["GET", PartitionLayout.key(harness.partitioning.stream)]).string == "8")
        #expect(try harness.inversions().isEmpty)
    }

    @Test(
        "a partitioned commands stream: two processes handle each key's commands in order; a service's command follows the key",
        arguments: RedisBackend.allCases)
    func partitionedCommands(redis backend: RedisBackend) async throws {
        let harness = try PartitionHarness(partitions: 4, redisURL: backend.url, commands: true)
        // A command another service sends (or schedules) is routed when it is published.
        let sender = try #require(harness.topology.service(harness.source))
        let sent = OutboxMessage(
            .command(service: harness.sink, type: "Sequenced", data: #"{"key":"key-3","value":1}"#),
            cause: Envelope(type: "X", data: "{}"), service: sender)
        #expect(sent.stream == harness.definition.commandStream)
        #expect(
            Publisher(service: sender, topology: harness.topology).commands(for: sent).first?[1]
                == harness.partitioning.key(StreamPartitioning.partition(of: "key-3", count: 4)))
        let workers = try (0..<2).map { _ in try harness.startWorker() }
        defer { for worker in workers { harness.stopWorker(worker) } }
        try await eventually("the two processes share the 4 partitions", timeout: 60) {
            let owners = try harness.owners()
            let counts = Dictionary(grouping: owners.compactMap { $0 }, by: { $0 }).mapValues(\.count)
            return owners.allSatisfy { $0 != nil } && counts.count == 2 && counts.values.allSatisfy { $0 == 2 }
        }
        let keys = (0..<12).map { "key-\($0)" }
        var events: [(key: String, value: Int)] = []
        for value in 1...25 { for key in keys { events.append((key, value)) } }
        try harness.publish(events, ms: 1)
        try await eventually("every command handled", timeout: 120) { try harness.handledCount() == events.count }
        #expect(try harness.inversions().isEmpty)
        let rows = try harness.handled()
        #expect(Set(rows.map(\.handledBy)).count == 2, "both processes took partitions")
        for row in rows {
            #expect(row.stream == harness.partitioning.key(StreamPartitioning.partition(of: row.key, count: 4)))
        }
        try await eventually("nothing pending", timeout: 30) { try harness.pendingCount() == 0 }
    }
}

@Suite("Partition ownership and ordered backlogs as plain values")
struct PartitionStateTests {
    @Test("a process owns at most its fair share, gives back its highest partitions first")
    func share() {
        var share = PartitionBalancer.Share(count: 8, processes: 3)
        #expect(share.fair == 3)
        share.owned = [0, 1, 2]
        #expect(!share.mayAcquire(freeFor: 0, grace: 4))
        #expect(share.mayAcquire(freeFor: 5, grace: 4), "a partition free too long is taken past the share")
        share.owned = Set(0..<8)
        share.processes = 1
        #expect(!share.shouldRelease(7))
        share.processes = 4
        #expect(share.fair == 2)
        #expect((0..<8).filter(share.shouldRelease) == [2, 3, 4, 5, 6, 7])
        share.processes = 0
        #expect(share.fair == 8, "no heartbeat seen yet counts as one process")
    }

    @Test("a failed head holds the rest; held entries run in a batch after it; adopted ones run alone")
    func backlog() {
        func entry(_ id: String) -> StreamEntry { StreamEntry(id: id, fields: [StreamField("type", "T")]) }
        let now = Date()
        var backlog = OrderedBacklog()
        #expect(backlog.next(now: now, batch: 10) == .read)
        let read = ["1-0", "2-0", "3-0"].map { Delivery(entry: entry($0), attempt: 1) }
        backlog.apply(
            read,
            states: [
                "1-0": .retrying(attempt: 1, after: 0.5, error: "boom"), "2-0": .delivered(attempt: 1),
                "3-0": .delivered(attempt: 1),
            ], now: now)
        #expect(backlog.count == 2 + 1)
        #expect(backlog.next(now: now, batch: 10) == .wait(until: now.addingTimeInterval(0.5)))
        guard case .retryHead(let head) = backlog.next(now: now.addingTimeInterval(1), batch: 10) else {
            Issue.record("expected the head's retry")
            return
        }
        #expect(head.id == "1-0" && head.deliveries == 1 && head.error == "boom")
        backlog.apply([Delivery(entry: entry("1-0"), attempt: 2)], states: ["1-0": .acked], now: now)
        #expect(backlog.next(now: now, batch: 10) == .batch(Array(read[1...])))
        #expect(backlog.next(now: now, batch: 1) == .batch([read[1]]))
        backlog.apply(Array(read[1...]), states: ["2-0": .acked, "3-0": .acked], now: now)
        #expect(backlog.isEmpty)
        // Adopted from a previous owner: in id order, each claimed and run alone.
        backlog.adopt([("10-0", 1, nil), ("9-0", 3, now.addingTimeInterval(2))])
        #expect(backlog.next(now: now, batch: 10) == .wait(until: now.addingTimeInterval(2)))
        backlog.remove("9-0")
        guard case .retryHead(let adopted) = backlog.next(now: now, batch: 10) else {
            Issue.record("expected the adopted entry alone")
            return
        }
        #expect(adopted.id == "10-0" && adopted.entry == nil)
        #expect(OrderedBacklog.precedes("9-5", "10-0") && !OrderedBacklog.precedes("10-1", "10-0"))
    }
}
