import Choreo
import ChoreoTesting
import Foundation
import Gateway
import Redis
import Testing

@Suite("Submitting to a partitioned commands stream")
struct PartitionedSubmitTests {
    @Test(
        "a command goes to its key's partition with its idempotency record in that slot; a retry finds it",
        arguments: RedisBackend.allCases)
    func idempotentSubmit(redis backend: RedisBackend) async throws {
        let harness = try PartitionHarness(partitions: 4, redisURL: backend.url, commands: true)
        let store = try CommandStore(topology: harness.topology)
        let service = harness.definition
        let data = #"{"key":"order-7","value":1}"#
        let first = Envelope(type: "Sequenced", data: data)
        let accepted = try await store.submit(first, service: service, idempotencyKey: "idem-1", fingerprint: "f1")
        #expect(accepted == .accepted(first.id))
        // The retry has a new envelope id: it still lands on the same partition and finds the record.
        let retry = Envelope(type: "Sequenced", data: data)
        #expect(
            try await store.submit(retry, service: service, idempotencyKey: "idem-1", fingerprint: "f1")
                == .replayed(first.id))
        #expect(
            try await store.submit(
                Envelope(type: "Sequenced", data: data), service: service, idempotencyKey: "idem-1", fingerprint: "f2")
                == .conflict(first.id))
        // Without a key, and a query: routed the same way.
        let plain = Envelope(type: "Sequenced", data: #"{"key":"order-7","value":2}"#)
        _ = try await store.submit(plain, service: service, idempotencyKey: nil, fingerprint: "")
        let partition = harness.partitioning.key(StreamPartitioning.partition(of: "order-7", count: 4))
        let entries = try harness.redis.xrange(partition)
        #expect(entries.compactMap { $0["id"] } == [first.id, plain.id])
        for other in harness.partitioning.keys where other != partition {
            #expect(try harness.redis.command(["EXISTS", other]).int == 0, "\(other)")
        }
        #expect(try harness.redis.command(["EXISTS", service.commandStream]).int == 0)
        // Handled in order by a worker; the results reach the command records.
        let worker = try harness.startWorker()
        defer { harness.stopWorker(worker) }
        try await eventually("both handled", timeout: 60) { try harness.handledCount() == 2 }
        #expect(try harness.handled().map(\.value) == [1, 2])
        #expect(try harness.inversions().isEmpty)
    }
}
