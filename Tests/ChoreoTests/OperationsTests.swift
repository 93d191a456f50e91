import Choreo
import ChoreoTesting
import Foundation
import Redis
import Testing

@Suite("Worker operations: metrics, heartbeats, janitor")
struct OperationsTests {
    @Test("a worker process serves Prometheus metrics with the runtime's names")
    func metricsEndpoint() async throws {
        let probe = try ProbeHarness()
        let file = try probe.writeTopology(processes: 1)
        let port = try freePort()
        let pid = try probe.spawnChoreo([
            "worker", probe.name, "--single", "--topology", file, "--metrics-port", String(port),
        ])
        defer {
            kill(pid, SIGTERM)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        try probe.send("Record", "{\"key\":\"m\",\"value\":1}")
        try probe.send("Poison")
        try await eventually("handled", timeout: 30) { try probe.recordCount() == 1 }
        let body = try await eventuallyValue("metrics with the handled message", timeout: 30) { () -> String? in
            let text = try httpGet(port: port, path: "/metrics")
            return text.contains("choreo_messages_total") && text.contains("choreo_group_lag") ? text : nil
        }
        #expect(body.contains("outcome=\"handled\""))
        #expect(body.contains("outcome=\"poison\""))
        #expect(body.contains("choreo_handler_duration_seconds_bucket"))
        #expect(body.contains("choreo_batch_duration_seconds"))
        #expect(body.contains("choreo_dead_letters"))
        #expect(body.contains("service=\"\(probe.name)\""))
    }

    @Test("entries of a vanished consumer are adopted after claim_idle; the janitor then removes it")
    func adoptionAndJanitor() async throws {
        let probe = try ProbeHarness()
        try probe.redis.xgroupCreate(probe.definition.commandStream, group: probe.name, startID: "0")
        let message = try probe.send("Record", "{\"key\":\"ghost\",\"value\":1}")
        _ = try probe.redis.xreadgroup(
            group: probe.name, consumer: "ghost-1-dead", streams: [(probe.definition.commandStream, ">")], count: 10)
        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        try await eventually("adopted and handled", timeout: 20) {
            try probe.command(message.id)["status"] == "succeeded"
        }
        try await eventually("the gone consumer is removed", timeout: 20) {
            let names = try probe.redis.xinfoConsumers(probe.definition.commandStream, group: probe.name).map(\.name)
            return !names.contains("ghost-1-dead") && names.contains(worker.consumer)
        }
        #expect(try probe.pendingCount() == 0)
        let beats = try probe.liveWorkers()
        #expect(beats.map(\.consumer) == [worker.consumer])
        #expect(beats.first?.pid == getpid())
    }
}
