import Choreo
import ChoreoTesting
import Foundation
import Redis
import Testing

/// The operator CLI (`choreo dlq`, `status`, `trace`) run as a real process against real
/// workers, Redis and Postgres.
@Suite("Operator CLI", .timeLimit(.minutes(5)))
struct OperatorCLITests {
    /// A probe service with its topology file and one worker process.
    static func probeWithWorker() async throws -> (ProbeHarness, String) {
        let probe = try ProbeHarness()
        let path = try probe.writeTopology(processes: 1, batch: 20)
        let worker = try probe.spawnChoreo(["worker", probe.name, "--topology", path])
        ChildReaper.register(worker)
        try await eventually("a live worker", timeout: 30) { try !probe.liveWorkers().isEmpty }
        return (probe, path)
    }

    static func letters(_ run: CommandRun) -> [[String: Any]] {
        run.json as? [[String: Any]] ?? []
    }

    @Test("a transient failure dead-letters the command; after the fix, dlq replay makes it succeed, once")
    func replayAfterTransientFailure() async throws {
        let (probe, path) = try await Self.probeWithWorker()
        try probe.postgres.query("INSERT INTO \(probe.name).blocks (key) VALUES ('k')")
        let message = try probe.send("FailWhileBlocked", "{\"key\":\"k\",\"value\":1}")
        try await eventually("the command dead after max_deliveries", timeout: 30) {
            try probe.deadLetters().count == 1
        }
        let letter = try probe.deadLetters()[0]
        #expect(letter.errorText.contains("blocked"))
        #expect(letter.deliveryCount == 3)
        #expect(try probe.command(message.id)["status"] == "dead")

        try probe.postgres.query("DELETE FROM \(probe.name).blocks")
        // A second copy, as a replay interrupted between re-add and delete would leave.
        try probe.redis.xadd(probe.definition.deadStream, fields: letter.entry.fields)
        let run = try await runChoreo(["dlq", "replay", probe.name, "--all", "--yes", "--topology", path])
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.output.contains("replayed 2 of 2"), "\(run.output)")

