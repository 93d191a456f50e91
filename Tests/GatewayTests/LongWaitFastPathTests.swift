import Choreo
import ChoreoTesting
import Foundation
import Gateway
import Hummingbird
import HummingbirdTesting
import Testing

/// Long-waits parked on the connection (LongWaitFastPath), over real TCP: the same answers as
/// the router's (woken by the result, timed out, refused for a stranger), nothing left parked
/// by a client that went away, a pipelined request behind a parked one answered after it, and
/// shutdown answering every parked waiter.
@Suite("Gateway long-waits parked on the connection", .serialized, .timeLimit(.minutes(3)))
struct LongWaitFastPathTests {
    static let alice = "alice-secret-0123456789"
    static let bob = "bob-secret-0123456789"

    /// A probe and a gateway (keys alice and bob) served over TCP for `body`, with alice's
    /// Authorization header.
    static func live(
        _ body: @escaping @Sendable (Int, ProbeHarness, Gateway, [(String, String)]) async throws -> Void
    ) async throws {
        let probe = try ProbeHarness().withRoutes()
        var configuration = GatewayConfiguration()
        configuration.requireLiveWorker = false
        configuration.keys = try APIKeyring(spec: "alice:\(Self.alice),bob:\(Self.bob)")
        let gateway = try Gateway(topology: probe.topology, configuration: configuration)
        gateway.start()
        defer { gateway.stop() }
        try await eventually("the gateway's first readings", timeout: 60) { gateway.hasFreshReadings }
        try await gateway.serveLive { port in
            try await body(port, probe, gateway, [("Authorization", "Bearer \(Self.alice)")])
        }
    }

    static func submit(_ port: Int, _ probe: ProbeHarness, key: String = alice, value: Int) async throws -> String {
        let connection = try RawHTTPConnection(port: port, timeout: 60)
        try await connection.send(
            RawHTTPConnection.request(
                "POST", "/v1/\(probe.name)/records",
                headers: [("Content-Type", "application/json"), ("Authorization", "Bearer \(key)")],
                body: "{\"key\":\"fast-wait\",\"value\":\(value)}"))
        let accepted = try await connection.response()
        #expect(accepted.status == 202, "\(accepted.body)")
        return try #require(
            (try JSONSerialization.jsonObject(with: Data(accepted.body.utf8)) as? [String: Any])?["id"] as? String)
    }

    static func status(_ response: RawHTTPResponse) -> String? {
        (try? JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])?["status"] as? String
    }

    @Test("woken by the result, timed out with 202, a stranger refused at once, a pipelined poll answered after it")
    func answers() async throws {
        try await Self.live { port, probe, gateway, auth in
            // Parked, then woken when the worker commits: 200 with the final status.
            let id = try await Self.submit(port, probe, value: 1)
            let waiter = try RawHTTPConnection(port: port, timeout: 60)
            try await waiter.send(RawHTTPConnection.request("GET", "/v1/commands/\(id)?wait=20", headers: auth))
            try await eventually("the long-wait parked", timeout: 60) { gateway.waiters.count == 1 }
            let worker = try probe.startWorker()
            let woken = try await waiter.response()
            #expect(woken.status == 200, "\(woken.body)")
            #expect(Self.status(woken) == "succeeded")
            #expect(gateway.waiters.count == 0)
            probe.stop(worker)

            // Not finished within its wait: 202 with the current status, after the wait.
            let pending = try await Self.submit(port, probe, value: 2)
            let started = Date()
            let slow = try RawHTTPConnection(port: port, timeout: 60)
            try await slow.send(
                RawHTTPConnection.request(
                    "GET", "/v1/commands/\(pending)", headers: auth + [("Prefer", "respond-async, wait=1")]))
            let timedOut = try await slow.response()
            #expect(timedOut.status == 202)
            #expect(Self.status(timedOut) == "accepted")
            #expect(Date().timeIntervalSince(started) >= 0.9, "answered when its wait ran out")
            #expect(gateway.waiters.count == 0)

            // Another principal's command is not parked: 404 long before the wait would end.
            let strangerStarted = Date()
            let stranger = try RawHTTPConnection(port: port, timeout: 60)
            try await stranger.send(
                RawHTTPConnection.request(
                    "GET", "/v1/commands/\(pending)?wait=60", headers: [("Authorization", "Bearer \(Self.bob)")]))
            #expect(try await stranger.response().status == 404)
            #expect(Date().timeIntervalSince(strangerStarted) < 30)
            // No key: 401 from the router, not parked.
            let anonymous = try RawHTTPConnection(port: port, timeout: 60)
            try await anonymous.send(RawHTTPConnection.request("GET", "/v1/commands/\(pending)?wait=60"))
            #expect(try await anonymous.response().status == 401)
            // A malformed wait: the router's 400 problem.
            let malformed = try RawHTTPConnection(port: port, timeout: 60)
            try await malformed.send(
                RawHTTPConnection.request("GET", "/v1/commands/\(pending)?wait=soon", headers: auth))
            #expect(try await malformed.response().status == 400)

            // Pipelined: a parked long-wait, then a plain poll on the same connection; the poll
            // is answered after the long-wait, in order.
            let pipelined = try RawHTTPConnection(port: port, timeout: 60)
            try await pipelined.send(
                RawHTTPConnection.request("GET", "/v1/commands/\(pending)?wait=1", headers: auth)
                    + RawHTTPConnection.request("GET", "/v1/commands/\(id)", headers: auth))
            let first = try await pipelined.response()
            let second = try await pipelined.response()
            #expect(first.status == 202 && Self.status(first) == "accepted")
            #expect(second.status == 200 && Self.status(second) == "succeeded")
        }
    }

    @Test("a client that goes away leaves nothing parked; shutdown answers every parked waiter")
    func disconnectAndShutdown() async throws {
        try await Self.live { port, probe, gateway, auth in
            let id = try await Self.submit(port, probe, value: 3)
            var connections: [RawHTTPConnection] = []
            for _ in 0..<20 {
                let connection = try RawHTTPConnection(port: port, timeout: 60)
                try await connection.send(RawHTTPConnection.request("GET", "/v1/commands/\(id)?wait=60", headers: auth))
                connections.append(connection)
            }
            try await eventually("20 parked", timeout: 60) { gateway.waiters.count == 20 }
            connections.removeFirst(10)  // closed as they go (a client that went away)
            try await eventually("the 10 closed ones unparked", timeout: 60) { gateway.waiters.count == 10 }
            // Shutdown (what SIGTERM does first): every parked waiter is answered at once.
            gateway.waiters.stop()
            for connection in connections {
                let answer = try await connection.response()
                #expect(answer.status == 202)
                #expect(Self.status(answer) == "accepted")
            }
            #expect(gateway.waiters.count == 0)
        }
    }
}
