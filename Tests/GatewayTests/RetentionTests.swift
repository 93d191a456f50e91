import Choreo
import ChoreoTesting
import Foundation
import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Operations
import Redis
import Testing

/// Retention never removes what a consumer group still needs: a backlog over `maxlen` is
/// backpressure (503 with Retry-After, flagged by status), never a silent loss.
@Suite("Stream retention and backpressure", .timeLimit(.minutes(5)))
struct RetentionLoadTests {
    static func probe(maxlen: Int) throws -> ProbeHarness {
        var policy = ProbeHarness.testPolicy
        policy.maxLength = maxlen
        return try ProbeHarness(policy: policy).withRoutes()
    }

    @Test("3,000 commands accepted with no worker and maxlen 1,000: none trimmed away, all applied once workers start")
    func backlogBeyondMaxlenIsKept() async throws {
        let probe = try Self.probe(maxlen: 1000)
        var configuration = GatewayConfiguration()
        configuration.requireLiveWorker = false
        let gateway = try Gateway(topology: probe.topology, configuration: configuration)
        gateway.start()
        defer { gateway.stop() }
        let app = Application(router: gateway.router())
        let path = "/v1/\(probe.name)/records"
        let (accepted, refused) = try await app.test(.router) { client -> ([String], [Int]) in
            var accepted: [String] = []
            var refused: [Int] = []
            for index in 0..<3000 {
                let response = try await client.execute(
                    uri: path, method: .post, headers: json, body: body("{\"key\":\"u\(index)\",\"value\":\(index)}"))
                if response.status == .accepted {
                    accepted.append(try #require(try object(response)["id"] as? String))
                } else {
                    #expect(response.status == .serviceUnavailable)
                    #expect(response.headers[.retryAfter] != nil)
                    refused.append(index)
                }
            }
            return (accepted, refused)
        }
        #expect(accepted.count >= 1000)
        // Every accepted command is still in the stream: nothing trimmed from the head.
        #expect(try probe.redis.xlen(probe.definition.commandStream) == accepted.count)
        // Over the limit: refused (a fresh reading), visible in status.
        try await Task.sleep(nanoseconds: 1_100_000_000)
        try await app.test(.router) { client in
            let response = try await client.execute(
                uri: path, method: .post, headers: json, body: body("{\"key\":\"late\",\"value\":1}"))
            #expect(response.status == .serviceUnavailable)
            #expect(response.headers[.retryAfter] == "5")
            let detail = try object(response)["detail"] as? String ?? ""
            #expect(
                detail.contains(probe.definition.commandStream) && detail.contains("nothing is dropped"), "\(detail)")
        }
        let status = try SystemStatus.collect(topology: probe.topology, redis: probe.redis)
        #expect(
            status.problems.contains { $0.contains("backlog on \(probe.definition.commandStream)") },
            "\(status.problems)")

        let worker = try probe.startWorker()
        defer { probe.stop(worker) }
        try await eventually("every accepted command applied", timeout: 120) {
            try probe.recordCount() == accepted.count
        }
        // A client honouring Retry-After submits the refused ones again once the backlog drained.
        try await eventually("the backlog drained below the limit", timeout: 30) {
            try probe.topology.retention(of: probe.definition.commandStream).read(probe.redis).isOverLimit == false
        }
        try await Task.sleep(nanoseconds: 1_100_000_000)
        let resent = try await app.test(.router) { client -> Int in
            var resent = 0
            for index in refused {
                let response = try await client.execute(
                    uri: path, method: .post, headers: json, body: body("{\"key\":\"u\(index)\",\"value\":\(index)}"))
                if response.status == .accepted { resent += 1 }
            }
            return resent
        }
        #expect(resent == refused.count)
        try await eventually("all 3,000 applied, once each", timeout: 120) { try probe.recordCount() == 3000 }
        try await eventually("nothing pending", timeout: 30) { try probe.pendingCount() == 0 }
        let keys = try probe.postgres.query("SELECT count(DISTINCT key) AS n FROM \(probe.name).records")
        #expect(try keys.first?.decode(Int.self, "n") == 3000)
        #expect(try probe.deadLetters().isEmpty)
        // Once every group acknowledged them, retention trims back to maxlen.
        try await eventually("trimmed to maxlen once acknowledged", timeout: 30) {
            try probe.redis.xlen(probe.definition.commandStream) <= 1000
        }
    }

    @Test(
        "an events stream whose subscriber is stopped keeps every event until the subscriber returns and handles them")
    func stoppedSubscriberMissesNothing() async throws {
        let producer = try Self.probe(maxlen: 1000)
        let subscriber = try ProbeHarness()
        var topology = producer.topology
        var definition = subscriber.definition
        definition.subscribes = [producer.definition.eventStream]
        topology.services.append(definition)
        producer.topology = topology
        subscriber.topology = topology
        var first = try subscriber.startWorker()
        try await eventually("the subscriber's group exists") {
            try producer.redis.xinfoGroups(producer.definition.eventStream).contains { $0.name == subscriber.name }
        }
        let worker = try producer.startWorker()
        defer { producer.stop(worker) }
        try producer.send("Record", "{\"key\":\"early\",\"value\":0}")
        try await eventually("the first event seen") { try seen(subscriber) == 1 }
        subscriber.stop(first)
        for index in 1...3000 { try producer.send("Record", "{\"key\":\"e\",\"value\":\(index)}") }
        try await eventually("3,000 more events published", timeout: 120) {
            try producer.redis.xinfoGroups(producer.definition.commandStream).first?.lag == 0
                && producer.pendingCount() == 0 && producer.outboxCount() == 0
        }
        // Give retention several rounds: it must not trim what the stopped group has not read.
        try await Task.sleep(nanoseconds: 2_500_000_000)
        #expect(try producer.redis.xlen(producer.definition.eventStream) >= 3000)
        let reading = try producer.topology.retention(of: producer.definition.eventStream).read(producer.redis)
        #expect(reading.isOverLimit && reading.slowestGroup == subscriber.name)
        first = try subscriber.startWorker()
        defer { subscriber.stop(first) }
        try await eventually("every event handled by the returning subscriber", timeout: 120) {
            try seen(subscriber) == 3001
        }
        try await eventually("then trimmed back to maxlen", timeout: 30) {
            try producer.redis.xlen(producer.definition.eventStream) <= 1000
        }
    }

    func seen(_ probe: ProbeHarness) throws -> Int {
        try probe.postgres.query("SELECT count(*) AS n FROM \(probe.name).seen").first?.decode(Int.self, "n") ?? 0
    }
}
