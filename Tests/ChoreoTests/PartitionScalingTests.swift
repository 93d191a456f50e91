import Choreo
import ChoreoTesting
import Foundation
import Redis
import Testing

/// Run alone by ops/test (a throughput ratio, measured without the rest of the suite's load).
@Suite("Partitioned streams: throughput grows with processes")
struct PartitionScalingTests {
    @Test(
        "4 processes over 8 partitions handle an I/O-bound stream at least 3x as fast as one",
        arguments: RedisBackend.allCases)
    func scalesWithProcesses(redis backend: RedisBackend) async throws {
        let harness = try PartitionHarness(partitions: 8, redisURL: backend.url)
        func run(processes: Int, values: ClosedRange<Int>) async throws -> Double {
            let file = try harness.writeTopology(processes: processes, batch: 20)
            let supervisor = try harness.spawnChoreo(["worker", harness.sink, "--topology", file])
            try await eventually("\(processes) workers sharing the 8 partitions evenly", timeout: 60) {
                let live = Set(try harness.liveWorkers().map(\.consumer))
                let owners = try harness.owners()
                guard live.count == processes, owners.allSatisfy({ $0.map(live.contains) == true }) else {
                    return false
                }
                let counts = Dictionary(grouping: owners.compactMap { $0 }, by: { $0 }).mapValues(\.count)
                return counts.count == processes && counts.values.allSatisfy { $0 == 8 / processes }
            }
            let before = try harness.handledCount()
            let keys = (0..<64).map { "key-\($0)" }
            var events: [(key: String, value: Int)] = []
            for value in values { for key in keys { events.append((key, value)) } }
            let started = Date()
            try harness.publish(events, ms: 5)
            try await eventually("\(events.count) events handled", timeout: 120, interval: 0.01) {
                try harness.handledCount() == before + events.count
            }
            let seconds = Date().timeIntervalSince(started)
            kill(supervisor, SIGTERM)
            _ = try await waitForExit(supervisor, timeout: 30)
            return Double(events.count) / seconds
        }
        let one = try await run(processes: 1, values: 1...12)
        let four = try await run(processes: 4, values: 13...24)
        print("partitions (\(backend.rawValue)): 1 process \(Int(one))/s, 4 processes \(Int(four))/s, x\(four / one)")
        #expect(four >= 3 * one, "1 process: \(Int(one))/s, 4 processes: \(Int(four))/s")
        #expect(try harness.inversions().isEmpty)
    }
}
