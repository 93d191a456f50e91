import Choreo
import ChoreoTesting
import Foundation
import Redis
import Shop
import Testing

/// A master failover under load: `kill -9` of the master holding the orders streams while
/// orders flow. Runs in a pass of its own in ops/test, alone on the cluster.
@Suite("Redis Cluster failover under load", .serialized, .timeLimit(.minutes(6)))
struct ClusterFailoverTests {
    @Test("kill -9 of the orders master under load: every accepted order decided, checker green, nothing dead")
    func masterFailover() async throws {
        try await TestCluster.waitUntilHealthy()
        let system = try await ShopSystem.start(redisURL: TestCluster.url, ownDatabase: true)
        let client = ShopClient(base: system.base)
        let topology = try Choreo.Topology.load(path: system.topologyPath, environment: system.environment)
        let admin = try RedisConnection(url: TestCluster.url)
        var deadBefore: [String: Int] = [:]
        for service in topology.services { deadBefore[service.name] = try admin.xlen(service.deadStream) }
        var plan = LoadRun.Plan()
        plan.orders = 2_000
        plan.rate = 100
        plan.users = 20
        plan.products = 10
        plan.submitRetry = 60
        plan.verdictTimeout = 90
        let load = LoadRun(client: client, plan: plan) { _ in }
        let run = Task { try await load.run() }

        // Once orders flow (about 5 s in), the master of the orders streams dies.
        try await Task.sleep(for: .seconds(5))
        let victim = try TestCluster.masterPort(ofKey: "{orders}.events")
        // Connections whose slot map names the master about to die, left unused until the
        // replica serves.
        let keyed = try RedisConnection(url: TestCluster.url)
        let everyNode = try RedisConnection(url: TestCluster.url)
        let killed = Date()
        try TestCluster.kill(port: victim)
        try await TestCluster.waitUntilHealthy(timeout: 30)
        let promoted = Date().timeIntervalSince(killed)
        let newMaster = try TestCluster.masterPort(ofKey: "{orders}.events")
        #expect(newMaster != victim)
        // The first command of a stale map reaches the promoted replica (the map reloaded when
        // the dead master refused the connection), not an error for the caller to back off from.
        let length = Result { try keyed.xlen("{orders}.commands") }
        #expect(((try? length.get()) ?? 0) > 0, "\(length)")
        // Every-node reads (the lost-writes check, Redis memory) reload the map themselves: a
        // worker's maintenance connection may send nothing else. (They used to ask the dead
        // master until some keyed command happened to reload the map.)
        let epoch = Result { try RedisEpoch.read(everyNode).text }
        #expect((try? epoch.get())?.contains(":\(newMaster)=") == true, "\(epoch)")
        #expect((try? epoch.get())?.contains(":\(victim)=") == false, "\(epoch)")

        let report = try await run.value
        print(
            "failover: master \(victim) killed, replica \(newMaster) serving after \(String(format: "%.1f", promoted)) s; "
                + "offered \(report.offered), accepted \(report.accepted), not accepted \(report.notAccepted), "
                + "confirmed \(report.confirmed), undecided \(report.undecided), dead \(report.dead), "
                + "p50 \(report.latencyMs["p50"] ?? 0) ms, p99 \(report.latencyMs["p99"] ?? 0) ms, "
                + "max \(report.latencyMs["max"] ?? 0) ms")
        #expect(report.undecided == 0, "\(report.firstErrors)")
        #expect(report.dead == 0, "\(report.firstErrors)")
        #expect(report.notAccepted == 0, "\(report.firstErrors)")
        #expect(report.accepted == plan.orders)
        try await ShopTests.expectCheckerGreen(system)
        let redis = try RedisConnection(url: TestCluster.url(port: newMaster))
        // Drained, and reported so: no lag left (Redis's own counter on the promoted replica
        // can stay behind; a group delivered the last entry has none).
        try await eventually("no group lags", timeout: 30) {
            try topology.services.allSatisfy { service in
                try topology.consumedKeys(of: service).allSatisfy { stream in
                    try redis.xinfoGroups(stream).first { $0.name == service.name }.map { ($0.lag ?? 0) == 0 } ?? true
                }
            }
        }
        for service in topology.services {
            #expect(try redis.xlen(service.deadStream) == deadBefore[service.name], "\(service.deadStream)")
        }

        // The killed node comes back as a replica; the cluster is whole again for what follows.
        try await TestCluster.restart(port: victim)
        try await TestCluster.waitUntilHealthy(timeout: 30)
        kill(system.pid, SIGTERM)
    }
}
