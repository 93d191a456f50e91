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

/// Redis at its memory limit refuses XADD and HSET but accepts XACK: nothing may be
/// acknowledged unless what replaces it was written.
@Suite("Redis at maxmemory", .timeLimit(.minutes(3)))
struct MemoryLimitTests {
    @Test(
        "at maxmemory: no poison acknowledged without its dead letter, workers hold, the gateway answers 503; all settle after"
    )
    func memoryFullHoldsEverything() async throws {
        let server = try EphemeralRedis()
        let probe = try ProbeHarness(redisURL: server.url).withRoutes()
        var worker = try probe.startWorker()
        try await eventually("worker live") { try probe.liveWorkers().count == 1 }
        probe.stop(worker)
        let poison = try probe.send("Poison")
        let good = try probe.send("Record", "{\"key\":\"m\",\"value\":1}")
        try probe.redis.command(["HSET", Topology.commandKey(poison.id), "id", poison.id, "status", "accepted"])
        try probe.redis.command(["CONFIG", "SET", "maxmemory", "1"])
        try probe.redis.command(["CONFIG", "SET", "maxmemory-policy", "noeviction"])
        #expect(throws: RedisError.self) { try probe.redis.xadd(probe.definition.commandStream, fields: poison.fields) }

        var configuration = GatewayConfiguration()
        configuration.requireLiveWorker = false
        configuration.backpressure = false
        let gateway = try Gateway(topology: probe.topology, configuration: configuration)
        gateway.start()
        defer { gateway.stop() }
        try await Application(router: gateway.router()).test(.router) { client in
            let response = try await client.execute(
                uri: "/v1/\(probe.name)/records", method: .post, headers: json,
                body: body("{\"key\":\"g\",\"value\":1}"))
            #expect(response.status == .serviceUnavailable)
            #expect(response.headers[.retryAfter] == "5")
            #expect((try object(response)["detail"] as? String ?? "").contains("maxmemory"))
            let ready = try await client.execute(uri: "/readyz", method: .get)
            #expect(ready.status == .serviceUnavailable)
        }
        let status = try SystemStatus.collect(topology: probe.topology, redis: probe.redis)
        #expect(status.problems.first?.contains("memory full") == true, "\(status.problems)")

        worker = try probe.startWorker()
        defer { probe.stop(worker) }
        try await eventually("the batch read and committed", timeout: 20) { try probe.recordCount() == 1 }
        try await Task.sleep(nanoseconds: 1_500_000_000)
        #expect(try probe.pendingCount() == 2, "nothing acknowledged while its replacement is refused")
        #expect(try probe.deadLetters().isEmpty)
        #expect(try probe.command(poison.id)["status"] == "accepted")

        try probe.redis.command(["CONFIG", "SET", "maxmemory", "0"])
        try await eventually("settled once Redis takes writes", timeout: 30) {
            try probe.pendingCount() == 0 && probe.deadLetters().count == 1
        }
        #expect(try probe.command(poison.id)["status"] == "dead")
        try await eventually("the good message's result published") {
            try probe.command(good.id)["status"] == "succeeded"
        }
        #expect(try probe.recordCount() == 1)
    }
}
