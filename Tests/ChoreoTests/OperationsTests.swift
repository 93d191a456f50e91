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

/// A minimal HTTP GET over loopback, for tests.
func httpGet(port: Int, path: String) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else { throw TimeoutError(what: "connect to \(port)", seconds: 0, lastError: nil) }
    let request = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8)
    _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = recv(fd, &buffer, buffer.count, 0)
        if count <= 0 { break }
        response += buffer[0..<count]
    }
    return String(decoding: response, as: UTF8.self)
}
