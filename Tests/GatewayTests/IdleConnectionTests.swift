import Choreo
import ChoreoTesting
import Foundation
import Gateway
import Hummingbird
import HummingbirdTesting
import Testing

/// Idle keep-alive connections are closed after the idle timeout; busy ones never.
@Suite("Gateway idle connections", .timeLimit(.minutes(3)))
struct IdleConnectionLoadTests {
    /// Whether the peer closed `fd` (end of stream or reset), without blocking.
    static func closedByPeer(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        if count == 0 { return true }
        return count < 0 && errno != EAGAIN && errno != EWOULDBLOCK
    }

    @Test(
        "2,000 idle connections: health and submits still answered, all closed after the timeout; a parked long-wait is not cut"
    )
    func idleConnectionsClose() async throws {
        let probe = try ProbeHarness().withRoutes()
        var configuration = GatewayConfiguration()
        configuration.requireLiveWorker = false
        configuration.idleTimeout = 3
        let gateway = try Gateway(topology: probe.topology, configuration: configuration)
        gateway.start()
        defer { gateway.stop() }
        try await eventually("the gateway's first readings", timeout: 60) { gateway.hasFreshReadings }
        try await gateway.serveLive { port in
            // A command that stays accepted (no worker), long-waited past the idle timeout.
            let submit = try RawHTTPConnection(port: port)
            try await submit.send(
                RawHTTPConnection.request(
                    "POST", "/v1/\(probe.name)/records", headers: [("Content-Type", "application/json")],
                    body: "{\"key\":\"i\",\"value\":1}"))
            let accepted = try await submit.response()
            #expect(accepted.status == 202)
            let id = try #require(
                (try JSONSerialization.jsonObject(with: Data(accepted.body.utf8)) as? [String: Any])?["id"] as? String)
            let waiter = try RawHTTPConnection(port: port, timeout: 30)
            try await waiter.send(RawHTTPConnection.request("GET", "/v1/commands/\(id)?wait=7"))
            let waitStarted = Date()

            var idle: [Int32] = []
            defer { for fd in idle { close(fd) } }
            for _ in 0..<2000 { idle.append(try #require(connectLoopback(port: port))) }
            let opened = Date()
            // Watch for closures while the gateway serves other requests.
            let fds = idle
            let watcher = Task { () -> [Double] in
                var closedAfter = [Double?](repeating: nil, count: fds.count)
                let deadline = Date().addingTimeInterval(30)
                while Date() < deadline, closedAfter.contains(where: { $0 == nil }) {
                    for (index, fd) in fds.enumerated() where closedAfter[index] == nil && Self.closedByPeer(fd) {
                        closedAfter[index] = Date().timeIntervalSince(opened)
                    }
                    try? await Task.sleep(nanoseconds: 50_000_000)
                }
                return closedAfter.map { $0 ?? .infinity }
            }
            #expect((try? httpGet(port: port, path: "/healthz"))?.hasPrefix("HTTP/1.1 200") == true)
            let another = try RawHTTPConnection(port: port)
            try await another.send(
                RawHTTPConnection.request(
                    "POST", "/v1/\(probe.name)/records", headers: [("Content-Type", "application/json")],
                    body: "{\"key\":\"j\",\"value\":2}"))
            #expect(try await another.response().status == 202)
            let closedAfter = await watcher.value
            #expect(closedAfter.allSatisfy { $0.isFinite }, "every idle connection closed")
            // None before its idle timeout (opening took a fraction of a second).
            #expect((closedAfter.min() ?? 0) >= 2.5, "earliest close \(closedAfter.min() ?? 0) s after opening")
            let waited = try await waiter.response()
            #expect(waited.status == 202, "the long-wait answered when its wait ended, not cut")
            #expect(Date().timeIntervalSince(waitStarted) >= 6.5)
        }
    }
}
