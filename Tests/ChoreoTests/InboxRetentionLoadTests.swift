import Choreo
import ChoreoTesting
import Foundation
import Postgres
import Testing

/// Inbox retention keeps up with the runtime's insert rate. (A load test: `ops/test` runs the
/// `LoadTests` suites after the others, so their load does not skew timing-sensitive tests.)
@Suite("Inbox retention under load", .timeLimit(.minutes(5)))
struct InboxRetentionLoadTests {
    @Test("a million inbox rows past the retention are gone within a minute while the worker keeps consuming")
    func inboxRetentionKeepsUp() async throws {
        var policy = ProbeHarness.testPolicy
        policy.inboxRetention = 3600
        let probe = try ProbeHarness(policy: policy)
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        try probe.send("Record", "{\"key\":\"warm\",\"value\":0}")
        try await eventually("migrated and consuming") { try probe.recordCount() == 1 }
        try probe.postgres.query(
            """
            INSERT INTO \(probe.name).inbox (message_id, stream, type, correlation, processed_at)
            SELECT 'old-' || n, 's', 'T', 'c', now() - interval '2 hours' FROM generate_series(1, 1000000) AS n
            """)
        let started = Date()
        var sent = 1
        while try probe.inboxCount() > 1000 + sent {
            #expect(Date().timeIntervalSince(started) < 60, "expired rows still there after a minute")
            if Date().timeIntervalSince(started) > 60 { break }
            for index in 0..<50 { try probe.send("Record", "{\"key\":\"live\",\"value\":\(index)}") }
            sent += 50
            try await Task.sleep(nanoseconds: 200_000_000)
        }
        try await eventually("every expired row pruned", timeout: 60) {
            try probe.postgres.query(
                "SELECT count(*) AS n FROM \(probe.name).inbox WHERE message_id LIKE 'old-%'"
            ).first?.decode(Int.self, "n") == 0
        }
        print("pruned 1,000,000 expired inbox rows in \(Int(Date().timeIntervalSince(started))) s")
        try await eventually("the live messages applied meanwhile") { try probe.recordCount() == sent }
        #expect(try probe.inboxCount() == sent, "fresh rows are kept")
    }
}