        let (gateway, port) = try await probe.spawnGateway(topology: path)
        try await eventually("the command succeeded, seen through the gateway", timeout: 30) {
            guard let response = try? httpGet(port: port, path: "/v1/commands/\(message.id)") else { return false }
            return response.contains("\"status\":\"succeeded\"")
        }
        try await eventually("nothing pending") { try probe.pendingCount() == 0 }
        #expect(try probe.recordCount() == 1)
        #expect(try probe.deadLetters().isEmpty)
        kill(gateway, SIGTERM)
    }

    @Test("filters select exactly the intended letters; purge removes only what it listed")
    func filtersAndPurge() async throws {
        let (probe, path) = try await Self.probeWithWorker()
        for _ in 0..<3 { try probe.send("Poison") }
        for _ in 0..<2 { try probe.send("NoSuchType") }
        for _ in 0..<2 { try probe.send("AlwaysFail") }
        try await eventually("7 dead letters", timeout: 30) { try probe.deadLetters().count == 7 }

        let poison = try await runChoreo(["dlq", "list", probe.name, "--type", "Poison", "--json", "--topology", path])
        #expect(poison.status == 0)
        #expect(Self.letters(poison).count == 3)
        #expect(Self.letters(poison).allSatisfy { $0["type"] as? String == "Poison" })
        let unknown = try await runChoreo([
            "dlq", "list", probe.name, "--error", "UNKNOWN MESSAGE TYPE", "--json", "--topology", path,
        ])
        #expect(Self.letters(unknown).count == 2)
        let recent = try await runChoreo([
            "dlq", "list", probe.name, "--since", "10m", "--limit", "4", "--json", "--topology", path,
        ])
        #expect(Self.letters(recent).count == 4)
        let none = try await runChoreo(["dlq", "list", probe.name, "--until", "1d", "--json", "--topology", path])
        #expect(Self.letters(none).isEmpty)
        let groups = try await runChoreo(["dlq", "list", probe.name, "--group", "--json", "--topology", path])
        let counts = (groups.json as? [[String: Any]] ?? []).compactMap { $0["count"] as? Int }
        #expect(counts == [3, 2, 2], "\(groups.output)")

        let refused = try await runChoreo(["dlq", "purge", probe.name, "--type", "Poison", "--topology", path])
        #expect(refused.status == 2)
        #expect(refused.errors.contains("--yes"))
        #expect(try probe.deadLetters().count == 7)

        let purge = try await runChoreo([
            "dlq", "purge", probe.name, "--type", "NoSuchType", "--yes", "--topology", path,
        ])
        #expect(purge.status == 0)
        #expect(purge.output.components(separatedBy: "deleting ").count - 1 == 2, "\(purge.output)")
        let left = try probe.deadLetters()
        #expect(left.count == 5)
        #expect(!left.contains { $0.type == "NoSuchType" })

        let unknownService = try await runChoreo(["dlq", "list", "no-such-service", "--topology", path])
        #expect(unknownService.status == 2)
        #expect(unknownService.errors.contains("unknown service 'no-such-service'"))
        let unknownEntry = try await runChoreo(["dlq", "show", probe.name, "1-1", "--topology", path])
        #expect(unknownEntry.status == 2)
        let shown = try await runChoreo(["dlq", "show", probe.name, left[0].entry.id, "--json", "--topology", path])
        #expect((shown.json as? [String: Any])?["error"] as? String == left[0].errorText)
    }

    @Test("a replay killed with SIGKILL midway loses nothing and applies nothing twice")
    func replayInterrupted() async throws {
        let (probe, path) = try await Self.probeWithWorker()
        // Enough letters that the replay (150/s) is still under way when it is killed, even on a
        // loaded machine.
        let total = 900
        for index in 0..<total {
            let envelope = Envelope(type: "Record", data: "{\"key\":\"r\",\"value\":\(index)}")
            try probe.redis.xadd(
                probe.definition.deadStream,
                fields: envelope.fields + [
                    StreamField(DeadLetter.sourceStream, probe.definition.commandStream),
                    StreamField(DeadLetter.sourceID, "0-\(index + 1)"), StreamField(DeadLetter.group, probe.name),
                    StreamField(DeadLetter.deliveries, "5"), StreamField(DeadLetter.error, "database was down"),
                    StreamField(DeadLetter.deadAt, String(Envelope.nowMilliseconds())),
                ])
        }
        let replay = try probe.spawnChoreo([
            "dlq", "replay", probe.name, "--all", "--yes", "--rate", "150", "--topology", path,
        ])
        try await eventually("part of the replay done", timeout: 30) {
            let left = try probe.redis.xlen(probe.definition.deadStream)
            return left < total - 30
        }
        kill(replay, SIGKILL)
        _ = try await waitForExit(replay, timeout: 5)
        #expect(try probe.redis.xlen(probe.definition.deadStream) > 0)
        let rest = try await runChoreo(["dlq", "replay", probe.name, "--all", "--yes", "--topology", path])
        #expect(rest.status == 0, "\(rest.errors)")
        try await eventually("every record applied", timeout: 60) { try probe.recordCount() == total }
        try await eventually("nothing pending") { try probe.pendingCount() == 0 }
        #expect(try probe.recordCount() == total)
        #expect(try probe.deadLetters().isEmpty)
    }

    @Test("status --json reports the lag a test created on purpose")
    func statusReportsLag() async throws {
        let probe = try ProbeHarness()
        let path = try probe.writeTopology(processes: 1)
        try probe.redis.xgroupCreate(probe.definition.commandStream, group: probe.name, startID: "0")
        for _ in 0..<25 { try probe.send("Noop") }
        let run = try await runChoreo(["status", "--json", "--topology", path, "--gateway", "http://127.0.0.1:1"])
        #expect(run.status == 1, "no live worker is a problem")
        let status = try #require(run.json as? [String: Any], "\(run.output) \(run.errors)")
        let service = (status["services"] as? [[String: Any]])?.first { $0["name"] as? String == probe.name }
        let stream = (service?["streams"] as? [[String: Any]])?.first
        #expect(stream?["lag"] as? Int == 25)
        #expect(stream?["length"] as? Int == 25)
        #expect((service?["problems"] as? [String] ?? []).contains("no live worker"))
    }
}
